"""Registry credentials and the WWW-Authenticate challenge, pure but for reading files.

Credentials come from podman's and docker's files, first found wins:
$REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, $XDG_CONFIG_HOME/containers/auth.json,
~/.docker/config.json. Each holds {"auths": {KEY: {"auth": base64("user:password")}}}; the
key is the registry, optionally with a repository path (podman's most specific key wins) or
docker's https://index.docker.io/v1/ for Docker Hub.
"""

import base64
import json
import os

from rootless.images.digest import ImageError


def auth_files(env=os.environ) -> list[str]:
    home = env.get("HOME") or os.path.expanduser("~")
    files = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(env["REGISTRY_AUTH_FILE"])
    if env.get("XDG_RUNTIME_DIR"):
        files.append(os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    files.append(os.path.join(env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), "containers", "auth.json"))
    files.append(os.path.join(home, ".docker", "config.json"))
    return files


def credentials(registry: str, repository: str, env=os.environ) -> tuple[str, str] | None:
    keys = []
    parts = repository.split("/")
    for n in range(len(parts), 0, -1):
        keys.append(f"{registry}/{'/'.join(parts[:n])}")
    keys += [registry, f"https://{registry}", f"http://{registry}"]
    if registry == "docker.io":
        keys += ["https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"]
    for path in auth_files(env):
        try:
            with open(path) as f:
                auths = json.load(f).get("auths") or {}
        except FileNotFoundError:
            continue
        except (OSError, ValueError, AttributeError) as err:
            raise ImageError(f"{path}: cannot read credentials: {err}") from None
        for key in keys:
            entry = auths.get(key) or auths.get(key + "/")
            if entry and entry.get("auth"):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise ImageError(f"{path}: the entry for {key} is not base64 of user:password") from None
                return user, password
    return None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="https://auth",service="reg",scope="repository:x:pull"` ->
    ("bearer", {"realm": ..., "service": ..., "scope": ...}). Quoted values may hold commas."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            value, i = [], i + 1
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(rest[i])
                i += 1
            i += 1
            params[key] = "".join(value)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
