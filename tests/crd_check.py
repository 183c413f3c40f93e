"""An offline stand-in for what the API server does with a FineTuneJob and the generated CRD.

It applies the schema's defaults, refuses unknown fields (as `--validate=strict` does),
checks the OpenAPI v3 value validations (jsonschema, Draft 4 semantics, which is what
OpenAPI v3.0 uses) and evaluates the CEL rules with cel-python. The unit tier uses it to
check the generated CRD against the corpus and the generated specs without a cluster;
the integration tier then checks the real server agrees.
"""

from __future__ import annotations

import copy
from typing import Any

import celpy
from jsonschema import Draft4Validator

from ftjobs.api.crd import openapi_schema

SCHEMA = openapi_schema()
_ENV = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def prune_nulls(value: Any) -> Any:
    """The object after the server drops explicit nulls (no field of ours is nullable)."""
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


def apply_defaults(value: Any, schema: dict[str, Any] = SCHEMA) -> Any:
    """The object as stored: defaults filled in, recursively (also inside defaults)."""
    value = copy.deepcopy(value)
    _default(value, schema)
    return value


def _default(value: Any, schema: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                _default(value[name], prop)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                _default(item, extra)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default(item, schema["items"])


def unknown_fields(value: Any, schema: dict[str, Any] = SCHEMA, path: str = "") -> list[str]:
    """Paths the server would prune (and refuses with fieldValidation=Strict)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for name, item in value.items():
            if path == "metadata":
                continue  # ObjectMeta is the server's own type
            if name not in schema["properties"]:
                out.append(join(path, name))
            else:
                out += unknown_fields(item, schema["properties"][name], join(path, name))
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for name, item in value.items():
            out += unknown_fields(item, schema["additionalProperties"], join(path, name))
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += unknown_fields(item, schema["items"], join(path, i))
    return out


# Errors after which the API server does not run the CEL rules (a wrong type or a value
# outside an enum); after any other (a bound, a pattern, a missing field) it does.
BLOCKING = ("type", "enum")


def schema_errors(value: Any) -> list[tuple[str, str]]:
    """OpenAPI value validation errors as (path, message)."""
    return [(path, message) for path, message, _ in _schema_errors(value)]


def _schema_errors(value: Any) -> list[tuple[str, str, bool]]:
    out = []
    for error in Draft4Validator(SCHEMA).iter_errors(value):
        path = ""
        for part in error.absolute_path:
            path = join(path, part)
        blocking = error.validator in BLOCKING
        if error.validator == "required":
            missing = [p for p in error.validator_value if p not in error.instance]
            out += [(join(path, name), "Required value", False) for name in missing]
        else:
            out.append((path, error.message, blocking))
    return out


def _program(rule: str) -> Any:
    if rule not in _PROGRAMS:
        _PROGRAMS[rule] = _ENV.program(_ENV.compile(rule))
    return _PROGRAMS[rule]


def _to_cel(value: Any, schema: dict[str, Any]) -> Any:
    """JSON -> CEL values typed by the schema (a `number` is always a double in CEL)."""
    if schema.get("type") == "number" and isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            k: _to_cel(v, props.get(k, extra if isinstance(extra, dict) else {}))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_to_cel(v, schema.get("items", {})) for v in value]
    return value


def cel_errors(
    value: Any, old: Any = None, schema: dict[str, Any] = SCHEMA, path: str = ""
) -> list[tuple[str, str]]:
    """Failed `x-kubernetes-validations` rules as (path, message); transition rules (oldSelf)
    run only when `old` is given, as on an update."""
    out: list[tuple[str, str]] = []
    for rule in schema.get("x-kubernetes-validations", []):
        transition = "oldSelf" in rule["rule"]
        if transition and old is None:
            continue
        activation = {"self": celpy.json_to_cel(_to_cel(value, schema))}
        if transition:
            activation["oldSelf"] = celpy.json_to_cel(_to_cel(old, schema))
        result = _program(rule["rule"]).evaluate(activation)
        where = (path + rule.get("fieldPath", "")).lstrip(".")
        if isinstance(result, celpy.CELEvalError):
            out.append((where, f"rule error: {result}"))
        elif not result:
            out.append((where, rule["message"]))
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name in value:
                child_old = old.get(name) if isinstance(old, dict) else None
                out += cel_errors(value[name], child_old, prop, join(path, name))
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += cel_errors(item, None, schema["items"], join(path, i))
    return out


def server_errors(doc: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Everything the API server would refuse in `doc` (as a create, or an update of `old`)."""
    stored = apply_defaults(prune_nulls(doc))
    errors = [(p, "unknown field") for p in unknown_fields(doc)]
    schema = _schema_errors(stored)
    errors += [(path, message) for path, message, _ in schema]
    if not any(blocking for _, _, blocking in schema):
        errors += cel_errors(stored, apply_defaults(old) if old is not None else None)
    return errors
