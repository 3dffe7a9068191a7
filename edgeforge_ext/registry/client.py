"""Registry v2 API client on `requests`: ping and credential check, manifest presence, blobs and manifests,
referrers (transfer.py, bundle.py and deep.py build `images verify|mirror|save|load` on it).

No Docker daemon is involved. Authentication follows the registry's 401 challenge (WWW-Authenticate):
Basic credentials, or the Bearer token flow (GET realm?service=&scope= with Basic credentials).
Insecure registries (and 127.0.0.0/8 / localhost, as Docker does) are tried over HTTPS without verification
first, then plain HTTP. Transient failures (connection errors, 5xx, 429) are retried with backoff.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urljoin

import requests

from edgeforge_ext.errors import RegistryAuthError, RegistryError, RegistryStatusError, RegistryUnreachable
from edgeforge_ext.registry.images import ImageRef, parse_ref
from edgeforge_ext.registry.manifests import IMAGE_TYPES, INDEX_TYPES, OCI_INDEX
from edgeforge_ext.registry.streams import Readable
from edgeforge_ext.secrets import Redactor, Secret, basic_credentials, scrub_url

if TYPE_CHECKING:
    from edgeforge_ext.config import Config

MANIFEST_ACCEPT = ", ".join((*INDEX_TYPES, *IMAGE_TYPES))
REFERRERS_ACCEPT = OCI_INDEX


# Credentials are looked up by host: the --registry domain, or a [[registry.registries]] entry.
_CREDENTIALS_HINT = ("credentials apply to the --registry DOMAIN (or a [[registry.registries]] entry) whose host is "
                     "{host}: give it with --registry-username and the password (--registry-password-stdin, "
                     "--registry-password-file or EDGEFORGE_REGISTRY_PASSWORD)")


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: Secret | None = None
    insecure: bool = False
    ca_file: str | None = None


ANONYMOUS = Credentials()


def registry_host(registry: str) -> str:
    """``10.10.254.254:8000/spectro-images`` -> ``10.10.254.254:8000`` (the API lives at the host)."""
    value = registry.strip()
    for scheme in ("https://", "http://"):
        if value.startswith(scheme):
            value = value[len(scheme):]
    return value.split("/", 1)[0]


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _api_host(host: str) -> str:
    return "registry-1.docker.io" if host == "docker.io" else host


class _Utf8Basic(requests.auth.AuthBase):
    """Basic credentials in UTF-8, as docker login and curl send them (RFC 7617). requests' own encodes
    them as Latin-1: wrong bytes for 'pässwörd', an exception for a CJK password."""

    def __init__(self, username: str, password: Secret) -> None:
        self.username = username
        self.password = password

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Basic " + basic_credentials(self.username, self.password.reveal())
        return request


class _Session(requests.Session):
    """A requests session that reads the environment (proxies, CA bundle, .netrc) once per scheme and host
    rather than on every request: a mirror makes hundreds of requests, and that lookup walks os.environ
    twice each time (a tenth of the client's CPU in a profile of `images mirror`)."""

    def __init__(self) -> None:
        super().__init__()
        self._settings: dict[tuple[Any, ...], Any] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        from urllib.parse import urlsplit

        parts = urlsplit(url.decode() if isinstance(url, bytes) else str(url))
        key = (parts.scheme, parts.netloc, repr(proxies), stream, verify, cert)
        found = self._settings.get(key)
        if found is None:
            found = self._settings[key] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        return dict(found)


class _UnverifiedAdapter(requests.adapters.HTTPAdapter):
    """For registries reached without certificate checks (insecure, loopback): a TLS context that loads no CA
    store. urllib3 would otherwise load the system's CAs for every connection it opens, only to ignore them:
    20-30 ms of CPU each time, spent before the first request of every `images` command (the HTTPS attempt
    that comes first, as Docker's, on a plain-HTTP registry). Not checking is the user's choice (insecure) or
    Docker's rule (loopback), so urllib3's InsecureRequestWarning, a traceback-like line on every run, is off."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        import ssl

        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().init_poolmanager(*args, ssl_context=context, **kwargs)


class BlobMissing(RegistryError):
    """A registry does not hold a blob a manifest names."""


class _Retry(Exception):
    """A transient failure worth another attempt (429, 5xx)."""

    def __init__(self, status: int, text: str, retry_after: str | None) -> None:
        super().__init__(status, text)
        self.status = status
        self.text = text
        self.retry_after = retry_after


class RegistryClient:
    """One registry host: a requests session, the scheme that works, and cached Bearer tokens per scope.

    Thread-safe enough for a ThreadPoolExecutor: tokens are guarded by a lock; requests shares the pool.
    """

    def __init__(self, host: str, creds: Credentials | None = None, *, attempts: int = 4, backoff: float = 0.3,
                 timeout: float = 15.0, pool_size: int = 16) -> None:
        self.host = registry_host(host)
        self.creds = creds or ANONYMOUS
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout
        password = self.creds.password
        self.redact = Redactor([password.for_login(self.creds.username) if password else None])
        self.session = _Session()
        self.session.trust_env = True
        adapter_type = _UnverifiedAdapter if self._verify is False else requests.adapters.HTTPAdapter
        adapter = adapter_type(pool_connections=4, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._base: str | None = None
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}
        self._basic = False  # the registry asked for Basic auth
        self.referrers_api: bool | None = None  # learnt on first use (graph.py)

    # --- plumbing --------------------------------------------------------------------------------

    @property
    def _verify(self) -> bool | str:
        if self.creds.insecure or is_loopback(self.host):
            return False
        return self.creds.ca_file or True

    @property
    def who(self) -> str:
        return f"{self.host} as {self.creds.username}" if self.creds.username else self.host

    def base(self) -> str:
        """The URL prefix that answers (HTTPS, or HTTP for insecure/loopback registries)."""
        if self._base is None:
            with self._lock:
                if self._base is None:
                    self._base = self._probe()
        return self._base

    def _probe(self) -> str:
        api = _api_host(self.host)
        schemes = ["https", "http"] if (self.creds.insecure or is_loopback(self.host)) else ["https"]
        last: Exception | None = None
        for attempt in range(self.attempts):
            for scheme in schemes:
                url = f"{scheme}://{api}"
                try:
                    resp = self.session.get(f"{url}/v2/", timeout=self.timeout, verify=self._verify,
                                            allow_redirects=False)
                    self._learn_basic(resp)
                    return url
                except requests.exceptions.SSLError as exc:
                    last = exc
                    if scheme == "https" and "http" not in schemes:
                        raise RegistryError(
                            f"TLS verification failed for registry {self.host}: {self._clean(str(exc))}",
                            hint="give the registry's CA file, or mark it insecure (--insecure-registry)",
                        ) from None
                except requests.exceptions.RequestException as exc:
                    last = exc
            self._sleep(attempt)
        raise RegistryUnreachable(f"registry {self.host} is unreachable after {self.attempts} attempts: "
                                  f"{self._clean(_short(last))}",
                                  hint="check the address and port, the network, and proxies")

    def _learn_basic(self, probe: requests.Response) -> None:
        """A registry that asked the probe for Basic credentials gets them from the first request on: one round
        trip fewer per command (docker-registry checks a bcrypt hash on every request, challenged or not)."""
        if probe.status_code == 401 and self.creds.username and self.creds.password:
            scheme, _params = _parse_challenge(probe.headers.get("WWW-Authenticate", ""))
            self._basic = scheme == "basic"

    def _sleep(self, attempt: int, retry_after: str | None = None) -> None:
        if attempt >= self.attempts - 1:
            return
        delay = self.backoff * (2 ** attempt)
        if retry_after and retry_after.isdigit():
            delay = min(float(retry_after), 30.0)
        time.sleep(delay)

    def _clean(self, text: str) -> str:
        return self.redact(scrub_url(text))

    def request(self, method: str, path: str, *, scope: str, headers: dict[str, str] | None = None,
                body: bytes | IO[bytes] | Readable | None = None, ok: Iterable[int] = (200,), url: str | None = None,
                stream: bool = False, params: dict[str, str] | None = None,
                attempts: int | None = None) -> requests.Response:
        """One API call with auth, retries and errors; returns responses with a status in `ok` or 404.

        `attempts=1` for a body that cannot be sent twice (a blob streamed from another registry): the
        caller retries the whole transfer instead."""
        full = url or f"{self.base()}{path}"
        ok = set(ok)
        tries = attempts or self.attempts
        for attempt in range(tries):
            if hasattr(body, "seek"):
                body.seek(0)  # type: ignore[union-attr]
            try:
                resp = self._send(method, full, scope, headers, body, stream, params)
                if resp.status_code == 401:
                    self._authenticate(resp, scope)
                    if hasattr(body, "seek"):
                        body.seek(0)  # type: ignore[union-attr]
                    resp = self._send(method, full, scope, headers, body, stream, params)
                    if resp.status_code == 401:
                        raise self._auth_failed(resp)
                if resp.status_code == 429 or resp.status_code >= 500:
                    raise _Retry(resp.status_code, self._error_text(resp), resp.headers.get("Retry-After"))
            except requests.exceptions.RequestException as exc:
                reason = _short(exc)
                if attempt == tries - 1:
                    raise RegistryUnreachable(f"registry {self.host} is unreachable after {tries} attempts: "
                                              f"{self._clean(reason)}") from None
                self._sleep(attempt)
                continue
            except _Retry as exc:
                if attempt == tries - 1:
                    raise RegistryStatusError(f"registry {self.host} failed {method} {path or full} after {tries} "
                                              f"attempts: HTTP {exc.status} {exc.text}", status=exc.status) from None
                self._sleep(attempt, exc.retry_after)
                continue
            if resp.status_code in ok or resp.status_code == 404:
                return resp
            if resp.status_code == 403:
                raise RegistryStatusError(f"access denied by {self.who} ({method} {path}): {self._error_text(resp)}",
                                          status=403)
            raise RegistryStatusError(f"registry {self.host}: {method} {path} answered HTTP {resp.status_code}: "
                                      f"{self._error_text(resp)}", status=resp.status_code)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str, scope: str, headers: dict[str, str] | None,
              body: bytes | IO[bytes] | Readable | None, stream: bool,
              params: dict[str, str] | None) -> requests.Response:
        hdrs = dict(headers or {})
        auth: _Utf8Basic | None = None
        token = self._tokens.get(scope)
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        elif self._basic and self.creds.username and self.creds.password:
            auth = _Utf8Basic(self.creds.username, self.creds.password)
        return self.session.request(method, url, headers=hdrs, data=body, auth=auth, timeout=self.timeout,
                                    verify=self._verify, stream=stream, params=params, allow_redirects=True)

    def _authenticate(self, resp: requests.Response, scope: str) -> None:
        challenge = resp.headers.get("WWW-Authenticate", "")
        scheme, params = _parse_challenge(challenge)
        if scheme == "basic":
            if not (self.creds.username and self.creds.password):
                raise RegistryAuthError(f"registry {self.host} requires credentials",
                                        hint=_CREDENTIALS_HINT.format(host=self.host))
            if resp.request.headers.get("Authorization", "").startswith("Basic"):
                raise self._auth_failed(resp)  # these credentials were just refused
            self._basic = True
            return
        if scheme == "bearer" and params.get("realm"):
            self._tokens[scope] = self._fetch_token(params, scope or params.get("scope", ""))
            return
        raise RegistryError(f"registry {self.host} asked for an unsupported authentication: {challenge[:80]!r}")

    def _fetch_token(self, challenge: dict[str, str], scope: str) -> str:
        query = {"service": challenge.get("service", "")}
        if scope:
            query["scope"] = scope
        auth = None
        if self.creds.username and self.creds.password:
            auth = _Utf8Basic(self.creds.username, self.creds.password)
        for attempt in range(self.attempts):
            try:
                resp = self.session.get(challenge["realm"], params=query, auth=auth, timeout=self.timeout,
                                        verify=self._verify)
            except requests.exceptions.RequestException as exc:
                if attempt == self.attempts - 1:
                    raise RegistryUnreachable(f"token service of {self.host} is unreachable: "
                                              f"{self._clean(_short(exc))}") from None
                self._sleep(attempt)
                continue
            if resp.status_code in (401, 403):
                raise self._auth_failed(resp)
            if resp.status_code >= 500 or resp.status_code == 429:
                self._sleep(attempt, resp.headers.get("Retry-After"))
                continue
            if resp.status_code != 200:
                raise RegistryError(f"token service of {self.host} answered HTTP {resp.status_code}: "
                                    f"{self._error_text(resp)}")
            data = resp.json()
            token = data.get("token") or data.get("access_token")
            if not isinstance(token, str) or not token:
                raise RegistryError(f"token service of {self.host} returned no token")
            return token
        raise RegistryError(f"token service of {self.host} kept failing after {self.attempts} attempts")

    def _auth_failed(self, resp: requests.Response) -> RegistryAuthError:
        if not self.creds.username:
            return RegistryAuthError(f"registry {self.host} requires credentials ({self._error_text(resp)})",
                                     hint=_CREDENTIALS_HINT.format(host=self.host))
        return RegistryAuthError(f"authentication failed for {self.host} as {self.creds.username}: "
                             f"{self._error_text(resp)}", hint="check the user name and password")

    def _error_text(self, resp: requests.Response) -> str:
        """The registry's own error words ({"errors": [{code, message}]}), credentials removed."""
        text = ""
        try:
            errors = resp.json().get("errors") or []
            text = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)
        except (ValueError, AttributeError):
            lines = (resp.text or "").strip().splitlines()
            text = lines[0][:200] if lines else ""
        return self._clean(text or resp.reason or f"HTTP {resp.status_code}")

    # --- API --------------------------------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/ with whatever auth the registry asks for (check credentials)."""
        resp = self.request("GET", "/v2/", scope="")
        if resp.status_code == 404:
            raise RegistryError(f"{self.host} does not speak the registry v2 API (GET /v2/ answered 404)")

    def manifest_digest(self, ref: ImageRef) -> str | None:
        """The digest of the manifest `ref` names, or None when it is not there."""
        return self.head_manifest(ref.path, ref.reference)

    def head_manifest(self, path: str, reference: str) -> str | None:
        """The digest of manifest `reference` (a tag or digest) in `path`, or None when it is not there."""
        resp = self.request("HEAD", f"/v2/{path}/manifests/{reference}", scope=_pull(path),
                            headers={"Accept": MANIFEST_ACCEPT})
        if resp.status_code == 404:
            return None
        digest = resp.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        got = self.get_manifest(path, reference)  # some registries omit the header on HEAD
        return got[2] if got else None

    def get_manifest(self, path: str, reference: str) -> tuple[bytes, str, str] | None:
        """(bytes, media type, digest) or None when missing."""
        resp = self.request("GET", f"/v2/{path}/manifests/{reference}", scope=_pull(path),
                            headers={"Accept": MANIFEST_ACCEPT})
        if resp.status_code == 404:
            return None
        body = resp.content
        media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        with contextlib.suppress(ValueError, AttributeError):
            media = json.loads(body).get("mediaType") or media
        return body, media, "sha256:" + hashlib.sha256(body).hexdigest()

    def put_manifest(self, path: str, reference: str, body: bytes, media_type: str) -> bool:
        """PUT a manifest; True when the registry said it indexed the manifest's `subject` (the OCI-Subject
        header of distribution spec 1.1), so no referrers tag is needed."""
        resp = self.request("PUT", f"/v2/{path}/manifests/{reference}", scope=_push(path),
                            headers={"Content-Type": media_type}, body=body, ok=(200, 201, 202))
        if resp.status_code == 404:
            raise RegistryError(f"registry {self.host} refused manifest {reference} for {path}: "
                                f"{self._error_text(resp)}")
        return bool(resp.headers.get("OCI-Subject"))

    def list_tags(self, path: str, max_pages: int = 100) -> set[str] | None:
        """Every tag of a repository (following Link pages); an empty set when the repository does not exist,
        None when the registry will not list it, or has more than `max_pages` pages of 1000 (then ask for
        each manifest instead)."""
        tags: set[str] = set()
        url: str | None = f"{self.base()}/v2/{path}/tags/list?n=1000"
        pages = 0
        while url:
            if pages == max_pages:
                return None

            pages += 1
            try:
                resp = self.request("GET", "", url=url, scope=_pull(path))
            except RegistryStatusError:
                return None  # the registry will not list (403, 5xx, ...): authentication and network errors are raised
            if resp.status_code == 404:
                return tags
            try:
                tags.update(resp.json().get("tags") or [])
            except ValueError:
                return None
            link = resp.links.get("next", {}).get("url")
            url = urljoin(self.base() + "/", link) if link else None
        return tags

    def blob_size(self, path: str, digest: str, *, push: bool = False) -> int | None:
        """The size the registry gives for a blob (HEAD), or None when the repository does not hold it.
        `push` asks with the push scope (the token is then reused by the upload that follows)."""
        resp = self.request("HEAD", f"/v2/{path}/blobs/{digest}", scope=_push(path) if push else _pull(path))
        if resp.status_code != 200:
            return None
        length = resp.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else -1

    def has_blob(self, path: str, digest: str) -> bool:
        return self.blob_size(path, digest, push=True) is not None

    def mount_blob(self, path: str, digest: str, from_path: str) -> bool:
        """Cross-repository mount (same registry): True when mounted, False when an upload is needed."""
        mounted, location = self.start_upload(path, digest, from_path)
        if location:
            self.cancel_upload(path, location)  # an upload session was opened instead: not wanted here
        return mounted

    def start_upload(self, path: str, digest: str | None = None, from_path: str | None = None
                     ) -> tuple[bool, str | None]:
        """POST …/blobs/uploads/: with `digest` and `from_path`, a mount first (from_path may be `path`
        itself: then a 201 says the repository holds the blob already). Returns (mounted, upload URL):
        the registry opens an upload session when it does not mount (202), which the caller uses or cancels."""
        params = {"mount": digest, "from": from_path} if digest and from_path else None
        scope = _push(path) if not params or from_path == path else f"{_push(path)} {_pull(str(from_path))}"
        resp = self.request("POST", f"/v2/{path}/blobs/uploads/", scope=scope, params=params, ok=(201, 202))
        if resp.status_code == 201:
            return True, None
        location = resp.headers.get("Location")
        if resp.status_code != 202 or not location:
            raise RegistryError(f"registry {self.host} did not open an upload for {path} "
                                f"(HTTP {resp.status_code})")
        return False, urljoin(self.base() + "/", location)

    def cancel_upload(self, path: str, location: str) -> None:
        with contextlib.suppress(RegistryError):
            self.request("DELETE", "", url=location, scope=_push(path), ok=(202, 204))

    def get_blob(self, path: str, digest: str, *, attempts: int | None = None) -> requests.Response:
        """A blob's bytes as a streamed response (the caller reads and closes it); RegistryError when the
        repository does not hold it."""
        resp = self.request("GET", f"/v2/{path}/blobs/{digest}", scope=_pull(path), stream=True, attempts=attempts)
        if resp.status_code == 404:
            resp.close()
            raise BlobMissing(f"blob {digest} of {self.host}/{path} is missing")
        return resp

    def upload_blob(self, path: str, digest: str, body: Readable | bytes, size: int,
                    location: str | None = None) -> None:
        """Monolithic upload: one PUT of `size` bytes with ?digest= into the session at `location` (a new
        one when None).

        `body` may be a stream read once (a blob on its way from another registry): the PUT is not retried
        here (nothing could send it again); the caller starts the blob over."""
        if location is None:
            _mounted, location = self.start_upload(path)
        self.request("PUT", "", url=location, scope=_push(path), params={"digest": digest}, body=body, ok=(201,),
                     headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                     attempts=1 if not isinstance(body, bytes) else None)

    def referrers(self, path: str, digest: str) -> list[dict[str, Any]] | None:
        """The OCI referrers of a manifest (distribution spec 1.1 API), or None when the registry has no
        referrers API (docker-registry 2.8 answers 404: then the `sha256-<hex>` tag schema is the way)."""
        resp = self.request("GET", f"/v2/{path}/referrers/{digest}", scope=_pull(path),
                            headers={"Accept": REFERRERS_ACCEPT}, ok=(200,))
        if resp.status_code != 200:
            return None
        media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            data = resp.json()
        except ValueError:
            return None
        if media != OCI_INDEX and data.get("mediaType") != OCI_INDEX:
            return None  # a registry answering something else here does not implement the API
        return [m for m in data.get("manifests") or [] if isinstance(m, dict)]

    def close(self) -> None:
        self.session.close()


def _pull(path: str) -> str:
    return f"repository:{path}:pull"


def _push(path: str) -> str:
    return f"repository:{path}:pull,push"


def _short(exc: BaseException | None) -> str:
    if exc is None:
        return "no answer"
    text = str(exc)
    # urllib3 buries the reason deep inside; keep the last, most specific part.
    match = re.search(r"\] ([^\]']+)'?\)*$", text) or re.search(r"(Connection refused|timed out|Name or service "
                                                                   r"not known|No route to host)", text)
    return match.group(1).strip().rstrip("\"')") if match else text[:200]


_PARAM = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^\s,]+)')


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1) or m.group(3): m.group(2) if m.group(1) else m.group(4) for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


# --- a pool of clients, one per registry host ----------------------------------------------------


class Clients:
    """One RegistryClient per host, shared by worker threads (so a token is fetched once)."""

    def __init__(self, creds_for: Callable[[str], Credentials] | None = None, **client_args: Any) -> None:
        self._creds_for = creds_for or (lambda host: ANONYMOUS)
        self._args = client_args
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def get(self, host: str) -> RegistryClient:
        host = registry_host(host)
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                client = self._clients[host] = RegistryClient(host, self._creds_for(host), **self._args)
            return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the API the build calls ---------------------------------------------------------------------


def check_credentials(registry: str, username: str, password: Secret | None, *, insecure: bool = False,
                      ca_file: str | None = None) -> None:
    """Log in the way `docker login` does (GET /v2/ and the auth it asks for); raises RegistryError."""
    client = RegistryClient(registry, Credentials(username, password, insecure, ca_file))
    try:
        client.ping()
    finally:
        client.close()


def manifest_digest(ref: str | ImageRef, creds: Credentials | None = None, *,
                    client: RegistryClient | None = None) -> str | None:
    """The manifest digest of `ref` in its registry; None = not present. Raises RegistryError."""
    image = parse_ref(ref) if isinstance(ref, str) else ref
    own = client is None
    use = client or RegistryClient(image.domain, creds)
    try:
        return use.manifest_digest(image)
    finally:
        if own:
            use.close()


# --- credentials from the config ----------------------------------


def credentials_for(config: Config, host: str) -> Credentials:
    """The credentials, TLS mode and CA the config gives for a registry host (anonymous when none)."""
    host = registry_host(host)
    for entry in config.all_registries():
        if registry_host(entry.domain) == host:
            return Credentials(entry.username, entry.password, entry.insecure, _ca_file(entry.certificates))
    return ANONYMOUS


def _ca_file(items: Sequence[str]) -> str | None:
    """requests takes one CA bundle file: a single path as is, else PEM texts and files joined in a temp file."""
    from pathlib import Path

    if not items:
        return None
    if len(items) == 1 and not items[0].lstrip().startswith("-----BEGIN"):
        return str(Path(items[0]).expanduser())
    parts = [i if i.lstrip().startswith("-----BEGIN") else Path(i).expanduser().read_text() for i in items]
    import atexit
    import os

    fd, name = tempfile.mkstemp(prefix="edgeforge-ca-", suffix=".pem")
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(p.strip() + "\n" for p in parts))
    atexit.register(lambda: Path(name).unlink(missing_ok=True))
    return name
