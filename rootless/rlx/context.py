"""What the global options decided, for every verb: the store and --debug."""

import sys

_settings = {"store": None, "debug": False}


def configure(store: str | None, debug: bool) -> None:
    _settings.update(store=store, debug=debug)


def store():
    from rootless.images.store import Store, default_root
    return Store(_settings["store"] or default_root())


def debugging() -> bool:
    return _settings["debug"]


def debug(message: str) -> None:
    if _settings["debug"]:
        print(f"rlx: {message}", file=sys.stderr)


def note(message: str) -> None:
    print(f"rlx: note: {message}", file=sys.stderr)

