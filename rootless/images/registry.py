"""A client of the OCI distribution API (httpx, imported only here and only by `rlx pull`).

GET /v2/REPO/manifests/REF and /v2/REPO/blobs/DIGEST, nothing else. Authentication follows the
registry's 401 challenge (WWW-Authenticate): Basic with the user's stored credentials, or
Bearer with a token fetched from the challenge's realm (anonymously, or with the credentials
as Basic), cached per scope. One httpx.Client is shared by the download threads (it is
thread-safe); httpx drops Authorization on a redirect to another host (blob storage).
"""

import httpx

from rootless.images import auth
from rootless.images.digest import ImageError

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
RETRIES = 3


class Registry:
    def __init__(self, host: str, *, insecure: bool = False, tls_verify: bool = True,
                 credentials: tuple[str, str] | None = None, transport: httpx.BaseTransport | None = None):
        self.host = host
        self.base = f"{'http' if insecure else 'https'}://{host}"
        self.credentials = credentials
        self.client = httpx.Client(timeout=TIMEOUT, follow_redirects=True, verify=tls_verify and not insecure,
                                   transport=transport, headers={"User-Agent": "rlx (rootless)"})
        self.authorization: dict[str, str] = {}  # scope -> Authorization header value

    def close(self) -> None:
        self.client.close()

    def _send(self, method: str, path: str, scope: str, headers: dict | None = None, stream: bool = False):
        headers = dict(headers or {})
        for attempt in (1, 2):
            if scope in self.authorization:
                headers["Authorization"] = self.authorization[scope]
            request = self.client.build_request(method, self.base + path, headers=headers)
            try:
                response = self.client.send(request, stream=stream)
            except httpx.HTTPError as err:
                raise ImageError(f"{self.base}{path}: {err or type(err).__name__}") from None
            if response.status_code != 401 or attempt == 2:
                return response
            challenge = response.headers.get("www-authenticate", "")
            response.close()
            self.authorization[scope] = self._answer(challenge, scope)
        return response

    def _answer(self, challenge: str, scope: str) -> str:
        scheme, params = auth.parse_challenge(challenge)
        if scheme == "basic":
            if self.credentials is None:
                raise ImageError(f"{self.host} asks for a login: add credentials to "
                                 "$XDG_RUNTIME_DIR/containers/auth.json (podman login) or ~/.docker/config.json")
            return auth.basic_header(*self.credentials)
        if scheme != "bearer" or "realm" not in params:
            raise ImageError(f"{self.host}: unsupported authentication challenge {challenge!r}")
        query = {"service": params["service"]} if params.get("service") else {}
        query["scope"] = params.get("scope") or scope
        headers = {"Authorization": auth.basic_header(*self.credentials)} if self.credentials else {}
        try:
            response = self.client.get(params["realm"], params=query, headers=headers)
        except httpx.HTTPError as err:
            raise ImageError(f"token endpoint {params['realm']}: {err}") from None
        if response.status_code != 200:
            raise ImageError(f"token endpoint {params['realm']} refused ({response.status_code}): check the "
                             "credentials in auth.json")
        try:
            body = response.json()
        except ValueError:
            raise ImageError(f"token endpoint {params['realm']} did not answer JSON") from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise ImageError(f"token endpoint {params['realm']} gave no token")
        return f"Bearer {token}"

    def manifest(self, repository: str, reference: str, accept: str) -> tuple[bytes, str]:
        """(body, content type) of a manifest or index."""
        path = f"/v2/{repository}/manifests/{reference}"
        response = self._send("GET", path, f"repository:{repository}:pull", {"Accept": accept})
        if response.status_code == 200:
            return response.content, response.headers.get("content-type", "")
        raise _failure(self.host, f"{repository}:{reference}", response)

    def fetch_blob(self, repository: str, digest: str, out, progress=None) -> None:
        """Stream a blob into `out` (whose write also hashes); resume with Range after a broken
        connection where the registry allows it."""
        path = f"/v2/{repository}/blobs/{digest}"
        scope = f"repository:{repository}:pull"
        written = 0
        for attempt in range(RETRIES):
            headers = {"Range": f"bytes={written}-"} if written else {}
            response = self._send("GET", path, scope, headers, stream=True)
            try:
                if response.status_code not in (200, 206) or (written and response.status_code != 206):
                    if written:
                        raise ImageError(f"{self.host}: blob {digest} broke off after {written} bytes and the "
                                         "registry cannot resume it: pull again")
                    raise _failure(self.host, f"{repository} blob {digest}", response)
                try:
                    for chunk in response.iter_bytes():  # as received: a break loses nothing written
                        out.write(chunk)
                        written += len(chunk)
                        if progress:
                            progress(len(chunk))
                    return
                except httpx.HTTPError as err:
                    if attempt == RETRIES - 1:
                        raise ImageError(f"{self.host}: blob {digest}: {err}") from None
            finally:
                response.close()


def _failure(host: str, what: str, response) -> ImageError:
    code = response.status_code
    if code == 404:
        return ImageError(f"{host}: {what} not found")
    if code in (401, 403):
        return ImageError(f"{host}: {what}: access denied ({code}): check the credentials in auth.json")
    body = response.read()[:200].decode(errors="replace").strip()
    return ImageError(f"{host}: {what}: HTTP {code} {body}".rstrip())
