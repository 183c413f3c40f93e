"""The FineTuneJob status: what the controller and the trainer report back.

The controller owns phase, conditions, attempts and times; the trainer's rank 0 owns
`progress` and `latestCheckpoint` (the controller never overwrites them).
"""

from enum import StrEnum
from typing import Annotated

from pydantic import Field, Strict

from ftjobs.api.types import ApiModel


class Phase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


TERMINAL_PHASES = (Phase.SUCCEEDED.value, Phase.FAILED.value, Phase.CANCELLED.value)


class ConditionType(StrEnum):
    CREATED = "Created"
    QUEUED = "Queued"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    # True while an attempt's pods are stuck before starting (reason: the pods' waiting
    # reason, e.g. CreateContainerConfigError, ImagePullBackOff, Unschedulable).
    PODS_WAITING = "PodsWaiting"


class Condition(ApiModel):
    """A Kubernetes-style condition."""

    type: str = Field(description="Condition type, e.g. Running or Succeeded.")
    status: str = Field(pattern=r"^(True|False|Unknown)$", description="True, False or Unknown.")
    reason: str = Field(
        default="", max_length=1024, description="CamelCase reason for the last transition."
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: str | None = Field(
        default=None, description="When the status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation the condition was computed from."
    )


class Progress(ApiModel):
    """Training progress published by the trainer's rank 0."""

    step: int = Field(default=0, ge=0, description="Optimizer steps done.")
    total_steps: int | None = Field(default=None, ge=0, description="Optimizer steps planned.")
    epoch: float | None = Field(default=None, ge=0, description="Fractional epoch.")
    loss: float | None = Field(default=None, description="Training loss (smoothed).")
    learning_rate: float | None = Field(default=None, ge=0, description="Current learning rate.")
    samples_per_second: float | None = Field(default=None, ge=0, description="Throughput.")
    eta: str | None = Field(default=None, description="Estimated time left, e.g. 12m30s.")
    percent: int | None = Field(default=None, ge=0, le=100, description="step / totalSteps, in %.")
    update_time: str | None = Field(default=None, description="When this was reported.")


class Checkpoint(ApiModel):
    """A committed checkpoint (its manifest is complete and verified)."""

    step: int = Field(ge=0, description="Optimizer step of the checkpoint.")
    uri: str = Field(description="Where the checkpoint lives.")
    time: str | None = Field(default=None, description="When it was committed.")


class Metrics(ApiModel):
    """Evaluation results, base model vs fine-tuned, on one split."""

    split: str = Field(default="test", description="Split the numbers come from.")
    base: dict[str, float] = Field(default_factory=dict, description="Base model metrics.")
    fine_tuned: dict[str, float] = Field(
        default_factory=dict, description="Fine-tuned model metrics."
    )


class FailureStreak(ApiModel):
    """The latest retriable failure and how many attempts in a row ended with it."""

    signature: str = Field(
        max_length=1024,
        description="The failure (exit code and termination message, numbers masked).",
    )
    attempts: int = Field(ge=1, description="Attempts in a row that failed this way.")
    last_attempt: int = Field(ge=1, description="The attempt that failed this way last.")
    checkpoint_step: int | None = Field(
        default=None,
        ge=0,
        description="latestCheckpoint.step at that failure; a newer checkpoint restarts "
        "the count (the job is making progress).",
    )


class FineTuneJobStatus(ApiModel):
    """Observed state of a FineTuneJob."""

    phase: Annotated[Phase, Strict(False)] | None = Field(
        default=None, description="Lifecycle phase."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Current conditions.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation last reconciled."
    )
    attempt: int = Field(default=0, ge=0, description="Current attempt (1-based once started).")
    restarts: int = Field(default=0, ge=0, description="Retriable failures so far.")
    start_time: str | None = Field(default=None, description="When the first attempt started.")
    completion_time: str | None = Field(default=None, description="When the job finished.")
    next_attempt_time: str | None = Field(
        default=None, description="When the next attempt starts (backoff after a failure)."
    )
    message: str | None = Field(default=None, max_length=32768, description="Last message.")
    last_failure: FailureStreak | None = Field(
        default=None,
        description="The latest retriable failure; the controller stops retrying when it "
        "repeats failurePolicy.maxRepeatedFailures times without a new checkpoint.",
    )
    progress: Progress | None = Field(default=None, description="Training progress.")
    latest_checkpoint: Checkpoint | None = Field(default=None, description="Newest checkpoint.")
    metrics: Metrics | None = Field(default=None, description="Final evaluation results.")
    output_model: str | None = Field(default=None, description="Where the exported model is.")
    base_model: str | None = Field(
        default=None,
        description="spec.model.fromJob resolved when the first attempt was created: the "
        "parent job's exported model, which every attempt of this job starts from.",
    )
