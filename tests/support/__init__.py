"""Test support: real registries, a token server, a private CA, build contexts, engines.

Import from here (``from tests.support import start_registry``) or from the modules.
"""

from tests.support.client import (
    MANIFEST_ACCEPT,
    RandomImage,
    RegistryClient,
    push_random_image,
)
from tests.support.engines import engine_problem, require_engine
from tests.support.images import (
    FAILING_RUN,
    UNIQUE_RUN,
    busybox_path,
    containerfile_text,
    write_build_context,
)
from tests.support.pki import CertificateAuthority, IssuedCert
from tests.support.registry import (
    Auth,
    RegistryServer,
    RegistryStartError,
    registry_binary,
    start_registry,
)
from tests.support.tokenserver import (
    ALL_ACTIONS,
    READ_ACTIONS,
    Scope,
    TokenRequest,
    TokenServer,
    decode_jwt_claims,
)

__all__ = [
    "ALL_ACTIONS",
    "FAILING_RUN",
    "MANIFEST_ACCEPT",
    "READ_ACTIONS",
    "UNIQUE_RUN",
    "Auth",
    "CertificateAuthority",
    "IssuedCert",
    "RandomImage",
    "RegistryClient",
    "RegistryServer",
    "RegistryStartError",
    "Scope",
    "TokenRequest",
    "TokenServer",
    "busybox_path",
    "containerfile_text",
    "decode_jwt_claims",
    "engine_problem",
    "push_random_image",
    "registry_binary",
    "require_engine",
    "start_registry",
    "write_build_context",
]
