"""Pure parts of rlx's image handling: references, registries.conf, credentials, the bearer
challenge (against a recorded registry exchange, no network), and the image config turned
into config.json."""

import base64
import io
import json
from pathlib import Path

import httpx
import pytest

from rootless.images import auth, regconf, runspec
from rootless.images.digest import ImageError
from rootless.images.registry import Registry


@pytest.mark.parametrize("text, expected", [
    ("busybox", (None, "busybox", None, None)),
    ("docker.io/library/busybox:1.36", ("docker.io", "library/busybox", "1.36", None)),
    ("localhost:5000/x@sha256:" + "a" * 64, ("localhost:5000", "x", None, "sha256:" + "a" * 64)),
    ("localhost/app", ("localhost", "app", None, None)),
    ("quay.io/org/app:v1", ("quay.io", "org/app", "v1", None)),
    ("user/app:v1", (None, "user/app", "v1", None)),
])
def test_references(text: str, expected) -> None:
    assert regconf.split_reference(text) == expected


def test_short_names_aliases_and_search() -> None:
    conf = {"unqualified-search-registries": ["reg.example:5000", "docker.io"],
            "aliases": {"py": "docker.io/library/python"}}
    assert [str(r) for r in regconf.resolve("py:3.12", conf)] == ["docker.io/library/python:3.12"]
    assert [str(r) for r in regconf.resolve("busybox", conf)] == ["reg.example:5000/busybox:latest",
                                                                  "docker.io/library/busybox:latest"]
    assert [str(r) for r in regconf.resolve("busybox", {})] == ["docker.io/library/busybox:latest"]


def test_registries_conf_user_file_wins_and_insecure(tmp_path: Path) -> None:
    (tmp_path / "containers").mkdir()
    (tmp_path / "containers/registries.conf").write_text(
        '[[registry]]\nlocation = "127.0.0.1:5000"\ninsecure = true\n'
        '[[registry]]\nprefix = "example.com/mirrored"\nlocation = "mirror.local/m"\n')
    system = tmp_path / "system.conf"
    system.write_text('unqualified-search-registries = ["nope.example"]\n')
    conf = regconf.load_conf({"XDG_CONFIG_HOME": str(tmp_path)}, str(system))
    assert "unqualified-search-registries" not in conf
    ref = regconf.resolve("127.0.0.1:5000/x:1", conf)[0]
    assert regconf.endpoint(ref, conf) == ("127.0.0.1:5000", True)
    assert regconf.endpoint(regconf.resolve("example.com/mirrored/app", conf)[0], conf) == ("mirror.local", False)
    assert regconf.endpoint(regconf.resolve("busybox", conf)[0], conf) == ("registry-1.docker.io", False)


def test_credentials_from_podman_then_docker(tmp_path: Path) -> None:
    def entry(text):
        return {"auth": base64.b64encode(text.encode()).decode()}
    (tmp_path / "run/containers").mkdir(parents=True)
    (tmp_path / "run/containers/auth.json").write_text(json.dumps({"auths": {"reg.example/team": entry("team:pw1")}}))
    (tmp_path / "home/.docker").mkdir(parents=True)
    (tmp_path / "home/.docker/config.json").write_text(json.dumps({"auths": {
        "reg.example": entry("docker:pw2"), "https://index.docker.io/v1/": entry("hub:pw3")}}))
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "run"), "HOME": str(tmp_path / "home")}
    assert auth.credentials("reg.example", "team/app", env) == ("team", "pw1")
    assert auth.credentials("reg.example", "other/app", env) == ("docker", "pw2")
    assert auth.credentials("docker.io", "library/busybox", env) == ("hub", "pw3")
    assert auth.credentials("elsewhere.example", "x", env) is None


def test_challenge_parsing() -> None:
    scheme, params = auth.parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "registry.example",
                      "scope": "repository:a/b:pull,push"}
    assert auth.parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})


def test_bearer_token_flow_against_a_recorded_exchange() -> None:
    """A Docker Hub-like exchange: 401 with a Bearer challenge, a token fetched with the
    stored credentials as Basic, the retry carries the token; the token is reused."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.url.path, request.headers.get("authorization"),
                     dict(request.url.params)))
        if request.url.host == "auth.example":
            assert request.headers["authorization"] == auth.basic_header("me", "pw")
            return httpx.Response(200, json={"token": "T0K3N"})
        if request.headers.get("authorization") != "Bearer T0K3N":
            return httpx.Response(401, headers={"www-authenticate":
                'Bearer realm="https://auth.example/token",service="reg.example",scope="repository:lib/app:pull"'})
        return httpx.Response(200, content=b'{"schemaVersion":2}',
                              headers={"content-type": "application/vnd.oci.image.manifest.v1+json"})

    registry = Registry("reg.example", credentials=("me", "pw"), transport=httpx.MockTransport(handler))
    body, kind = registry.manifest("lib/app", "latest", "application/vnd.oci.image.manifest.v1+json")
    assert body == b'{"schemaVersion":2}' and kind.startswith("application/vnd.oci")
    registry.manifest("lib/app", "v2", "application/vnd.oci.image.manifest.v1+json")
    assert [s[0] for s in seen] == ["reg.example", "auth.example", "reg.example", "reg.example"]
    assert seen[1][3] == {"service": "reg.example", "scope": "repository:lib/app:pull"}


def test_anonymous_bearer_and_a_refused_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            assert "authorization" not in request.headers
            return httpx.Response(401)
        return httpx.Response(401, headers={"www-authenticate": 'Bearer realm="https://auth.example/token"'})

    registry = Registry("reg.example", transport=httpx.MockTransport(handler))
    with pytest.raises(ImageError, match="token endpoint .* refused"):
        registry.manifest("x", "latest", "*/*")


PASSWD = "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n"
GROUP = "root:x:0:\nwww-data:x:33:\napp:x:1000:\nextra:x:2000:app,other\n"


@pytest.mark.parametrize("user, expected", [
    ("", (0, 0, [])), ("www-data", (33, 33, [])), ("app", (1000, 1000, [2000])), ("1000", (1000, 1000, [2000])),
    ("app:extra", (1000, 2000, [])), ("4242", (4242, 0, [])), ("4242:7", (4242, 7, [])),
])
def test_user_resolution(user: str, expected) -> None:
    assert runspec.resolve_user(user, PASSWD, GROUP) == expected


def test_unknown_user_names_are_refused() -> None:
    with pytest.raises(ImageError, match="no user 'ghost'"):
        runspec.resolve_user("ghost", PASSWD, GROUP)


def test_image_config_to_spec() -> None:
    idmap = {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
             "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}
    spec = runspec.to_spec({"config": {"Entrypoint": ["/app"], "Cmd": ["--serve"], "Env": ["A=1"], "WorkingDir": "/w",
                                       "User": "app", "Volumes": {"/data": {}}, "Labels": {"l": "v"}}},
                           PASSWD, GROUP, idmap)
    assert spec["process"]["args"] == ["/app", "--serve"]
    assert spec["process"]["env"][0].startswith("PATH=") and "A=1" in spec["process"]["env"]
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1000}
    assert spec["linux"]["uidMappings"] == idmap["uidMappings"]
    assert {"type": "user"} in spec["linux"]["namespaces"] and "resources" not in spec["linux"]
    assert spec["annotations"] == {"l": "v", runspec.VOLUMES: "/data"}
    assert spec["root"]["readonly"] is False
    root = runspec.to_spec({"config": {"Cmd": ["sh"], "User": "app"}}, PASSWD, GROUP, None)
    assert root["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [2000]}
    assert {"type": "user"} not in root["linux"]["namespaces"]


def test_a_broken_blob_download_resumes_with_range() -> None:
    """The connection breaks after the first chunk; the retry asks for the rest with Range and
    the blob arrives whole."""
    blob = bytes(range(256)) * 64
    calls = []

    class Broken(httpx.SyncByteStream):
        def __iter__(self):
            yield blob[:1000]
            raise httpx.ReadError("connection reset")

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("range"))
        if request.headers.get("range"):
            start = int(request.headers["range"].split("=")[1].rstrip("-"))
            return httpx.Response(206, content=blob[start:])
        return httpx.Response(200, stream=Broken())

    out = io.BytesIO()
    Registry("reg.example", transport=httpx.MockTransport(handler)).fetch_blob("x", "sha256:" + "0" * 64, out)
    assert out.getvalue() == blob and calls == [None, "bytes=1000-"]


def test_platform_choice_in_an_index() -> None:
    from rootless.images.image import pick_platform
    index = json.dumps({"manifests": [
        {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:" + "3" * 64, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
    ]}).encode()
    assert pick_platform(index, "linux/amd64")["digest"].endswith("2")
    assert pick_platform(index, "linux/arm64")["digest"].endswith("1")
    assert pick_platform(index, "linux/arm/v7")["digest"].endswith("3")
    with pytest.raises(ImageError, match="no image for platform linux/s390x .*offered: linux/arm64/v8"):
        pick_platform(index, "linux/s390x")
