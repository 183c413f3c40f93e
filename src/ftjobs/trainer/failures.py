"""Torch and runtime failures of a trainer rank: retriable or not, and what to tell the user.

Storage errors are classified by the storage package and data errors by the data package;
this module owns what torch and the Python runtime raise (`RuntimeError` and its
subclasses, CUDA out of memory) and the one fact that decides most of them: whether this
attempt had finished an optimizer step when it failed.

- Before the first optimizer step of the attempt, a `RuntimeError` that is not about the
  process group (a peer lost, a collective timed out) comes from the model, the config
  or the code (a shape or dtype mismatch, a device mismatch, an unsupported op) and
  fails the same way on every attempt: permanent.
- CUDA out of memory before the first optimizer step is the configuration not fitting
  the GPU: permanent, and the message names the knobs to turn. Later (a longer batch,
  fragmentation, another process on the GPU) a new attempt may fit: retriable, with
  the same hint; the controller stops when the same failure keeps repeating.
- Errors of the process group (a peer's pod was lost) and of the node's GPU (ECC,
  driver) stay retriable at any time.
"""

from __future__ import annotations

from ftjobs.api.constants import EXIT_PERMANENT, EXIT_RETRIABLE

OOM_HINT = (
    "the job does not fit in GPU memory: lower hyperparameters.microBatchSize (keep "
    "globalBatchSize; accumulation makes up the rest), turn on "
    "performance.gradientCheckpointing, raise deepspeed.zeroStage (to 3), or offload "
    "(deepspeed.offloadOptimizer, deepspeed.offloadParameters: cpu)"
)
# Text of errors raised when a peer or the rendezvous is gone (gloo, NCCL, c10d store), or
# when the node's GPU is at fault (a new pod may land on a healthy node).
_INFRASTRUCTURE_MARKERS = (
    "connection closed by peer",
    "connection reset by peer",
    "broken pipe",
    "timed out",
    "timeout",
    "nccl",
    "gloo",
    "c10d",
    "process group",
    "processgroup",
    "socket",
    "rendezvous",
    "ecc error",
    "cuda-capable device",
    "no cuda gpus are available",
    "cuda driver",
    "nvml",
)

_stepped = False


def record_optimizer_step() -> None:
    """Called by the training loop after each optimizer step of this attempt."""
    global _stepped
    _stepped = True


def stepped() -> bool:
    """Whether this attempt has finished an optimizer step."""
    return _stepped


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def is_infrastructure_error(error: BaseException) -> bool:
    """A lost peer, a collective or rendezvous timeout, a faulty GPU: not the job's fault."""
    import torch.distributed as dist

    if isinstance(error, dist.DistError):
        return True
    text = str(error).lower()
    return any(marker in text for marker in _INFRASTRUCTURE_MARKERS)


def classify_runtime(error: BaseException, *, after_first_step: bool) -> int | None:
    """The exit code for a torch/runtime error, or None when it is not one."""
    if is_out_of_memory(error):
        return EXIT_RETRIABLE if after_first_step else EXIT_PERMANENT
    if not isinstance(error, RuntimeError):
        return None
    if is_infrastructure_error(error) or after_first_step:
        return EXIT_RETRIABLE
    return EXIT_PERMANENT


def describe(error: BaseException, *, after_first_step: bool) -> str:
    """The termination message: what failed, and for OOM the knobs first (4 KiB limit)."""
    text = f"{type(error).__name__}: {error}"
    if is_out_of_memory(error):
        when = "after" if after_first_step else "before"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"CUDA out of memory {when} the first optimizer step; {OOM_HINT}. ({first_line})"
    before = isinstance(error, RuntimeError) and not after_first_step
    if before and not is_infrastructure_error(error):
        return f"{text} (before the first optimizer step: a bug or a config error, not retried)"
    return text
