"""What the trainer checks in setup so that nothing trained is lost at the end.

Before any training step: the output prefix accepts writes (`storage.probe_write`), and
the scratch volume has room for the export of this model (`api.export_size`). Both
would otherwise fail only after the last step, with the compute already spent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from ftjobs.api.constants import SCRATCH_SIZE_ENV
from ftjobs.api.errors import PermanentError
from ftjobs.api.export_size import bytes_per_weight, export_bytes
from ftjobs.api.quantity import format_bytes, gibibytes_quantity, quantity_bytes
from ftjobs.api.spec import FineTuneJobSpec


class ScratchSpaceError(PermanentError):
    """The scratch volume cannot hold the export; the message says what to set."""


def used_bytes(path: Path) -> int:
    """Bytes of the files under `path` (what counts against an emptyDir's sizeLimit)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:  # removed while walking (a background upload finished)
                continue
    return total


def free_scratch_bytes(path: Path) -> tuple[int, str]:
    """Bytes still writable under `path`, and where the bound comes from.

    The filesystem's free space; with a size limit (`spec.resources.scratchSize`, the
    pod's emptyDir sizeLimit, passed as FTJOBS_SCRATCH_SIZE), the limit minus what the
    volume holds, when smaller: the kubelet evicts a pod over its limit even when the
    node's disk has room.
    """
    free = shutil.disk_usage(path).free
    limit = os.environ.get(SCRATCH_SIZE_ENV, "")
    if limit:
        room = max(quantity_bytes(limit) - used_bytes(path), 0)
        if room < free:
            return room, f"spec.resources.scratchSize {limit}"
    return free, "free on the filesystem"


def model_params(model: torch.nn.Module) -> int:
    """Weights of `model`; a ZeRO-3 partitioned parameter counts whole."""
    return sum(int(getattr(p, "ds_numel", p.numel())) for p in model.parameters())


def check_export_space(model: torch.nn.Module, spec: FineTuneJobSpec, scratch: Path) -> None:
    """Raise ScratchSpaceError when the export of `model` (the base model, before LoRA
    wraps it) will not fit under `scratch` next to what the volume already holds."""
    params = model_params(model)
    needed = export_bytes(spec, params=params)
    free, bound = free_scratch_bytes(scratch)
    if needed > free:
        held = used_bytes(scratch)
        raise ScratchSpaceError(
            f"not enough scratch space for the export under {scratch}: needs "
            f"~{format_bytes(needed)} ({params:,} weights x {bytes_per_weight(spec)} bytes, "
            f"plus margin), {format_bytes(free)} left ({bound}); set "
            f"spec.resources.scratchSize to at least {gibibytes_quantity(needed + held)} "
            "(the volume also holds the downloaded model and checkpoint staging)"
        )
