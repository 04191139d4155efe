"""An argo-cd ``install.yaml``-shaped manifest (about 2 MB), for bench/pin_large.py.

The real file (``manifests/install.yaml`` of an argo-cd 2.x release) is one
multi-document stream: three CustomResourceDefinitions with long openAPI v3 schemas
(the ApplicationSource schema repeated in every place an Application or an
ApplicationSet template can hold one), then ServiceAccounts, Roles, ClusterRoles,
bindings, ConfigMaps, Secrets, Services, six Deployments, one StatefulSet and the
NetworkPolicies. Ten image references: ``quay.io/argoproj/argocd`` in every argo-cd
component (and the ``copyutil``/``secret-init`` init containers),
``ghcr.io/dexidp/dex`` and ``public.ecr.aws/docker/library/redis``. It is written
the way kustomize writes it: block style, sequences not indented under their key,
long descriptions folded over several lines (plain or single-quoted).

The schemas (``_argocd_crds.py``) are generated, not copied, but keep the shape that
costs a parser: deep nesting, about 34,500 lines for 2.3 MB, most of them short
``type:``/``description:`` lines of a CRD.
"""

from __future__ import annotations

from typing import Any

import yaml
from _argocd_crds import crds

ARGOCD = "quay.io/argoproj/argocd:v2.11.3"
DEX = "ghcr.io/dexidp/dex:v2.38.0"
REDIS = "public.ecr.aws/docker/library/redis:7.0.15-alpine"
IMAGES = (ARGOCD, DEX, REDIS)
#: Image references in one copy of the template.
REFERENCES_PER_COPY = 10


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
