import json
import os

from rootless.cgroups import host
from rootless.errors import RootlessError
from rootless.oci.specgen import runc_template


def run(ctx, parsed) -> int:
    bundle = parsed.options["bundle"] or "."
    path = os.path.join(bundle, "config.json")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise RootlessError(f"{path} exists: remove it first") from None
    except OSError as err:
        raise RootlessError(f"create {path}: {err.strerror}") from None
    with os.fdopen(fd, "w") as f:
        # As runc writes it: tabs, and no newline at the end.
        json.dump(runc_template(parsed.options["rootless"], host.unified()), f, indent="\t")
    return 0
