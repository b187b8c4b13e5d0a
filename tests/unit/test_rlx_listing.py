"""Pure parts of rlx's container verbs: podman's status and age words, ports, the table,
--since, colour rules, the examples in --help."""

import io

import pytest

from rootless.errors import RootlessError
from rootless.rlx import listing
from rootless.shim import logformat

NOW = 1_800_000_000.0


@pytest.mark.parametrize("seconds, words", [
    (0.4, "Less than a second"), (1, "1 second"), (3, "3 seconds"), (59.9, "59 seconds"),
    (60, "About a minute"), (119, "About a minute"), (120, "2 minutes"), (59 * 60, "59 minutes"),
    (3600, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"),
    (13 * 86400, "13 days"), (14 * 86400, "2 weeks"), (59 * 86400, "8 weeks"), (60 * 86400, "2 months"),
    (3 * 365 * 86400, "3 years"),
])
def test_human_duration_is_podmans(seconds: float, words: str) -> None:
    assert listing.human_duration(seconds) == words


@pytest.mark.parametrize("args, text", [
    (("running", NOW, NOW - 3), "Up 3 seconds"),
    (("paused", NOW, NOW - 120), "Up 2 minutes (Paused)"),
    (("exited", NOW, NOW - 500, 0, NOW - 120), "Exited (0) 2 minutes ago"),
    (("exited", NOW, NOW - 500, 137, NOW - 1), "Exited (137) 1 second ago"),
    (("exited", NOW, NOW - 500, None, 0.0), "Exited"),
    (("created", NOW), "Created"),
])
def test_status_text(args, text: str) -> None:
    assert listing.status_text(*args) == text


def test_times_are_read_as_utc_with_any_fraction() -> None:
    assert listing.parse_time("1970-01-01T00:01:00Z") == 60.0
    assert listing.parse_time("1970-01-01T00:01:00.5Z") == 60.5
    assert listing.parse_time("1970-01-01T00:01:00.250000000Z") == 60.25
    assert listing.parse_time("garbage") == 0.0 and listing.parse_time("") == 0.0


def test_ports_as_podman_writes_them() -> None:
    ports = [{"host_ip": "", "host_port": 8080, "container_port": 80, "protocol": "tcp"},
             {"host_ip": "127.0.0.1", "host_port": 5353, "container_port": 53, "protocol": "udp"}]
    assert listing.ports_text(ports) == "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp"


def test_table_aligns_columns_and_colours_only_when_asked() -> None:
    text = listing.table(["ID", "NAME"], [["abc", "web"], ["d", "db"]], ["32", None])
    assert text.splitlines() == ["ID   NAME", "abc  web", "d    db"]
    assert "\033" not in text
    coloured = listing.table(["ID", "NAME"], [["abc", "web"], ["d", "db"]], ["32", None], colour=True)
    assert coloured.splitlines()[1] == "\033[32mabc  web\033[0m" and coloured.splitlines()[2] == "d    db"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert listing.colour_allowed(Tty(), {"TERM": "xterm"})
    assert not listing.colour_allowed(io.StringIO(), {"TERM": "xterm"})
    assert not listing.colour_allowed(Tty(), {"TERM": "xterm", "NO_COLOR": "1"})
    assert listing.colour_allowed(Tty(), {"TERM": "xterm", "NO_COLOR": ""})  # no-color.org: empty is unset
    assert not listing.colour_allowed(Tty(), {"TERM": "dumb"})


def test_format_is_table_or_json() -> None:
    assert listing.check_format("json") == "json"
    with pytest.raises(RootlessError, match="use table or json"):
        listing.check_format("yaml")


def test_since_reads_spans_times_and_epoch_seconds() -> None:
    from rootless.rlx import control
    assert control.since_time("10m", NOW) == logformat.timestamp(int((NOW - 600) * 1e9))
    assert control.since_time("1h30m", NOW) == logformat.timestamp(int((NOW - 5400) * 1e9))
    assert control.since_time("2026-11-29T11:00:00Z", NOW) == "2026-11-29T11:00:00.000000000Z"
    assert control.since_time("60", NOW) == "1970-01-01T00:01:00.000000000Z"
    for bad in ("10x", "m", "", "yesterday"):
        with pytest.raises(RootlessError, match="--since"):
            control.since_time(bad, NOW)


def test_log_entries_carry_their_time_for_since() -> None:
    when = "2026-11-29T11:00:00.000000001Z"
    line = logformat.format_output("stderr", b"hi\n", "k8s-file", when).rstrip(b"\n")
    assert logformat.parse_entry(line, "k8s-file") == (when, "stderr", b"hi\n")
    line = logformat.format_output("stdout", b"part", "json-lines", when).rstrip(b"\n")
    assert logformat.parse_entry(line, "json-lines") == (when, "stdout", b"part")


def test_examples_keep_one_line_each() -> None:
    assert listing.examples("rlx ps", "rlx ps -a").splitlines() == ["\b", "Examples:", "  rlx ps", "  rlx ps -a"]
