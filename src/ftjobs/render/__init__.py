"""Pure rendering of a FineTuneJob spec into Kubernetes objects (plain dicts).

No I/O, no Kubernetes client: the same inputs give the same dicts, which the controller
creates, `ftjobs render` prints and the golden tests compare.
"""

from ftjobs.render.children import (
    CHILD_KINDS,
    JOB,
    ChildKind,
    ObjectRef,
    attempt_refs,
    creation_stages,
    job_ref,
    job_refs,
)
from ftjobs.render.identity import is_namespace_identity, uses_shared_identity
from ftjobs.render.job import attempt_network, render_attempt, render_job, render_rbac
from ftjobs.render.meta import ChildNames, child_names
from ftjobs.render.settings import RenderSettings

__all__ = [
    "CHILD_KINDS",
    "JOB",
    "ChildKind",
    "ChildNames",
    "ObjectRef",
    "RenderSettings",
    "attempt_network",
    "attempt_refs",
    "child_names",
    "creation_stages",
    "is_namespace_identity",
    "job_ref",
    "job_refs",
    "render_attempt",
    "render_job",
    "render_rbac",
    "uses_shared_identity",
]
