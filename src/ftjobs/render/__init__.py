"""Pure rendering of a FineTuneJob spec into Kubernetes objects (plain dicts).

No I/O, no Kubernetes client: the same inputs give the same dicts, which the controller
creates, `ftjobs render` prints and the golden tests compare.
"""

from ftjobs.render.job import render_attempt, render_job, render_rbac
from ftjobs.render.meta import ChildNames, child_names
from ftjobs.render.settings import RenderSettings

__all__ = [
    "ChildNames",
    "RenderSettings",
    "child_names",
    "render_attempt",
    "render_job",
    "render_rbac",
]
