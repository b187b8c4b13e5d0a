"""The shim's log lines and its client frames (rootless.shim.logformat, rootless.shim.protocol)."""

import json
import re

from rootless.shim import logformat, protocol


def test_k8s_file_lines_full_and_partial() -> None:
    out = logformat.format_output("stdout", b"one\ntwo\nthr", "k8s-file", "T")
    assert out == b"T stdout F one\nT stdout F two\nT stdout P thr\n"
    assert logformat.format_output("stderr", b"\n", "k8s-file", "T") == b"T stderr F \n"
    assert logformat.format_output("stdout", b"", "k8s-file", "T") == b""


def test_json_lines_keep_the_newline_of_full_lines() -> None:
    lines = logformat.format_output("stderr", "ä\npart".encode(), "json-lines", "T").splitlines()
    assert [json.loads(line) for line in lines] == [{"time": "T", "stream": "stderr", "log": "ä\n"},
                                                    {"time": "T", "stream": "stderr", "log": "part"}]


def test_parse_gives_back_what_was_written() -> None:
    for log_format in logformat.FORMATS:
        written = b"a b c\n\nlast"
        lines = logformat.format_output("stdout", written, log_format, "T").splitlines(keepends=True)
        parsed = [logformat.parse_entry(line, log_format)[1:] for line in lines]
        assert {stream for stream, _ in parsed} == {"stdout"}
        assert b"".join(output for _, output in parsed) == written


def test_timestamps_are_rfc3339_with_nanoseconds() -> None:
    assert logformat.timestamp(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", logformat.timestamp())


def test_frames_split_across_reads() -> None:
    stream = protocol.frame(protocol.STDIN, b"hello") + protocol.frame(protocol.RESIZE, b"24 80") + \
        protocol.frame(protocol.CLOSE_STDIN)
    frames, rest = protocol.split_frames(stream[:7])
    assert frames == [] and rest == stream[:7]
    frames, rest = protocol.split_frames(rest + stream[7:])
    assert frames == [(protocol.STDIN, b"hello"), (protocol.RESIZE, b"24 80"), (protocol.CLOSE_STDIN, b"")]
    assert rest == b""


def test_attach_reads_the_exit_code_after_the_shim_closed_before_its_end_of_input() -> None:
    """The container exited and the shim sent EXIT and closed while the client still had
    input (its end of file) to pass on: the write fails with EPIPE, the exit code is still
    read (it once failed `run --shim` under load with "Broken pipe")."""
    import os
    import socket
    from rootless.commands import attach
    from rootless.shim import protocol
    ours, shim = socket.socketpair()
    shim.sendall(protocol.frame(protocol.STDOUT, b"") + protocol.frame(protocol.EXIT, b"3"))
    shim.close()
    read_end, write_end = os.pipe()
    os.close(write_end)
    try:
        assert attach._relay(ours, read_end) == 3
    finally:
        os.close(read_end)
        ours.close()
