"""A small requests-based registry client for seeding and checking test registries.

Independent of ocirel on purpose: tests use it to create foreign tags (``latest``,
``sha256-<hex>.sig``, ...) without a builder and to check what ocirel pushed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import requests

if TYPE_CHECKING:
    from tests.support.registry import RegistryServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))

TIMEOUT = (5, 60)


_REFERRERS_TAG = re.compile(r"sha256-[0-9a-f]{64}")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class RandomImage:
    """A one-layer image whose layer holds ``random.bin`` of random bytes."""

    config: bytes
    layer: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @classmethod
    def create(cls, layer_size: int = 512) -> RandomImage:
        payload = os.urandom(layer_size)
        tar_buffer = io.BytesIO()
        with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo("random.bin")
            info.size = len(payload)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(payload))
        layer_tar = tar_buffer.getvalue()
        layer = gzip.compress(layer_tar, mtime=0)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"org.ocirel.test.nonce": os.urandom(8).hex()}},
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_tar)]},
                "history": [{"created_by": "tests.support.client.RandomImage"}],
            },
            sort_keys=True,
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": OCI_CONFIG,
                    "digest": sha256_digest(config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": OCI_LAYER_GZIP,
                        "digest": sha256_digest(layer),
                        "size": len(layer),
                    }
                ],
            },
            sort_keys=True,
        ).encode()
        return cls(config=config, layer=layer, manifest=manifest)


class RegistryClient:
    """Talks to one :class:`RegistryServer` with its credentials (Basic or token)."""

    def __init__(self, server: RegistryServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc for loopback test traffic
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- auth --------------------------------------------------------------------

    def token(self, scopes: Iterable[str], *, anonymous: bool = False) -> str:
        """A bearer token from the registry's token server for ``scopes``."""
        token_server = self.server.token_server
        if token_server is None:
            raise ValueError("this registry does not use token auth")
        scope_list = list(scopes)
        response = self.session.get(
            token_server.realm,
            params={"service": token_server.service, "scope": scope_list},
            auth=None if anonymous else self.server.credentials,
            verify=self.server.verify,
            timeout=TIMEOUT,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return str(body.get("token") or body["access_token"])

    def _auth_headers(self, repo: str | None, actions: str) -> dict[str, str]:
        if self.server.auth != "token":
            return {}
        scope = f"repository:{repo}:{actions}" if repo else "registry:catalog:*"
        if scope not in self._tokens:
            self._tokens[scope] = self.token([scope])
        return {"Authorization": f"Bearer {self._tokens[scope]}"}

    def request(
        self,
        method: str,
        path: str,
        *,
        repo: str | None = None,
        actions: str = "pull",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """``method`` on ``path`` (absolute URL, or relative to the registry root)."""
        all_headers = {**self._auth_headers(repo, actions), **(headers or {})}
        auth = self.server.credentials if self.server.auth == "basic" else None
        return self.session.request(
            method,
            urljoin(self.server.url + "/", path),
            headers=all_headers,
            auth=auth,
            verify=self.server.verify,
            timeout=TIMEOUT,
            allow_redirects=False,
            **kwargs,
        )

    # -- reading -------------------------------------------------------------------

    def tags(self, repo: str, *, artifacts: bool = False) -> list[str]:
        """The tags of ``repo`` ([] when the repository does not exist), without the
        ``sha256-<hex>`` referrers tags of attached build records unless ``artifacts``."""
        response = self.request("GET", f"/v2/{repo}/tags/list", repo=repo)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        tags = list(response.json().get("tags") or [])
        return tags if artifacts else [t for t in tags if not _REFERRERS_TAG.fullmatch(t)]

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        """The digest ``reference`` (tag or digest) resolves to, or ``None``."""
        response = self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            repo=repo,
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]

    def manifest(self, repo: str, reference: str) -> requests.Response:
        response = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            repo=repo,
            headers={"Accept": MANIFEST_ACCEPT},
        )
        response.raise_for_status()
        return response

    # -- writing -------------------------------------------------------------------

    def upload_blob(self, repo: str, data: bytes) -> str:
        """Monolithic upload (POST then PUT); returns the blob digest."""
        digest = sha256_digest(data)
        start = self.request("POST", f"/v2/{repo}/blobs/uploads/", repo=repo, actions="pull,push")
        if start.status_code != 202:
            raise RuntimeError(f"upload start failed: {start.status_code} {start.text}")
        location = urljoin(self.server.url + "/", start.headers["Location"])
        done = self.request(
            "PUT",
            location,
            repo=repo,
            actions="pull,push",
            params={"digest": digest},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if done.status_code != 201:
            raise RuntimeError(f"upload failed: {done.status_code} {done.text}")
        return digest

    def put_manifest(
        self, repo: str, reference: str, manifest: bytes, media_type: str = OCI_MANIFEST
    ) -> str:
        """PUT a manifest under a tag or digest; returns the registry's digest."""
        response = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            repo=repo,
            actions="pull,push",
            data=manifest,
            headers={"Content-Type": media_type},
        )
        if response.status_code != 201:
            raise RuntimeError(f"manifest PUT failed: {response.status_code} {response.text}")
        return response.headers.get("Docker-Content-Digest") or sha256_digest(manifest)

    def push_random_image(self, repo: str, tag: str, *, layer_size: int = 512) -> str:
        """Push a fresh random one-layer image as ``repo:tag``; returns its digest."""
        image = RandomImage.create(layer_size)
        self.upload_blob(repo, image.config)
        self.upload_blob(repo, image.layer)
        digest = self.put_manifest(repo, tag, image.manifest)
        if digest != image.digest:
            raise RuntimeError(f"registry reported {digest}, expected {image.digest}")
        return digest

    def tag_manifest(self, repo: str, source: str, tag: str) -> str:
        """Point ``tag`` at the manifest ``source`` (tag or digest) refers to."""
        response = self.manifest(repo, source)
        media_type = response.headers.get("Content-Type", OCI_MANIFEST)
        return self.put_manifest(repo, tag, response.content, media_type)

    def delete_manifest(self, repo: str, digest: str) -> None:
        response = self.request(
            "DELETE", f"/v2/{repo}/manifests/{digest}", repo=repo, actions="pull,push,delete"
        )
        if response.status_code != 202:
            raise RuntimeError(f"manifest DELETE failed: {response.status_code} {response.text}")


def push_random_image(server: RegistryServer, repo: str, tag: str, *, layer_size: int = 512) -> str:
    """Seed ``server`` with a random image ``repo:tag`` without any builder; returns its digest."""
    with RegistryClient(server) as client:
        return client.push_random_image(repo, tag, layer_size=layer_size)
