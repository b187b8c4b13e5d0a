from rootless import jsonlite as json

from rootless import state
from rootless.errors import UsageError


def run(ctx, parsed) -> int:
    fmt = parsed.options["format"]
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid format {fmt!r}: use table or json")
    entries = []
    for container_id in state.list_ids(ctx.root):
        cdir = state.ContainerDir(ctx.root, container_id)
        try:
            entries.append(state.oci_state(cdir, cdir.load()))
        except Exception:
            continue  # deleted meanwhile, or corrupt: list what can be listed
    if parsed.options["quiet"]:
        for entry in entries:
            print(entry["id"])
    elif fmt == "json":
        print(json.dumps(entries))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(e["id"], str(e["pid"]), e["status"], e["bundle"], e["created"], e["owner"]) for e in entries]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            print("   ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "   " + row[-1])
    return 0
