"""The client side of the OCI distribution API, for a proxy's upstream registry (httpx).

Authentication as registries ask for it: a request goes out with the token cached for its scope (if any); a
``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` fetches a token from the realm (with the
proxy's Basic credentials, if it has any; anonymously otherwise) and the request is sent once more; a ``Basic``
challenge is answered with the credentials. Tokens are cached per (upstream, credentials, scope) until shortly
before they expire.

Failures are told apart because the cache answers them differently: ``UpstreamMissing`` (404, or Docker Hub's
401 for a repository that does not exist) is a miss; ``UpstreamDown`` (no connection, time-out, 5xx, 429) lets
the cache serve what it holds, marked stale.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import ssl
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from dockyard import __version__
from dockyard.core import mediatypes as mt
from dockyard.proxy import blob_stream
from dockyard.proxy.blob_stream import BlobStream
from dockyard.proxy.manage import Upstream

MANIFEST_ACCEPT = ", ".join([mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST])
_TOKEN_MARGIN = 10.0
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
USER_AGENT = f"Dockyard/{__version__}"
READER_THREADS = 64  # blob bodies read from upstreams at once, per process (more wait for a thread)


class UpstreamMissing(Exception):
    """The upstream does not have it (404; 401/403 even with credentials, as Docker Hub answers for unknown
    repositories)."""


class UpstreamDown(Exception):
    """The upstream cannot answer now (connection, time-out, 5xx) or refuses for a while (429)."""


@dataclass(frozen=True, slots=True)
class UpstreamManifest:
    digest: str | None  # Docker-Content-Digest, when the upstream sends it
    media_type: str
    content: bytes | None  # None for a HEAD


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


class UpstreamClient:
    """Requests to upstream registries over one httpx client (connection pooling across proxies), made on first
    use: a worker that never proxies pays nothing for it."""

    def __init__(self, timeout: float, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        """``transport`` carries every request, each redirect hop and token request included (replication's
        resolves each host once, checks the addresses with the SSRF guard and connects to a checked one: a remote
        must not send it inward); httpx's own by default."""
        self.timeout = timeout
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._readers: ThreadPoolExecutor | None = None
        # (upstream, whose credentials, scope) → (expiry, token): a token is never reused for other credentials
        self._tokens: dict[tuple[str, str, str], tuple[float, str]] = {}

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The CA bundle and TLS settings of the httpx client, for the blob bodies read by ``http.client``."""
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context(trust_env=False)
        return self._ssl_context

    @property
    def readers(self) -> ThreadPoolExecutor:
        """The threads that wait on upstream blob bodies (``proxy.blob_stream``), apart from the default pool."""
        if self._readers is None:
            self._readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="upstream-read")
        return self._readers

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                trust_env=False,
                transport=self._transport,
                headers={"User-Agent": USER_AGENT},
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._readers is not None:
            self._readers.shutdown(wait=False, cancel_futures=True)
            self._readers = None

    def _basic(self, upstream: Upstream) -> httpx.BasicAuth | None:
        if upstream.username is None or upstream.password is None:
            return None
        return httpx.BasicAuth(upstream.username, upstream.password)

    async def _token(self, upstream: Upstream, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise UpstreamDown("the upstream's Bearer challenge names no realm")
        query = {"scope": params.get("scope") or scope}
        if params.get("service"):
            query["service"] = params["service"]
        try:
            response = await self.http.get(realm, params=query, auth=self._basic(upstream))
        except httpx.HTTPError as exc:
            raise UpstreamDown(f"token endpoint unreachable: {exc}") from exc
        if response.status_code in (401, 403):
            raise UpstreamMissing(f"the upstream's token endpoint refused the credentials ({response.status_code})")
        if response.status_code != 200:
            raise UpstreamDown(f"token endpoint answered {response.status_code}")
        try:
            doc: dict[str, Any] = response.json()
            token = str(doc.get("token") or doc.get("access_token"))
            lifetime = float(doc.get("expires_in") or 60)
        except (ValueError, TypeError) as exc:
            raise UpstreamDown("the upstream's token endpoint sent no token") from exc
        self._tokens[_token_key(upstream, scope)] = (time.monotonic() + max(lifetime - _TOKEN_MARGIN, 1.0), token)
        return token

    async def send(
        self,
        upstream: Upstream,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        actions: str = "pull",
        scope: str | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
    ) -> httpx.Response:
        """Send one request to ``upstream`` (``path`` below its URL, or an absolute URL the upstream gave, such as
        an upload's ``Location``), authenticating when challenged. Returns the response for any status (streamed:
        the caller closes it); raises ``UpstreamDown`` if none came. ``actions`` (``pull``; ``pull,push`` for a
        replication's writes) or ``scope`` (``registry:catalog:*``) is the token's scope. A ``content`` iterator
        cannot be sent twice: send a request of the same scope first, so that the token is at hand."""
        scope = scope or f"repository:{_repository_of(path)}:{actions}"
        url = path if path.startswith(("http://", "https://")) else f"{upstream.url}{path}"
        base_headers = dict(headers or {})
        auth_header = self._cached_authorization(upstream, scope)
        for attempt in range(2):
            sent = dict(base_headers)
            if auth_header is not None:
                sent["Authorization"] = auth_header
            request = self.http.build_request(method, url, headers=sent, content=content)
            try:
                response = await self.http.send(request, stream=stream, follow_redirects=True)
            except httpx.HTTPError as exc:
                raise UpstreamDown(f"{upstream.url} unreachable: {exc}") from exc
            if response.status_code != 401 or attempt == 1:
                return response
            await response.aclose()
            auth_header = await self._answer(upstream, response.headers.get("www-authenticate", ""), scope)
            if auth_header is None:
                return response
        raise AssertionError("unreachable")

    def _cached_authorization(self, upstream: Upstream, scope: str) -> str | None:
        cached = self._tokens.get(_token_key(upstream, scope))
        if cached is not None and cached[0] > time.monotonic():
            return f"Bearer {cached[1]}"
        return None

    async def _answer(self, upstream: Upstream, challenge: str, scope: str) -> str | None:
        """The ``Authorization`` value that answers a ``401``'s challenge (a token fetched from a Bearer realm, or
        the Basic credentials), or None if there is nothing to answer it with."""
        scheme, params = _challenge(challenge)
        if scheme == "bearer":
            return f"Bearer {await self._token(upstream, params, scope)}"
        if scheme == "basic" and self._basic(upstream) is not None:
            return self._basic_header(upstream)
        return None

    @staticmethod
    def _basic_header(upstream: Upstream) -> str:
        raw = f"{upstream.username}:{upstream.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    @staticmethod
    def check(response: httpx.Response, what: str) -> None:
        UpstreamClient._check_status(response.status_code, what)

    @staticmethod
    def _check_status(status: int, what: str) -> None:
        if status in (401, 403, 404):
            raise UpstreamMissing(f"upstream has no {what} ({status})")
        if status == 429 or status >= 500:
            raise UpstreamDown(f"upstream answered {status} for {what}")
        if status >= 300:
            raise UpstreamDown(f"upstream answered {status} for {what}")

    async def manifest(
        self, upstream: Upstream, repository: str, reference: str, *, head: bool = False
    ) -> UpstreamManifest:
        """GET (or HEAD) a manifest by tag or digest, accepting every manifest kind Dockyard stores."""
        method = "HEAD" if head else "GET"
        response = await self.send(
            upstream, method, f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        self.check(response, f"manifest {repository}:{reference}")
        media_type = mt.strip_parameters(response.headers.get("content-type", ""))
        content = None if head else response.content
        if content is not None and len(content) > MAX_MANIFEST_BYTES:
            raise UpstreamDown("the upstream's manifest is larger than Dockyard stores")
        return UpstreamManifest(response.headers.get("docker-content-digest"), media_type, content)

    @asynccontextmanager
    async def blob(self, upstream: Upstream, repository: str, digest: str) -> AsyncIterator[httpx.Response]:
        """The upstream's response to GET of a blob, streaming (redirects to storage followed)."""
        response = await self.send(upstream, "GET", f"/v2/{repository}/blobs/{digest}", stream=True)
        try:
            self.check(response, f"blob {digest}")
            yield response
        finally:
            await response.aclose()

    @asynccontextmanager
    async def blob_stream(self, upstream: Upstream, repository: str, digest: str) -> AsyncIterator[BlobStream]:
        """A blob streaming from upstream for the cache's miss path: read by ``http.client`` in worker threads
        (``proxy.blob_stream``), authenticated as ``send`` does. A client made with a transport of its own
        (replication's SSRF guard carries every request) reads through httpx instead."""
        if self._transport is not None:
            async with self.blob(upstream, repository, digest) as response:
                size = blob_stream.declared_size(response.headers.get("content-length"))
                yield BlobStream(size, response.aiter_raw())
            return
        path = f"/v2/{repository}/blobs/{digest}"
        scope = f"repository:{repository}:pull"
        authorization = self._cached_authorization(upstream, scope)
        context = await asyncio.to_thread(lambda: self.ssl_context)  # the first loads the CA bundle
        for attempt in range(2):
            headers = {"User-Agent": USER_AGENT}
            if authorization is not None:
                headers["Authorization"] = authorization
            try:
                url = f"{upstream.url}{path}"
                answer = await asyncio.get_running_loop().run_in_executor(
                    self.readers, blob_stream.get, url, headers, self.timeout, context, self.readers
                )
            except blob_stream.StreamFailed as exc:
                raise UpstreamDown(f"{upstream.url} unreachable: {exc}") from exc
            if answer.status != 401 or attempt == 1:
                break
            challenge = answer.header("www-authenticate") or ""
            answer.close()
            authorization = await self._answer(upstream, challenge, scope)
            if authorization is None:
                break
        try:
            self._check_status(answer.status, f"blob {digest}")
            yield BlobStream(answer.size, _upstream_down_on_failure(answer.chunks()))
        finally:
            answer.close()

    async def has_blob(self, upstream: Upstream, repository: str, digest: str) -> bool:
        response = await self.send(upstream, "HEAD", f"/v2/{repository}/blobs/{digest}")
        if response.status_code in (401, 403, 404):
            return False
        self.check(response, f"blob {digest}")
        return True

    async def referrers(self, upstream: Upstream, repository: str, digest: str) -> list[dict[str, Any]]:
        """The upstream's referrers of ``digest`` (descriptors), or none when it has no referrers API."""
        response = await self.send(
            upstream, "GET", f"/v2/{repository}/referrers/{digest}", headers={"Accept": mt.OCI_INDEX}
        )
        if response.status_code != 200:
            return []
        try:
            doc = json.loads(response.content)
        except ValueError:
            return []
        manifests = doc.get("manifests") if isinstance(doc, dict) else None
        return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []


async def _upstream_down_on_failure(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    except blob_stream.StreamFailed as exc:
        raise UpstreamDown(str(exc)) from exc


def _token_key(upstream: Upstream, scope: str) -> tuple[str, str, str]:
    """Tokens are cached per upstream, scope and credentials: two proxies or replication rules on one registry
    with different accounts (or one anonymous) never share a token."""
    who = ""
    if upstream.username is not None:
        secret = hashlib.sha256(f"{upstream.username}\0{upstream.password or ''}".encode()).hexdigest()
        who = f"{upstream.username}:{secret}"
    return upstream.url, who, scope


def _repository_of(path: str) -> str:
    """The repository of ``/v2/<repository>/(manifests|blobs|referrers|tags)/…``."""
    inner = urlsplit(path).path.removeprefix("/v2/")
    for marker in ("/manifests/", "/blobs/", "/referrers/", "/tags/"):
        head, sep, _ = inner.rpartition(marker)
        if sep:
            return head
    return inner
