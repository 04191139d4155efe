"""The only module that imports ``requests`` (and ``urllib3``): one exchange at a time.

:meth:`HttpSession.exchange` sends one request — no redirects, no retries, no auth
logic (those are the callers') — and returns a :class:`Reply` whose body was read
within the size cap and the read deadline, or raises: a :class:`RegistryError`, or an
:class:`~ocirel.transport.retry.Again` for failures worth retrying.

* **No ambient credentials**: ``trust_env`` is off, so ``.netrc`` and
  ``REQUESTS_CA_BUNDLE`` are ignored; proxies from ``HTTPS_PROXY``/``NO_PROXY`` are
  applied explicitly (never for loopback).
* TLS verification, timeouts and the CA file come from the :class:`RegistryPolicy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.utils
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from ocirel import __version__
from ocirel.transport import errors
from ocirel.transport.body import (
    CHUNK,
    Deadline,
    arm_deadline,
    check_complete,
    check_size,
    undecodable,
)
from ocirel.transport.policy import RegistryPolicy
from ocirel.transport.reply import Reply
from ocirel.transport.urls import is_loopback


class HttpSession:
    """A pooled ``requests`` session for one ocirel command. Thread-safe."""

    def __init__(self, policy: RegistryPolicy) -> None:
        self.policy = policy
        self._session = requests.Session()
        self._session.trust_env = False  # no .netrc, no REQUESTS_CA_BUNDLE
        adapter = _DeadlineAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers["User-Agent"] = f"ocirel/{__version__}"
        if policy.insecure_registries:
            # the user asked for unverified TLS for these registries; urllib3's per-request
            # warning would only repeat that on every request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def close(self) -> None:
        self._session.close()

    def exchange(
        self,
        method: str,
        url: str,
        *,
        registry: str | None,
        headers: Mapping[str, str],
        body: bytes | IO[bytes] | None,
        max_body: int,
        deadline: Deadline,
    ) -> Reply:
        """One request; ``registry`` is None when ``url`` is on another host."""
        host = urlsplit(url).hostname or ""
        policy = self.policy
        try:
            response = self._session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=(policy.connect_timeout, policy.read_timeout),
                verify=policy.verify(registry),
                allow_redirects=False,
                stream=True,
                proxies={} if is_loopback(host) else _environ_proxies(url),
            )
        except requests.exceptions.SSLError as exc:
            raise errors.classify_ssl(exc, method, url, registry) from None
        except requests.exceptions.Timeout as exc:
            raise errors.timed_out(
                method, url, connecting=isinstance(exc, requests.exceptions.ConnectTimeout),
                connect_timeout=policy.connect_timeout, read_timeout=policy.read_timeout,
            ) from None  # fmt: skip
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise errors.unreachable(method, url, exc) from None
        except requests.exceptions.RequestException as exc:
            raise errors.request_failed(method, url, exc) from None
        except ValueError as exc:  # requests parses a redirect's Location before we see it
            raise errors.malformed_reply_url(method, url, exc) from None
        try:
            content = self._read(response, max_body, method, url, deadline)
        finally:
            response.close()
        return Reply(response.status_code, response.headers, content, url, method)

    def _read(
        self, response: requests.Response, limit: int, method: str, url: str, deadline: Deadline
    ) -> bytes:
        status, read_timeout = response.status_code, self.policy.read_timeout
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=CHUNK):
                deadline.rearm()  # the next 64 KiB gets the whole read timeout again
                size += len(chunk)
                check_size(size, limit, method, url, status)
                chunks.append(chunk)
        except requests.exceptions.ContentDecodingError:
            raise undecodable(method, url, status, response.headers) from None
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            if exc.args and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError):
                # requests reports a body that stalls as a ConnectionError: a timeout, not retried
                raise errors.body_stalled(method, url, status, read_timeout) from None
            raise errors.body_broken(method, url, status, exc) from None
        except requests.exceptions.Timeout:
            raise errors.body_stalled(method, url, status, read_timeout) from None
        body = b"".join(chunks)
        check_complete(body, response.headers, method, url, status)
        return body


def _environ_proxies(url: str) -> dict[str, str]:
    return dict(requests.utils.get_environ_proxies(url))


class _DeadlineHTTPConnection(urllib3.connection.HTTPConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        arm_deadline(self.sock)
        return super().getresponse(*args, **kwargs)


class _DeadlineHTTPSConnection(urllib3.connection.HTTPSConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        arm_deadline(self.sock)
        return super().getresponse(*args, **kwargs)


class _DeadlineHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_DEADLINE_POOLS = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections arm the request's :class:`Deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_DEADLINE_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_DEADLINE_POOLS)
        return manager
