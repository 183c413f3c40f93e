"""The Kubernetes objects of one attempt of a FineTuneJob, for `ftjobs render` and GitOps.

A thin wrapper over the pure `ftjobs.render.render_job`: it fills what a cluster would
provide (namespace, uid) from the document or from the caller.
"""

from __future__ import annotations

from typing import Any

from ftjobs.api.job import FineTuneJob
from ftjobs.api.parent import ParentJob
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.trainer_config import job_output_uri
from ftjobs.api.validation import FieldError, SpecError


def render_manifests(
    job: FineTuneJob,
    *,
    namespace: str | None = None,
    attempt: int = 1,
    image: str | None = None,
) -> list[dict[str, Any]]:
    """The child objects the controller would create for `attempt` of `job`.

    The namespace is the caller's, else the document's, else `default`; a job read from
    a file has no uid yet, so owner references carry an empty one (the controller sets it).
    """
    # Imported here so that `ftjobs validate` does not pay for (or depend on) the renderer.
    from ftjobs.render import RenderSettings, render_job

    name = job.metadata.name
    if not name:
        raise SpecError([FieldError("metadata.name", "required to render the job's objects")])
    if attempt < 1:
        raise SpecError([FieldError("", f"attempt must be >= 1 (got {attempt})")])
    settings = RenderSettings(image=image) if image else RenderSettings()
    namespace = namespace or job.metadata.namespace or "default"
    return render_job(
        job,
        namespace=namespace,
        name=name,
        uid=job.metadata.uid or "",
        attempt=attempt,
        resume=job.spec.checkpointing.resume,
        settings=settings,
        parent=assumed_parent(job.spec, namespace),
    )


def assumed_parent(spec: FineTuneJobSpec, namespace: str) -> ParentJob | None:
    """model.fromJob as the controller would resolve it when the parent writes to the same
    storage.output (the controller reads the parent's status.outputModel instead)."""
    name = spec.model.from_job
    if name is None:
        return None
    uri = job_output_uri(spec.storage.output, namespace, name) + "/model"
    return ParentJob(name=name, namespace=namespace, uri=uri)
