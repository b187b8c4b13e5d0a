"""rootless/cgroups/dbuswire.py against jeepney (the reference, a test dependency): the same
bytes for the calls the systemd driver makes, and jeepney's messages read back as it reads them."""

import pytest
from jeepney import DBusAddress, new_error, new_method_call, new_method_return, new_signal
from jeepney.low_level import Endianness, Parser

from rootless.cgroups import dbuswire as wire

SYSTEMD = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1",
                      interface="org.freedesktop.systemd1.Manager")
PROPERTIES = [("Description", ("s", "rootless container ünï")), ("Slice", ("s", "user.slice")),
              ("Delegate", ("b", True)), ("DefaultDependencies", ("b", False)), ("PIDs", ("au", [1, 4242])),
              ("MemoryMax", ("t", 2**64 - 1)), ("AllowedCPUs", ("ay", bytes([0b101]))),
              ("IODeviceWeight", ("a(st)", [("/dev/sda", 200)])), ("Environment", ("as", ["A=1", "B="])),
              ("CPUWeight", ("t", 0)), ("Nice", ("i", -5)), ("Ratio", ("d", 0.25)), ("Small", ("y", 7)),
              ("Pair", ("(qn)", (65535, -2))), ("Map", ("a{sv}", {"k": ("u", 1)})), ("Empty", ("as", []))]
CALLS = [("StartTransientUnit", "ssa(sv)a(sa(sv))", ("rootless-c.scope", "replace", PROPERTIES, [])),
         ("StopUnit", "ss", ("rootless-c.scope", "replace")), ("ResetFailedUnit", "s", ("u",)),
         ("SetUnitProperties", "sba(sv)", ("u", True, PROPERTIES[4:9])),
         ("AttachProcessesToUnit", "ssau", ("u", "", [77])), ("Subscribe", "", ())]


@pytest.mark.parametrize("member, signature, body", CALLS, ids=[c[0] for c in CALLS])
def test_method_calls_are_jeepney_s_bytes(member: str, signature: str, body: tuple) -> None:
    reference = new_method_call(SYSTEMD, member, signature or None, body).serialise(serial=9)
    ours = wire.method_call(9, SYSTEMD.bus_name, SYSTEMD.object_path, SYSTEMD.interface, member, signature, body)
    assert ours == reference
    message, used = wire.parse(ours + b"\0next")
    assert used == len(ours) and message.body == body and message.fields[wire.MEMBER] == member


def test_replies_errors_and_signals_read_as_jeepney_reads_them() -> None:
    call = new_method_call(SYSTEMD, "StartTransientUnit", "s", ("x",))
    call.header.serial = 3
    stream = b"".join([
        new_signal(SYSTEMD, "JobRemoved", "uoss", (5, "/org/freedesktop/systemd1/job/5", "x.scope", "done"))
        .serialise(serial=10),
        new_error(call, "org.freedesktop.systemd1.UnitExists", "s", ("Unit x.scope already exists.",))
        .serialise(serial=11),
        new_method_return(call, "o", ("/org/freedesktop/systemd1/job/6",)).serialise(serial=12),
    ])
    messages = []
    while stream:
        message, used = wire.parse(stream)
        messages.append(message)
        stream = stream[used:]
    signal, error, reply = messages
    assert (signal.kind, signal.fields[wire.MEMBER], signal.body) == \
        (wire.SIGNAL, "JobRemoved", (5, "/org/freedesktop/systemd1/job/5", "x.scope", "done"))
    assert (error.kind, error.fields[wire.ERROR_NAME], error.fields[wire.REPLY_SERIAL], error.body) == \
        (wire.ERROR, "org.freedesktop.systemd1.UnitExists", 3, ("Unit x.scope already exists.",))
    assert (reply.kind, reply.fields[wire.REPLY_SERIAL], reply.body) == \
        (wire.METHOD_RETURN, 3, ("/org/freedesktop/systemd1/job/6",))


def test_big_endian_messages_are_read_too() -> None:
    message = new_method_call(SYSTEMD, "X", "sau", ("é", [1, 2]))
    message.header.endianness = Endianness.big
    data = message.serialise(serial=4)
    assert data[:1] == b"B"
    message, used = wire.parse(data)
    assert used == len(data) and message.body == ("é", [1, 2]) and message.serial == 4


def test_a_partial_message_waits_and_garbage_is_refused() -> None:
    data = wire.method_call(1, "a.b", "/a", "a.b", "M", "s", ("text",))
    for cut in (0, 10, 16, len(data) - 1):
        assert wire.parse(data[:cut]) == (None, 0)
    for bad in (b"x" + data[1:], data[:3] + b"\2" + data[4:]):
        with pytest.raises(wire.WireError):
            wire.parse(bad)
    with pytest.raises(wire.WireError):
        wire.parse(data[:12] + (2**31).to_bytes(4, "little") + data[16:])
    with pytest.raises(wire.WireError):
        wire.marshal("(ss)", (("one",),))
    with pytest.raises(wire.WireError):
        wire.split_signature("a(s")


def test_parsing_agrees_with_jeepney_on_what_we_send() -> None:
    data = wire.method_call(2, SYSTEMD.bus_name, SYSTEMD.object_path, SYSTEMD.interface, *CALLS[0])
    parser = Parser()
    parser.add_data(data)
    assert parser.get_next_message().body == CALLS[0][2]
