"""The three CRDs of argo-cd's ``install.yaml`` (see ``_argocd.py``), generated.

Application, ApplicationSet and AppProject with openAPI v3 schemas shaped like
controller-gen's: the ApplicationSource schema (helm, kustomize, directory, plugin)
in every place that holds one (``source``, ``sources``, history, operation state,
every generator's template, nested matrix/merge generators), descriptions of one or
two sentences, ``required`` lists, int-or-string and preserve-unknown-fields markers.
"""

from __future__ import annotations

from typing import Any

_SENTENCES = (
    "{name} is the name of the field as it appears in the resource.",
    "{name} holds the settings used when the application is synced.",
    "If omitted, the default is used; see the argo-cd documentation for the supported values.",
    "More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/"
    "labels/#label-selectors",
    "{name} specifies whether the operation should be retried on failure, and how "
    "long to wait between attempts (for example '5s', '1m' or '2h').",
    "Deprecated: use the newer field instead.",
)


def _desc(name: str, seed: int) -> str:
    count = 1 + (seed % 5 == 0)
    parts = [_SENTENCES[(seed + i) % len(_SENTENCES)] for i in range(count)]
    return " ".join(parts).format(name=name[:1].upper() + name[1:])


def _string(name: str, seed: int) -> dict[str, Any]:
    return {"description": _desc(name, seed), "type": "string"}


def _obj(props: dict[str, Any], seed: int, required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"properties": props}
    if required:
        out["required"] = required
    out["type"] = "object"
    if seed % 4 == 0:
        out = {"description": _desc("object", seed), **out}
    return out


def _array(items: dict[str, Any], name: str, seed: int) -> dict[str, Any]:
    return {"description": _desc(name, seed), "items": items, "type": "array"}


def _strings(names: str, seed: int) -> dict[str, Any]:
    return {n: _string(n, seed + i) for i, n in enumerate(names.split())}


def _selector(seed: int) -> dict[str, Any]:
    expr = _obj(
        {
            "key": _string("key", seed),
            "operator": _string("operator", seed + 1),
            "values": _array({"type": "string"}, "values", seed + 2),
        },
        seed,
        ["key", "operator"],
    )
    match_labels = {"additionalProperties": {"type": "string"}, "type": "object"}
    selector = _obj(
        {"matchExpressions": _array(expr, "matchExpressions", seed), "matchLabels": match_labels},
        seed,
    )
    selector["x-kubernetes-map-type"] = "atomic"
    return selector


def application_source(seed: int) -> dict[str, Any]:
    """The ApplicationSource schema (helm, kustomize, directory, plugin)."""
    pair = _obj(_strings("name value", seed), seed, ["name", "value"])
    jsonnet_var = _obj(
        {"code": {"type": "boolean"}, **_strings("name value", seed)}, seed, ["name", "value"]
    )
    jsonnet = _obj(
        {
            "extVars": _array(jsonnet_var, "extVars", seed),
            "libs": _array({"type": "string"}, "libs", seed + 1),
            "tlas": _array(jsonnet_var, "tlas", seed + 2),
        },
        seed,
    )
    directory = _obj(
        {**_strings("exclude include", seed), "jsonnet": jsonnet, "recurse": {"type": "boolean"}},
        seed,
    )
    helm_param = _obj({"forceString": {"type": "boolean"}, **_strings("name value", seed)}, seed)
    helm = _obj(
        {
            "fileParameters": _array(
                _obj(_strings("name path", seed), seed), "fileParameters", seed
            ),
            "ignoreMissingValueFiles": {
                "description": _desc("ignoreMissingValueFiles", seed),
                "type": "boolean",
            },
            "parameters": _array(helm_param, "parameters", seed + 1),
            "passCredentials": {"type": "boolean"},
            **_strings("releaseName", seed),
            "skipCrds": {"type": "boolean"},
            "valueFiles": _array({"type": "string"}, "valueFiles", seed + 2),
            **_strings("values", seed + 3),
            "valuesObject": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            **_strings("version", seed + 4),
        },
        seed,
    )
    target = _obj(
        _strings("annotationSelector group kind labelSelector name namespace version", seed), seed
    )
    patch = _obj(
        {
            "options": {"additionalProperties": {"type": "boolean"}, "type": "object"},
            **_strings("patch path", seed),
            "target": target,
        },
        seed,
    )
    replica = _obj(
        {
            "count": {
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "description": _desc("count", seed),
                "x-kubernetes-int-or-string": True,
            },
            **_strings("name", seed),
        },
        seed,
        ["count", "name"],
    )
    string_map = {
        "additionalProperties": {"type": "string"},
        "description": _desc("map", seed),
        "type": "object",
    }
    kustomize = _obj(
        {
            "commonAnnotations": string_map,
            "commonAnnotationsEnvsubst": {"type": "boolean"},
            "commonLabels": string_map,
            "components": _array({"type": "string"}, "components", seed),
            "forceCommonAnnotations": {"type": "boolean"},
            "forceCommonLabels": {"type": "boolean"},
            "images": _array(
                {"description": _desc("image", seed), "type": "string"}, "images", seed + 1
            ),
            **_strings("namePrefix nameSuffix namespace", seed + 2),
            "patches": _array(patch, "patches", seed + 3),
            "replicas": _array(replica, "replicas", seed + 4),
            **_strings("version", seed + 5),
        },
        seed,
    )
    plugin_param = _obj(
        {
            "array": _array({"type": "string"}, "array", seed),
            "map": string_map,
            **_strings("name string", seed + 1),
        },
        seed,
    )
    plugin = _obj(
        {
            "env": _array(pair, "env", seed),
            **_strings("name", seed),
            "parameters": _array(plugin_param, "parameters", seed + 1),
        },
        seed,
    )
    props = {
        **_strings("chart", seed),
        "directory": directory,
        "helm": helm,
        "kustomize": kustomize,
        **_strings("path", seed + 1),
        "plugin": plugin,
        **_strings("ref repoURL targetRevision", seed + 2),
    }
    return _obj(props, seed, ["repoURL"])


def _sync_policy(seed: int) -> dict[str, Any]:
    backoff = _obj(
        {
            "duration": _string("duration", seed),
            "factor": {"format": "int64", "type": "integer"},
            "maxDuration": _string("maxDuration", seed + 1),
        },
        seed,
    )
    return _obj(
        {
            "automated": _obj(
                {
                    "allowEmpty": {"type": "boolean"},
                    "prune": {"type": "boolean"},
                    "selfHeal": {"type": "boolean"},
                },
                seed,
            ),
            "managedNamespaceMetadata": _obj(
                {
                    "annotations": {"additionalProperties": {"type": "string"}, "type": "object"},
                    "labels": {"additionalProperties": {"type": "string"}, "type": "object"},
                },
                seed,
            ),
            "retry": _obj(
                {"backoff": backoff, "limit": {"format": "int64", "type": "integer"}}, seed
            ),
            "syncOptions": _array({"type": "string"}, "syncOptions", seed),
        },
        seed,
    )


def application_spec(seed: int) -> dict[str, Any]:
    ignore = _obj(
        {
            **_strings("group", seed),
            "jqPathExpressions": _array({"type": "string"}, "jqPathExpressions", seed),
            "jsonPointers": _array({"type": "string"}, "jsonPointers", seed + 1),
            **_strings("kind", seed),
            "managedFieldsManagers": _array({"type": "string"}, "managedFieldsManagers", seed + 2),
            **_strings("name namespace", seed + 3),
        },
        seed,
        ["kind"],
    )
    return _obj(
        {
            "destination": _obj(_strings("name namespace server", seed), seed),
            "ignoreDifferences": _array(ignore, "ignoreDifferences", seed),
            "info": _array(
                _obj(_strings("name value", seed), seed, ["name", "value"]), "info", seed
            ),
            **_strings("project", seed + 1),
            "revisionHistoryLimit": {"format": "int64", "type": "integer"},
            "source": application_source(seed + 2),
            "sources": _array(application_source(seed + 3), "sources", seed),
            "syncPolicy": _sync_policy(seed + 4),
        },
        seed,
        ["destination", "project"],
    )


def _template(seed: int) -> dict[str, Any]:
    meta = _obj(
        {
            "annotations": {"additionalProperties": {"type": "string"}, "type": "object"},
            "finalizers": _array({"type": "string"}, "finalizers", seed),
            "labels": {"additionalProperties": {"type": "string"}, "type": "object"},
            **_strings("name namespace", seed),
        },
        seed,
    )
    return _obj({"metadata": meta, "spec": application_spec(seed + 1)}, seed, ["metadata", "spec"])


def _generators(seed: int, depth: int) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for index, name in enumerate(
        (
            "clusterDecisionResource",
            "clusters",
            "git",
            "list",
            "plugin",
            "pullRequest",
            "scmProvider",
        )
    ):
        props[name] = _obj(
            {
                **_strings("configMapRef requeueAfterSeconds", seed + index),
                "selector": _selector(seed + index),
                "template": _template(seed + index),
                "values": {"additionalProperties": {"type": "string"}, "type": "object"},
            },
            seed + index,
        )
    if depth > 0:
        for name in ("matrix", "merge"):
            props[name] = _obj(
                {
                    "generators": _array(_generators(seed + 7, depth - 1), "generators", seed),
                    "template": _template(seed + 8),
                },
                seed,
                ["generators"],
            )
    props["selector"] = _selector(seed)
    return _obj(props, seed)


def _crd(plural: str, kind: str, short: list[str], schema: dict[str, Any]) -> dict[str, Any]:
    name = f"{plural}.argoproj.io"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "argocd"},
            "name": name,
        },
        "spec": {
            "group": "argoproj.io",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "shortNames": short,
                "singular": kind.lower(),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "additionalPrinterColumns": [
                        {
                            "jsonPath": ".status.sync.status",
                            "name": "Sync Status",
                            "type": "string",
                        },
                        {
                            "jsonPath": ".status.health.status",
                            "name": "Health Status",
                            "type": "string",
                        },
                    ],
                    "name": "v1alpha1",
                    "schema": {"openAPIV3Schema": schema},
                    "served": True,
                    "storage": True,
                    "subresources": {},
                }
            ],
        },
    }


def _root(spec: dict[str, Any], status: dict[str, Any], seed: int) -> dict[str, Any]:
    return _obj(
        {
            "apiVersion": _string("apiVersion", seed),
            "kind": _string("kind", seed + 1),
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        seed,
        ["metadata", "spec"],
    )


def crds() -> list[dict[str, Any]]:
    sync_result = _obj(
        {
            "resources": _array(
                _obj(
                    _strings(
                        "group hookPhase hookType kind message name namespace status "
                        "syncPhase version",
                        3,
                    ),
                    3,
                ),
                "resources",
                3,
            ),
            **_strings("revision", 4),
            "revisions": _array({"type": "string"}, "revisions", 5),
            "source": application_source(6),
            "sources": _array(application_source(7), "sources", 8),
        },
        3,
    )
    operation = _obj(
        {
            "info": _array(_obj(_strings("name value", 9), 9), "info", 9),
            "initiatedBy": _obj({"automated": {"type": "boolean"}, **_strings("username", 10)}, 10),
            "retry": _sync_policy(11),
            "sync": sync_result,
        },
        12,
    )
    history = _obj(
        {
            **_strings("deployStartedAt deployedAt", 13),
            "id": {"format": "int64", "type": "integer"},
            **_strings("initiatedBy revision", 14),
            "source": application_source(15),
            "sources": _array(application_source(16), "sources", 17),
        },
        13,
    )
    status = _obj(
        {
            "conditions": _array(
                _obj(_strings("lastTransitionTime message type", 18), 18), "conditions", 18
            ),
            "history": _array(history, "history", 19),
            "operationState": _obj(
                {
                    **_strings("finishedAt message", 20),
                    "operation": operation,
                    **_strings("phase startedAt", 21),
                    "syncResult": sync_result,
                },
                20,
            ),
            "sync": _obj(
                {
                    "comparedTo": _obj(
                        {
                            "destination": _obj(_strings("name namespace server", 22), 22),
                            "source": application_source(23),
                            "sources": _array(application_source(24), "sources", 25),
                        },
                        22,
                    ),
                    **_strings("revision status", 26),
                },
                22,
            ),
        },
        18,
    )
    app_spec = application_spec(30)
    app_spec["properties"]["operation"] = operation
    appset_spec = _obj(
        {
            "generators": _array(_generators(40, 1), "generators", 40),
            "goTemplate": {"type": "boolean"},
            "template": _template(41),
        },
        40,
        ["generators", "template"],
    )
    project_spec = _obj(
        {
            "clusterResourceWhitelist": _array(
                _obj(_strings("group kind", 50), 50, ["group", "kind"]),
                "clusterResourceWhitelist",
                50,
            ),
            **_strings("description", 51),
            "destinations": _array(
                _obj(_strings("name namespace server", 52), 52), "destinations", 52
            ),
            "sourceRepos": _array({"type": "string"}, "sourceRepos", 53),
        },
        50,
    )
    return [
        _crd("applications", "Application", ["app", "apps"], _root(app_spec, status, 31)),
        _crd(
            "applicationsets",
            "ApplicationSet",
            ["appset", "appsets"],
            _root(
                appset_spec,
                _obj(
                    {
                        "conditions": _array(
                            _obj(_strings("message reason status type", 42), 42), "conditions", 42
                        )
                    },
                    42,
                ),
                43,
            ),
        ),
        _crd(
            "appprojects",
            "AppProject",
            ["appproj", "appprojs"],
            _root(project_spec, _obj({}, 54), 55),
        ),
    ]
