"""Which accelerator `ftjobs run` uses: every visible NVIDIA GPU by default, else the CPU.

No torch here (the SDK stays light): the GPUs come from `nvidia-smi` (index and compute
capability), narrowed by CUDA_VISIBLE_DEVICES as CUDA itself would. With GPUs the run is
the pod's GPU path: one trainer process per GPU, NCCL, and bf16 when every GPU supports
it (compute capability 8.0+, Ampere and newer) and the spec does not choose a precision.
Without a GPU (no driver, no nvidia-smi, CUDA_VISIBLE_DEVICES empty) nothing changes:
CPU processes, gloo, the spec's precision.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping

# Compute capability from which CUDA GPUs do bf16 matmuls natively (Ampere).
BF16_MIN_CAPABILITY = 8.0

Query = Callable[[], list[float]]


def nvidia_smi_capabilities() -> list[float]:
    """Compute capability of each GPU the driver sees, in index order ([] without one)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    caps = []
    for line in out.splitlines():
        try:
            caps.append(float(line.strip()))
        except ValueError:
            caps.append(0.0)  # an old driver without compute_cap: a GPU, bf16 unknown
    return caps


def visible_gpus(
    env: Mapping[str, str] | None = None, query: Query = nvidia_smi_capabilities
) -> list[float]:
    """Compute capabilities of the GPUs this process may use (CUDA_VISIBLE_DEVICES)."""
    env = os.environ if env is None else env
    caps = query()
    mask = env.get("CUDA_VISIBLE_DEVICES")
    if mask is None:
        return caps
    picked: list[float] = []
    for item in (x.strip() for x in mask.split(",")):
        if not item.isdigit():
            break  # CUDA stops at the first invalid entry ("-1", "" hide every GPU)
        if int(item) < len(caps):
            picked.append(caps[int(item)])
    return picked


def choose_gpus(requested: int | None, visible: int) -> int:
    """--gpus N (None: all visible; 0: the CPU); more than are visible is an error."""
    if requested is None:
        return visible
    if requested > visible:
        raise ValueError(
            f"--gpus {requested}: {visible} GPU(s) visible to this process "
            "(nvidia-smi, CUDA_VISIBLE_DEVICES); use --gpus 0 for the CPU"
        )
    return requested


def local_precision(chosen: str | None, gpus: int, capabilities: list[float]) -> str | None:
    """The precision override for a local run: None keeps the spec's.

    Only when the spec does not choose (`chosen` None) and every GPU used does bf16.
    """
    if chosen is not None or gpus == 0:
        return None
    used = capabilities[:gpus]
    if used and all(cap >= BF16_MIN_CAPABILITY for cap in used):
        return "bf16"
    return None
