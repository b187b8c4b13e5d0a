"""A JSON Schema draft-04 validator for the subset of keywords the OCI runtime-spec schemas use.

It runs on every `create`, so it imports nothing beyond the standard library's always-loaded
modules: no `jsonschema` (about 100 ms) and no `re` (about 5 ms with the `enum` and
`functools` it pulls in). The schemas' `pattern`s are simple anchored sequences of literals
and character classes, which `_Pattern` matches itself; a pattern outside that subset falls
back to `re`, translated to ECMAScript's meaning of `$` and `.`.

Schemas reach this module with every `$ref` already inlined (see build_bundle.py), so the
validator never resolves references. Keywords:

  KEYWORDS  implemented here; build_bundle.py refuses any keyword in neither set
  IGNORED   draft-04 annotations and containers, dropped from the bundles

Errors are (path, message) pairs; the path is a tuple of object keys and array indices.
"""

from rootless import jsonlite

KEYWORDS = frozenset((
    "type", "enum", "properties", "required", "additionalProperties", "patternProperties",
    "items", "minItems", "pattern", "minimum", "maximum", "allOf", "anyOf", "oneOf", "$ref",
))
IGNORED = frozenset(("$schema", "description", "title", "default", "definitions"))

_TYPE_OF = {dict: "object", list: "array", str: "string", int: "integer", float: "number",
            bool: "boolean", type(None): "null"}


def _type_name(value: object) -> str:
    name = _TYPE_OF.get(type(value))
    if name is not None:
        return name
    for cls, name in _TYPE_OF.items():  # subclasses, e.g. an IntEnum (bool has none)
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _type_matches(actual: str, expected: str) -> bool:
    # draft-04: "integer" is a number without a fraction or exponent, so 1.0 (a float once
    # parsed) is not one, and neither is true: bool is a separate type.
    return actual == expected or (expected == "number" and actual == "integer")


def _has_type(value: object, expected) -> bool:
    actual = _type_name(value)
    if isinstance(expected, str):
        return _type_matches(actual, expected)
    return any(_type_matches(actual, e) for e in expected)


def render(value: object, limit: int = 60) -> str:
    """A value as it would appear in JSON, shortened for an error message."""
    try:
        text = jsonlite.dumps(value)
    except (TypeError, ValueError):  # NaN, Infinity, non-JSON objects
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _json_equal(a: object, b: object) -> bool:
    """Equality in JSON's data model: true is not 1, 1 is 1.0, containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_json_equal(v, b[k]) for k, v in a.items()))
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_json_equal, a, b))
    return a == b and not isinstance(b, (dict, list))


def validate(schema: dict, value: object, path: tuple = (), errors: list | None = None) -> list:
    """Append to `errors` (and return it) one (path, message) pair per violation."""
    if errors is None:
        errors = []
    expected = schema.get("type")
    # the common case first: the value's exact type is the one named
    if expected is not None and _TYPE_OF.get(type(value)) != expected and not _has_type(value, expected):
        wanted = expected if isinstance(expected, str) else " or ".join(expected)
        errors.append((path, f"{render(value)} is not of type {wanted}"))
        return errors  # the other keywords would only restate the type error
    for keyword, argument in schema.items():
        check = _CHECKS.get(keyword)
        if check is not None:
            check(argument, schema, value, path, errors)
    return errors


def _properties(properties: dict, schema: dict, value, path: tuple, errors: list) -> None:
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        sub = properties.get(key)
        if sub is not None:
            validate(sub, item, path + (key,), errors)


def _additional_properties(additional, schema: dict, value, path: tuple, errors: list) -> None:
    if not isinstance(value, dict) or additional is True:
        return
    properties = schema.get("properties", {})
    patterns = [_pattern(p) for p in schema.get("patternProperties", ())]
    for key, item in value.items():
        if key in properties or any(p.search(key) for p in patterns):
            continue
        if additional is False:
            errors.append((path + (key,), "is not allowed (no such property)"))
        else:
            validate(additional, item, path + (key,), errors)


def _pattern_properties(patterns: dict, schema: dict, value, path: tuple, errors: list) -> None:
    if not isinstance(value, dict):
        return
    for source, sub in patterns.items():
        compiled = _pattern(source)
        for key, item in value.items():
            if compiled.search(key):
                validate(sub, item, path + (key,), errors)


def _required(names: list, schema: dict, value, path: tuple, errors: list) -> None:
    if isinstance(value, dict):
        for name in names:
            if name not in value:
                errors.append((path + (name,), "is required"))


def _items(items, schema: dict, value, path: tuple, errors: list) -> None:
    if not isinstance(value, list):
        return
    if isinstance(items, dict):
        for index, item in enumerate(value):
            validate(items, item, path + (index,), errors)
    else:  # the list form: one schema per position, later items unchecked (no additionalItems)
        for index, (sub, item) in enumerate(zip(items, value)):
            validate(sub, item, path + (index,), errors)


def _min_items(minimum: int, schema: dict, value, path: tuple, errors: list) -> None:
    if isinstance(value, list) and len(value) < minimum:
        errors.append((path, f"{render(value)} has fewer than {minimum} item{'s' * (minimum != 1)}"))


def _enum(members: list, schema: dict, value, path: tuple, errors: list) -> None:
    # A string equals only a string: one hash lookup, not a comparison per member (seccomp's
    # actions and operators: about a third of the validation of a 300-rule profile).
    found = value in members if isinstance(value, str) else any(_json_equal(value, m) for m in members)
    if not found:
        allowed = ", ".join(render(m, 30) for m in members)
        errors.append((path, f"{render(value)} is not one of {allowed}"))


def _pattern_check(source: str, schema: dict, value, path: tuple, errors: list) -> None:
    if isinstance(value, str) and not _pattern(source).search(value):
        errors.append((path, f"{render(value)} does not match the pattern {source}"))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _minimum(minimum, schema: dict, value, path: tuple, errors: list) -> None:
    # exclusiveMinimum/exclusiveMaximum are not in KEYWORDS: a schema using them fails the build
    if _is_number(value) and value < minimum:
        errors.append((path, f"{render(value)} is less than the minimum {minimum}"))


def _maximum(maximum, schema: dict, value, path: tuple, errors: list) -> None:
    if _is_number(value) and value > maximum:
        errors.append((path, f"{render(value)} is greater than the maximum {maximum}"))


def _all_of(subs: list, schema: dict, value, path: tuple, errors: list) -> None:
    for sub in subs:
        validate(sub, value, path, errors)


def _any_of(subs: list, schema: dict, value, path: tuple, errors: list) -> None:
    failures = []
    for sub in subs:
        found = validate(sub, value, path)
        if not found:
            return
        failures.append(found)
    errors.extend(_closest(subs, failures, value))


def _one_of(subs: list, schema: dict, value, path: tuple, errors: list) -> None:
    failures = []
    matched = 0
    for sub in subs:
        found = validate(sub, value, path)
        if found:
            failures.append(found)
        else:
            matched += 1
    if matched > 1:
        errors.append((path, f"{render(value)} matches {matched} of the oneOf alternatives, not exactly one"))
    elif matched == 0:
        errors.extend(_closest(subs, failures, value))


def _closest(subs: list, failures: list, value) -> list:
    """The errors of the alternative that came closest, which say most about what to fix: one
    of the right type, then the one with the fewest errors, then the first."""
    if len(failures) == 1:
        return failures[0]
    ranked = [(not _has_type(value, sub.get("type", _TYPE_OF.values())), len(found), i)
              for i, (sub, found) in enumerate(zip(subs, failures))]
    return failures[min(ranked)[2]]


def _unresolved_ref(ref: str, schema: dict, value, path: tuple, errors: list) -> None:
    raise ValueError(f"schema has an unresolved $ref {ref!r}: validate a bundle from build_bundle.py")


_CHECKS = {
    "properties": _properties, "additionalProperties": _additional_properties,
    "patternProperties": _pattern_properties, "required": _required, "items": _items,
    "minItems": _min_items, "enum": _enum, "pattern": _pattern_check, "minimum": _minimum,
    "maximum": _maximum, "allOf": _all_of, "anyOf": _any_of, "oneOf": _one_of,
    "$ref": _unresolved_ref,
}
assert KEYWORDS == set(_CHECKS) | {"type"}


def format_path(path: tuple) -> str:
    """process.rlimits[0].type; keys that are not plain names are quoted: annotations["a.b"]."""
    out = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part and part.replace("_", "a").isalnum() and part.isascii() and not part[0].isdigit():
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{render(part, 200)}]")
    return "".join(out)


# --- pattern: ECMAScript regular expressions, the simple subset, without `re` ---------------

_LINE_TERMINATORS = "\n\r\u2028\u2029"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}
_SPECIAL = set(".^$*+?()[]{}|\\/-")


class Unsupported(ValueError):
    """A pattern outside the subset _Pattern understands."""


class _CharSet:
    """One position of a pattern: a literal, `.`, or a bracket class."""

    __slots__ = ("chars", "ranges", "negated")

    def __init__(self, chars: str, ranges: tuple = (), negated: bool = False):
        self.chars = frozenset(chars)
        self.ranges = ranges
        self.negated = negated

    def __call__(self, ch: str) -> bool:
        hit = ch in self.chars or any(low <= ch <= high for low, high in self.ranges)
        return hit is not self.negated


class _Pattern:
    """A pattern made of literals, `.`, bracket classes and the quantifiers * + ? {n} {n,}
    {n,m}, optionally anchored by ^ and $: what the OCI schemas use. search() has JSON
    Schema's meaning: the pattern matches somewhere in the string unless anchored."""

    def __init__(self, source: str):
        self.source = source
        self.anchored_start = source.startswith("^")
        end = len(source)
        self.anchored_end = end > 0 and source[-1] == "$" and not _escaped(source, end - 1)
        body = source[int(self.anchored_start):end - int(self.anchored_end)]
        self.atoms = _parse(body)

    def search(self, text: str) -> bool:
        starts = (0,) if self.anchored_start else range(len(text) + 1)
        for start in starts:
            if self._match(0, text, start, set()):
                return True
        return False

    def _match(self, index: int, text: str, pos: int, failed: set) -> bool:
        if index == len(self.atoms):
            return not self.anchored_end or pos == len(text)
        if (index, pos) in failed:
            return False
        accepts, low, high = self.atoms[index]
        limit = len(text) - pos if high is None else min(high, len(text) - pos)
        count = 0
        while count < limit and accepts(text[pos + count]):
            count += 1
        while count >= low:  # greedy, backtracking one character at a time
            if self._match(index + 1, text, pos + count, failed):
                return True
            count -= 1
        failed.add((index, pos))
        return False


def _escaped(source: str, index: int) -> bool:
    backslashes = 0
    while index > 0 and source[index - 1] == "\\":
        backslashes += 1
        index -= 1
    return backslashes % 2 == 1


def _escape(body: str, i: int) -> str:
    """The character a backslash escape at body[i] stands for (body[i] is the backslash)."""
    if i + 1 >= len(body):
        raise Unsupported("trailing backslash")
    ch = body[i + 1]
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch in _SPECIAL:
        return ch
    raise Unsupported(f"escape \\{ch}")  # \d \w \s \b \u... and back-references


def _parse(body: str) -> list:
    atoms = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "[":
            accepts, i = _parse_class(body, i + 1)
        elif ch == ".":
            accepts, i = _CharSet(_LINE_TERMINATORS, negated=True), i + 1
        elif ch == "\\":
            accepts, i = _CharSet(_escape(body, i)), i + 2
        elif ch in "^$()|*+?{}]":
            raise Unsupported(f"{ch!r} at offset {i}")
        else:
            accepts, i = _CharSet(ch), i + 1
        low, high, i = _parse_quantifier(body, i)
        atoms.append((accepts, low, high))
    return atoms


def _parse_class(body: str, i: int) -> tuple:
    negated = body.startswith("^", i)
    i += negated
    chars, ranges = [], []
    first = True
    while True:
        if i >= len(body):
            raise Unsupported("unterminated [")
        ch = body[i]
        if ch == "]" and not first:
            return _CharSet("".join(chars), tuple(ranges), negated), i + 1
        if ch == "]" or ch == "[":
            raise Unsupported(f"{ch!r} in a class")  # ECMAScript's []: never matches
        if ch == "\\":
            ch, i = _escape(body, i), i + 2
        else:
            i += 1
        first = False
        if body.startswith("-", i) and i + 1 < len(body) and body[i + 1] != "]":
            high = body[i + 1]
            if high == "\\":
                high, i = _escape(body, i + 1), i + 3
            elif high == "[":
                raise Unsupported("'[' in a class")
            else:
                i += 2
            if high < ch:
                raise Unsupported(f"range {ch}-{high} out of order")
            ranges.append((ch, high))
        else:
            chars.append(ch)


def _parse_quantifier(body: str, i: int) -> tuple:
    if i >= len(body):
        return 1, 1, i
    ch = body[i]
    if ch == "*":
        low, high, i = 0, None, i + 1
    elif ch == "+":
        low, high, i = 1, None, i + 1
    elif ch == "?":
        low, high, i = 0, 1, i + 1
    elif ch == "{":
        close = body.find("}", i)
        inner = body[i + 1:close] if close > 0 else ""
        low_text, comma, high_text = inner.partition(",")
        if not low_text.isdigit() or not (high_text.isdigit() or high_text == ""):
            raise Unsupported(f"quantifier {{{inner}}}")
        low = int(low_text)
        high = low if not comma else (int(high_text) if high_text else None)
        if high is not None and high < low:
            raise Unsupported(f"quantifier {{{inner}}} out of order")
        i = close + 1
    else:
        return 1, 1, i
    if body.startswith("?", i) or (i < len(body) and body[i] in "*+{"):
        raise Unsupported("lazy or stacked quantifier")
    return low, high, i


class _RegexPattern:
    """The fallback for patterns outside _Pattern's subset: `re`, with ECMAScript's `$` (end of
    input only) and `.` (no line terminator) outside classes."""

    def __init__(self, source: str):
        import re
        translated, in_class, i = [], False, 0
        while i < len(source):
            ch = source[i]
            if ch == "\\":
                translated.append(source[i:i + 2])
                i += 2
                continue
            if in_class:
                in_class = ch != "]"
            elif ch == "[":
                in_class = True
            elif ch == "$":
                ch = r"\Z"
            elif ch == ".":
                ch = r"[^\n\r\u2028\u2029]"
            translated.append(ch)
            i += 1
        self.source = source
        self.search = re.compile("".join(translated)).search


_PATTERNS: dict = {}


def _pattern(source: str):
    compiled = _PATTERNS.get(source)
    if compiled is None:
        try:
            compiled = _Pattern(source)
        except Unsupported:
            compiled = _RegexPattern(source)
        _PATTERNS[source] = compiled
    return compiled
