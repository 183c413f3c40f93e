"""The resolved trainer config as JSON (the trainer's only input), carried by the attempt's
Job in a pod-template annotation that a downwardAPI volume mounts as a file (render.volumes).

No ConfigMap of its own: that would be one more API write per attempt before the Job, and
the pod template is as immutable per attempt as a ConfigMap would be.
"""

import json
from typing import Any

from ftjobs.api.constants import CONFIG_ANNOTATION, CONFIG_MAX_BYTES
from ftjobs.api.parent import ParentJob, with_parent
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.trainer_config import TrainerConfig


def trainer_config(
    spec: FineTuneJobSpec,
    *,
    name: str,
    namespace: str,
    uid: str,
    attempt: int,
    resume: bool,
    parent: ParentJob | None = None,
) -> TrainerConfig:
    if parent is not None:  # model.fromJob: the trainer gets the parent's model as model.uri
        spec = with_parent(spec, parent)
    config = TrainerConfig.for_job(
        spec, name=name, namespace=namespace, uid=uid, attempt=attempt, parent=parent
    )
    # The controller decides: attempt 1 of a fresh job starts clean, later attempts resume.
    config.resume = resume
    return config


def config_json(config: TrainerConfig) -> str:
    """camelCase JSON with sorted keys: byte-identical for equal configs (diffs, goldens)."""
    data = json.loads(config.model_dump_json(by_alias=True))
    return json.dumps(data, sort_keys=True, indent=2) + "\n"


class ConfigTooLarge(ValueError):
    """The resolved config does not fit in the pod-template annotation that carries it."""


def config_annotation(config: TrainerConfig) -> dict[str, str]:
    """The pod-template annotation that carries `config`; ConfigTooLarge past CONFIG_MAX_BYTES
    (the API server would refuse the Job, or Kueue's annotations would no longer fit)."""
    text = config_json(config)
    size = len(CONFIG_ANNOTATION) + len(text.encode())
    if size > CONFIG_MAX_BYTES:
        raise ConfigTooLarge(
            f"the resolved trainer config is {size} bytes of JSON, more than the "
            f"{CONFIG_MAX_BYTES} that fit in the Job's pod annotation {CONFIG_ANNOTATION}; "
            f"largest: {_largest_spec_field(config)}"
        )
    return {CONFIG_ANNOTATION: text}


def _largest_spec_field(config: TrainerConfig) -> str:
    """`spec.<field> (N bytes)` for the spec field that takes the most room, to shrink."""
    spec = json.loads(config.spec.model_dump_json(by_alias=True, exclude_none=True))
    sizes = {key: len(json.dumps(value).encode()) for key, value in spec.items()}
    key = max(sizes, key=lambda k: sizes[k])
    return f"spec.{key} ({sizes[key]} bytes)"


def stored_config(job: dict[str, Any]) -> str:
    """The config JSON a rendered or stored Job carries: the file its pods read."""
    return str(job["spec"]["template"]["metadata"]["annotations"][CONFIG_ANNOTATION])
