"""config.json, state and features validation against the OCI runtime-spec schemas: the spec's
own examples, hand-made violations, $ref resolution in the bundle builder, the keywords the
validator must know, the bundles being up to date, and the pattern matcher against `re`."""

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rootless import jsonlite
from rootless.errors import ConfigError
from rootless.oci.schema import build_bundle, check_config, validate_config, validate_features, validate_state
from rootless.oci.schema.validator import IGNORED, KEYWORDS, Unsupported, _Pattern, _pattern, format_path, validate

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "rootless" / "oci" / "schema"
# The spec's own example documents (schema/test of opencontainers/runtime-spec, Apache-2.0).
SPEC_TESTS = Path(__file__).resolve().parent / "oci-schema-examples"
VALIDATORS = {"config": validate_config, "state": validate_state, "features": validate_features}


def examples(kind: str, verdict: str) -> list:
    folder = SPEC_TESTS / kind / verdict
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def example_params(verdict: str) -> list:
    params = [pytest.param(kind, path, id=f"{kind}/{path.name}")
              for kind in VALIDATORS for path in examples(kind, verdict)]
    return params or [pytest.param(None, None, marks=pytest.mark.skip(reason=f"no spec examples in {SPEC_TESTS}"))]


MINIMAL = {
    "ociVersion": "1.2.0",
    "root": {"path": "rootfs", "readonly": True},
    "process": {
        "cwd": "/",
        "args": ["sh"],
        "env": ["PATH=/usr/bin:/bin"],
        "user": {"uid": 0, "gid": 0},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}],
    },
    "annotations": {"org.example.key": "value"},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}]},
}


def config(**changes) -> dict:
    """MINIMAL with changes given as dotted paths: config(**{"process.user.uid": -1}); None deletes."""
    doc = copy.deepcopy(MINIMAL)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if value is None:
            del node[last]
        else:
            node[last] = value
    return doc


# --- the spec's examples ---------------------------------------------------------------------

@pytest.mark.parametrize("kind,path", example_params("good"))
def test_spec_good_examples_are_valid(kind, path):
    assert VALIDATORS[kind](json.loads(path.read_text())) == []


@pytest.mark.parametrize("kind,path", example_params("bad"))
def test_spec_bad_examples_are_refused(kind, path):
    text = path.read_text()
    if path.name == "invalid-json.json":  # for the loader, not the validator
        with pytest.raises(ValueError):
            json.loads(text)
        with pytest.raises(ValueError):
            jsonlite.loads(text)
        return
    errors = VALIDATORS[kind](json.loads(text))
    assert errors
    assert all(e.startswith(f"{'config.json' if kind == 'config' else kind}: ") for e in errors)


def test_spec_bad_examples_name_the_field():
    cases = {
        "linux-hugepage.json": 'config.json: linux.resources.hugepageLimits[0].pageSize: "64kB" does not match '
                               "the pattern ^[1-9][0-9]*[KMG]B$",
        "linux-netdevice.json": "config.json: linux.netDevices.eth0.name: 23 is not of type string",
        "linux-rdma.json": 'config.json: linux.resources.rdma.mlx5_1.hcaHandles: "not a uint32" is not of type integer',
    }
    if not examples("config", "bad"):
        pytest.skip(f"no spec examples in {SPEC_TESTS}")
    for name, expected in cases.items():
        assert validate_config(json.loads((SPEC_TESTS / "config" / "bad" / name).read_text())) == [expected]
    missing = json.loads((SPEC_TESTS / "features" / "bad" / "missing-ociVersionMax.json").read_text())
    assert validate_features(missing) == ["features: ociVersionMax: is required"]


# --- hand-made violations ------------------------------------------------------------------

def test_minimal_config_is_valid():
    assert validate_config(MINIMAL) == []


@pytest.mark.parametrize("changes,expected", [
    ({"process.args": 5}, "config.json: process.args: 5 is not of type array"),
    ({"process.args": ["sh", 1]}, "config.json: process.args[1]: 1 is not of type string"),
    ({"process.user.uid": True}, "config.json: process.user.uid: true is not of type integer"),
    ({"process.user.uid": 1.0}, "config.json: process.user.uid: 1.0 is not of type integer"),
    ({"process.user.uid": "0"}, 'config.json: process.user.uid: "0" is not of type integer'),
    ({"process.user.uid": -1}, "config.json: process.user.uid: -1 is less than the minimum 0"),
    ({"process.user.gid": 2**32}, "config.json: process.user.gid: 4294967296 is greater than the maximum 4294967295"),
    ({"process.terminal": 1}, "config.json: process.terminal: 1 is not of type boolean"),
    ({"ociVersion": None}, "config.json: ociVersion: is required"),
    ({"root.path": None}, "config.json: root.path: is required"),
    ({"linux.namespaces": [{"type": "pidd"}]},
     'config.json: linux.namespaces[0].type: "pidd" is not one of "mount", "pid", "network", "uts", "ipc", '
     '"user", "cgroup", "time"'),
    ({"linux.namespaces": [{"path": "/proc/1/ns/pid"}]}, "config.json: linux.namespaces[0].type: is required"),
    ({"process.rlimits": [{"type": "NOFILE", "soft": 1, "hard": 1}]},
     'config.json: process.rlimits[0].type: "NOFILE" does not match the pattern ^RLIMIT_[A-Z]+$'),
    # ECMAScript's $ is the end of the string: Python's re.search would accept this one
    ({"process.rlimits": [{"type": "RLIMIT_NOFILE\n", "soft": 1, "hard": 1}]},
     'config.json: process.rlimits[0].type: "RLIMIT_NOFILE\\n" does not match the pattern ^RLIMIT_[A-Z]+$'),
    ({"annotations": {"org.example.key": 1}}, 'config.json: annotations["org.example.key"]: 1 is not of type string'),
    ({"linux.sysctl": {"net.ipv4.ip_forward": True}},
     'config.json: linux.sysctl["net.ipv4.ip_forward"]: true is not of type string'),
    ({"linux.seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}},
     "config.json: linux.seccomp.syscalls[0].names: is required"),
    ({"linux.resources": {"blockIO": {"weightDevice": [{"major": "8", "minor": 0, "weight": 1001}]}}},
     'config.json: linux.resources.blockIO.weightDevice[0].major: "8" is not of type integer'),
    ({"linux.netDevices": {"eth0": {"name": []}}}, "config.json: linux.netDevices.eth0.name: [] is not of type string"),
    ({"windows": "yes"}, 'config.json: windows: "yes" is not of type object'),
])
def test_violation_is_named_by_path(changes, expected):
    assert validate_config(config(**changes)) == [expected]


def test_allof_reports_each_branch():
    doc = config(**{"linux.resources": {"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 70000}]}}})
    assert validate_config(doc) == [
        "config.json: linux.resources.blockIO.weightDevice[0].weight: 70000 is greater than the maximum 65535"]
    doc = config(**{"linux.resources": {"blockIO": {"weightDevice": [{"weight": 10}]}}})
    assert validate_config(doc) == ["config.json: linux.resources.blockIO.weightDevice[0].major: is required",
                                    "config.json: linux.resources.blockIO.weightDevice[0].minor: is required"]


def test_a_document_that_is_not_an_object():
    assert validate_config([]) == ["config.json: [] is not of type object"]
    assert validate_config(None) == ["config.json: null is not of type object"]
    assert validate_state("x") == ['state: "x" is not of type object']


def test_unknown_properties_and_other_platforms_are_allowed():
    assert validate_config(config(**{"x-vendor": {"anything": 1}, "windows": {"layerFolders": []},
                                     "process.x-extra": 1})) == []


def test_long_values_are_shortened_and_nan_rendered():
    errors = validate_config(config(**{"hostname": ["x" * 200]}))
    assert len(errors) == 1 and errors[0].endswith("... is not of type string")
    assert validate_config(config(**{"process.user.uid": float("nan")})) == [
        "config.json: process.user.uid: nan is not of type integer"]


def test_every_error_is_listed_in_document_order():
    doc = config(**{"ociVersion": None, "process.user.uid": -1, "process.args": "sh"})
    assert validate_config(doc) == [
        "config.json: process.args: \"sh\" is not of type array",
        "config.json: process.user.uid: -1 is less than the minimum 0",
        "config.json: ociVersion: is required",
    ]


def test_check_config_raises_one_line_with_the_count():
    assert check_config(MINIMAL) is None
    with pytest.raises(ConfigError) as raised:
        check_config(config(**{"ociVersion": None, "process.user.uid": -1, "process.args": "sh"}))
    assert str(raised.value) == 'config.json: process.args: "sh" is not of type array (and 2 more)'
    with pytest.raises(ConfigError) as raised:
        check_config(config(**{"process.user.uid": -1}))
    assert str(raised.value) == "config.json: process.user.uid: -1 is less than the minimum 0"


def test_state_and_features_documents():
    state = {"ociVersion": "1.2.0", "id": "c1", "status": "running", "pid": 42, "bundle": "/b",
             "annotations": {"a": "b"}}
    assert validate_state(state) == []
    assert validate_state({**state, "status": "paused", "pid": -1}) == [
        'state: status: "paused" is not one of "creating", "created", "running", "stopped"',
        "state: pid: -1 is less than the minimum 0"]
    features = {"ociVersionMin": "1.0.0", "ociVersionMax": "1.2.0",
                "linux": {"capabilities": ["CAP_SYS_ADMIN", "cap_chown"]}}
    assert validate_features(features) == [
        'features: linux.capabilities[1]: "cap_chown" does not match the pattern ^CAP_[A-Z_]+$']


def test_format_path():
    assert format_path(()) == ""
    assert format_path(("process", "rlimits", 0, "type")) == "process.rlimits[0].type"
    assert format_path(("annotations", "a.b", "x_1")) == 'annotations["a.b"].x_1'
    assert format_path(("m", "", "1st", "é")) == 'm[""]["1st"]["\\u00e9"]'


# --- draft-04 keywords the spec schemas do not use today -------------------------------------

def test_type_lists_one_of_and_list_items():
    schema = {"type": ["integer", "null"]}
    assert validate(schema, None) == [] and validate(schema, 3) == []
    assert validate(schema, False) == [((), "false is not of type integer or null")]
    assert validate({"type": "number"}, 1) == [] and validate({"type": "number"}, True) != []
    one_of = {"oneOf": [{"type": "integer"}, {"minimum": 0}]}
    assert validate(one_of, -1) == [] and validate(one_of, "x") == []
    assert validate(one_of, 1) == [((), "1 matches 2 of the oneOf alternatives, not exactly one")]
    items = {"items": [{"type": "string"}, {"type": "integer"}]}
    assert validate(items, ["a", 1, None]) == []
    assert validate(items, [1]) == [((0,), "1 is not of type string")]
    closed = {"properties": {"a": {}}, "patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False}
    assert validate(closed, {"a": 1, "x-b": "c", "d": 1}) == [(("d",), "is not allowed (no such property)")]
    assert validate({"enum": [1, "a"]}, True) == [((), 'true is not one of 1, "a"')]
    assert validate({"enum": [1]}, 1.0) == []


def test_any_of_reports_the_closest_alternative():
    schema = {"anyOf": [{"type": "string"}, {"type": "object", "required": ["a", "b"], "properties": {"a": {}}}]}
    assert validate(schema, {"a": 1}) == [(("b",), "is required")]
    assert validate(schema, "s") == []


def test_a_schema_with_a_ref_left_in_is_refused():
    with pytest.raises(ValueError, match="unresolved"):
        validate({"$ref": "defs.json#/definitions/uint32"}, 1)


# --- the bundle builder: $ref resolution, keywords, freshness --------------------------------

def test_resolve_relative_files_and_json_pointers():
    docs = build_bundle.load_sources(str(SCHEMA_DIR))
    name, fragment, target = build_bundle.resolve("defs.json#/definitions/uint32", "config-linux.json", docs)
    assert (name, fragment, target) == ("defs.json", "/definitions/uint32", docs["defs.json"]["definitions"]["uint32"])
    name, _, target = build_bundle.resolve("#/definitions/GID", "defs.json", docs)
    assert name == "defs.json" and target == {"$ref": "#/definitions/uint32"}
    # a local reference is read in the file that holds it, not in the file that referred to it
    uid = build_bundle.inline({"$ref": "defs.json#/definitions/UID"}, "config-schema.json", docs)
    assert uid == {"type": "integer", "minimum": 0, "maximum": 4294967295}
    assert build_bundle.resolve("config-windows.json#/windows", "config-schema.json", docs)[2] == {"type": "object"}
    with pytest.raises(build_bundle.SchemaBuildError, match="no schema file nowhere.json"):
        build_bundle.resolve("nowhere.json#/x", "defs.json", docs)
    with pytest.raises(build_bundle.SchemaBuildError, match="has no /definitions/nothing"):
        build_bundle.resolve("#/definitions/nothing", "defs.json", docs)
    with pytest.raises(build_bundle.SchemaBuildError, match="only relative"):
        build_bundle.resolve("http://example.com/s.json#/a", "defs.json", docs)


def test_resolve_escaped_pointer_tokens_and_array_indexes():
    docs = {"a.json": {"definitions": {"x/y": {"type": "string"}, "m~n": {"allOf": [{"type": "integer"}]}},
                       "root": {"properties": {"s": {"$ref": "#/definitions/x~1y"},
                                               "i": {"$ref": "#/definitions/m~0n/allOf/0"}}}}}
    assert build_bundle.inline(docs["a.json"]["root"], "a.json", docs) == {
        "properties": {"s": {"type": "string"}, "i": {"type": "integer"}}}


def test_builder_refuses_cycles_unknown_keywords_and_conflicting_ref_siblings():
    cycle = {"a.json": {"definitions": {"x": {"items": {"$ref": "#/definitions/x"}}}}}
    with pytest.raises(build_bundle.SchemaBuildError, match="cycle"):
        build_bundle.inline({"$ref": "#/definitions/x"}, "a.json", cycle)
    for keyword in ("exclusiveMinimum", "format", "not", "additionalItems", "uniqueItems"):
        with pytest.raises(build_bundle.SchemaBuildError, match=f"keyword '{keyword}'"):
            build_bundle.inline({"properties": {"p": {keyword: True}}}, "a.json", {"a.json": {}})
    docs = {"a.json": {"definitions": {"o": {"type": "object"}}}}
    assert build_bundle.inline({"$ref": "#/definitions/o", "type": "object", "description": "d"}, "a.json", docs) == {
        "type": "object"}
    with pytest.raises(build_bundle.SchemaBuildError, match="beside \\$ref"):
        build_bundle.inline({"$ref": "#/definitions/o", "type": "string"}, "a.json", docs)


def test_every_keyword_in_the_schema_files_is_implemented_or_ignored():
    found = build_bundle.keywords_in_sources(str(SCHEMA_DIR))
    unknown = {k: where[:3] for k, where in found.items() if k not in KEYWORDS | IGNORED}
    assert unknown == {}, f"keywords the validator does not know: {unknown}"
    # the scan really walks the schemas: these are in use today
    assert {"type", "$ref", "properties", "required", "items", "enum", "pattern", "minimum", "maximum",
            "allOf", "anyOf", "additionalProperties", "patternProperties", "minItems"} <= set(found)
    assert "linux" not in found  # config-linux.json's and features-linux.json's holders of $ref targets


def test_bundles_are_up_to_date():
    assert build_bundle.stale(str(SCHEMA_DIR)) == [], "run: python3 -m rootless.oci.schema.build_bundle"


def test_bundles_hold_no_refs_and_only_implemented_keywords():
    for kind in build_bundle.ROOTS:
        text = (SCHEMA_DIR / build_bundle.bundle_name(kind)).read_text()
        assert '"$ref"' not in text
        schema = json.loads(text)["schema"]
        stack = [schema]
        while stack:
            node = stack.pop()
            assert set(node) <= KEYWORDS - {"$ref"}, set(node)
            for key in ("properties", "patternProperties"):
                stack.extend(node.get(key, {}).values())
            for key in ("allOf", "anyOf", "oneOf"):
                stack.extend(node.get(key, []))
            for key in ("items", "additionalProperties"):
                if isinstance(node.get(key), dict):
                    stack.append(node[key])


# --- patterns without `re` ---------------------------------------------------------------------

def source_patterns() -> set:
    patterns = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    patterns.add(value)
                elif key == "patternProperties":
                    patterns.update(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(build_bundle.load_sources(str(SCHEMA_DIR)))
    return patterns


SAMPLES = ["", "a", "\n", "\r", "RLIMIT_NOFILE", "RLIMIT_NOFILE\n", "RLIMIT_", "rlimit_x", "CAP_SYS_ADMIN",
           "CAP_", "CAP_sys", "c", "b", "cb", "x", "64kB", "2MB", "10GB", "0MB", "1KB\n", "MB:0=1,1=2", "MB:\nx",
           "MB:", "0-3, 5", "0-3,a", " ", "-", "\u2028", "é", "abc\ndef", "\n\n", "1", "12345678901234567890GB"]


def ecmascript_re(pattern: str):
    """re with ECMAScript's $ and . (the patterns here escape nothing that matters)."""
    pattern = pattern.replace("$", r"\Z")
    return re.compile(re.sub(r"(?<![\\\[])\.", r"[^\\n\\r\\u2028\\u2029]", pattern))


def test_every_schema_pattern_is_in_the_subset_matched_without_re():
    patterns = source_patterns()
    assert len(patterns) >= 7
    for pattern in patterns:
        matcher = _Pattern(pattern)  # raises Unsupported otherwise
        reference = ecmascript_re(pattern)
        for sample in SAMPLES:
            assert matcher.search(sample) == bool(reference.search(sample)), (pattern, sample)


@pytest.mark.parametrize("pattern", ["ab*c", "^a?b{2}c{1,}d{0,2}$", "[^a-c\\]]+x", "^[.\\n\\-]$", "x.y", "^$", "",
                                     "a{2,3}a", "^[0-9]*[0-9]$"])
def test_subset_matches_like_re(pattern):
    matcher = _Pattern(pattern)
    reference = ecmascript_re(pattern)
    for sample in SAMPLES + ["abbbc", "zabbccd", "xx", "x\ny", "xzy", "]x", "-", ".", "aa", "aaa", "aaaa", "9"]:
        assert matcher.search(sample) == bool(reference.search(sample)), (pattern, sample)


@pytest.mark.parametrize("pattern", ["^(a|b)$", "\\d+", "a*?", "a|b", "\\w", "x{,2}"])
def test_patterns_outside_the_subset_fall_back_to_re(pattern):
    with pytest.raises(Unsupported):
        _Pattern(pattern)
    matcher = _pattern(pattern)
    assert type(matcher).__name__ == "_RegexPattern"


def test_fallback_keeps_ecmascript_end_anchor():
    matcher = _pattern("^(RLIMIT|X)_[A-Z]+$")
    assert matcher.search("RLIMIT_NOFILE") and not matcher.search("RLIMIT_NOFILE\n")


# --- the cost on every `create` ----------------------------------------------------------------

def test_validation_imports_neither_re_nor_json():
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from rootless import jsonlite\n"
        "from rootless.oci.schema import validate_config\n"
        f"doc = jsonlite.loads({json.dumps(MINIMAL)!r})\n"
        "assert validate_config(doc) == [], validate_config(doc)\n"
        "print(','.join(sorted(m for m in ('re', 'json', 'jsonschema', 'dataclasses', 'enum', 'functools') "
        "if m in sys.modules)))\n"
    )
    # -S: this machine's site-packages .pth files import re before any project code runs
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# --- where runc and crun are more tolerant than the published schema ---------------------------

@pytest.mark.parametrize("changes", [
    {"linux.rootfsPropagation": value} for value in ("rprivate", "rslave", "rshared", "runbindable", "private", "")
] + [
    {"linux.devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 8630}]},
    {"linux.seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}},
], ids=lambda changes: jsonlite.dumps(changes)[:60])
def test_relaxations_accept_what_runc_and_crun_run(changes):
    assert validate_config(config(**changes)) == []


def test_relaxations_keep_the_rest_of_the_rule():
    assert validate_config(config(**{"linux.rootfsPropagation": "rsharedd"}))[0].startswith(
        'config.json: linux.rootfsPropagation: "rsharedd" is not one of "private"')
    assert validate_config(config(**{"linux.devices": [{"path": "/dev/x", "type": "c", "fileMode": 2**32}]})) == [
        "config.json: linux.devices[0].fileMode: 4294967296 is greater than the maximum 4294967295"]


def test_a_relaxation_of_a_place_the_schema_lost_fails_the_build(monkeypatch):
    monkeypatch.setattr(build_bundle, "RELAXATIONS", (("defs.json", "/definitions/NoSuchThing/enum", [], "why"),))
    with pytest.raises(build_bundle.SchemaBuildError, match="NoSuchThing"):
        build_bundle.build(str(SCHEMA_DIR))


def test_normalize_reads_config_as_runc_does():
    from rootless.oci.config import normalize
    doc = config(**{"annotations": {"a": None, "b": "c"}})
    doc["linux"]["timeOffsets"] = doc["process"]["rlimits"] = None  # config() would delete them
    doc["process"]["args"] = ["sh", None]  # nulls in arrays stay: validation names them
    doc["mounts"] = [{"destination": "mnt/x", "type": "tmpfs"}, {"destination": "/ok", "type": "tmpfs"}]
    doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a.sock", "listenerMetadata": "m",
                               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    doc["linux"]["personality"] = {"domain": "LINUX", "flags": ["A", "B"]}
    warnings, notes = normalize(doc)
    assert "timeOffsets" not in doc["linux"] and "rlimits" not in doc["process"] and doc["annotations"] == {"b": "c"}
    assert doc["process"]["args"] == ["sh", None]
    assert [m["destination"] for m in doc["mounts"]] == ["/mnt/x", "/ok"]
    assert "listenerPath" not in doc["linux"]["seccomp"] and "listenerMetadata" not in doc["linux"]["seccomp"]
    assert warnings == [
        "mount destination mnt/x is not absolute. Support for non-absolute mount destinations will be removed "
        "in a future release.",
        "ignoring unsupported personality flags: [A B] because personality flag has not supported at this time"]
    assert notes == ["linux.seccomp.listenerPath /a.sock is not used: no rule has SCMP_ACT_NOTIFY"]
    notify = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a.sock",
              "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    doc = config(**{"linux.seccomp": notify})
    assert normalize(doc) == ([], []) and doc["linux"]["seccomp"]["listenerPath"] == "/a.sock"
    assert normalize(None) == ([], []) and normalize([None]) == ([], [])
