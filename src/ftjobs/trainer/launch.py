"""`python -m ftjobs.trainer.launch`: a torchrun-compatible launcher that keeps exit codes.

torchrun exits 1 whenever a worker fails, whatever the worker's code was, so a pod
running torchrun cannot tell the controller "retriable" (75) from "permanent" (78); and
on SIGTERM it gives workers 30 s before SIGKILL, whatever the pod's grace period. This
launcher takes torchrun's static-rendezvous flags, starts the node's worker processes
with the same environment torchrun gives them (RANK, LOCAL_RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT), forwards SIGTERM/SIGINT to them
and waits (the pod's grace period bounds the wait), and exits with one code for the
node, combined from the workers' codes by `ftjobs.api.exit_codes.combined_exit_code`:
78 if any worker exited permanent (78 or an unknown code), else 75 if any exited 75 or
was killed by a signal, else 0.

    python -m ftjobs.trainer.launch --nnodes 2 --node-rank 0 --nproc-per-node 1 \\
        --master-addr job-0.svc --master-port 29500 -m ftjobs.trainer --config job.json

No torch import: the launcher stays small and starts fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from ftjobs.api.constants import MASTER_PORT
from ftjobs.api.exit_codes import combined_exit_code

# After one worker fails, the others get this long to notice and exit on their own
# (a collective fails as soon as a peer is gone) before they are terminated.
FAILURE_GRACE_S = 30.0


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m ftjobs.trainer.launch")
    parser.add_argument("--nnodes", type=int, default=1)
    parser.add_argument("--node-rank", "--node_rank", type=int, default=0)
    parser.add_argument("--nproc-per-node", "--nproc_per_node", type=int, default=1)
    parser.add_argument("--master-addr", "--master_addr", default="127.0.0.1")
    parser.add_argument("--master-port", "--master_port", type=int, default=MASTER_PORT)
    parser.add_argument("-m", dest="module", help="run a module (python -m)")
    args, rest = parser.parse_known_args(argv)
    if rest and rest[0] == "--":
        rest = rest[1:]
    if not args.module and not rest:
        parser.error("give the worker as -m MODULE [ARGS] or SCRIPT [ARGS]")
    return args, rest


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    command = [sys.executable, "-m", args.module, *rest] if args.module else [sys.executable, *rest]
    world = args.nnodes * args.nproc_per_node
    procs: list[subprocess.Popen[bytes]] = []
    for local in range(args.nproc_per_node):
        env = dict(os.environ)
        env.update(
            RANK=str(args.node_rank * args.nproc_per_node + local),
            LOCAL_RANK=str(local),
            WORLD_SIZE=str(world),
            LOCAL_WORLD_SIZE=str(args.nproc_per_node),
            GROUP_RANK=str(args.node_rank),
            NODE_RANK=str(args.node_rank),
            MASTER_ADDR=args.master_addr,
            MASTER_PORT=str(args.master_port),
        )
        procs.append(subprocess.Popen(command, env=env))

    def forward(signum: int, _frame: FrameType | None) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    failed_at: float | None = None
    while any(p.poll() is None for p in procs):
        if failed_at is None and any(p.returncode not in (None, 0) for p in procs):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > FAILURE_GRACE_S:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        time.sleep(0.1)
    return combined_exit_code([p.returncode for p in procs])


if __name__ == "__main__":
    sys.exit(main())
