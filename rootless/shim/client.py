"""What the CLI knows of a shim-managed container (rootless.shim.server): where its log, socket and
exit record are, and reading them. Used by `logs`, `attach` and `wait`."""

import os
import time

from rootless import jsonlite as json
from rootless.linux import procfs
from rootless import state
from rootless.errors import RootlessError


class ShimmedContainer:
    def __init__(self, root: str, container_id: str):
        cdir = state.ContainerDir(root, container_id)
        with cdir:
            record = cdir.load()
        if not record.get("shim"):
            raise RootlessError(f"container {container_id} has no shim: create or run it with --shim "
                                "for logs, attach and wait")
        self.id, self.path, self.shim = container_id, cdir.path, record["shim"]
        self.log_path, self.log_format = self.shim["log"], self.shim["log_format"]

    def shim_alive(self) -> bool:
        return procfs.is_alive(self.shim["pid"], self.shim.get("pid_start"))

    def exit_record(self) -> dict | None:
        """{"exit_code", "exited_at"} once the container has exited, else None."""
        try:
            with open(os.path.join(self.path, "exit.json")) as f:
                return json.loads(f.read())
        except FileNotFoundError:
            return None

    def wait_exit(self, poll: float = 0.05) -> dict:
        while True:
            record = self.exit_record()
            if record is not None:
                return record
            if not os.path.isdir(self.path):
                raise RootlessError(f"container {self.id} was deleted before it exited")
            if not self.shim_alive():
                # It may have written the record just before it exited.
                record = self.exit_record()
                if record is not None:
                    return record
                raise RootlessError(f"the shim of container {self.id} is gone and recorded no exit")
            time.sleep(poll)
