"""rlx as the test user, with its own HOME, store, runtime dir and registries.conf."""

import json
import os
import subprocess
from pathlib import Path

from helpers.users import User, chown_tree, clean_env, command_as


class Rlx:
    """rlx as the test user, with its own HOME, store and registries.conf. Its containers'
    runtime state is under runtime_dir/rlx, their records under store/containers."""

    def __init__(self, user: User, binary: str, home: Path):
        self.user, self.binary, self.home = user, binary, home
        self.store = home / "store"
        (home / ".config/containers").mkdir(parents=True, exist_ok=True)
        self.runtime_dir = home / "run"
        (self.runtime_dir / "containers").mkdir(parents=True, exist_ok=True)
        os.chmod(self.runtime_dir, 0o700)
        chown_tree(home, user)
        self.env = clean_env(user, {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                                    "XDG_RUNTIME_DIR": str(self.runtime_dir)})

    def registries(self, text: str) -> None:
        path = self.home / ".config/containers/registries.conf"
        path.write_text(text)
        chown_tree(path, self.user)

    def auth(self, host: str, user: str, password: str) -> None:
        import base64
        path = self.runtime_dir / "containers/auth.json"
        path.write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}))
        chown_tree(path, self.user)

    def command(self, *args: str) -> list[str]:
        return command_as(self.user, [self.binary, "--store", str(self.store), *map(str, args)])

    def run(self, *args: str, check: bool = True, env: dict | None = None, input: str | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess:
        result = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout,
                                env={**self.env, **(env or {})}, cwd=self.home, input=input,
                                stdin=None if input is not None else subprocess.DEVNULL)
        if check:
            assert result.returncode == 0, f"rlx {' '.join(args)}: {result.stderr}"
        return result

    def layer_dirs(self) -> list[str]:
        return sorted(os.listdir(self.store / "layers"))
