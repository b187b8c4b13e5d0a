"""Build the schema bundles the runtime validates against: one JSON file per document kind
(config.bundle.json, state.bundle.json, features.bundle.json), each a single draft-04 schema
with every `$ref` inlined and the annotations dropped, so validation needs neither a
reference resolver nor the source files.

    python3 -m rootless.oci.schema.build_bundle           rewrite the bundles
    python3 -m rootless.oci.schema.build_bundle --check   exit 1 if a bundle is stale

Run it after changing any source schema; tests/unit/test_schema.py fails on a stale bundle.
The build refuses a keyword the validator neither implements nor deliberately ignores, a
keyword beside `$ref` that says more than the target (draft-04 ignores those: better to
know), a cycle of references and a reference to a file that is not here, except the
platforms below.

The source files are the runtime-spec's, unchanged; RELAXATIONS below patches them before
the bundles are made, where the published schema refuses what runc and crun both run
(docs/differences-from-runc.md, "Validation").

Build time only: the runtime never imports this module.
"""

import json
import os
import sys
from urllib.parse import unquote

from rootless.oci.schema.validator import IGNORED, KEYWORDS

HERE = os.path.dirname(os.path.abspath(__file__))
ROOTS = {"config": "config-schema.json", "state": "state-schema.json", "features": "features-schema.json"}

# config-schema.json refers to the sections of other platforms. Only the Linux schemas are
# copied from the runtime-spec; each of these sections is an object there, and a Linux
# runtime ignores it, so that is all the bundle checks of them.
NOT_SHIPPED = {name: {"type": "object"} for name in (
    "config-solaris.json", "config-windows.json", "config-vm.json", "config-zos.json",
    "config-freebsd.json")}

# Where the published schema is stricter than both runc and crun, follow them: validation
# may never refuse a config they run. (file, JSON pointer, new value, why). Nulls need no
# entry: rootless.oci.config drops them before validation, as Go's decoder reads them.
RELAXATIONS = (
    ("defs-linux.json", "/definitions/RootfsPropagation/enum",
     ["private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable", ""],
     "runc and crun take the recursive forms (podman sends rprivate) and treat \"\" as unset"),
    ("defs-linux.json", "/definitions/Device/properties/fileMode", {"$ref": "defs.json#/definitions/uint32"},
     "podman as root sends the file-type bits too (8630 = S_IFCHR|0666); runc uses the permission bits"),
    ("defs-linux.json", "/definitions/Syscall/properties/names", {"type": "array", "items": {"type": "string"}},
     "a rule with no names matches nothing; runc and crun accept it"),
)


def relax(docs: dict) -> dict:
    """`docs` with RELAXATIONS applied (in place); a pointer that no longer exists fails the
    build, so a new spec release cannot drop a relaxation silently."""
    for name, pointer, value, _why in RELAXATIONS:
        *parents, last = pointer[1:].split("/")
        node = docs[name]
        for token in parents:
            node = node.get(token) if isinstance(node, dict) else None
        if not isinstance(node, dict) or last not in node:
            raise SchemaBuildError(f"relaxation {name}#{pointer}: no such place in the schema")
        node[last] = value
    return docs


# Keywords whose value holds subschemas, and its shape.
_SCHEMA_MAPS = ("properties", "patternProperties")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


class SchemaBuildError(Exception):
    pass


def bundle_name(kind: str) -> str:
    return f"{kind}.bundle.json"


def load_sources(directory: str = HERE) -> dict:
    """The source schemas by file name (the bundles themselves excluded)."""
    docs = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json") and not name.endswith(".bundle.json"):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                docs[name] = json.load(f)
    return docs


def resolve(ref: str, base: str, docs: dict) -> tuple:
    """A `$ref` read relative to the file `base`: (file, fragment, target schema)."""
    file_part, _, fragment = ref.partition("#")
    if ":" in file_part or file_part.startswith("/"):
        raise SchemaBuildError(f"{base}: $ref {ref!r}: only relative file references are supported")
    name = os.path.normpath(os.path.join(os.path.dirname(base), file_part)) if file_part else base
    if name not in docs:
        if name in NOT_SHIPPED:
            return name, fragment, NOT_SHIPPED[name]
        raise SchemaBuildError(f"{base}: $ref {ref!r}: no schema file {name}")
    target = docs[name]
    if fragment:
        if not fragment.startswith("/"):
            raise SchemaBuildError(f"{base}: $ref {ref!r}: the fragment is not a JSON pointer")
        for token in fragment[1:].split("/"):
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            try:
                target = target[int(token)] if isinstance(target, list) else target[token]
            except (KeyError, IndexError, ValueError):
                raise SchemaBuildError(f"{base}: $ref {ref!r}: {name} has no {fragment}") from None
    return name, fragment, target


def inline(schema, base: str, docs: dict, where: str = "", stack: tuple = ()) -> dict:
    """`schema` (found in file `base` at JSON pointer `where`) with every $ref replaced by its
    target, recursively, and only the keywords the validator implements."""
    here = f"{base}#{where}"
    if not isinstance(schema, dict):
        raise SchemaBuildError(f"{here}: a schema must be an object, not {schema!r}")
    if "$ref" in schema:
        name, fragment, target = resolve(schema["$ref"], base, docs)
        key = f"{name}#{fragment}"
        if key in stack:
            raise SchemaBuildError(f"{here}: $ref cycle {' -> '.join(stack + (key,))}")
        out = inline(target, name, docs, fragment, stack + (key,))
        # draft-04 ignores the siblings of $ref; accept only those that restate the target
        # (config-linux.json's personality: "type": "object"), so no reading is lost.
        for keyword in set(schema) - {"$ref"} - IGNORED:
            if out.get(keyword) != schema[keyword]:
                raise SchemaBuildError(f"{here}: {keyword!r} beside $ref, which draft-04 ignores, "
                                       f"differs from the target's")
        return out
    out = {}
    for keyword, value in schema.items():
        at = f"{where}/{keyword}"
        if keyword in IGNORED:
            continue
        if keyword not in KEYWORDS:
            raise SchemaBuildError(f"{base}#{at}: keyword {keyword!r} is not implemented by rootless.oci.schema.validator")
        if keyword in _SCHEMA_MAPS:
            value = {k: inline(v, base, docs, f"{at}/{k}", stack) for k, v in value.items()}
        elif keyword in _SCHEMA_LISTS or (keyword == "items" and isinstance(value, list)):
            value = [inline(v, base, docs, f"{at}/{i}", stack) for i, v in enumerate(value)]
        elif keyword in ("items", "additionalProperties") and isinstance(value, dict):
            value = inline(value, base, docs, at, stack)
        out[keyword] = value
    return out


def build(directory: str = HERE) -> dict:
    """The text of each bundle, by file name."""
    docs = relax(load_sources(directory))
    texts = {}
    for kind, root in ROOTS.items():
        bundle = {
            "generated": f"by rootless/oci/schema/build_bundle.py from {root} and the files it refers to; do not edit",
            "schema": inline(docs[root], root, docs),
        }
        texts[bundle_name(kind)] = json.dumps(bundle, separators=(",", ":")) + "\n"
    return texts


def stale(directory: str = HERE) -> list:
    """Names of the bundles that are missing or differ from what build() makes now."""
    out = []
    for name, text in build(directory).items():
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            out.append(name)
    return out


def keywords_in_sources(directory: str = HERE) -> dict:
    """Every keyword at a schema position of every source file, even in definitions nothing
    refers to: {keyword: [file#pointer, ...]}. A file's top-level keys that only hold the
    targets of references (config-linux.json's "linux") are containers, not keywords."""
    docs = load_sources(directory)
    containers = {}  # file -> top-level keys that references point into
    for name, doc in docs.items():
        for ref in _refs(doc):
            file_part, _, fragment = ref.partition("#")
            target = os.path.normpath(os.path.join(os.path.dirname(name), file_part)) if file_part else name
            if fragment.startswith("/"):
                containers.setdefault(target, set()).add(fragment[1:].split("/")[0])
    found = {}

    def walk(schema, where: str) -> None:
        if not isinstance(schema, dict):
            return
        for keyword, value in schema.items():
            found.setdefault(keyword, []).append(where)
            at = f"{where}/{keyword}"
            if keyword in _SCHEMA_MAPS or keyword == "definitions":
                for k, v in value.items():
                    walk(v, f"{at}/{k}")
            elif keyword in _SCHEMA_LISTS or (keyword == "items" and isinstance(value, list)):
                for i, v in enumerate(value):
                    walk(v, f"{at}/{i}")
            elif keyword in ("items", "additionalProperties", "not"):
                walk(value, at)

    for name, doc in docs.items():
        held = containers.get(name, set()) - KEYWORDS - IGNORED
        walk({k: v for k, v in doc.items() if k not in held}, f"{name}#")
        for key in held:
            walk(doc[key], f"{name}#/{key}")
    return found


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def main(argv: list) -> int:
    if argv == ["--check"]:
        names = stale()
        for name in names:
            print(f"{name} is stale: run python3 -m rootless.oci.schema.build_bundle", file=sys.stderr)
        return 1 if names else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for name, text in build().items():
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {os.path.join(HERE, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
