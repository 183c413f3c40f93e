"""`python -m ftjobs.trainer --config job.json`: one rank of a FineTuneJob attempt.

Launched by `python -m ftjobs.trainer.launch` (or torchrun), which sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT. The exit code is the contract with the
controller (ftjobs.api.constants): 0 success, EXIT_RETRIABLE (75) when a new attempt can
succeed (SIGTERM, lost peer, storage trouble), EXIT_PERMANENT (78) when it cannot (bad
spec, data or model). The reason goes to the termination log (/dev/termination-log, or
FTJOBS_TERMINATION_LOG), which Kubernetes shows as the pod's termination message.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ftjobs.api.constants import EXIT_PERMANENT, EXIT_RETRIABLE, EXIT_SUCCESS, TERMINATION_LOG
from ftjobs.api.errors import FtjobsError
from ftjobs.api.trainer_config import TrainerConfig

if TYPE_CHECKING:
    from ftjobs.trainer.progress import ProgressReporter

log = logging.getLogger("ftjobs.trainer")

# Kubernetes keeps at most 4096 bytes of termination message.
_MESSAGE_LIMIT = 4000


def classify(error: BaseException) -> int:
    """The exit code for an exception that ended the attempt."""
    from ftjobs.trainer import failures

    runtime = failures.classify_runtime(error, after_first_step=failures.stepped())
    if runtime is not None:  # torch/runtime errors: ftjobs.trainer.failures decides
        return runtime
    if isinstance(error, FtjobsError):
        # The one hierarchy (ftjobs.api.errors): trainer, data, Kubernetes and storage
        # errors (storage.failures decides per error: network, 5xx, throttling
        # retriable; wrong bucket, key or permissions permanent).
        return EXIT_RETRIABLE if error.retriable else EXIT_PERMANENT
    if isinstance(error, ValidationError):
        return EXIT_PERMANENT
    if isinstance(error, (ConnectionError, TimeoutError)):
        return EXIT_RETRIABLE
    if isinstance(error, (MemoryError, OSError)):
        # Host memory and I/O trouble are infrastructure: a new attempt resumes from the
        # last checkpoint.
        return EXIT_RETRIABLE
    # Anything else (TypeError, KeyError, ...) is a bug or a spec the code cannot handle;
    # retrying would fail the same way.
    return EXIT_PERMANENT


def write_termination_log(message: str) -> None:
    """Best effort: the message for `kubectl describe` / the controller."""
    from ftjobs.storage.errors import redact

    path = Path(os.environ.get("FTJOBS_TERMINATION_LOG", TERMINATION_LOG))
    try:
        with path.open("w") as f:
            f.write(redact(message)[:_MESSAGE_LIMIT])
    except OSError:
        pass  # not in a pod (no /dev/termination-log) and no override: logs carry it


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ftjobs.trainer")
    parser.add_argument("--config", required=True, type=Path, help="TrainerConfig JSON file")
    args = parser.parse_args(argv)

    from ftjobs.trainer.progress import setup_logging
    from ftjobs.trainer.runtime import exit_now, world_from_env

    world = world_from_env()
    setup_logging(world.rank)
    code, message = EXIT_SUCCESS, ""
    try:
        config = TrainerConfig.model_validate_json(args.config.read_text())
        code = run(config, world)
    except BaseException as e:  # every way out gets an exit code and a message
        if isinstance(e, SystemExit) and e.code in (None, 0):
            code = EXIT_SUCCESS
        elif isinstance(e, KeyboardInterrupt):
            code, message = EXIT_RETRIABLE, "interrupted"
        else:
            from ftjobs.storage.errors import redact
            from ftjobs.trainer import failures

            code = classify(e)
            message = redact(failures.describe(e, after_first_step=failures.stepped()))
        if code != EXIT_SUCCESS:
            kind = "retriable" if code == EXIT_RETRIABLE else "permanent"
            log.error("rank %d failed (%s, exit %d): %s", world.rank, kind, code, message)
            write_termination_log(message)
    # A failed rank skips the final barrier: its peers may already be gone.
    exit_now(code, synchronize=code == EXIT_SUCCESS)


def run(config: TrainerConfig, world: object) -> int:
    """Set up, train, evaluate and export; 0 on success (failures raise)."""
    from ftjobs.trainer.progress import CompositeReporter, StorageReporter
    from ftjobs.trainer.recipe import Recipe
    from ftjobs.trainer.runtime import World, init_distributed

    assert isinstance(world, World)
    init_distributed(world)
    from ftjobs.storage import open_store

    reporter = None
    if world.is_main:
        spec = config.spec
        out = open_store(config.output_uri, storage=spec.storage)
        reporter = CompositeReporter(
            StorageReporter(out), *_trackers(config, world, out), *_extra_reporters(config)
        )
    recipe = Recipe(config, world, reporter)
    recipe.setup()
    recipe.train()
    recipe.finish()
    return EXIT_SUCCESS


def _trackers(config: TrainerConfig, world: object, out: Any) -> list[ProgressReporter]:
    """TensorBoard event files (always), MLflow (when spec.tracking.mlflow is set)."""
    from ftjobs.trainer.runtime import World, scratch_dir
    from ftjobs.trainer.tracking import TensorBoardReporter

    assert isinstance(world, World)
    trackers: list[ProgressReporter] = []
    try:
        local = scratch_dir() / f"tb-attempt-{config.attempt}"
        trackers.append(TensorBoardReporter(out, local))
    except Exception as e:  # tracking never stops training
        log.warning("TensorBoard event files disabled: %s", e)
    mlflow = config.spec.tracking.mlflow
    if mlflow is not None:
        from ftjobs.trainer.tracking import MlflowReporter

        try:
            trackers.append(
                MlflowReporter(
                    config,
                    out,
                    scratch_dir(),
                    tracking_uri=mlflow.tracking_uri,
                    experiment=mlflow.experiment,
                )
            )
        except Exception as e:
            from ftjobs.storage.errors import redact

            log.warning("MLflow tracking at %s disabled: %s", mlflow.tracking_uri, redact(str(e)))
    return trackers


def _extra_reporters(config: TrainerConfig) -> list[ProgressReporter]:
    """The Kubernetes status reporter when running in a cluster (FTJOBS_REPORT_STATUS=1)."""
    if os.environ.get("FTJOBS_REPORT_STATUS") != "1":
        return []
    from ftjobs.trainer.progress_k8s import KubernetesProgressReporter

    return [KubernetesProgressReporter(config.namespace, config.name)]


if __name__ == "__main__":
    main(sys.argv[1:])
