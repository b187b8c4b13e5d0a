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
            entries.append(state.oci_state(cdir, cdir.load(), with_owner=True))
        except Exception:
            continue  # deleted meanwhile, or corrupt: list what can be listed
    if parsed.options["quiet"]:
        for entry in entries:
            print(entry["id"])
    elif fmt == "json":
        print(json.dumps(entries or None))  # runc's nil slice: `null` when there is none
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(e["id"], str(e["pid"]), e["status"], e["bundle"], e["created"], e["owner"]) for e in entries]
        print(table(rows), end="")
    return 0


def table(rows: list[tuple[str, ...]]) -> str:
    """As runc's tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0) lays them out: a column is
    its widest cell plus 3, at least 12; the last cell is not padded."""
    widths = [max(12, max(len(row[i]) for row in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "".join("".join(cell.ljust(w) for cell, w in zip(row, widths)) + row[-1] + "\n" for row in rows)
