"""The FineTuneJob CRD and the editor JSON Schema, derived from the pydantic models.

Pure functions: models in, dicts out (`hack/generate.py` writes them to disk).
Pydantic emits JSON Schema with `$ref`s, `anyOf [X, null]` for optional fields, titles and
`const`; a CRD needs a *structural* OpenAPI v3 schema. `structural()` inlines every
reference, turns optional fields into plain not-required ones, keeps defaults, bounds,
patterns, enums, descriptions and the CEL rules the models carry, and refuses anything
else it does not understand, so a model change that the CRD cannot express fails loudly.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ftjobs.api import constants
from ftjobs.api.job import FineTuneJob
from ftjobs.api.spec import IMMUTABLE_MESSAGE, MUTABLE_SPEC_FIELDS
from ftjobs.api.types import JOB_NAME_INVALID, JOB_NAME_MAX, JOB_NAME_PATTERN, JOB_NAME_TOO_LONG

__all__ = ["IMMUTABLE_MESSAGE", "crd", "json_schema", "openapi_schema", "structural"]

INT_OR_STRING = "x-kubernetes-int-or-string"
PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
VALIDATIONS = "x-kubernetes-validations"

# JSON-schema keywords a structural schema keeps as they are.
_KEPT = (
    "type",
    "description",
    "default",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "uniqueItems",
    PRESERVE_UNKNOWN,
    VALIDATIONS,
)
# Keywords that only help editors and humans reading JSON Schema; a CRD has no use for them.
_DROPPED = ("title", "examples", "const", "propertyNames")

_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object: "
    f"{constants.API_VERSION}."
)
_KIND_DOC = f"Kind is the REST resource this object represents: {constants.KIND}."


class SchemaError(ValueError):
    """The models use a JSON-schema construct a structural CRD schema cannot express."""


def structural(node: dict[str, Any], defs: dict[str, Any], path: str = "") -> dict[str, Any]:
    """One structural OpenAPI v3 node from one pydantic JSON-schema node."""
    node, _ = _unwrap(node, defs, path)
    out: dict[str, Any] = {}
    if "const" in node and "enum" not in node:
        out["enum"] = [node["const"]]
    for key, value in node.items():
        if key in _KEPT:
            out[key] = copy.deepcopy(value)
        elif key in _DROPPED or key in ("properties", "required", "items", "anyOf"):
            continue
        elif key == "additionalProperties":
            # `false` is the default for a structural schema (unknown fields are pruned, or
            # refused with fieldValidation=Strict); `true` is spelled preserve-unknown-fields.
            if isinstance(value, dict):
                out[key] = structural(value, defs, f"{path}.*")
        elif key == INT_OR_STRING:
            out[key] = True
        else:
            raise SchemaError(f"{path or '<root>'}: unsupported JSON-schema keyword {key!r}")
    # JSON Schema 2020-12 says `exclusiveMinimum: 0`; OpenAPI v3.0 (CRDs) says
    # `minimum: 0, exclusiveMinimum: true`.
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if exclusive in out and not isinstance(out[exclusive], bool):
            out[bound] = out[exclusive]
            out[exclusive] = True
    if out.get(INT_OR_STRING):
        _int_or_string(node, out)
    if PRESERVE_UNKNOWN in out:
        out.pop("additionalProperties", None)
    if node.get("default", 0) is None:
        del out["default"]
    if "items" in node:
        out["items"] = structural(node["items"], defs, f"{path}[*]")
    if "properties" in node:
        out["properties"] = _properties(node, defs, path)
        if node.get("required"):
            out["required"] = list(node["required"])
    if "anyOf" in node and not out.get(INT_OR_STRING):
        raise SchemaError(f"{path or '<root>'}: anyOf is not structural")
    if VALIDATIONS in out:
        out[VALIDATIONS] = [guarded(rule, out) for rule in out[VALIDATIONS]]
    return out


# `self.a.b` in a rule, up to (not including) a method or macro: `self.a.b.all(...)`.
_FIELD_REF = re.compile(r"\bself((?:\.[A-Za-z_]\w*\b(?!\())+)")


def guarded(rule: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A model's CEL rule, evaluated only when the fields it reads are present and valid.

    A model validator runs only once its fields passed their own checks, but the API server
    runs CEL rules next to the schema's bound checks (it skips them only after a type
    error). Unguarded, `microBatchSize: 0` would also fail "modulus by zero evaluating
    rule" and `validationRatio: 1` also the ratio-sum rule: more, and worse, errors than
    `ftjobs validate` names. The guard keeps the two error lists equal.

    The rule comes first, the guard second: CEL's `||` is commutative, errors included (an
    error on one side is absorbed when the other side is true), so the result is the same
    either way, but the interpreter stops at the first true side. A valid object passes on
    the rule alone, and the guard, which reads every field the rule reads and re-checks its
    bounds, runs only for an object the rule refuses. Each field read costs the API server
    a copy of its parent's schema properties (`model.Structural.Properties` in
    apiextensions-apiserver): guard first, the rules were half the server's CPU for a
    FineTuneJob create (docs/benchmarks.md).
    """
    terms: list[str] = []
    for ref in _FIELD_REF.findall(rule["rule"]):
        terms += _guard("self", ref.strip(".").split("."), node)
    if not terms:
        return rule
    return {**rule, "rule": f"({rule['rule']}) || !({' && '.join(dict.fromkeys(terms))})"}


def _guard(expr: str, steps: list[str], schema: dict[str, Any]) -> list[str]:
    """CEL terms, all true when the field at `expr.steps` is valid or optional and absent."""
    if not steps:
        return _checks(expr, schema)
    prop = schema.get("properties", {}).get(steps[0])
    if prop is None:
        raise SchemaError(f"{expr}.{steps[0]}: a CEL rule reads a field the schema lacks")
    child = f"{expr}.{steps[0]}"
    inner = _guard(child, steps[1:], prop)
    if steps[0] in schema.get("required", ()) or "default" in prop:
        return [f"has({child})", *inner]
    return [f"(!has({child}) || ({' && '.join(inner)}))"] if inner else []


def _checks(expr: str, schema: dict[str, Any]) -> list[str]:
    """The schema's bounds on the value at `expr`, as CEL."""
    kind = schema.get("type")
    out = []
    if kind in ("integer", "number"):

        def literal(v: float) -> str:
            return repr(float(v)) if kind == "number" else str(int(v))

        if "minimum" in schema:
            op = ">" if schema.get("exclusiveMinimum") else ">="
            out.append(f"{expr} {op} {literal(schema['minimum'])}")
        if "maximum" in schema:
            op = "<" if schema.get("exclusiveMaximum") else "<="
            out.append(f"{expr} {op} {literal(schema['maximum'])}")
    elif kind == "string":
        if "minLength" in schema:
            out.append(f"{expr}.size() >= {schema['minLength']}")
        if "maxLength" in schema:
            out.append(f"{expr}.size() <= {schema['maxLength']}")
        if "pattern" in schema and "'" not in schema["pattern"]:
            out.append(f"{expr}.matches(r'{schema['pattern']}')")
    elif kind == "array":
        if "minItems" in schema:
            out.append(f"{expr}.size() >= {schema['minItems']}")
        if "maxItems" in schema:
            out.append(f"{expr}.size() <= {schema['maxItems']}")
        items = _checks("x", schema.get("items", {}))
        if items:
            out.append(f"{expr}.all(x, {' && '.join(items)})")
    return out


def _unwrap(node: dict[str, Any], defs: dict[str, Any], path: str) -> tuple[dict[str, Any], bool]:
    """Resolve `$ref` and `anyOf [X, null]`; returns the node and whether it was nullable."""
    nullable = False
    while True:
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            # Keys next to the $ref (the field's description, default) win over the target's.
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            continue
        branches = node.get("anyOf")
        if branches and {"type": "null"} in branches:
            rest = [b for b in branches if b != {"type": "null"}]
            if len(rest) != 1:
                raise SchemaError(f"{path}: a union of several types is not structural")
            nullable = True
            node = {**rest[0], **{k: v for k, v in node.items() if k != "anyOf"}}
            continue
        return node, nullable


def _properties(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    required = set(node.get("required", ()))
    out: dict[str, Any] = {}
    for name, prop in node["properties"].items():
        child = structural(prop, defs, f"{path}.{name}")
        _, nullable = _unwrap(prop, defs, path)
        # A section whose fields all have defaults gets a default holding them, so a left-out
        # section is filled in by the API server. Not `{}`: the server checks a default
        # against the CEL rules before applying nested defaults, so the rules would see
        # missing keys. Optional sections (`lora`) stay absent: their presence means something.
        if (
            not nullable
            and name not in required
            and "default" not in child
            and child.get("type") == "object"
            and "properties" in child
            and not child.get("required")
        ):
            child["default"] = {
                key: copy.deepcopy(sub["default"])
                for key, sub in child["properties"].items()
                if "default" in sub
            }
        if "description" not in child:
            raise SchemaError(f"{path}.{name}: every field needs a description")
        out[name] = child
    return out


def _int_or_string(node: dict[str, Any], out: dict[str, Any]) -> None:
    """Kubernetes' one allowed anyOf: exactly integer|string, restrictions next to it."""
    pattern = None
    for branch in node.get("anyOf", ()):
        pattern = branch.get("pattern", pattern)
    out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if pattern:
        out["pattern"] = pattern
    out.pop("type", None)
    if isinstance(out.get("default"), int):
        out["default"] = str(out["default"])


def spec_schema() -> dict[str, Any]:
    """The structural schema of `spec` with its cross-field and immutability rules."""
    full = FineTuneJob.model_json_schema(by_alias=True, mode="validation")
    spec = structural(full["properties"]["spec"], full["$defs"], "spec")
    add_immutability_rules(spec)
    return spec


def add_immutability_rules(spec: dict[str, Any]) -> None:
    """CEL transition rules: every spec field but `suspend` keeps its value after create.

    The value is compared on the field's own node (`self == oldSelf`, evaluated when the
    field exists before and after); an optional field (`lora`, `queueName`) also gets a
    rule on `spec` that adding or removing it is a change, as a rule on the field itself
    never runs when the field is absent on one side. Each field read from `spec` costs the
    API server a copy of spec's 22 property schemas, and every update pays these rules,
    the trainer's progress patches of the status too: comparing on the field's node reads
    nothing from `spec` (docs/benchmarks.md, bench/bench_api_writes.py).
    """
    presence = []
    for name, prop in spec["properties"].items():
        if name in MUTABLE_SPEC_FIELDS:
            continue
        prop.setdefault(VALIDATIONS, []).append(
            {"rule": "self == oldSelf", "message": IMMUTABLE_MESSAGE}
        )
        if name not in spec.get("required", ()):
            presence.append(
                {
                    "rule": f"has(self.{name}) == has(oldSelf.{name})",
                    "message": IMMUTABLE_MESSAGE,
                    "fieldPath": f".{name}",
                }
            )
    spec.setdefault(VALIDATIONS, []).extend(presence)


def status_schema() -> dict[str, Any]:
    full = FineTuneJob.model_json_schema(by_alias=True, mode="validation")
    status = structural(full["$defs"]["FineTuneJobStatus"], full["$defs"], "status")
    status["description"] = "Observed state, written by the controller and the trainer."
    return status


def openapi_schema() -> dict[str, Any]:
    """The CRD's `openAPIV3Schema`."""
    return {
        "type": "object",
        "description": FineTuneJob.__doc__ or constants.KIND,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
            "kind": {"type": "string", "description": _KIND_DOC},
            # The API server forbids anything at the root's metadata but `type: object` and
            # name/generateName restrictions (not even a description). `name` is listed so
            # the CEL rules below may point their fieldPath at it; they carry the offline
            # validator's messages.
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "description": "Job name."}},
            },
            "spec": spec_schema(),
            "status": status_schema(),
        },
        VALIDATIONS: [
            {
                "rule": f"self.metadata.name.size() <= {JOB_NAME_MAX}",
                "message": JOB_NAME_TOO_LONG,
                "fieldPath": ".metadata.name",
            },
            {
                "rule": f"self.metadata.name.matches('{JOB_NAME_PATTERN}')",
                "message": JOB_NAME_INVALID,
                "fieldPath": ".metadata.name",
            },
        ],
    }


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Progress", "type": "integer", "jsonPath": ".status.progress.percent"},
    {"name": "Loss", "type": "number", "jsonPath": ".status.progress.loss"},
    {"name": "Restarts", "type": "integer", "jsonPath": ".status.restarts"},
    {"name": "Task", "type": "string", "jsonPath": ".spec.task", "priority": 1},
    {"name": "Nodes", "type": "integer", "jsonPath": ".spec.resources.nodes", "priority": 1},
    # A queued job: which Kueue queue, and (in the message) what Kueue says it waits for.
    {"name": "Queue", "type": "string", "jsonPath": ".spec.queueName", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition (apiextensions.k8s.io/v1)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": constants.CRD_NAME,
            "labels": {
                constants.LABEL_NAME: "ftjobs",
                constants.LABEL_PART_OF: "ftjobs",
            },
        },
        "spec": {
            "group": constants.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": constants.KIND,
                "listKind": f"{constants.KIND}List",
                "plural": constants.PLURAL,
                "singular": constants.SINGULAR,
                "shortNames": list(constants.SHORT_NAMES),
                "categories": ["ftjobs"],
            },
            "versions": [
                {
                    "name": constants.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a FineTuneJob document, for editors (yaml-language-server)."""
    schema = FineTuneJob.model_json_schema(by_alias=True, mode="validation")
    schema["properties"].pop("status", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://{constants.GROUP}/schemas/{constants.VERSION}/finetunejob.schema.json",
        **schema,
    }
