"""How ocirel may talk to registries: the one place where ``--insecure`` is decided.

Built once per command from the settings (:meth:`RegistryPolicy.from_settings`) and
passed down: to the transport (scheme, TLS verification, timeouts, retries) and to the
builder's layer-cache flags (``tls_verify``).

* ``--insecure`` applies to the project's *own* registries (the target of a publish,
  the registries of the lockfile); any other registry is insecure only when listed in
  ``insecure_registries``.
* Plain http is allowed for insecure registries and for loopback hosts (``localhost``,
  ``127.0.0.0/8``, ``::1``), which — like docker and containerd — may answer plain http
  without ``--insecure``. TLS is verified (with ``ca_file`` when given) everywhere else.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ocirel.reference import normalize_host, split_host_port
from ocirel.transport.retry import RetryPolicy
from ocirel.transport.urls import is_loopback

if TYPE_CHECKING:
    from ocirel.settings import RegistryOptions


@dataclass(frozen=True)
class RegistryPolicy:
    insecure_registries: Collection[str] = frozenset()
    ca_file: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_settings(
        cls, config: RegistryOptions, own_registries: Iterable[str] = ()
    ) -> RegistryPolicy:
        """The policy of ``config``; ``--insecure`` marks ``own_registries`` insecure."""
        insecure = set(config.insecure_registries)
        if config.insecure:
            insecure.update(own_registries)
        return cls(
            insecure_registries=frozenset(insecure),
            ca_file=str(config.ca_file) if config.ca_file else None,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            retry=RetryPolicy(retries=config.retries, max_wait=config.max_retry_wait),
        )

    def is_insecure(self, registry: str) -> bool:
        """Host names compare case-insensitively (:func:`ocirel.reference.normalize_host`)."""
        wanted = normalize_host(registry)
        return any(normalize_host(name) == wanted for name in self.insecure_registries)

    def plain_http_allowed(self, registry: str) -> bool:
        return self.is_insecure(registry) or is_loopback(split_host_port(registry)[0])

    def verify(self, registry: str | None) -> bool | str:
        """``requests``' ``verify`` for a request to ``registry`` (None: another host)."""
        if registry is not None and self.is_insecure(registry):
            return False
        return self.ca_file or True

    def builder_tls_verify(self, registry: str) -> bool:
        """Whether the builder verifies TLS when it talks to ``registry`` (its layer cache)."""
        return not self.plain_http_allowed(registry)
