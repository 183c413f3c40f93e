"""Invalid (and borderline) FineTuneJobs generated from every example, driven by the CRD schema.

Each mutant is one example with one change: a value of the wrong JSON type, a value just
past a bound, an empty string, a malformed URI, a value outside an enum or pattern, an
explicit null, a required field removed, or an unknown field added. The changes are read
off the generated CRD schema (`openapi_schema()`, itself generated from the models), so a
new field in the models gets its mutants without touching this file.

Both tiers use them: the unit tier checks the offline validator against the offline CRD
stand-in (tests/crd_check.py), the integration tier against the real API server; both
compare the *set of field paths* named, exactly.
"""

from __future__ import annotations

import copy
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftjobs.api.crd import INT_OR_STRING, PRESERVE_UNKNOWN, openapi_schema
from ftjobs.api.validation import SpecError, parse_job
from ftjobs.sdk.spec import is_finetunejob, load_documents

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
SCHEMA = openapi_schema()
UNKNOWN = "unknownField"
# Not a URI of any accepted form; each breaks the pattern a different way.
BAD_URIS = (
    "s3://",
    "s3://UPPER-bucket/key",
    "s3://b/key",
    "http://host/key",
    "file://relative/path",
    "s3://bucket/with space",
    "/absolute/path",
    "hf://",
)
BAD_URLS = ("ftp://host", "http://", "http://host name/x", "host:9000")
# Fails every pattern the models use (upper case, a space, punctuation).
BAD_PATTERN = "Not Valid!"


@dataclass(frozen=True)
class Mutant:
    id: str
    kind: str
    path: str  # the field the change is at (dotted camelCase, [i] for items)
    doc: dict[str, Any]
    value: Any = None  # what the field was set to (None: removed, or set to null)

    @property
    def whole_float(self) -> bool:
        """A whole-number float (2.0) in an integer field."""
        return self.kind == "type" and isinstance(self.value, float) and self.value.is_integer()


def examples() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES_DIR.glob("**/*.yaml")):
        for doc in load_documents(path):
            if is_finetunejob(doc):
                out.append((path.stem, doc))
    return out


def offline_paths(doc: Any) -> set[str]:
    """The field paths `ftjobs validate` names for `doc` (empty when it is valid)."""
    try:
        parse_job(doc)
    except SpecError as exc:
        return {e.path for e in exc.errors}
    return set()


def mutants() -> list[Mutant]:
    """Every mutant of every example, the first example to produce a change keeping it."""
    # The same change is possible in several examples: one of them (picked by a stable hash,
    # so every example gets its share) carries it.
    candidates: dict[tuple[str, str, str], list[tuple[str, dict[str, Any], _Set]]] = {}
    for stem, doc in examples():
        for kind, path, setter in _changes(doc["spec"], SCHEMA["properties"]["spec"], "spec"):
            if setter.parents and offline_paths(setter.base(doc)):
                continue  # the example cannot take the section (`lora` on question-answering)
            candidates.setdefault((kind, path, setter.value_key), []).append((stem, doc, setter))
        candidates.setdefault(("unknown", UNKNOWN, "1"), []).append((stem, doc, _ROOT_UNKNOWN))
    out = []
    for key, options in candidates.items():
        stem, doc, setter = options[zlib.crc32(repr(key).encode()) % len(options)]
        mutated = copy.deepcopy(doc)
        setter.apply(mutated)
        kind, path, _ = key
        label = f"{stem}:{kind}:{path}{setter.label}"
        out.append(Mutant(label, kind, path, mutated, None if setter.delete else setter.value))
    return out


# --- the changes --------------------------------------------------------------------------


_Step = str | int


@dataclass(frozen=True)
class _Set:
    """Set (or delete) the value at `steps` below the document root, creating `parents`."""

    steps: tuple[_Step, ...]
    value: Any
    delete: bool = False
    # Containers to create on the way down (absent optional sections), by step index.
    parents: tuple[tuple[int, Any], ...] = ()
    # Steps start at the document root, not at `spec`.
    root: bool = False

    @property
    def value_key(self) -> str:
        return "<deleted>" if self.delete else _short(self.value)

    @property
    def label(self) -> str:
        return "" if self.delete else f"={self.value_key}"

    def base(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A copy of `doc` with the absent sections created empty, the change not made."""
        out = copy.deepcopy(doc)
        self._parent(out)
        return out

    def apply(self, doc: dict[str, Any]) -> None:
        node = self._parent(doc)
        last = self.steps[-1]
        if self.delete:
            del node[last]
        else:
            node[last] = copy.deepcopy(self.value)

    def _parent(self, doc: dict[str, Any]) -> Any:
        """The container the change goes into, creating absent sections on the way."""
        node: Any = doc if self.root else doc["spec"]
        made = dict(self.parents)
        for i, step in enumerate(self.steps[:-1]):
            if i in made and (isinstance(step, int) or step not in node):
                node[step] = copy.deepcopy(made[i])
            node = node[step]
        return node


# An unknown field next to `spec` (a typo'd top-level key).
_ROOT_UNKNOWN = _Set((UNKNOWN,), 1, root=True)


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) > 24:
        return f"<str:{len(value)}>"
    if isinstance(value, list | dict) and len(value) > 3:
        return f"<{type(value).__name__}:{len(value)}>"
    return repr(value)


def _join(path: str, step: _Step) -> str:
    return f"{path}[{step}]" if isinstance(step, int) else f"{path}.{step}"


def _changes(
    value: Any,
    schema: dict[str, Any],
    path: str,
    steps: tuple[_Step, ...] = (),
    parents: tuple[tuple[int, Any], ...] = (),
) -> Iterator[tuple[str, str, _Set]]:
    """(kind, path, change) for the object `value` (present in the document) at `path`."""
    if schema.get(PRESERVE_UNKNOWN) or "properties" not in schema:
        return
    yield "unknown", _join(path, UNKNOWN), _Set((*steps, UNKNOWN), 1, parents=parents)
    required = set(schema.get("required", ()))
    for name, prop in schema["properties"].items():
        here, where = _join(path, name), (*steps, name)
        present = name in value
        if present and name in required:
            yield "required", here, _Set(where, None, delete=True, parents=parents)
        for kind, bad in _bad_values(prop, value.get(name)):
            yield kind, here, _Set(where, bad, parents=parents)
        child = value.get(name)
        if prop.get("type") == "object" and "properties" in prop:
            if not present:
                if prop.get("required"):
                    continue  # cannot make a valid one generically; its fields stay unmutated
                child = {}
                parents_here = (*parents, (len(where) - 1, {}))
            else:
                parents_here = parents
            if isinstance(child, dict):
                yield from _changes(child, prop, here, where, parents_here)
        elif prop.get("type") == "array" and "properties" in prop.get("items", {}):
            item_schema = prop["items"]
            if not present:
                if item_schema.get("required"):
                    continue
                child, parents_here = [{}], (*parents, (len(where) - 1, [{}]))
            else:
                parents_here = parents
            if isinstance(child, list) and child and isinstance(child[0], dict):
                yield from _changes(child[0], item_schema, f"{here}[0]", (*where, 0), parents_here)


def _bad_values(schema: dict[str, Any], current: Any) -> Iterator[tuple[str, Any]]:
    """(kind, value) pairs that break `schema` one way each (or probe its edges)."""
    yield "null", None
    if schema.get(INT_OR_STRING):
        yield "type", True
        yield "type", 1.5
        if "pattern" in schema:
            yield "pattern", BAD_PATTERN
            yield "empty", ""
        return
    if schema.get(PRESERVE_UNKNOWN):
        yield "type", "x"
        yield "type", ["x"]
        return
    kind = schema.get("type")
    if kind == "string":
        yield from _bad_strings(schema)
    elif kind in ("integer", "number"):
        yield from _bad_numbers(schema, kind)
    elif kind == "boolean":
        yield "type", "true"
        yield "type", 1
    elif kind == "object":
        yield "type", ["x"]
        yield "type", "x"
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            yield "type", {"k": 7}
            if "maxProperties" in schema:
                yield "bound", {f"k{i}": "v" for i in range(schema["maxProperties"] + 1)}
            if "maxLength" in extra:
                yield "bound", {"k": "v" * (extra["maxLength"] + 1)}
    elif kind == "array":
        yield "type", "x"
        yield "type", {"a": "b"}
        item = _valid_item(schema["items"], current)
        if item is not None and "minItems" in schema:
            yield "bound", [item] * (schema["minItems"] - 1)
        if item is not None and "maxItems" in schema:
            yield "bound", [item] * (schema["maxItems"] + 1)
        if schema["items"].get("type") == "string":
            # As many items as the list needs, so the item is the one thing wrong.
            size = max(1, schema.get("minItems", 1))
            yield "type", [7] * size
            yield "empty", [""] * size


def _valid_item(schema: dict[str, Any], current: Any) -> Any:
    """An item the list takes: the example's own, else a short string (None: no guess)."""
    if isinstance(current, list) and current:
        return current[0]
    return "x" if schema.get("type") == "string" else None


def _bad_strings(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "type", 7
    yield "type", {"a": "b"}
    yield "empty", ""
    if "enum" in schema:
        yield "enum", "not-a-choice"
        yield "enum", str(schema["enum"][0]).upper()
    pattern = schema.get("pattern", "")
    if "s3://" in pattern:
        for uri in BAD_URIS:
            if not re.fullmatch(pattern.strip("^$"), uri):
                yield "uri", uri
    elif pattern.startswith("^https?"):
        for url in BAD_URLS:
            yield "uri", url
    elif pattern:
        yield "pattern", BAD_PATTERN
    if "maxLength" in schema:
        yield "bound", "a" * (schema["maxLength"] + 1)


def _bad_numbers(schema: dict[str, Any], kind: str) -> Iterator[tuple[str, Any]]:
    yield "type", "7"
    yield "type", True
    if kind == "integer":
        yield "type", 2.5
        # Integral float: JSON has one number type; who says it is an integer?
        yield "type", 2.0
    step = 1 if kind == "integer" else 0.5
    if "minimum" in schema:
        low = schema["minimum"]
        yield "bound", low if schema.get("exclusiveMinimum") else low - step
    if "maximum" in schema:
        high = schema["maximum"]
        yield "bound", high if schema.get("exclusiveMaximum") else high + step
