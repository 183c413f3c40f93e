"""The attempt's ConfigMap: the resolved trainer config as JSON (the trainer's only input)."""

import json
from typing import Any

from ftjobs.api.constants import CONFIG_FILE_NAME
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


def config_map(meta: dict[str, Any], config: TrainerConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        # Each attempt gets its own ConfigMap, never updated in place.
        "immutable": True,
        "data": {CONFIG_FILE_NAME: config_json(config)},
    }
