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


# rootless.fastpath: the short calls it recognises are parsed exactly as the CLI parses them,
# and the calls podman, conmon and containerd make are among them.

def cli_parse(argv: list[str]):
    values, rest = a.parse_options(cli.GLOBAL_OPTIONS, argv, stop_at_positional=True, context="")
    verb = cli.ALIASES.get(rest[0], rest[0])
    return verb, values, a.parse_command(cli.COMMANDS[verb], rest[1:])


def assert_parsed_as_the_cli_does(argv: list[str]) -> bool:
    """True when the fast path takes argv, which then must mean what it means to the CLI: the
    same verb, options and arguments, and no global flag the fast path would drop."""
    from rootless import fastpath
    call = fastpath.recognise(argv)
    if call is None:
        return False
    verb, values, options, args = call
    cli_verb, cli_values, parsed = cli_parse(argv)     # raises if the CLI would refuse argv
    defaults = {o.dest: o.default for o in cli.GLOBAL_OPTIONS}
    assert (verb, options, args, parsed.rest) == (cli_verb, parsed.options, parsed.args, [])
    assert cli_values == {**defaults, **values}, argv
    assert cli_values["log_format"] in ("text", "json")
    return True


CLIENT_CALLS = [
    ["state", "c1"], ["start", "c1"], ["kill", "c1", "15"], ["kill", "c1", "9"], ["delete", "--force", "c1"],
    ["--root", "/run/r", "--log", "/l.json", "--log-format", "json", "kill", "--all", "c1", "KILL"],
    ["--root=/r", "--systemd-cgroup", "delete", "c1"], ["--log-format=json", "state", "c1"], ["list"],
    ["list", "-q"], ["delete", "c1", "-f"], ["kill", "-a", "c1"],
    # create as conmon (under podman) and containerd's shim call it, and run
    ["--root", "/r", "--log", "/l.json", "--log-format", "json", "--systemd-cgroup", "create", "--bundle", "/b",
     "--pid-file", "/p", "--console-socket", "/s", "c1"],
    ["create", "--bundle", "/b", "--pid-file", "/p", "--no-pivot", "--no-new-keyring", "--preserve-fds", "2", "c1"],
    ["create", "c1"], ["run", "c1"], ["run", "-d", "--bundle=/b", "c1"], ["run", "c1", "--keep", "-b", "/b"],
    ["run", "--network", "pasta", "-p", "8080:80", "-p", "53:53/udp", "--dns", "auto", "c1"],
    ["run", "--shim", "--rm", "--shim-log-format", "json-lines", "-d", "c1"],
]


@pytest.mark.parametrize("argv", CLIENT_CALLS)
def test_the_fast_path_takes_what_clients_call(argv):
    assert assert_parsed_as_the_cli_does(argv)


@pytest.mark.parametrize("argv", [
    ["--debug", "state", "c1"], ["state"], ["state", "a", "b"], ["kill", "c1", "-9"], ["delete", "--", "c1"],
    ["delete", "--force=true", "c1"], ["-root", "/r", "state", "c1"], ["--log-format", "xml", "state", "c1"],
    ["rm", "c1"], ["ls"], ["list", "--format", "json"], ["state", "-h"], ["--root"], [],
    ["--help"], ["--version"], ["delete", "-"], ["create"], ["create", "-h"], ["run", "--help", "c1"],
    ["create", "--preserve-fds", "-1", "c1"], ["run", "a", "b"], ["--debug", "run", "c1"], ["create", "--bogus", "c1"],
    ["--cgroup-manager", "systemd", "create", "c1"], ["run", "--bundle"],
])
def test_the_fast_path_leaves_the_rest_to_the_cli(argv):
    from rootless import fastpath
    assert fastpath.recognise(argv) is None


def test_the_fast_path_agrees_with_the_cli_on_generated_command_lines():
    from hypothesis import given, settings, strategies as st
    tokens = st.sampled_from(["--root", "/r", "--root=", "--log", "/l", "--log-format", "json", "--log-format=text",
                              "--log-format=xml", "--systemd-cgroup", "--debug", "state", "start", "kill", "delete",
                              "list", "rm", "-f", "--force", "-a", "--all", "-q", "--quiet", "--", "-", "c1", "KILL",
                              "9", "-9", "--force=true", "-h", "", "a b", "create", "run", "--bundle", "-b",
                              "--pid-file", "--preserve-fds", "2", "-1", "-d", "--detach=false", "--keep",
                              "--no-pivot", "-p", "--shim"])

    @settings(max_examples=500, deadline=None)
    @given(st.lists(tokens, max_size=8))
    def agree(argv):
        assert_parsed_as_the_cli_does(argv)

    agree()
