"""What happens while a job runs: checkpoints, evaluation, tracking, durations, retries."""

from pydantic import Field

from ftjobs.api.types import (
    ApiModel,
    DnsSubdomain,
    HttpUrl,
    ShortStr,
)


class Checkpointing(ApiModel):
    """When to checkpoint and how many to keep."""

    every_steps: int | None = Field(
        default=None, ge=1, description="Checkpoint every N optimizer steps."
    )
    every_seconds: int | None = Field(
        default=None, ge=30, description="Checkpoint at most every N seconds of training."
    )
    keep: int = Field(default=2, ge=1, le=1000, description="Checkpoints kept (newest).")
    resume: bool = Field(
        default=True, description="Resume from the latest complete checkpoint when one exists."
    )
    resume_from_step: int | None = Field(
        default=None,
        ge=1,
        description="Restart the first attempt from this step's checkpoint (it must be complete "
        "and verify); newer checkpoints of the job are discarded. Retries resume from the latest.",
    )


class Evaluation(ApiModel):
    """Validation during training and the final test."""

    every_steps: int | None = Field(
        default=None, ge=1, description="Validate every N steps; only at the end when unset."
    )
    metrics: list[ShortStr] | None = Field(
        default=None, max_length=16, description="Metrics to compute; the task's defaults if unset."
    )
    compare_base_model: bool = Field(
        default=True, description="Also evaluate the base model, for a before/after comparison."
    )
    max_samples: int | None = Field(
        default=None, ge=1, description="Evaluate on at most this many rows per split."
    )
    max_new_tokens: int = Field(
        default=64, ge=1, le=4096, description="Generation cap for generative metrics."
    )


class MlflowTracking(ApiModel):
    """An MLflow tracking server: params, metrics and artifacts of every attempt."""

    tracking_uri: HttpUrl = Field(description="MLflow tracking server URL (http or https).")
    experiment: ShortStr = Field(
        default="ftjobs", description="Experiment name (created when it does not exist)."
    )
    credentials_secret: DnsSubdomain | None = Field(
        default=None,
        description="Secret with MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
        "MLFLOW_TRACKING_TOKEN, passed to the pods as environment variables.",
    )


class Tracking(ApiModel):
    """Experiment tracking. TensorBoard event files are always written to <output>/tb/."""

    mlflow: MlflowTracking | None = Field(
        default=None, description="Also log to this MLflow tracking server."
    )


# A positive whole number of seconds, minutes or hours (a Go/CEL duration subset).
DURATION_PATTERN = r"^[1-9][0-9]{0,5}(s|m|h)$"
DEFAULT_STARTUP_TIMEOUT = "10m"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(value: str) -> int:
    """Seconds of a duration that matched DURATION_PATTERN ("10m" -> 600)."""
    return int(value[:-1]) * _DURATION_UNITS[value[-1]]


class FailurePolicy(ApiModel):
    """What to do when a pod fails."""

    max_restarts: int = Field(
        default=3, ge=0, le=1000, description="Retriable failures tolerated before Failed."
    )
    backoff_seconds: int = Field(
        default=10, ge=0, le=86_400, description="First delay before a new attempt; doubles."
    )
    max_backoff_seconds: int = Field(default=600, ge=0, le=86_400, description="Delay cap.")
    max_repeated_failures: int = Field(
        default=3,
        ge=2,
        le=1000,
        description="Stop retrying (Failed, reason RepeatedFailure) when this many attempts "
        "in a row fail with the same error (exit code and message, numbers aside) and no "
        "new checkpoint in between: retrying would only fail the same way again.",
    )
