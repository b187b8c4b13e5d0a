"""`ps`: the container's processes as host PIDs. Without cgroups the container's PID namespace
(or the init's process tree) says which they are (rootless.container.container_pids)."""

from rootless import container, jsonlite, state
from rootless.errors import RootlessError, UsageError


def run(ctx, parsed) -> int:
    fmt = parsed.options["format"]
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid format {fmt!r}: use table or json")
    cdir = state.ContainerDir(ctx.root, parsed.args["id"])
    # A stopped container has no processes, and runc lists none (exit 0): containerd's `ctr
    # task ps` of an exited task shows an empty table through it.
    pids = container.container_pids(cdir.load())
    if fmt == "json":
        print(jsonlite.dumps(pids) if pids else "null")  # runc's encoding of an empty list
        return 0
    # As runc does: ps(1) with the caller's arguments (default -ef), rows of our PIDs only.
    import subprocess
    argv = ["ps", *(parsed.rest or ["-ef"])]
    try:
        output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError) as err:
        raise RootlessError(f"{' '.join(argv)}: {err}") from None
    header, rows = output[0], output[1:]
    try:
        column = header.split().index("PID")
    except ValueError:
        raise RootlessError(f"{' '.join(argv)}: no PID column in its output") from None
    wanted = set(pids)
    print(header)
    for row in rows:
        fields = row.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            print(row)
    return 0
