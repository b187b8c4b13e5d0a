"""A small command-line parser with runc's conventions, pure and cheap to import.

argparse costs about 10 ms per call and prints multi-line usage on errors; podman calls the
runtime several times per container and wants one error line. This parser accepts what runc's
(urfave/cli) and crun's parsers accept: `--opt value`, `--opt=value`, `-opt value` for long
names, `-o value`, boolean flags with an optional `=true|false`, and `--` to end options.
"""

from rootless.errors import UsageError


class Option:
    """One flag. names are without dashes: ("b", "bundle"). convert(str) raises ValueError."""

    def __init__(self, names: tuple[str, ...], dest: str, takes_value: bool = False, default: object = None,
                 convert=None, repeat: bool = False, help: str = ""):
        self.names, self.dest, self.takes_value, self.default = names, dest, takes_value, default
        self.convert, self.repeat, self.help = convert, repeat, help

    def display(self) -> str:
        return ", ".join(("-" if len(n) == 1 else "--") + n for n in self.names)


class Command:
    """A verb: its options, required positionals, optional trailing ones, and an optional
    trailing argv (`rest`, exec's command line) whose flags are not parsed."""

    def __init__(self, name: str, summary: str, options: tuple[Option, ...] = (), positionals: tuple[str, ...] = (),
                 optional: tuple[str, ...] = (), rest: str | None = None, aliases: tuple[str, ...] = ()):
        self.name, self.summary, self.options = name, summary, options
        self.positionals, self.optional, self.rest, self.aliases = positionals, optional, rest, aliases

    def usage(self) -> str:
        parts = [self.name, "[options]"]
        parts += [p.upper() for p in self.positionals]
        parts += [f"[{p.upper()}]" for p in self.optional]
        if self.rest:
            parts.append(f"[{self.rest.upper()}...]")
        return " ".join(parts)


class Parsed:
    """A parsed verb: option values by dest, positionals by name, and the trailing argv."""

    def __init__(self, options: dict):
        self.options = options
        self.args: dict = {}
        self.rest: list = []


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean")


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{text} is negative")
    return value


def _lookup(options: tuple[Option, ...], name: str) -> Option | None:
    for option in options:
        if name in option.names:
            return option
    return None


def _prefix(context: str) -> str:
    return f"{context}: " if context else ""


def parse_options(options: tuple[Option, ...], argv: list[str], *, stop_at_positional: bool,
                  context: str) -> tuple[dict, list[str]]:
    """Parse options out of argv; returns (values by dest, positionals in order).

    With stop_at_positional, everything from the first positional on is returned untouched
    (global flags stop at the verb; exec's command keeps its own flags).
    """
    values = {o.dest: ([] if o.repeat else o.default) for o in options}
    positionals: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positionals.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positionals.append(arg)
            if stop_at_positional:
                positionals.extend(argv[i:])
                break
            continue
        name, eq, inline = arg.lstrip("-").partition("=")
        option = _lookup(options, name)
        if option is None:
            raise UsageError(f"{_prefix(context)}unknown flag {arg.partition('=')[0]}")
        if option.takes_value:
            if eq:
                text = inline
            elif i < len(argv):
                text = argv[i]
                i += 1
            else:
                raise UsageError(f"{_prefix(context)}flag {arg} needs a value")
            convert = option.convert or str
            try:
                value = convert(text)
            except ValueError as err:
                raise UsageError(f"{_prefix(context)}invalid value {text!r} for {arg.partition('=')[0]}: {err}") from None
        else:
            try:
                value = parse_bool(inline) if eq else True
            except ValueError as err:
                raise UsageError(f"{_prefix(context)}{arg}: {err}") from None
        if option.repeat:
            values[option.dest].append(value)
        else:
            values[option.dest] = value
    return values, positionals


def parse_command(command: Command, argv: list[str]) -> Parsed:
    values, positionals = parse_options(command.options, argv, stop_at_positional=command.rest is not None,
                                        context=command.name)
    parsed = Parsed(options=values)
    needed = len(command.positionals)
    if command.rest is not None:
        head, parsed.rest = positionals[:needed], positionals[needed:]
        if parsed.rest[:1] == ["--"]:  # `ps ID -- -o pid,args`: the separator is not an argument
            parsed.rest = parsed.rest[1:]
        positionals = head
    if len(positionals) < needed:
        missing = command.positionals[len(positionals)]
        raise UsageError(f"{command.name}: missing {missing.upper()} (usage: rootless {command.usage()})")
    if len(positionals) > needed + len(command.optional):
        extra = positionals[needed + len(command.optional)]
        raise UsageError(f"{command.name}: unexpected argument {extra!r} (usage: rootless {command.usage()})")
    names = command.positionals + command.optional
    for name, value in zip(names, positionals):
        parsed.args[name] = value
    for name in names[len(positionals):]:
        parsed.args[name] = None
    return parsed


def help_text(command: Command) -> str:
    lines = [f"usage: rootless {command.usage()}", "", command.summary]
    if command.options:
        lines.append("")
        lines.append("options:")
        width = max(len(o.display()) for o in command.options) + (8 if any(o.takes_value for o in command.options) else 0)
        for option in command.options:
            left = option.display() + (" VALUE" if option.takes_value else "")
            lines.append(f"  {left:<{width}}  {option.help}")
    return "\n".join(lines)
