"""Who runs the runtime: the unprivileged test user (or root), and how to run a command as it."""

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

TEST_USER = os.environ.get("ROOTLESS_TEST_USER", "rootless-test")
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: Path
    runtime_dir: Path  # XDG_RUNTIME_DIR: /run/user/UID, as logind makes it

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()


def _from_pwd(entry: pwd.struct_passwd, runtime_dir: str | None = None) -> User:
    return User(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir),
                Path(runtime_dir or f"/run/user/{entry.pw_uid}"))


def find_test_user() -> User:
    """The user rootless containers run as: $ROOTLESS_TEST_USER (default rootless-test) when
    running as root, else the current user. Raises LookupError when root and it is missing."""
    if os.geteuid() != 0:
        return _from_pwd(pwd.getpwuid(os.geteuid()), os.environ.get("XDG_RUNTIME_DIR"))
    try:
        return _from_pwd(pwd.getpwnam(TEST_USER))
    except KeyError:
        raise LookupError(f"test user {TEST_USER!r} does not exist: run tests/run as root, which creates it "
                          f"(tests/helpers/setup-test-user)") from None


def root_user() -> User:
    return User("root", 0, 0, Path("/root"), Path("/run"))


def subordinate_range(user: User, path: str = "/etc/subuid") -> range | None:
    """The user's first range in /etc/subuid (or /etc/subgid), by name or numeric ID."""
    try:
        with open(path) as f:
            for line in f:
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[0] in (user.name, str(user.uid)):
                    start, count = int(fields[1]), int(fields[2])
                    return range(start, start + count)
    except (OSError, ValueError):
        pass
    return None


def command_as(user: User, argv: list[str]) -> list[str]:
    """argv run as `user`: unchanged for the current user, through setpriv otherwise (root only).
    setpriv keeps no capabilities once all UIDs are non-zero, like a login would."""
    if user.is_current:
        return argv
    return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", "--", *argv]


def clean_env(user: User, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A login-like environment for `user`, nothing inherited from the test process."""
    env = {"HOME": str(user.home), "USER": user.name, "LOGNAME": user.name, "PATH": SAFE_PATH}
    if not user.is_root:
        env["XDG_RUNTIME_DIR"] = str(user.runtime_dir)
    # ROOTLESS_NO_NATIVE=1 tests/run ...: every runtime call of the run uses the ctypes
    # fallback of rootless/linux/syscalls.py instead of its extension module.
    if os.environ.get("ROOTLESS_NO_NATIVE"):
        env["ROOTLESS_NO_NATIVE"] = os.environ["ROOTLESS_NO_NATIVE"]
    env.update(extra or {})
    return env


def chown_tree(path: Path, user: User) -> None:
    """chown -R without following symlinks (a no-op unless root)."""
    if os.geteuid() != 0:
        return
    os.chown(path, user.uid, user.gid, follow_symlinks=False)
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(directory, name), user.uid, user.gid, follow_symlinks=False)
