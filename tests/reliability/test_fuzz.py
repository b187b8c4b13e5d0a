"""A fuzzer of `create`: configs drawn from the OCI config schema (rootless/oci/schema's bundle
of config-schema.json and the files it refers to), merged onto a valid busybox config, with
mutations toward the edges: wrong types, huge numbers, long strings, unicode, lone surrogates,
NUL, depth. For each: exit status 0 or 1, on failure exactly one stderr line, never an
internal error, and nothing left (state directory, processes).

`create` runs as the test user with a state root per test, through a small fork server (a
process of the test user that has imported rootless.cli and forks one child per call, which
runs cli.main as the command would), so thousands of calls fit in CI's time: RELIABILITY_FUZZ
configs in total."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is missing: pip install .[test]")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from common import error_lines, knob  # noqa: E402
from helpers import leaks  # noqa: E402
from helpers.bundle import make_config  # noqa: E402

EXAMPLES = knob("RELIABILITY_FUZZ", 1000)
SCHEMA = json.loads((Path(__file__).parents[2] / "rootless" / "oci" / "schema" / "config.bundle.json")
                    .read_text())["schema"]

_SERVER = r'''
import json, os, sys
from rootless import cli
reply = os.fdopen(os.dup(1), "w", buffering=1)
os.set_inheritable(reply.fileno(), False)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        reply.close()
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["out"]), (2, request["err"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        code = 1
        try:
            code = cli.main(request["argv"])
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    reply.write(json.dumps(os.waitstatus_to_exitcode(status)) + "\n")
'''

# Edges of each JSON type, mixed into what the schema asks for.
EDGE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.sampled_from(["", "\0", "a\0b", "/", "//", "/..", "../../..", "/proc", "/dev", "x" * 5000, "é", "٣",
                     "\u202e", "\U0001F600", "-1", "NaN", "=", "PATH", "/\udc80"]),
)
EDGE_NUMBER = st.one_of(
    st.integers(-2**70, 2**70),
    st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, -2**63 - 1, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False), st.just(1e308),
)
ANY_SCALAR = st.one_of(st.none(), st.booleans(), EDGE_NUMBER, EDGE_TEXT)


def deep(depth: int):
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


WRONG = st.one_of(ANY_SCALAR, st.lists(ANY_SCALAR, max_size=3), st.dictionaries(EDGE_TEXT, ANY_SCALAR, max_size=3),
                  st.integers(50, 900).map(deep))


def from_schema(schema: dict, depth: int = 0):
    """A strategy for values of `schema` (the bundled schema has no $ref), with a wrong value
    now and then."""
    kind = schema.get("type")
    if "enum" in schema:
        right = st.sampled_from(schema["enum"])
    elif "anyOf" in schema or "allOf" in schema:
        parts = schema.get("anyOf") or schema.get("allOf")
        right = st.one_of(*[from_schema(part, depth) for part in parts])
    elif kind == "object":
        properties = schema.get("properties", {})
        required = {k: from_schema(properties[k], depth + 1) for k in schema.get("required", []) if k in properties}
        optional = {k: from_schema(v, depth + 1) for k, v in properties.items() if k not in required}
        if depth > 3:
            optional = {}
        right = st.fixed_dictionaries(required, optional=optional)
        if not properties:
            right = st.dictionaries(EDGE_TEXT, EDGE_TEXT, max_size=3)
    elif kind == "array":
        right = st.lists(from_schema(schema.get("items", {}), depth + 1), max_size=3)
    elif kind == "string":
        right = EDGE_TEXT
    elif kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        right = st.one_of(st.integers(low, high), EDGE_NUMBER.filter(lambda n: isinstance(n, int)))
    elif kind == "boolean":
        right = st.booleans()
    else:
        right = ANY_SCALAR
    return st.one_of(right, WRONG) if depth else right


# Top-level parts of the config drawn from the schema and merged onto a working config.
PARTS = ("process", "root", "hostname", "domainname", "mounts", "annotations", "linux", "hooks", "ociVersion")
_PART_STRATEGIES = {key: from_schema(SCHEMA["properties"][key], 1) for key in PARTS}
# One or two parts at a time, so that many configs get past the first check and reach the
# deeper ones (planning, the namespace stage, the init).
OVERRIDES = st.lists(st.sampled_from(PARTS), min_size=1, max_size=2, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({key: _PART_STRATEGIES[key] for key in keys}))


class ForkServer:
    def __init__(self, rt):
        self.rt = rt
        self.proc = subprocess.Popen(rt.python_command(_SERVER), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=rt._env(None), cwd=rt.work_dir)
        self.out, self.err = rt.work_dir / "out", rt.work_dir / "err"

    def call(self, *argv: str) -> subprocess.CompletedProcess:
        request = {"argv": ["--root", str(self.rt.state_root), *argv], "out": str(self.out), "err": str(self.err)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        code = json.loads(self.proc.stdout.readline())
        return subprocess.CompletedProcess(argv, code, self.out.read_text(errors="replace"),
                                           self.err.read_text(errors="replace"))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _merge(base, overrides):
    """deep_merge without copying (values may nest 900 deep)."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def test_fuzz_create(rootless_runtime):
    rt = rootless_runtime
    server = ForkServer(rt)
    bundle = rt.work_dir / "fuzz-bundle"
    bundle.mkdir()
    os.chown(bundle, rt.user.uid, rt.user.gid) if os.geteuid() == 0 else None
    counts = {"created": 0, "refused": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(OVERRIDES)
    def one(overrides):
        base = make_config(["true"], rootless=True)
        base["root"]["path"] = str(rt.rootfs)
        config = _merge(base, overrides)
        text = json.dumps(config, allow_nan=True)  # lone surrogates become \udXXX escapes
        (bundle / "config.json").write_text(text)
        os.chmod(bundle / "config.json", 0o644)
        container_id = f"fuzz{counts['created'] + counts['refused']}"
        result = server.call("create", "--bundle", str(bundle), container_id)
        assert result.returncode in (0, 1), (result.returncode, result.stderr, text[:2000])
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr, (result.stderr, text[:2000])
        if result.returncode == 0:
            counts["created"] += 1
            deleted = server.call("delete", "-f", container_id)
            assert deleted.returncode == 0, deleted.stderr
        else:
            counts["refused"] += 1
            assert len(error_lines(result.stderr)) == 1, (result.stderr, text[:2000])
        left = list(rt.state_root.iterdir())
        assert not left, f"left behind: {left} for {text[:2000]}"
        assert not leaks.processes_mentioning(str(rt.state_root), container_id), text[:2000]

    try:
        one()
    finally:
        server.close()
    print(f"fuzz: {counts['created'] + counts['refused']} configs, {counts['created']} created, "
          f"{counts['refused']} refused")
