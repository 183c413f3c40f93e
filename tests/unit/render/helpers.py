"""Rendering helpers for the render tests: fixed identity, objects by kind, the pod spec."""

from typing import Any

from ftjobs.api.job import FineTuneJob
from ftjobs.render import RenderSettings, render_job
from ftjobs.render.config import stored_config
from tests.builders import JobBuilder

NAMESPACE = "ml"
UID = "6f1c2a57-3d0e-4c8f-9a1b-2e4d5f6a7b8c"


def render(
    job: JobBuilder | FineTuneJob,
    *,
    attempt: int = 1,
    resume: bool = False,
    uid: str = UID,
    settings: RenderSettings | None = None,
) -> list[dict[str, Any]]:
    built = job.build() if isinstance(job, JobBuilder) else job
    assert built.metadata.name
    return render_job(
        built,
        namespace=NAMESPACE,
        name=built.metadata.name,
        uid=uid,
        attempt=attempt,
        resume=resume,
        settings=settings or RenderSettings(),
    )


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [o["kind"] for o in objects]
    assert len(kinds) == len(set(kinds)), kinds
    return {o["kind"]: o for o in objects}


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = by_kind(objects)["Job"]["spec"]["template"]["spec"]
    return spec


def trainer_config_json(objects: list[dict[str, Any]]) -> str:
    """The config file the pods read: the Job's pod-template annotation."""
    return stored_config(by_kind(objects)["Job"])


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = pod_spec(objects)["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


def env(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    entries = container(objects)["env"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env vars: {names}"
    return {e["name"]: e for e in entries}


def arg(command: list[str], flag: str) -> str:
    """The value of `--flag=value` or `--flag value` in a command line."""
    for i, part in enumerate(command):
        if part == flag:
            return command[i + 1]
        if part.startswith(flag + "="):
            return part.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {command}")
