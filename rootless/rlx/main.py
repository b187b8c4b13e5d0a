"""`rlx`, the developer command line: the typer app, its global options and the error line.

Each verb group is a module (images.py: pull, load, images, inspect, rmi, prune; bundle.py)
that parses and prints only; the work is in rootless/images. Errors a user can act on
(RootlessError) become one line on stderr and exit status 1; --debug adds notes.
"""

import sys

import typer

from rootless.rlx import bundle, context, images, run

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="rootless's developer command line: containers, images and bundles.")


@app.callback()
def main_options(
        store: str = typer.Option(None, "--store", envvar="RLX_STORE",
                                  help="The image store (default $XDG_DATA_HOME/rootless; root: /var/lib/rootless)."),
        debug: bool = typer.Option(False, "--debug", help="Say more on stderr: ID maps, notes, choices made."),
) -> None:
    context.configure(store, debug)


images.register(app)
bundle.register(app)
run.register(app)


def main() -> None:
    from rootless.rlx.entry import guarded
    guarded(app, debug="--debug" in sys.argv[1:])
