"""The resolved trainer config: what the controller (or `ftjobs run`) hands the trainer.

It travels as JSON in an annotation of the attempt's Job pod template (CONFIG_ANNOTATION,
which a downwardAPI volume mounts at CONFIG_MOUNT_DIR/CONFIG_FILE_NAME) and is the only
input of `python -m ftjobs.trainer --config FILE` besides the environment (credentials,
torchrun's rank variables).
"""

from pydantic import Field

from ftjobs.api.parent import ParentJob
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.types import ApiModel


def job_output_uri(output: str, namespace: str, name: str) -> str:
    """`<storage.output>/<namespace>/<name>` without a trailing slash (docs/storage-layout.md)."""
    return f"{output.rstrip('/')}/{namespace}/{name}"


class TrainerConfig(ApiModel):
    """Everything a trainer process needs to run one attempt of a FineTuneJob."""

    name: str = Field(description="FineTuneJob name.")
    namespace: str = Field(default="default", description="FineTuneJob namespace.")
    uid: str = Field(default="", description="FineTuneJob UID (empty for local runs).")
    attempt: int = Field(default=1, ge=1, description="Attempt number, 1-based.")
    resume: bool = Field(
        default=True, description="Resume from the latest committed checkpoint if one exists."
    )
    output_uri: str = Field(description="Resolved output prefix: <output>/<namespace>/<name>.")
    spec: FineTuneJobSpec
    parent: ParentJob | None = Field(
        default=None,
        description="The job this one continues from (model.fromJob); spec.model.uri is "
        "already its model.",
    )

    @classmethod
    def for_job(
        cls,
        spec: FineTuneJobSpec,
        *,
        name: str,
        namespace: str = "default",
        uid: str = "",
        attempt: int = 1,
        parent: ParentJob | None = None,
    ) -> "TrainerConfig":
        return cls(
            name=name,
            namespace=namespace,
            uid=uid,
            attempt=attempt,
            resume=spec.checkpointing.resume,
            output_uri=job_output_uri(spec.storage.output, namespace, name),
            spec=spec,
            parent=parent,
        )
