"""The FineTuneJob resource: apiVersion/kind, metadata, spec and status."""

from typing import Any, Literal

from pydantic import ConfigDict, Field

from ftjobs.api.constants import API_VERSION, KIND
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.status import FineTuneJobStatus
from ftjobs.api.types import JOB_NAME_MAX, JOB_NAME_PATTERN, ApiModel, DnsLabel


class ObjectMeta(ApiModel):
    """The part of Kubernetes metadata ftjobs reads; server-set fields pass through."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(
        default=None,
        pattern=JOB_NAME_PATTERN,
        max_length=JOB_NAME_MAX,
        description="Job name (DNS-1035 label, at most 40 characters: child objects add "
        "suffixes).",
    )
    generate_name: str | None = Field(default=None, max_length=34, pattern=r"^[a-z][-a-z0-9]*$")
    namespace: DnsLabel | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None


class FineTuneJob(ApiModel):
    """A fine-tuning job on Kubernetes (ftjobs.dev/v1alpha1)."""

    api_version: Literal["ftjobs.dev/v1alpha1"] = Field(
        default=API_VERSION, description="ftjobs.dev/v1alpha1"
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
