"""spec.resources.scratchSize: the /scratch emptyDir's sizeLimit, and the trainer's bound."""

from typing import Any

from ftjobs.api import constants as c
from ftjobs.render import RenderSettings
from tests.builders import make_job
from tests.unit.render.helpers import env, pod_spec, render


def _scratch(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {v["name"]: v for v in pod_spec(objects)["volumes"]}["scratch"]["emptyDir"]


def test_scratch_size_limits_the_volume_and_tells_the_trainer() -> None:
    objects = render(make_job("llm").spec("resources.scratchSize", "200Gi"))
    assert _scratch(objects) == {"sizeLimit": "200Gi"}
    assert env(objects)[c.SCRATCH_SIZE_ENV] == {"name": c.SCRATCH_SIZE_ENV, "value": "200Gi"}


def test_without_it_the_node_disk_and_no_bound() -> None:
    objects = render(make_job("llm"))
    assert _scratch(objects) == {}
    assert c.SCRATCH_SIZE_ENV not in env(objects)


def test_the_spec_wins_over_the_controllers_default() -> None:
    settings = RenderSettings(scratch_size_limit="50Gi")
    assert _scratch(render(make_job("llm"), settings=settings)) == {"sizeLimit": "50Gi"}
    job = make_job("llm").spec("resources.scratchSize", "300Gi")
    assert _scratch(render(job, settings=settings)) == {"sizeLimit": "300Gi"}
