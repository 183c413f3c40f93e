"""`python -m tests.training.device_probe REPORT CONFIG...`: trainer runs on the fake device.

Runs each TrainerConfig through `ftjobs.trainer.__main__.run` (setup, train, evaluate,
export; the same code path as a pod) in this one process, a world of one on gloo, inside
`fake_device` (tests/training/fake_device.py), and writes to REPORT what the device
boundaries saw: `{"checks": {boundary: tensors}, "violations": [...], "errors": [...]}`.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from ftjobs.api.trainer_config import TrainerConfig
from tests.training.fake_device import Placement, fake_device


def main(argv: list[str]) -> None:
    from ftjobs.trainer.__main__ import run
    from ftjobs.trainer.progress import setup_logging
    from ftjobs.trainer.runtime import exit_now, world_from_env

    report, configs = Path(argv[0]), [Path(a) for a in argv[1:]]
    world = world_from_env()
    setup_logging(world.rank)
    placement = Placement()
    errors: list[str] = []
    with fake_device(placement):
        for path in configs:
            try:
                run(TrainerConfig.model_validate_json(path.read_text()), world)
            except Exception as e:
                traceback.print_exc()
                errors.append(f"{path.name}: {type(e).__name__}: {e}")
    doc = {"checks": placement.checks, "violations": placement.violations, "errors": errors}
    report.write_text(json.dumps(doc, indent=2))
    exit_now(0)


if __name__ == "__main__":
    main(sys.argv[1:])
