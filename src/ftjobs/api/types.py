"""Constrained scalar types shared by the spec models (URIs, names, quantities, images).

Each type carries its JSON-schema pattern so the generated CRD refuses the same
values as pydantic does offline.
"""

import types
import typing
from functools import cache
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base of every API model: camelCase in YAML, snake_case in Python, unknown fields refused."""

    # strict: no lax coercion ("3" -> 3, "yes" -> True) because the API server's schema
    # does not coerce either; `ftjobs validate` must refuse what `kubectl apply` refuses.
    # Enum fields opt out (`Annotated[Enum, Strict(False)]`) so their string values parse.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        use_enum_values=True,
        strict=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_means_unset(cls, data: Any) -> Any:
        # The API server prunes an explicit null of a non-nullable field before defaulting
        # (`deepspeed:` with nothing under it means the defaults; `task: null` is a missing
        # task), so `ftjobs validate` must read it the same way.
        if isinstance(data, dict) and None in data.values():
            nullable = _nullable_keys(cls)
            return {k: v for k, v in data.items() if v is not None or k in nullable}
        return data


@cache
def _nullable_keys(model: type[BaseModel]) -> frozenset[str]:
    """Names and aliases of the fields of `model` that may hold None."""
    keys = set()
    for name, info in model.model_fields.items():
        args = typing.get_args(info.annotation)
        union = typing.get_origin(info.annotation) in (typing.Union, types.UnionType)
        if info.annotation in (Any, None) or (union and type(None) in args):
            keys.update({name, info.alias or name})
    return frozenset(keys)


class RuleError(ValueError):
    """A cross-field rule failed; `field` is the path below the model that owns the rule.

    The same rule exists as CEL in the CRD, with the same message and fieldPath, so the
    offline validator and the API server name the same field.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, JsonValue]:
    """One `x-kubernetes-validations` entry."""
    out: dict[str, JsonValue] = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


def nearest_multiples(value: int, unit: int) -> str:
    """'32 or 64': the multiples of `unit` around `value` (the lower one only if > 0).

    Offline messages only: a CEL messageExpression computing this exceeds the API
    server's cost budget, so the server says the rule without the numbers."""
    lower = value // unit * unit
    return f"{lower} or {lower + unit}" if lower > 0 else str(lower + unit)


DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A FineTuneJob name is a DNS-1035 label short enough that `<name>-<attempt>-<index>`
# still fits the 63-character limit of the child Service/Job/pod host names.
JOB_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
JOB_NAME_MAX = 40
# The API server checks the name with root-level CEL rules carrying these same messages.
JOB_NAME_TOO_LONG = (
    f"must be at most {JOB_NAME_MAX} characters (child objects append -<attempt>-<index>)"
)
JOB_NAME_INVALID = (
    "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter "
    "and ending with a letter or digit"
)

# Kubernetes label keys (an optional DNS-subdomain prefix and `/`, then a name) and values,
# which taint keys/values and node selectors are.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"

S3_URI = r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^\s]*)?"
# GCS bucket names: 3-63 characters (dotted names up to 222), lower-case, digits, - _ .
GS_URI = r"gs://[a-z0-9][a-z0-9._\-]{1,220}[a-z0-9](/[^\s]*)?"
FILE_URI = r"file:///[^\s]*"
HF_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
# hf://org/name[@revision]; a revision may hold '/' (refs/pr/1) but no '@' or space.
HF_URI = rf"hf://{HF_NAME}(/{HF_NAME})?(@[^\s@]+)?"
# hf://datasets/org/name[@revision][/path/in/repo]: read through fsspec's HfFileSystem.
HF_DATASET_URI = rf"hf://datasets/{HF_NAME}/{HF_NAME}(@[^\s@/]+)?(/[^\s]*)?"

DataUri = Annotated[
    str,
    Field(
        pattern=rf"^({S3_URI}|{GS_URI}|{FILE_URI}|{HF_DATASET_URI})$",
        max_length=2048,
        examples=[
            "s3://my-bucket/datasets/train.jsonl",
            "file:///data/train.jsonl",
            "hf://datasets/org/name/train.jsonl",
        ],
    ),
]
ModelUri = Annotated[
    str,
    Field(
        pattern=rf"^({S3_URI}|{GS_URI}|{FILE_URI}|{HF_URI})$",
        max_length=2048,
        examples=["hf://sentence-transformers/all-MiniLM-L6-v2", "s3://models/llama/"],
    ),
]
OutputUri = Annotated[
    str,
    Field(
        pattern=rf"^({S3_URI}|{GS_URI}|{FILE_URI})$",
        max_length=2048,
        examples=["s3://ml-outputs/finetunes", "file:///tmp/ftjobs-out"],
    ),
]
DnsLabel = Annotated[str, Field(pattern=DNS1123_LABEL, min_length=1, max_length=63)]
DnsSubdomain = Annotated[str, Field(pattern=DNS1123_SUBDOMAIN, min_length=1, max_length=253)]
# registry/repo[:tag][@sha256:digest], lower-case repository path as OCI requires.
IMAGE_PATTERN = (
    r"^([a-zA-Z0-9.\-]+(:[0-9]+)?/)?[a-z0-9]+([._\-][a-z0-9]+)*(/[a-z0-9]+([._\-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
ImageRef = Annotated[str, Field(pattern=IMAGE_PATTERN, max_length=512)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", max_length=2048)]
# Free-form short strings (column names, module names, metric names). Every string and
# list carries a bound: the API server estimates the cost of CEL rules (the immutability
# rules compare the whole spec) from maxLength/maxItems and refuses unbounded ones.
ShortStr = Annotated[str, Field(min_length=1, max_length=256)]

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _quantity_to_str(value: Any) -> Any:
    # YAML users write `cpu: 4`; Kubernetes quantities are int-or-string.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    Field(pattern=QUANTITY_PATTERN),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string", "pattern": QUANTITY_PATTERN}],
        }
    ),
]

# What each pattern means, for error messages people can act on (a regex is not one).
PATTERN_HINTS: dict[str, str] = {
    rf"^({S3_URI}|{GS_URI}|{FILE_URI})$": (
        "must be an s3://bucket/key, gs://bucket/key or file:///absolute/path URI"
    ),
    rf"^({S3_URI}|{GS_URI}|{FILE_URI}|{HF_DATASET_URI})$": (
        "must be an s3://bucket/key, gs://bucket/key, file:///absolute/path or "
        "hf://datasets/org/name[/path] URI"
    ),
    rf"^({S3_URI}|{GS_URI}|{FILE_URI}|{HF_URI})$": (
        "must be an s3://bucket/prefix, gs://bucket/prefix, file:///absolute/path or "
        "hf://org/name[@revision] URI"
    ),
    DNS1123_LABEL: "must be a DNS-1123 label (lower-case letters, digits and '-')",
    DNS1123_SUBDOMAIN: "must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')",
    IMAGE_PATTERN: "must be an image reference like registry.example.com/org/trainer:1.0",
    r"^https?://[^\s/]+(/[^\s]*)?$": "must be an http:// or https:// URL",
    QUANTITY_PATTERN: "must be a Kubernetes quantity like 4, 500m, 16Gi or 1e3",
    LABEL_KEY_PATTERN: "must be a label key like nvidia.com/gpu",
    LABEL_VALUE_PATTERN: "must be a label value (letters, digits, '-', '_' and '.')",
}
