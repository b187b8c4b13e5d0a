"""`rlx bundle IMAGE DIR`."""

import typer

from rootless.images.bundle import make_bundle
from rootless.rlx import complete, context
from rootless.rlx.listing import examples


def register(app: typer.Typer) -> None:
    @app.command("bundle", epilog=examples("rlx bundle busybox /tmp/bb && runc run --bundle /tmp/bb bb"))
    def bundle(image: str = typer.Argument(..., help="A stored image: name, short name or ID.",
                                           autocompletion=complete.images),
               directory: str = typer.Argument(..., help="The new bundle: DIR/rootfs and DIR/config.json.")) -> None:
        """Write a runtime bundle (a flattened rootfs and its config.json) from a stored image."""
        store = context.store()
        record = make_bundle(store, image, directory)
        plan = store.idmap()
        context.debug(plan.describe() if plan is not None else "id maps: none (real root)")
        print(f"{directory}: bundle of {record['name']}")
