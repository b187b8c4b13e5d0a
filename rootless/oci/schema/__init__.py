"""Validation of config.json, and of our own `state` and `features` output, against the OCI
runtime-spec's JSON schemas (the *-schema.json files beside this one, draft-04).

    validate_config(doc)   -> ["config.json: process.user.uid: -1 is less than the minimum 0", ...]
    check_config(doc)      raises ConfigError with the first error (and how many more)
    validate_state(doc), validate_features(doc): the same lists for those documents

`doc` is the parsed JSON (dicts, lists, str, int, float, bool, None). Validation follows
draft-04: an integer is an int, never a bool nor a float such as 1.0; unknown properties are
allowed wherever the schema does not forbid them.

`doc` must be parsed JSON: a tuple is not an array here, although jsonlite.dumps would
write it as one.

The runtime reads the pre-built bundles (*.bundle.json: each schema with its references
inlined, made by build_bundle.py), each once per process, and imports only rootless.jsonlite
and the validator, not `re`: import, bundle and validation of the spec's example config.json
take about 1 ms together when .pyc files exist.
"""

import os

from rootless.errors import ConfigError
from rootless.jsonlite import loads
from rootless.oci.schema.validator import format_path, validate

_HERE = os.path.dirname(__file__)
_SCHEMAS: dict = {}


def load_schema(kind: str) -> dict:
    """The bundled schema for "config", "state" or "features", read once per process."""
    schema = _SCHEMAS.get(kind)
    if schema is None:
        with open(os.path.join(_HERE, f"{kind}.bundle.json"), "rb") as f:
            schema = _SCHEMAS[kind] = loads(f.read())["schema"]
    return schema


def _errors(kind: str, label: str, doc: object) -> list[str]:
    errors = validate(load_schema(kind), doc)
    out = []
    for path, message in errors:
        where = format_path(path)
        line = f"{label}: {where}: {message}" if where else f"{label}: {message}"
        if line not in out:  # allOf branches can restate a type error at one path
            out.append(line)
    return out


def validate_config(doc: object) -> list[str]:
    """Every way `doc` breaks config-schema.json, one line each; [] when it is valid."""
    return _errors("config", "config.json", doc)


def validate_state(doc: object) -> list[str]:
    """Every way `doc` breaks state-schema.json (the output of `state`)."""
    return _errors("state", "state", doc)


def validate_features(doc: object) -> list[str]:
    """Every way `doc` breaks features-schema.json (the output of `features`)."""
    return _errors("features", "features", doc)


def check_config(doc: object) -> None:
    """Raise ConfigError naming the first schema violation of `doc`, and how many more."""
    errors = validate_config(doc)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(errors[0] + more)
