"""D-Bus messages as bytes (the specification's "Message Protocol"), for the handful of calls
the systemd driver makes: pure, and importing nothing but struct.

Why not a D-Bus library: jeepney, the lightest maintained one, costs 25-40 ms to import here
(socket, enum, typing, re, selectors), about half of what a whole `create` takes, and podman
calls `create` with the systemd driver for every container on a systemd host. What the driver
needs of D-Bus is small: method calls with a body, their replies and errors, and one signal.

Values follow jeepney's conventions, so that its output is the reference in the unit tests: a
variant is (signature, value), a struct a tuple, an array a list (bytes for `ay`), a dict
entry a (key, value) pair.
"""

import struct

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
# Header field codes
PATH, INTERFACE, MEMBER, ERROR_NAME, REPLY_SERIAL, DESTINATION, SENDER, SIGNATURE = 1, 2, 3, 4, 5, 6, 7, 8
_FIELD_TYPES = {PATH: "o", INTERFACE: "s", MEMBER: "s", ERROR_NAME: "s", REPLY_SERIAL: "u",
                DESTINATION: "s", SENDER: "s", SIGNATURE: "g", 9: "u"}

_FIXED = {"y": "B", "b": "I", "n": "h", "q": "H", "i": "i", "u": "I", "x": "q", "t": "Q", "d": "d", "h": "I"}
_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "h": 4, "s": 4, "o": 4,
          "g": 1, "v": 1, "a": 4, "(": 8, "{": 8}
MAX_MESSAGE = 1 << 27  # the specification's limit: 128 MiB


class WireError(ValueError):
    """Bytes that are no D-Bus message, or a value its signature cannot hold."""


def split_signature(signature: str) -> list[str]:
    """The complete types of a signature: "sa(sv)u" -> ["s", "a(sv)", "u"]."""
    types, i = [], 0
    while i < len(signature):
        end = _type_end(signature, i)
        types.append(signature[i:end])
        i = end
    return types


def _type_end(signature: str, i: int) -> int:
    code = signature[i] if i < len(signature) else ""
    if code == "a":
        return _type_end(signature, i + 1)
    if code in "({":
        close, depth = ")" if code == "(" else "}", 0
        for j in range(i, len(signature)):
            depth += signature[j] in "({"
            depth -= signature[j] in ")}"
            if depth == 0:
                if signature[j] != close:
                    break
                return j + 1
        raise WireError(f"unbalanced signature {signature!r}")
    if code in _ALIGN:
        return i + 1
    raise WireError(f"unknown type {code!r} in signature {signature!r}")


# ---- writing ----

def _pad(buffer: bytearray, alignment: int) -> None:
    buffer.extend(b"\0" * (-len(buffer) % alignment))


def _write(buffer: bytearray, kind: str, value) -> None:
    code = kind[0]
    _pad(buffer, _ALIGN[code])
    if code in _FIXED:
        buffer.extend(struct.pack("<" + _FIXED[code], int(value) if code == "b" else value))
    elif code in "so":
        data = value.encode()
        buffer.extend(struct.pack("<I", len(data)) + data + b"\0")
    elif code == "g":
        data = value.encode()
        buffer.extend(struct.pack("<B", len(data)) + data + b"\0")
    elif code == "v":
        signature, inner = value
        _write(buffer, "g", signature)
        _write(buffer, signature, inner)
    elif code == "a":
        element = kind[1:]
        length_at = len(buffer)
        buffer.extend(b"\0\0\0\0")
        _pad(buffer, _ALIGN[element[0]])  # the padding before the first element is not counted
        start = len(buffer)
        if element == "y":
            buffer.extend(bytes(value))
        else:
            for item in value.items() if isinstance(value, dict) else value:
                _write(buffer, element, item)
        struct.pack_into("<I", buffer, length_at, len(buffer) - start)
    else:  # "(" or "{"
        fields = split_signature(kind[1:-1])
        if len(fields) != len(value):
            raise WireError(f"{kind} needs {len(fields)} values, not {len(value)}")
        for field, item in zip(fields, value):
            _write(buffer, field, item)


def marshal(signature: str, values: tuple) -> bytes:
    buffer = bytearray()
    kinds = split_signature(signature)
    if len(kinds) != len(values):
        raise WireError(f"signature {signature!r} needs {len(kinds)} values, not {len(values)}")
    for kind, value in zip(kinds, values):
        _write(buffer, kind, value)
    return bytes(buffer)


def message(kind: int, serial: int, fields: dict[int, object], signature: str = "", body: tuple = ()) -> bytes:
    """A little-endian message: the header (its fields in code order), padded to 8, the body."""
    payload = marshal(signature, body)
    if signature:
        fields = {**fields, SIGNATURE: signature}
    header = bytearray(b"l" + bytes([kind, 0, 1]) + struct.pack("<II", len(payload), serial))
    entries = [(code, (_FIELD_TYPES[code], fields[code])) for code in sorted(fields)]
    _write(header, "a(yv)", entries)
    _pad(header, 8)
    return bytes(header) + payload


def method_call(serial: int, destination: str, path: str, interface: str, member: str,
                signature: str = "", body: tuple = ()) -> bytes:
    fields = {PATH: path, MEMBER: member, DESTINATION: destination}
    if interface:
        fields[INTERFACE] = interface
    return message(METHOD_CALL, serial, fields, signature, body)


# ---- reading ----

class _Reader:
    def __init__(self, data: bytes, big_endian: bool):
        self.data, self.order = data, ">" if big_endian else "<"

    def align(self, position: int, code: str) -> int:
        return position + (-position % _ALIGN[code])

    def fixed(self, code: str, position: int):
        fmt = self.order + _FIXED[code]
        end = position + struct.calcsize(fmt)
        if end > len(self.data):
            raise WireError("message ends inside a value")
        (value,) = struct.unpack_from(fmt, self.data, position)
        return (bool(value) if code == "b" else value), end

    def read(self, kind: str, position: int):
        code = kind[0]
        position = self.align(position, code)
        if code in _FIXED:
            return self.fixed(code, position)
        if code in "sog":
            length, position = self.fixed("y" if code == "g" else "u", position)
            end = position + length
            if end >= len(self.data):  # the text and its NUL
                raise WireError("message ends inside a string")
            return self.data[position:end].decode(errors="replace"), end + 1
        if code == "v":
            signature, position = self.read("g", position)
            if len(split_signature(signature)) != 1:
                raise WireError(f"variant of signature {signature!r}")
            value, position = self.read(signature, position)
            return (signature, value), position
        if code == "a":
            length, position = self.fixed("u", position)
            element = kind[1:]
            position = self.align(position, element[0])
            end = position + length
            if end > len(self.data):
                raise WireError("message ends inside an array")
            if element == "y":
                return self.data[position:end], end
            items = []
            while position < end:
                item, position = self.read(element, position)
                items.append(item)
            return (dict(items) if element[0] == "{" else items), position
        items = []
        for field in split_signature(kind[1:-1]):
            item, position = self.read(field, position)
            items.append(item)
        return tuple(items), position


class Message:
    def __init__(self, kind: int, serial: int, fields: dict[int, object], body: tuple):
        self.kind, self.serial, self.fields, self.body = kind, serial, fields, body


def parse(data: bytes) -> tuple[Message | None, int]:
    """The first message in data and how many bytes it took, or (None, 0) until it is whole."""
    if len(data) < 16:
        return None, 0
    if data[0:1] not in (b"l", b"B") or data[3] != 1:
        raise WireError("not a D-Bus message (endianness or protocol version)")
    reader = _Reader(data, data[0:1] == b"B")
    body_length, _ = reader.fixed("u", 4)
    fields_length, _ = reader.fixed("u", 12)
    header_end = 16 + fields_length + (-(16 + fields_length) % 8)
    total = header_end + body_length
    if total > MAX_MESSAGE:
        raise WireError(f"a message of {total} bytes")
    if len(data) < total:
        return None, 0
    reader.data = data[:total]
    serial, _ = reader.fixed("u", 8)
    entries, _ = reader.read("a(yv)", 12)
    fields = {code: value for code, (_signature, value) in entries}
    body: list = []
    position = header_end
    for kind in split_signature(fields.get(SIGNATURE, "")):
        value, position = reader.read(kind, position)
        body.append(value)
    return Message(data[1], serial, fields, tuple(body)), total
