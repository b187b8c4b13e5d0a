"""The command-line parser: runc's and crun's spellings, one-line errors."""

import pytest

from rootless import args as a
from rootless import cli
from rootless.errors import UsageError


def parse(verb, argv):
    return a.parse_command(cli.COMMANDS[verb], argv)


def test_value_forms_are_equivalent():
    for argv in (["--bundle", "/b", "x"], ["--bundle=/b", "x"], ["-b", "/b", "x"], ["-bundle", "/b", "x"]):
        parsed = parse("create", argv)
        assert parsed.options["bundle"] == "/b"
        assert parsed.args["id"] == "x"


def test_options_after_the_id_are_parsed():
    parsed = parse("delete", ["x", "--force"])
    assert parsed.options["force"] is True and parsed.args["id"] == "x"


def test_boolean_with_explicit_value():
    assert parse("run", ["--detach=false", "x"]).options["detach"] is False
    assert parse("run", ["--detach=true", "x"]).options["detach"] is True
    with pytest.raises(UsageError, match="not a boolean"):
        parse("run", ["--detach=maybe", "x"])


def test_optional_positional():
    parsed = parse("kill", ["x"])
    assert parsed.args == {"id": "x", "signal": None}
    assert parse("kill", ["x", "9"]).args["signal"] == "9"


@pytest.mark.parametrize("argv, message", [
    (["--bogus", "x"], "unknown flag --bogus"),
    (["--preserve-fds", "-1", "x"], "invalid value '-1' for --preserve-fds"),
    (["--preserve-fds", "two", "x"], "invalid value 'two'"),
    ([], "missing ID"),
    (["x", "y"], "unexpected argument 'y'"),
    (["--pid-file"], "needs a value"),
])
def test_errors_are_one_line(argv, message):
    with pytest.raises(UsageError) as info:
        parse("create", argv)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_double_dash_ends_options():
    assert parse("delete", ["--", "-odd"]).args["id"] == "-odd"


def test_global_options_stop_at_the_verb():
    values, rest = a.parse_options(cli.GLOBAL_OPTIONS, ["--root", "/r", "--debug", "kill", "-a", "x"],
                                   stop_at_positional=True, context="")
    assert values["root"] == "/r" and values["debug"] is True
    assert rest == ["kill", "-a", "x"]


def test_main_reports_unknown_flag(capsys):
    assert cli.main(["--bogus", "list"]) == 1
    err = capsys.readouterr().err
    assert err == "rootless: unknown flag --bogus\n"


def test_main_json_log(tmp_path, capsys):
    import json
    log = tmp_path / "log.json"
    assert cli.main(["--log", str(log), "--log-format=json", "nosuchverb"]) == 3  # runc's status
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and entry["msg"].startswith("No help topic for 'nosuchverb'") and entry["time"]


def test_aliases():
    assert cli.ALIASES["rm"] == "delete" and cli.ALIASES["ls"] == "list"


def test_trailing_arguments_keep_their_flags():
    parsed = parse("ps", ["-f", "json", "x", "-o", "pid"])
    assert parsed.options["format"] == "json" and parsed.args["id"] == "x" and parsed.rest == ["-o", "pid"]
    assert parse("ps", ["x", "--", "-ef"]).rest == ["-ef"]


def test_list_table_is_padded_as_runcs_tabwriter():
    """tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0): widest cell plus 3, at least 12."""
    from rootless.commands import list as list_command
    header = ("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")
    assert list_command.table([header]) == "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
    row = ("a-long-container-id", "123456789", "running", "/b", "2026-11-29T11:05:08.123456789Z", "me")
    assert list_command.table([header, row]).splitlines() == [
        "ID" + " " * 20 + "PID" + " " * 9 + "STATUS" + " " * 6 + "BUNDLE" + " " * 6 + "CREATED" + " " * 26 + "OWNER",
        "a-long-container-id   123456789   running     /b          2026-11-29T11:05:08.123456789Z   me"]
