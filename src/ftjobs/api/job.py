"""The FineTuneJob resource: apiVersion/kind, metadata, spec and status."""

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from ftjobs.api.constants import KIND
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.status import FineTuneJobStatus
from ftjobs.api.types import (
    JOB_NAME_INVALID,
    JOB_NAME_MAX,
    JOB_NAME_PATTERN,
    JOB_NAME_TOO_LONG,
    ApiModel,
    DnsLabel,
)


class ObjectMeta(ApiModel):
    """The part of Kubernetes metadata ftjobs reads; server-set fields pass through."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(
        default=None,
        # Checked by `_name` (with the messages the API server's CEL rules use); the
        # pattern and bound stay in the JSON schema for editors.
        json_schema_extra={"pattern": JOB_NAME_PATTERN, "maxLength": JOB_NAME_MAX},
        description="Job name (DNS-1035 label, at most 40 characters: child objects add suffixes).",
    )
    generate_name: str | None = Field(default=None, max_length=34, pattern=r"^[a-z][-a-z0-9]*$")
    namespace: DnsLabel | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if len(value) > JOB_NAME_MAX:
            raise PydanticCustomError("job_name", JOB_NAME_TOO_LONG)
        if not re.fullmatch(JOB_NAME_PATTERN, value):
            raise PydanticCustomError("job_name", JOB_NAME_INVALID)
        return value


class FineTuneJob(ApiModel):
    """A fine-tuning job on Kubernetes (ftjobs.dev/v1alpha1)."""

    api_version: Literal["ftjobs.dev/v1alpha1"] = Field(
        default="ftjobs.dev/v1alpha1", description="ftjobs.dev/v1alpha1"
    )
    kind: Literal["FineTuneJob"] = Field(default=KIND, description="FineTuneJob")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: FineTuneJobSpec
    status: FineTuneJobStatus | None = None

    def to_manifest(self) -> dict[str, Any]:
        """The camelCase dict as the API server stores it (no status, no unset metadata)."""
        out = self.model_dump(by_alias=True, exclude_none=True, exclude={"status"}, mode="json")
        out["metadata"] = {k: v for k, v in out["metadata"].items() if v not in ({}, None)}
        return out
