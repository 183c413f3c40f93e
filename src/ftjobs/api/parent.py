"""`model.fromJob`: continuing from an earlier job's result, decided without I/O.

The adapters read the parent (the controller GETs the parent FineTuneJob; `ftjobs run`
looks at the earlier run's local output folder) and hand what they saw to `judge`, which
says whether the job can start from it, must wait for it, or cannot use it. `with_parent`
turns a spec with `model.fromJob` into the spec the trainer runs: `model.uri` set to the
parent's exported model, so the trainer never needs to know where a URI came from; the
parent itself travels in the trainer config (`TrainerConfig.parent`) for the lineage.
"""

from dataclasses import dataclass

from pydantic import Field

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.status import Phase
from ftjobs.api.types import ApiModel

FIELD = "spec.model.fromJob"


class ParentJob(ApiModel):
    """The job a run continues from (`model.fromJob`, resolved)."""

    name: str = Field(description="The parent FineTuneJob (or local run) name.")
    namespace: str = Field(description="Its namespace (`local` for `ftjobs run`).")
    uri: str = Field(description="Its exported model: <its output>/model.")


@dataclass(frozen=True)
class ObservedParent:
    """What the adapter found under the name `model.fromJob` gives."""

    name: str
    found: bool
    phase: str | None = None
    output_model: str | None = None  # status.outputModel (a local run: its model/ folder)


@dataclass(frozen=True)
class Wait:
    """The parent is not finished yet: stay Pending and look again."""

    message: str


@dataclass(frozen=True)
class Unusable:
    """The parent can never be used (missing, failed, cancelled): fail with this message."""

    message: str


def judge(observed: ObservedParent, namespace: str) -> ParentJob | Wait | Unusable:
    """Whether a job can start from `observed` now, later, or never."""
    name = observed.name
    if not observed.found:
        return Unusable(
            f"{FIELD}: FineTuneJob {name!r} not found in namespace {namespace!r} "
            "(the parent must be in the same namespace)"
        )
    phase = observed.phase or Phase.PENDING.value
    if phase in (Phase.FAILED.value, Phase.CANCELLED.value):
        return Unusable(
            f"{FIELD}: FineTuneJob {name!r} ended {phase}; only a Succeeded job has a model "
            "to continue from"
        )
    if phase != Phase.SUCCEEDED.value:
        return Wait(f"{FIELD}: waiting for FineTuneJob {name!r} to succeed (now {phase})")
    if not observed.output_model:
        return Unusable(f"{FIELD}: FineTuneJob {name!r} Succeeded but records no outputModel")
    return ParentJob(name=name, namespace=namespace, uri=observed.output_model)


def with_parent(spec: FineTuneJobSpec, parent: ParentJob) -> FineTuneJobSpec:
    """`spec` with the parent's model as `model.uri` (and no `fromJob`)."""
    model = spec.model.model_copy(update={"uri": parent.uri, "from_job": None})
    return spec.model_copy(update={"model": model})
