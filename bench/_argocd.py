"""An argo-cd ``install.yaml``-shaped manifest (about 2 MB), for bench/pin_large.py.

The real file (``manifests/install.yaml`` of an argo-cd 2.x release) is one
multi-document stream: three CustomResourceDefinitions with long openAPI v3 schemas
(the ApplicationSource schema repeated in every place an Application or an
ApplicationSet template can hold one), then ServiceAccounts, Roles, ClusterRoles,
bindings, ConfigMaps, Secrets, Services, six Deployments, one StatefulSet and the
NetworkPolicies. Ten image references: ``quay.io/argoproj/argocd`` in every argo-cd
component (and the ``copyutil``/``secret-init`` init containers),
``ghcr.io/dexidp/dex`` and ``public.ecr.aws/docker/library/redis``. It is written
the way kustomize writes it: block style, keys sorted, sequences not indented under
their key, long descriptions folded over several lines (plain or single-quoted).

The schema is generated, not copied, but keeps the shape that costs a parser: deep
nesting, about 35,000 lines for 2 MB, most of them short ``type:``/``description:``
lines of a CRD.
"""

from __future__ import annotations

from typing import Any

import yaml

ARGOCD = "quay.io/argoproj/argocd:v2.11.3"
DEX = "ghcr.io/dexidp/dex:v2.38.0"
REDIS = "public.ecr.aws/docker/library/redis:7.0.15-alpine"
IMAGES = (ARGOCD, DEX, REDIS)
#: Image references in one copy of the template.
REFERENCES_PER_COPY = 10

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


# ------------------------------------------------------------------ workloads


def _labels(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "argocd",
    }


def _env(names: str, config_map: str = "argocd-cmd-params-cm") -> list[dict[str, Any]]:
    env = []
    for name in names.split():
        key = name.removeprefix("ARGOCD_").lower().replace("_", ".")
        ref = {"key": key, "name": config_map, "optional": True}
        env.append({"name": name, "valueFrom": {"configMapKeyRef": ref}})
    return env


_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _container(name: str, image: str, args: list[str], env: str, port: int) -> dict[str, Any]:
    probe = {
        "httpGet": {"path": "/healthz", "port": port},
        "initialDelaySeconds": 5,
        "periodSeconds": 10,
    }
    return {
        "args": args,
        "env": _env(env),
        "image": image,
        "imagePullPolicy": "Always",
        "livenessProbe": probe,
        "name": name,
        "ports": [{"containerPort": port}, {"containerPort": port + 1}],
        "readinessProbe": probe,
        "securityContext": _SECURITY,
        "volumeMounts": [
            {"mountPath": "/app/config/ssh", "name": "ssh-known-hosts"},
            {"mountPath": "/app/config/tls", "name": "tls-certs"},
            {"mountPath": "/app/config/gpg/source", "name": "gpg-keys"},
            {"mountPath": "/tmp", "name": "tmp"},
        ],
    }


def _copyutil(target: str) -> dict[str, Any]:
    return {
        "command": ["/bin/cp", "-n", "/usr/local/bin/argocd", target],
        "image": ARGOCD,
        "name": "copyutil",
        "securityContext": _SECURITY,
        "volumeMounts": [{"mountPath": "/shared", "name": "static-files"}],
    }


def _workload(kind: str, name: str, component: str, pod: dict[str, Any]) -> dict[str, Any]:
    affinity = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                    "weight": 100,
                },
                {
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/part-of": "argocd"}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                    "weight": 5,
                },
            ]
        }
    }
    volumes = [
        {"configMap": {"name": "argocd-ssh-known-hosts-cm"}, "name": "ssh-known-hosts"},
        {"configMap": {"name": "argocd-tls-certs-cm"}, "name": "tls-certs"},
        {"configMap": {"name": "argocd-gpg-keys-cm"}, "name": "gpg-keys"},
        {"emptyDir": {}, "name": "tmp"},
        {"emptyDir": {}, "name": "static-files"},
    ]
    spec = {"affinity": affinity, **pod, "serviceAccountName": name, "volumes": volumes}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"labels": _labels(name, component), "name": name},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": spec},
        },
    }


_SERVER_ENV = (
    "ARGOCD_SERVER_INSECURE ARGOCD_SERVER_BASEHREF ARGOCD_SERVER_ROOTPATH "
    "ARGOCD_SERVER_LOGFORMAT ARGOCD_SERVER_LOG_LEVEL ARGOCD_SERVER_REPO_SERVER "
    "ARGOCD_SERVER_DEX_SERVER ARGOCD_SERVER_DISABLE_AUTH ARGOCD_SERVER_ENABLE_GZIP "
    "ARGOCD_SERVER_REPO_SERVER_TIMEOUT_SECONDS ARGOCD_SERVER_X_FRAME_OPTIONS "
    "ARGOCD_SERVER_CONTENT_SECURITY_POLICY ARGOCD_SERVER_REPO_SERVER_PLAINTEXT "
    "ARGOCD_SERVER_REPO_SERVER_STRICT_TLS ARGOCD_SERVER_DEX_SERVER_PLAINTEXT "
    "ARGOCD_SERVER_DEX_SERVER_STRICT_TLS ARGOCD_TLS_MIN_VERSION ARGOCD_TLS_MAX_VERSION "
    "ARGOCD_TLS_CIPHERS ARGOCD_SERVER_CONNECTION_STATUS_CACHE_EXPIRATION "
    "ARGOCD_SERVER_OIDC_CACHE_EXPIRATION ARGOCD_SERVER_LOGIN_ATTEMPTS_EXPIRATION "
    "ARGOCD_SERVER_STATIC_ASSETS ARGOCD_APP_STATE_CACHE_EXPIRATION REDIS_SERVER "
    "REDIS_COMPRESSION REDISDB ARGOCD_DEFAULT_CACHE_EXPIRATION ARGOCD_MAX_COOKIE_NUMBER "
    "ARGOCD_SERVER_LISTEN_ADDRESS ARGOCD_SERVER_METRICS_LISTEN_ADDRESS "
    "ARGOCD_SERVER_OTLP_ADDRESS ARGOCD_APPLICATION_NAMESPACES "
    "ARGOCD_SERVER_ENABLE_PROXY_EXTENSION"
)


def workloads() -> list[dict[str, Any]]:
    """The six Deployments and the StatefulSet: ten image references."""
    env = _SERVER_ENV
    redis = {
        "containers": [
            {
                **_container(
                    "redis", REDIS, ["--save", "", "--appendonly", "no"], "REDIS_PASSWORD", 6379
                ),
                "imagePullPolicy": "IfNotPresent",
            }
        ],
        "initContainers": [
            {
                **_copyutil("/shared"),
                "command": ["argocd", "admin", "redis-initial-password"],
                "name": "secret-init",
            }
        ],
    }
    dex = {
        "containers": [
            {
                **_container(
                    "dex",
                    DEX,
                    ["/shared/argocd-dex", "rundex"],
                    "ARGOCD_DEX_SERVER_LOGFORMAT ARGOCD_DEX_SERVER_LOGLEVEL "
                    "ARGOCD_LOG_FORMAT_TIMESTAMP",
                    5556,
                ),
                "imagePullPolicy": "Always",
            }
        ],
        "initContainers": [_copyutil("/shared/argocd-dex")],
    }
    return [
        _workload(
            "Deployment",
            "argocd-applicationset-controller",
            "applicationset-controller",
            {
                "containers": [
                    _container(
                        "argocd-applicationset-controller",
                        ARGOCD,
                        ["/usr/local/bin/argocd-applicationset-controller"],
                        env,
                        7000,
                    )
                ]
            },
        ),
        _workload("Deployment", "argocd-dex-server", "dex-server", dex),
        _workload(
            "Deployment",
            "argocd-notifications-controller",
            "notifications-controller",
            {
                "containers": [
                    _container(
                        "argocd-notifications-controller",
                        ARGOCD,
                        ["/usr/local/bin/argocd-notifications"],
                        env,
                        9001,
                    )
                ]
            },
        ),
        _workload("Deployment", "argocd-redis", "redis", redis),
        _workload(
            "Deployment",
            "argocd-repo-server",
            "repo-server",
            {
                "containers": [
                    _container(
                        "argocd-repo-server",
                        ARGOCD,
                        ["/usr/local/bin/argocd-repo-server"],
                        env,
                        8081,
                    )
                ],
                "initContainers": [_copyutil("/var/run/argocd/argocd-cmp-server")],
            },
        ),
        _workload(
            "Deployment",
            "argocd-server",
            "server",
            {
                "containers": [
                    _container("argocd-server", ARGOCD, ["/usr/local/bin/argocd-server"], env, 8080)
                ]
            },
        ),
        _workload(
            "StatefulSet",
            "argocd-application-controller",
            "application-controller",
            {
                "containers": [
                    _container(
                        "argocd-application-controller",
                        ARGOCD,
                        ["/usr/local/bin/argocd-application-controller"],
                        env,
                        8082,
                    )
                ]
            },
        ),
    ]


def plumbing() -> list[dict[str, Any]]:
    """ServiceAccounts, RBAC, ConfigMaps, Secrets, Services and NetworkPolicies."""
    docs: list[dict[str, Any]] = []
    names = (
        "argocd-application-controller",
        "argocd-applicationset-controller",
        "argocd-dex-server",
        "argocd-notifications-controller",
        "argocd-redis",
        "argocd-repo-server",
        "argocd-server",
    )
    rules = [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": ["argoproj.io"],
            "resources": ["applications", "applicationsets", "appprojects"],
            "verbs": ["create", "get", "list", "watch", "update", "delete", "patch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "list"]},
    ]
    for name in names:
        component = name.removeprefix("argocd-")
        meta = {"labels": _labels(name, component), "name": name}
        docs += [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta,
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": meta,
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name}],
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": {
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                    "selector": {"app.kubernetes.io/name": name},
                },
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"{name}-network-policy"},
                "spec": {
                    "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}],
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
                    "policyTypes": ["Ingress"],
                },
            },
        ]
    notifications = {
        f"template.app-{event}": f"message: |\n  Application {{{{.app.metadata.name}}}} {event}.\n"
        for event in (
            "created",
            "deleted",
            "deployed",
            "health-degraded",
            "sync-failed",
            "sync-running",
            "sync-succeeded",
        )
    }
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "argocd-notifications-cm"},
            "data": notifications,
        }
    )
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "argocd-secret"},
            "type": "Opaque",
        }
    )
    return docs


def install_yaml() -> str:
    """One copy of the manifest (about 2 MB, ten image references)."""
    docs = [*crds(), *plumbing(), *workloads()]
    body = "---\n".join(yaml.dump(d, Dumper=_NoAliases, sort_keys=False, width=80) for d in docs)
    return "# This is an auto-generated file. DO NOT EDIT\n" + body


class _NoAliases(yaml.SafeDumper):
    """kustomize writes every repeated schema out in full: no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
