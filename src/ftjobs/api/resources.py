"""Compute for the training pods (spec.resources): nodes, GPUs, processes, scheduling."""

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from ftjobs.api.types import (
    LABEL_KEY_PATTERN,
    LABEL_VALUE_PATTERN,
    ApiModel,
    DnsSubdomain,
    ImageRef,
    Quantity,
    RuleError,
    cel,
)

TOLERATION_KEY = "operator must be Exists when key is empty (a toleration of every taint)"
TOLERATION_VALUE = "value must be empty when operator is Exists"
TOLERATION_SECONDS = "tolerationSeconds needs effect NoExecute"


class Toleration(ApiModel):
    """A Kubernetes toleration for the training pods."""

    # Kubernetes' own rules for a pod's tolerations: without them the FineTuneJob is
    # accepted and its Job refused, leaving the job stuck in Pending.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.operator == 'Exists' || (has(self.key) && self.key != '')",
                    TOLERATION_KEY,
                    ".operator",
                ),
                cel(
                    "self.operator != 'Exists' || !has(self.value) || self.value == ''",
                    TOLERATION_VALUE,
                    ".value",
                ),
                cel(
                    "!has(self.tolerationSeconds) || "
                    "(has(self.effect) && self.effect == 'NoExecute')",
                    TOLERATION_SECONDS,
                    ".tolerationSeconds",
                ),
            ]
        }
    )

    key: str | None = Field(
        default=None, max_length=316, pattern=LABEL_KEY_PATTERN, description="Taint key."
    )
    operator: Literal["Equal", "Exists"] = Field(default="Equal", description="Match operator.")
    value: str | None = Field(
        default=None, max_length=63, pattern=LABEL_VALUE_PATTERN, description="Taint value."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect; all effects when unset."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="How long a NoExecute taint is tolerated."
    )

    @model_validator(mode="after")
    def _rules(self) -> "Toleration":
        if self.operator != "Exists" and not self.key:
            raise RuleError("operator", TOLERATION_KEY)
        if self.operator == "Exists" and self.value:
            raise RuleError("value", TOLERATION_VALUE)
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise RuleError("tolerationSeconds", TOLERATION_SECONDS)
        return self


class Resources(ApiModel):
    """Compute for the training pods: one pod per node, one process per GPU."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.processesPerNode) || self.gpusPerNode == 0 "
                    "|| self.processesPerNode == self.gpusPerNode",
                    "processesPerNode must equal gpusPerNode when GPUs are requested",
                    ".processesPerNode",
                )
            ]
        }
    )

    nodes: int = Field(default=1, ge=1, le=1024, description="Pods (nodes) in the job.")
    gpus_per_node: int = Field(default=0, ge=0, le=16, description="GPUs per pod; 0 trains on CPU.")
    processes_per_node: int | None = Field(
        default=None,
        ge=1,
        le=128,
        description="Trainer processes per pod; gpusPerNode by default, 1 on CPU.",
    )
    cpu: Quantity = Field(default="2", description="CPU request (and limit) per pod.")
    memory: Quantity = Field(default="8Gi", description="Memory request (and limit) per pod.")
    shared_memory: Quantity | None = Field(
        default=None, description="Size of /dev/shm (dataloader workers, NCCL)."
    )
    scratch_size: Quantity | None = Field(
        default=None,
        description="Size of each pod's /scratch volume (downloaded model, checkpoint "
        "staging, the exported model): its emptyDir sizeLimit. The trainer checks in setup, "
        "and `ftjobs preflight` before submitting, that the export fits. Unset: the node's "
        "free disk.",
    )
    image: ImageRef | None = Field(
        default=None, description="Trainer image; the controller's default when unset."
    )
    node_selector: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]] = (
        Field(default_factory=dict, max_length=64, description="Node labels the pods must match.")
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=64, description="Tolerations for the pods."
    )
    priority_class_name: DnsSubdomain | None = Field(default=None, description="PriorityClass.")
    scheduler_name: DnsSubdomain | None = Field(
        default=None, description="Scheduler for the pods (e.g. a gang scheduler)."
    )

    @property
    def procs_per_node(self) -> int:
        if self.gpus_per_node:
            return self.gpus_per_node
        return self.processes_per_node or 1

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node

    @model_validator(mode="after")
    def _rules(self) -> "Resources":
        if (
            self.processes_per_node is not None
            and self.gpus_per_node
            and self.processes_per_node != self.gpus_per_node
        ):
            raise RuleError(
                "processesPerNode",
                "processesPerNode must equal gpusPerNode when GPUs are requested",
            )
        return self
