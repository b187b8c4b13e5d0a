"""What the benchmarks share: they measure rootless containers, so run as an unprivileged user."""

import os
import shutil
import sys


def add_common_options(parser) -> None:
    parser.add_argument("--rootless-bin", default=shutil.which("rootless") or
                        os.path.join(os.path.dirname(sys.executable), "rootless"))
    parser.add_argument("--user", default=os.environ.get("ROOTLESS_TEST_USER", "rootless-test"))


def reexec_as_user(user_name: str, script: str) -> None:
    """As root, run this script again as `user_name` (the test user) with the same arguments,
    the environment a login would give; as anyone else, return."""
    if os.geteuid() != 0:
        return
    import pwd
    user = pwd.getpwnam(user_name)
    env = {"HOME": user.pw_dir, "PATH": os.environ["PATH"], "XDG_RUNTIME_DIR": f"/run/user/{user.pw_uid}"}
    argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
            sys.executable, os.path.abspath(script), *sys.argv[1:]]
    os.execvpe("setpriv", argv, env)
