"""What the global flags decided, handed to every verb."""

import os
from rootless import log, paths


class Context:
    def __init__(self, root: str, log: str | None = None, log_format: str = "text", debug: bool = False,
                 systemd_cgroup: bool = False, rootless: str = "auto", cgroup_manager: str | None = None,
                 cgroups_required: bool = False):
        self.root, self.log, self.log_format, self.debug = root, log, log_format, debug
        self.systemd_cgroup, self.rootless, self.cgroup_manager = systemd_cgroup, rootless, cgroup_manager
        self.cgroups_required = cgroups_required

    def trace(self, message: str) -> None:
        """--debug output: level=debug lines in the --log file, else on stderr (rootless.log)."""
        if self.debug:
            for line in filter(str.strip, message.splitlines()):  # a plan: one log line per line
                log.emit("debug", line, log=self.log, log_format=self.log_format)

    def warn(self, message: str) -> None:
        log.emit("warning", message, log=self.log, log_format=self.log_format)

    @property
    def effective_cgroup_manager(self) -> str:
        if self.cgroup_manager:
            return self.cgroup_manager
        return "systemd" if self.systemd_cgroup else "cgroupfs"


def default_root(env: dict | None = None) -> str:
    return paths.default_state_root(os.environ if env is None else env)
