"""What rlx's listings show, pure: podman's status and age words, ports as `podman ps` writes
them, the table, JSON for scripts, and whether colour is allowed. No typer here: the verbs
print what these return, and tests call them with fixed clocks."""

import calendar
import json
import os
import time

FORMATS = ("table", "json")


def parse_time(text: str) -> float:
    """An RFC 3339 UTC time (runc's "2026-11-29T11:03:25.123456789Z", or without fraction) as
    seconds since the epoch; 0.0 when it cannot be read, so a listing never fails on one."""
    if not text:
        return 0.0
    head, _, fraction = text.rstrip("Z").partition(".")
    try:
        whole = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0.0
    digits = "".join(c for c in fraction if c.isdigit())[:9]
    return whole + (int(digits) / 10 ** len(digits) if digits else 0.0)


def human_duration(seconds: float) -> str:
    """podman's words for a span (go-units HumanDuration): "3 seconds", "About a minute",
    "5 hours", "2 weeks"."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = whole // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # go rounds to the hour here
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{whole // 3600 // 24 // 365} years"


def status_text(state: str, now: float, started: float = 0.0, exit_code: int | None = None,
                exited: float = 0.0) -> str:
    """The STATUS column: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created", "Paused".
    state is podman's word: created, running, paused, exited."""
    if state == "running":
        return f"Up {human_duration(now - started)}"
    if state == "paused":
        return f"Up {human_duration(now - started)} (Paused)"
    if state == "exited":
        code = "" if exit_code is None else f" ({exit_code})"
        return f"Exited{code} {human_duration(now - exited)} ago" if exited else f"Exited{code}"
    return state.capitalize()


def port_text(port: dict) -> str:
    """One mapping as podman prints it: 0.0.0.0:8080->80/tcp."""
    host_ip = port.get("host_ip") or "0.0.0.0"
    return f"{host_ip}:{port['host_port']}->{port['container_port']}/{port.get('protocol') or 'tcp'}"


def ports_text(ports: list[dict]) -> str:
    return ", ".join(port_text(port) for port in ports)


def short_id(container_id: str) -> str:
    return container_id[:12]


def command_text(command: list[str]) -> str:
    return " ".join(command)


def table(headers: list[str], rows: list[list[str]], styles: list[str | None] | None = None,
          colour: bool = False) -> str:
    """Columns padded to their widest cell, two spaces apart, as podman aligns them; the last
    column unpadded. styles: an ANSI SGR code per row (None: plain), used only with colour."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths)] + [cells[-1]]
        return "  ".join(padded).rstrip()

    out = [line(headers)]
    for index, row in enumerate(rows):
        text = line(row)
        style = styles[index] if styles else None
        out.append(f"\033[{style}m{text}\033[0m" if colour and style else text)
    return "\n".join(out)


STYLE = {"running": "32", "paused": "33", "exited": "2", "created": "36"}  # green, yellow, dim, cyan


def examples(*lines: str) -> str:
    """A command's --help epilog, one example a line: click's plain help keeps a paragraph
    that starts with \\b as it is (rich's drops the \\b and keeps the lines anyway)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def to_json(rows) -> str:
    return json.dumps(rows, indent=2)


def check_format(value: str) -> str:
    if value not in FORMATS:
        from rootless.errors import UsageError
        raise UsageError(f"--format {value!r}: use table or json")
    return value


def colour_allowed(stream, env=os.environ) -> bool:
    """Colour only on a terminal, never with NO_COLOR (no-color.org: set and not empty) or a
    dumb terminal."""
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
