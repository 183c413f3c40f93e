"""Process-level plumbing of one trainer rank: distributed setup, seeds and RNG state,
SIGTERM, scratch space, and the deterministic exit.

Why the exit is explicit: with gloo, a rank can abort inside interpreter shutdown (C++
destructors of the process group racing with Python finalisation) after all the work is
done, turning a success into a crash in ~5 % of runs. `exit_now` ends every rank the same
way: barrier, destroy the process group, flush stdio, `os._exit(code)` — no finalisers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ftjobs.api.constants import SCRATCH_DIR

log = logging.getLogger("ftjobs.trainer")


@dataclass(frozen=True)
class World:
    """Where this process sits: global rank, world size, rank on its node, node count."""

    rank: int
    size: int
    local_rank: int
    local_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """Ranks from torchrun's environment (a single process when launched without it)."""
    return World(
        rank=int(os.environ.get("RANK", "0")),
        size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        local_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
    )


def _without_shm_comm() -> None:
    """Keep DeepSpeed from building its shared-memory collectives op.

    DeepSpeed's TorchBackend builds `deepspeed_shm_comm` (a C++ op, 1-2 minutes of
    compiling on first use) whenever `deepspeed.ops.__compatible_ops__` says the op is
    compatible; there is no environment variable or config key for it in 0.19. That dict
    is computed lazily on first access and cached as a module global, and nothing else
    reads it at runtime, so seeding the cache before `init_distributed` turns the op off
    (gloo does the collectives, which is what training on CPU here uses anyway).
    """
    import deepspeed.ops

    compatible = deepspeed.ops.__dict__.get("__compatible_ops__")
    if compatible is None:
        deepspeed.ops.__dict__["__compatible_ops__"] = {"deepspeed_shm_comm": False}
    else:
        compatible["deepspeed_shm_comm"] = False


def init_distributed(world: World, timeout_s: int = 1800) -> None:
    """Join the process group (gloo on CPU, nccl on GPU) through DeepSpeed."""
    import deepspeed

    os.environ.setdefault("DS_ACCELERATOR", "cpu" if not torch.cuda.is_available() else "cuda")
    _without_shm_comm()
    cuda = torch.cuda.is_available() and os.environ["DS_ACCELERATOR"] == "cuda"
    if cuda:
        torch.cuda.set_device(world.local_rank)
    # A local rendezvous listens on loopback only; DeepSpeed then adopts the group.
    from ftjobs.trainer.rendezvous import init_loopback_group

    timeout = timedelta(seconds=timeout_s)
    # A process joins its world once (DeepSpeed's init_distributed skips the same way); the
    # device-placement test runs several jobs in one process.
    if not dist.is_initialized():
        init_loopback_group("nccl" if cuda else "gloo", world.rank, world.size, timeout)
    deepspeed.init_distributed(dist_backend=None, timeout=timeout, dist_init_required=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG state of this rank (goes into the checkpoint)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StopSignal:
    """Remembers SIGTERM/SIGINT; the training loop checks `requested` between steps.

    The handler only sets a flag: the current step finishes, all ranks agree to stop
    (one all-reduce per step), a checkpoint is taken synchronously, and the process exits
    with the retriable code. A second signal falls back to the default action.
    """

    def __init__(self) -> None:
        self.requested: str | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.requested = signal.Signals(signum).name
        # Async-signal context: no logging module here (it takes locks).
        os.write(2, f"ftjobs: {self.requested} received, stopping after this step\n".encode())


def scratch_dir() -> Path:
    """Local disk for model files, checkpoints and exports of this node.

    FTJOBS_SCRATCH, else the pod's /scratch volume, else a temporary directory. Ranks keep
    their own sub-directories, so a scratch shared by several nodes (local simulation)
    and one per node (Kubernetes) both work.
    """
    if env := os.environ.get("FTJOBS_SCRATCH"):
        root = Path(env)
    elif os.access(SCRATCH_DIR, os.W_OK):
        root = Path(SCRATCH_DIR)
    else:
        root = Path(tempfile.gettempdir()) / "ftjobs-scratch"
    root.mkdir(parents=True, exist_ok=True)
    return root


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def exit_now(code: int, *, synchronize: bool = True) -> None:
    """End this rank deterministically with `code` (see the module docstring).

    `synchronize=False` skips the barrier (a failure path: peers may be gone).
    """
    try:
        if dist.is_available() and dist.is_initialized():
            if synchronize:
                dist.barrier()
            dist.destroy_process_group()
    except Exception as e:  # a dead peer must not turn a clean code into a crash
        log.warning("process group teardown failed: %s", e)
        if code == 0:
            code = 75  # the work is done but a peer is gone: let the controller decide
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def agree(device: torch.device, *flags: bool) -> list[bool]:
    """Each flag is true on all ranks when it is true on any (one all-reduce on `device`)."""
    values = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    if dist.is_initialized():
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [bool(v) for v in values.tolist()]


def throughput(tokens: int, train_s: float, device: torch.device) -> dict[str, float]:
    """Tokens/s of all ranks together (this rank's `tokens` in `train_s`) and this rank's
    peak accelerator memory."""
    total = torch.tensor([float(tokens)], device=device)
    if dist.is_initialized():
        dist.all_reduce(total)
    out = {"tokensPerSecond": round(float(total) / max(train_s, 1e-9), 1)}
    if device.type == "cuda":
        out["peakMemoryBytes"] = float(torch.cuda.max_memory_allocated(device))
    return out
