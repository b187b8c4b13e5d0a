"""Image references and containers-registries.conf(5): which registry a name means, and how
to reach it.

The user's $XDG_CONFIG_HOME/containers/registries.conf (default ~/.config/containers/) is read
instead of /etc/containers/registries.conf when it exists, as containers-registries.conf(5)
says. Used from it: `unqualified-search-registries`, `[aliases]` (short-name aliases) and
`[[registry]]` entries' `location`, `prefix` and `insecure` (plain HTTP allowed).
Pure apart from reading the files; unit-tested with files in a temporary directory.
"""

import os
import tomllib

from rootless.images.digest import ImageError, hex_of

DOCKER_HUB = "docker.io"
SYSTEM_CONF = "/etc/containers/registries.conf"


class Reference:
    def __init__(self, registry: str, repository: str, tag: str | None, digest: str | None):
        self.registry, self.repository, self.tag, self.digest = registry, repository, tag, digest

    @property
    def reference(self) -> str:
        """What goes into /v2/REPO/manifests/REFERENCE."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}"
        if self.digest:
            return f"{name}@{self.digest}"
        return f"{name}:{self.tag or 'latest'}"


def split_reference(text: str) -> tuple[str | None, str, str | None, str | None]:
    """(registry or None for a short name, repository, tag, digest), Docker's grammar."""
    name, _, digest = text.partition("@")
    if digest:
        hex_of(digest)
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = None, name
    if not repository or repository != repository.lower() or any(c.isspace() for c in text):
        raise ImageError(f"invalid image reference {text!r}: names are lower case, like registry/name:tag")
    return registry, repository, tag or None, digest or None


def user_conf_path(env=os.environ) -> str:
    config = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return os.path.join(config, "containers", "registries.conf")


def load_conf(env=os.environ, system: str = SYSTEM_CONF) -> dict:
    for path in (user_conf_path(env), system):
        try:
            with open(path, "rb") as f:
                return tomllib.load(f)
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ImageError(f"{path}: {err}") from None
    return {}


def resolve(text: str, conf: dict) -> list[Reference]:
    """The references to try, in order, for what the user typed."""
    registry, repository, tag, digest = split_reference(text)
    if registry is not None:
        return [_canonical(registry, repository, tag, digest)]
    alias = (conf.get("aliases") or {}).get(repository)
    if alias:
        a_registry, a_repository, a_tag, _ = split_reference(alias)
        return [_canonical(a_registry or DOCKER_HUB, a_repository, tag or a_tag, digest)]
    search = conf.get("unqualified-search-registries") or [DOCKER_HUB]
    return [_canonical(r, repository, tag, digest) for r in search]


def _canonical(registry: str, repository: str, tag, digest) -> Reference:
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = "library/" + repository
    return Reference(registry, repository, tag, digest)


def endpoint(ref: Reference, conf: dict) -> tuple[str, bool]:
    """(host to connect to, insecure) for a reference: a [[registry]] whose prefix (or
    location) matches the longest part of the name wins, and may redirect to `location`."""
    name = f"{ref.registry}/{ref.repository}"
    best, best_len = None, -1
    for entry in conf.get("registry") or []:
        prefix = entry.get("prefix") or entry.get("location") or ""
        if prefix and (name == prefix or name.startswith(prefix.rstrip("/") + "/")) and len(prefix) > best_len:
            best, best_len = entry, len(prefix)
    host = ref.registry
    insecure = False
    if best is not None:
        location = best.get("location") or host
        host = location.split("/", 1)[0]
        insecure = bool(best.get("insecure"))
    if host == DOCKER_HUB:
        host = "registry-1.docker.io"
    return host, insecure
