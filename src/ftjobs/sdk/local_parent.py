"""`model.fromJob` for `ftjobs run`: the parent is an earlier local run with that name.

A local run's output is `<output>/local/<name>/`; the parent is usable when its run
finished (`summary.json` written after the export) and left `model/README.md` behind.
Nothing waits here: a local parent that is not finished is an error.
"""

from __future__ import annotations

from ftjobs.api.parent import FIELD, ParentJob, with_parent
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.trainer_config import job_output_uri
from ftjobs.api.validation import FieldError, SpecError
from ftjobs.storage import StorageError, open_store


def resolve_local_parent(
    spec: FineTuneJobSpec, namespace: str
) -> tuple[FineTuneJobSpec, ParentJob | None]:
    """`spec` with model.fromJob replaced by the earlier run's model, and that run."""
    name = spec.model.from_job
    if name is None:
        return spec, None
    output = job_output_uri(spec.storage.output, namespace, name)
    try:
        store = open_store(output, storage=spec.storage)
        finished = store.exists("summary.json")
        exported = store.exists("model/README.md")
    except StorageError as exc:
        why = f"cannot read the run {name!r} at {output}: {exc}"
        raise SpecError([FieldError(FIELD, why)]) from None
    if not finished or not exported:
        why = "has not finished (no summary.json)" if not finished else "exported no model/"
        raise SpecError(
            [
                FieldError(
                    FIELD,
                    f"no finished local run {name!r} under {spec.storage.output} "
                    f"({output} {why}); run it first with `ftjobs run` and the same "
                    "--output-dir",
                )
            ]
        )
    parent = ParentJob(name=name, namespace=namespace, uri=f"{output}/model")
    return with_parent(spec, parent), parent
