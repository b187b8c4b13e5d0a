"""The image verbs: pull, load, images, rmi, prune (and what `rlx inspect` shows of an image)."""

import json
import time

import typer

from rootless.images import archive, image
from rootless.images.digest import ImageError
from rootless.rlx import complete, context, listing
from rootless.rlx.listing import examples


def register(app: typer.Typer) -> None:
    app.command("pull", epilog=examples("rlx pull docker.io/library/busybox:latest",
                                        "rlx pull --no-tls-verify localhost:5000/app:1"))(pull)
    app.command("load", epilog=examples("rlx load busybox.tar", "rlx load --name localhost/app app.oci.tar"))(load)
    app.command("images", epilog=examples("rlx images", "rlx images --format json"))(list_images)
    app.command("rmi", epilog=examples("rlx rmi busybox", "rlx rmi --all"))(rmi)
    app.command("prune", epilog=examples("rlx prune"))(prune)


def _report(results, started: float) -> None:
    for record, notes, unpacked in results:
        for note in notes:
            context.note(note)
        context.debug(f"{record['name']}: {len(record['layers'])} layers, {unpacked} unpacked now, "
                      f"{time.monotonic() - started:.2f} s")
        print(f"{record['name']} {record['config']}")


def pull(image_ref: str = typer.Argument(..., metavar="IMAGE", help="docker.io/library/busybox:latest, localhost:5000/x@sha256:..."),
         platform: str = typer.Option(None, "--platform", help="os/arch[/variant] (default: this machine's)."),
         tls_verify: bool = typer.Option(True, "--tls-verify/--no-tls-verify", help="Refuse registries without valid TLS."),
         quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """Pull an image from a registry into the store."""
    from rootless.images import pull as pulling
    started = time.monotonic()
    store = context.store()
    result = pulling.pull(store, image_ref, platform=platform, tls_verify=tls_verify, progress=not quiet,
                          debug=context.debug)
    _report([result], started)


def load(path: str = typer.Argument(..., metavar="ARCHIVE", help="OCI layout (dir or tar), docker-archive, or a rootfs tarball."),
         name: str = typer.Option(None, "--name", help="Name the image (default: the archive's own names)."),
         platform: str = typer.Option(None, "--platform", help="os/arch from an index (default: this machine's).")) -> None:
    """Load images from an archive into the store."""
    started = time.monotonic()
    _report(archive.load(context.store(), path, name=name, platform=platform), started)


def list_images(format: str = typer.Option("table", "--format", help="table or json.")) -> None:
    """List the stored images."""
    store = context.store()
    rows = []
    for record in store.records():
        size = sum(layer.get("size", 0) for layer in record["layers"])
        rows.append({"name": record["name"], "id": record["config"], "manifest": record["manifest"],
                     "created": record.get("created", ""), "size": size, "layers": len(record["layers"])})
    if listing.check_format(format) == "json":
        print(listing.to_json(rows))
        return
    print(listing.table(["NAME", "ID", "CREATED", "SIZE"],
                        [[row["name"], row["id"][7:19], row["created"][:19], _human(row["size"])] for row in rows]))


def _human(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)


def image_view(store, image_ref: str) -> dict:
    """A stored image for `rlx inspect` (rootless/rlx/containers.py): its record, manifest and config."""
    record = store.find(image_ref)
    return {"record": record, "manifest": json.loads(store.read_blob(record["manifest"])),
            "config": image.image_config(store, record)}


def rmi(images: list[str] = typer.Argument(None, metavar="IMAGE...", autocompletion=complete.images),
        all_: bool = typer.Option(False, "--all", "-a", help="Remove every image."),
        no_prune: bool = typer.Option(False, "--no-prune", help="Keep the layers no image uses any more.")) -> None:
    """Remove image names, then (unless --no-prune) what no image uses any more."""
    store = context.store()
    if not images and not all_:
        raise ImageError("rmi: name an image, or give --all")
    for record in store.records() if all_ else [store.find(ref) for ref in images]:
        store.remove_name(record["name"])
        print(f"untagged {record['name']}")
    if not no_prune:
        _prune(store)


def prune() -> None:
    """Remove layers and blobs no image refers to, and what killed pulls left behind."""
    _prune(context.store())


def _prune(store) -> None:
    done = store.prune()
    print(f"removed {done['layers']} layers, {done['blobs']} blobs, {done['leftovers']} leftovers "
          f"({_human(done['bytes'])})")
