"""JSON through CPython's C accelerator (_json) alone.

`import json` costs about 5 ms here, mostly for `re`, `enum` and `functools` that json.decoder
pulls in; every lifecycle verb reads JSON, and podman runs several verbs per container. The C
scanner and encoder need none of that. Errors are rare, so only they import the json package
(to raise its JSONDecodeError, a ValueError).
"""

import _json

_WHITESPACE = " \t\n\r"


class _DecoderContext:
    """The attributes _json.make_scanner reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_DecoderContext())
_encode_string = _json.encode_basestring_ascii


def _error(message: str, text: str, position: int) -> ValueError:
    from json import JSONDecodeError
    return JSONDecodeError(message, text, position)


def loads(text: str | bytes):
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig" if text.startswith(b"\xef\xbb\xbf") else "utf-8")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise _error("Expecting value", text, stop.value) from None
    except SystemError:
        # The scanner reports syntax errors through json.decoder, and only if that module is
        # loaded already: parse again with the json package for its JSONDecodeError.
        import json
        return json.loads(text)
    rest = len(text) - len(text.rstrip(_WHITESPACE))
    if end != len(text) - rest:
        raise _error("Extra data", text, end)
    return value


def _unsupported(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Arguments of c_make_encoder: markers, default, encoder, indent, key_separator,
# item_separator, sort_keys, skipkeys, allow_nan.
_compact = _json.make_encoder({}, _unsupported, _encode_string, None, ":", ",", False, False, False)


def dumps(value, indent: int | None = None) -> str:
    if indent is None:
        return "".join(_compact(value, 0))
    return _pretty(value, indent, 0)


def _pretty(value, indent: int, level: int) -> str:
    pad = " " * (indent * (level + 1))
    end_pad = " " * (indent * level)
    if isinstance(value, dict) and value:
        items = [f"{pad}{_encode_string(str(k))}: {_pretty(v, indent, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + end_pad + "}"
    if isinstance(value, (list, tuple)) and value:
        items = [pad + _pretty(v, indent, level + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + end_pad + "]"
    return "".join(_compact(value, 0))
