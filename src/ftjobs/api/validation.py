"""Turn pydantic errors into field-path messages users can act on.

`spec.hyperparameters.learningRate: must be > 0` is what `ftjobs validate` prints and
what the API server says for the same spec (the CRD carries the same rules).
"""

import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ftjobs.api.job import FineTuneJob
from ftjobs.api.spec import IMMUTABLE_MESSAGE, MUTABLE_SPEC_FIELDS, FineTuneJobSpec
from ftjobs.api.types import PATTERN_HINTS, RuleError


@dataclass(frozen=True)
class FieldError:
    """One problem in a document, at a dotted camelCase path."""

    path: str
    message: str
    # 1-based line in the source file, when the error came from one (set by the SDK loader).
    line: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(ValueError):
    """A FineTuneJob document is invalid; `errors` lists every problem found."""

    def __init__(self, errors: list[FieldError], source: str = "") -> None:
        self.errors = errors
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(str(e) for e in errors))


def parse_job(doc: Any, source: str = "") -> FineTuneJob:
    """Validate a decoded YAML/JSON document as a FineTuneJob or raise SpecError."""
    if not isinstance(doc, dict):
        raise SpecError([FieldError("", "expected a mapping (a FineTuneJob object)")], source)
    try:
        # Documents are camelCase only: `learning_rate:` would pass as a Python name but
        # the API server refuses it, so the offline validator must too.
        return FineTuneJob.model_validate(doc, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise SpecError(field_errors(exc), source) from None


def check_update(old: FineTuneJobSpec, new: FineTuneJobSpec) -> list[FieldError]:
    """The spec fields an update may not change (the CRD's transition rules, offline).

    Offline it also sees inside `deepspeed.overrides`, which the API server cannot.
    """
    errors = []
    for name, info in FineTuneJobSpec.model_fields.items():
        alias = info.alias or name
        if alias not in MUTABLE_SPEC_FIELDS and getattr(old, name) != getattr(new, name):
            errors.append(FieldError(f"spec.{alias}", IMMUTABLE_MESSAGE))
    return errors


def field_errors(exc: ValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors():
        loc = list(err["loc"])
        rule = (err.get("ctx") or {}).get("error")
        if isinstance(rule, RuleError):
            out.append(FieldError(_join(loc + rule.field.split(".")), rule.message))
            continue
        out.append(FieldError(_join(loc), _message(err, loc)))
    return out


def _join(loc: list[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif "[" in str(part) and str(part).endswith("]"):
            path += ("." if path else "") + str(part)
        else:
            path += ("." if path else "") + str(part)
    return path


def _message(err: ErrorDetails, loc: list[Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        known = _known_fields(loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
        return f"unknown field '{loc[-1]}'{suffix}"
    bounds = {
        "greater_than": ">",
        "greater_than_equal": ">=",
        "less_than": "<",
        "less_than_equal": "<=",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit} (got {value!r})"
    if kind in ("literal_error", "enum"):
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
        suffix = f"; did you mean '{hint[0]}'?" if hint else ""
        return f"must be one of {ctx.get('expected')} (got {value!r}){suffix}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        return f"{value!r} is not valid: {PATTERN_HINTS.get(pattern, f'must match {pattern}')}"
    if kind in ("string_too_long", "too_long"):
        return f"is too long (at most {ctx.get('max_length')})"
    if kind in ("string_too_short", "too_short"):
        return f"is too short (at least {ctx.get('min_length')})"
    types_ = {
        "int_type": "an integer",
        "int_parsing": "an integer",
        "int_from_float": "an integer",
        "float_type": "a number",
        "float_parsing": "a number",
        "bool_type": "a boolean",
        "bool_parsing": "a boolean",
        "string_type": "a string",
        "list_type": "a list",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
    }
    if kind in types_:
        return f"must be {types_[kind]} (got {value!r})"
    return str(err["msg"])


def _known_fields(loc: list[Any]) -> list[str]:
    """The camelCase field names of the model at `loc` (for did-you-mean hints)."""
    model: Any = FineTuneJob
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next(
            (f for n, f in model.model_fields.items() if (f.alias or n) == part or n == part),
            None,
        )
        model = _model_of(field.annotation) if field else None
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None
