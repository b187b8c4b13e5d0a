"""Test images made here (never fetched): layer tarballs, OCI layouts, a local registry.

  tar_layer(members)            an uncompressed layer from (TarInfo, data) pairs
  rootfs_layer(rootfs)          the busybox rootfs as one layer, owned by root
  write_oci_layout(...)         an OCI image layout directory with one tagged image
  LocalRegistry                 Debian's docker-registry on 127.0.0.1, plain HTTP, optional
                                htpasswd; filled with skopeo copy
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = fields.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.mtime = fields.pop("mtime", 1700000000)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def tar_layer(members) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return raw.getvalue()


def rootfs_layer(rootfs: Path, extra=()) -> bytes:
    raw = io.BytesIO()

    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(Path(rootfs).iterdir()):
            tar.add(entry, arcname=entry.name, filter=as_root)
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return raw.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_oci_layout(dest: Path, layers: list[bytes], config: dict, tag: str = "latest", compress: str = "gzip") -> Path:
    """dest/ as an OCI image layout holding one image tagged `tag`."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        digest = _sha(data)
        (blobs / digest[7:]).write_bytes(data)
        return digest

    descriptors = []
    for plain in layers:
        if compress == "gzip":
            blob, kind = gzip.compress(plain, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
        elif compress == "zstd":
            import zstandard
            blob, kind = zstandard.ZstdCompressor().compress(plain), "application/vnd.oci.image.layer.v1.tar+zstd"
        else:
            blob, kind = plain, "application/vnd.oci.image.layer.v1.tar"
        descriptors.append({"mediaType": kind, "digest": put(blob), "size": len(blob)})
    full = {"architecture": "amd64", "os": "linux", "created": "2026-11-29T00:00:00Z",
            "rootfs": {"type": "layers", "diff_ids": [_sha(plain) for plain in layers]}, **config}
    config_bytes = json.dumps(full).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(config_bytes), "size": len(config_bytes)},
                           "layers": descriptors}).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                "digest": put(manifest), "size": len(manifest),
                                                "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (dest / "index.json").write_text(json.dumps(index))
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRegistry:
    """`docker-registry serve` on 127.0.0.1 with its storage under `folder`."""

    def __init__(self, folder: Path, htpasswd: tuple[str, str] | None = None, token: "TokenServer | None" = None):
        self.folder = folder
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.credentials = htpasswd
        folder.mkdir(parents=True, exist_ok=True)
        config = (f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {folder}/data\n"
                  f"  delete:\n    enabled: true\nhttp:\n  addr: {self.host}\n")
        if htpasswd:
            line = subprocess.run(["htpasswd", "-Bbn", *htpasswd], capture_output=True, text=True, check=True).stdout
            (folder / "htpasswd").write_text(line)
            config += f"auth:\n  htpasswd:\n    realm: rlx-tests\n    path: {folder}/htpasswd\n"
        if token:
            self.credentials = token.credentials
            config += (f"auth:\n  token:\n    realm: {token.realm}\n    service: {token.service}\n"
                       f"    issuer: {token.issuer}\n    rootcertbundle: {token.cert}\n")
        (folder / "config.yml").write_text(config)
        self.log = open(folder / "registry.log", "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(folder / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not start: {(folder / 'registry.log').read_text()}")

    def push(self, source: str, name: str) -> None:
        """skopeo copy SOURCE (oci:DIR:TAG, docker-archive:FILE) docker://HOST/NAME."""
        argv = ["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"]
        if self.credentials:
            argv += ["--dest-creds", ":".join(self.credentials)]
        subprocess.run(argv + [source, f"docker://{self.host}/{name}"], check=True, capture_output=True, timeout=120)

    def blob_file(self, digest: str) -> Path:
        hex_ = digest.split(":")[1]
        return self.folder / "data/docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def have_registry_tools() -> str | None:
    """What is missing to run a local registry, or None."""
    missing = [tool for tool in ("docker-registry", "skopeo", "htpasswd") if shutil.which(tool) is None]
    return ", ".join(missing) if missing else None


def manifest_layers(layout: Path) -> list[str]:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    return [layer["digest"] for layer in manifest["layers"]]



class TokenServer:
    """A token endpoint for the registry's `token` auth (the Docker Hub flow): it answers
    GET /token?service=S&scope=repository:NAME:ACTIONS with a JWT signed (RS256, by openssl)
    with a throw-away key whose certificate the registry trusts. It hands tokens only to
    callers that send the right Basic credentials, and records what it was asked."""

    service, issuer = "rlx-test-registry", "rlx-test-issuer"

    def __init__(self, folder: Path, credentials: tuple[str, str]):
        import base64
        import http.server
        import threading
        folder.mkdir(parents=True, exist_ok=True)
        self.credentials = credentials
        self.key, self.cert = folder / "key.pem", folder / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "1", "-subj", "/CN=rlx-token"], check=True, capture_output=True)
        pub = subprocess.run(f"openssl x509 -in {self.cert} -pubkey -noout | openssl pkey -pubin -outform DER",
                             shell=True, check=True, capture_output=True).stdout
        # libtrust's key ID, which the registry uses to find the key named by "kid"
        encoded = base64.b32encode(hashlib.sha256(pub).digest()[:30]).decode().rstrip("=")
        self.kid = ":".join(encoded[i:i + 4] for i in range(0, 48, 4))
        self.asked: list[tuple[str, bool]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                from urllib.parse import parse_qs, urlparse
                query = parse_qs(urlparse(self.path).query)
                expected = "Basic " + base64.b64encode(":".join(server.credentials).encode()).decode()
                authorized = self.headers.get("Authorization") == expected
                scope = query.get("scope", [""])[0]
                server.asked.append((scope, authorized))
                if not authorized:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": server.token(scope)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def token(self, scope: str) -> str:
        import base64
        import uuid

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).decode().rstrip("=")

        access = []
        if scope.count(":") >= 2:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {"iss": self.issuer, "sub": self.credentials[0], "aud": self.service, "exp": now + 600,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signed = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signed.encode(),
                                   check=True, capture_output=True).stdout
        return f"{signed}.{b64(signature)}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
