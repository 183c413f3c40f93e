"""The GPU check (bench/gpu-check.sh): every task fine-tunes on CUDA, survives a SIGTERM
and resumes; then the throughput benchmark. One JSON summary.

    python bench/gpu_check.py --workdir DIR [--smoke] [--bench-rows core,stall]

Per task (classification, causal-lm with LoRA, seq2seq, question-answering), on a tiny
model built from config and the learnable toy rows of tests/training/tiny.py:
  1. the trainer starts (1 node, 1 process per GPU, bf16 on CUDA) with a checkpoint every
     5 steps, 200 steps in all (40 with --smoke);
  2. once a checkpoint is committed it gets SIGTERM, as Kubernetes sends it, and must
     exit retriable (75) after saving;
  3. a second attempt resumes from the checkpoint LATEST names and runs to maxSteps.
Passes when both exit codes are right, the summary says it resumed from that step and
reached maxSteps, and the training loss fell (mean of the last quarter of the logged steps
below the mean of the first quarter).
Then bench/bench_gpu.py runs the `--bench-rows` rows. The summary (DIR/gpu-check.json)
also goes to stdout; the exit code is 1 when any task failed.

`--smoke` runs the same on CPU (gloo, fp32) so the script is known to work end to end
without a GPU; it is what tests/training/test_gpu_check_smoke.py runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.training.tiny import make_tiny_model, tiny_dataset  # noqa: E402
from tests.training.trainer_run import deep_merge, progress, write_config  # noqa: E402

from ftjobs.api.constants import EXIT_RETRIABLE  # noqa: E402
from ftjobs.sdk.local import free_port, launcher_argv, trainer_args  # noqa: E402

# task -> (tiny model kind, spec overrides)
TASKS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "sequence-classification": ("bpe", {}),
    # causal-lm also packs and checkpoints activations: both paths run on CUDA here.
    "causal-lm": (
        "llama",
        {
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
            "performance": {"packing": True, "gradientCheckpointing": True},
        },
    ),
    "seq2seq": ("t5", {}),
    "question-answering": ("bpe", {}),
}


def _spec(
    args: argparse.Namespace, task: str, model: Path, data: Path, out: Path
) -> dict[str, Any]:
    cuda = not args.smoke
    spec: dict[str, Any] = {
        "task": task,
        "model": {"uri": f"file://{model}"},
        "dataset": {"train": f"file://{data}", "split": {"validationRatio": 0.1, "testRatio": 0.1}},
        "hyperparameters": {
            "learningRate": 2e-2,
            "maxSteps": args.steps,
            "globalBatchSize": 8,
            "microBatchSize": 8,
            "maxSeqLength": 64,
            "warmupSteps": 2,
        },
        "deepspeed": {"zeroStage": 2, "precision": "bf16" if cuda else "fp32"},
        "resources": {"nodes": 1, "gpusPerNode": 1 if cuda else 0},
        "storage": {"output": f"file://{out}"},
        "checkpointing": {"everySteps": 5, "keep": 2},
        "evaluation": {"maxSamples": 16, "maxNewTokens": 8},
    }
    return deep_merge(spec, TASKS[task][1])


def _start(config: Path, logdir: Path, *, cuda: bool) -> tuple[subprocess.Popen[bytes], Path]:
    logdir.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        DS_ACCELERATOR="cuda" if cuda else "cpu",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="4" if cuda else "1",
        FTJOBS_SCRATCH=str(logdir / "scratch"),
        FTJOBS_TERMINATION_LOG=str(logdir / "termination-log"),
    )
    log = logdir / "node-0.log"
    argv = launcher_argv(trainer_args(config), nnodes=1, node_rank=0, nproc=1, port=free_port())
    with log.open("wb") as f:
        proc = subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT)
    return proc, log


def _latest(job: Path) -> int | None:
    latest = job / "checkpoints" / "LATEST"
    if not latest.exists():
        return None
    return int(latest.read_text().strip().removeprefix("step-"))


def check_task(args: argparse.Namespace, task: str) -> dict[str, Any]:
    started = time.monotonic()
    root = args.workdir / task
    kind = TASKS[task][0]
    model = make_tiny_model(task, root / "model", kind=kind)
    data = tiny_dataset(task, root / "data", n=160)
    config = root / "job.json"
    write_config(config, _spec(args, task, model, data, root / "out"), name=task)
    job = root / "out" / "t" / task
    result: dict[str, Any] = {"task": task, "ok": False}
    cuda = not args.smoke

    # 1-2. run until a checkpoint at step >= 5 is committed, then SIGTERM.
    proc, log = _start(config, root / "attempt-1", cuda=cuda)
    deadline = time.monotonic() + args.task_timeout
    while (_latest(job) or 0) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    try:
        result["first_exit"] = proc.wait(timeout=args.task_timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        result["first_exit"] = "timeout"
    stopped_at = _latest(job)
    result["stopped_at_step"] = stopped_at
    if result["first_exit"] != EXIT_RETRIABLE:
        result["error"] = "first attempt did not stop retriable: " + log.read_text()[-2000:]
        return result

    # 3. resume to the end.
    proc, log = _start(config, root / "attempt-2", cuda=cuda)
    try:
        result["second_exit"] = proc.wait(timeout=args.task_timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        result["second_exit"] = "timeout"
    if result["second_exit"] != 0 or not (job / "summary.json").exists():
        result["error"] = "resumed attempt failed: " + log.read_text()[-2000:]
        return result
    summary = json.loads((job / "summary.json").read_text())
    losses = [r["loss"] for r in progress(job) if r.get("event") == "progress" and "loss" in r]
    result.update(
        resumed_from=summary["resumedFromStep"],
        steps=summary["steps"],
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        first_quarter_loss=_mean(losses[: max(len(losses) // 4, 1)]),
        last_quarter_loss=_mean(losses[-max(len(losses) // 4, 1) :]),
        metrics=summary["metrics"],
        throughput=summary.get("throughput"),
        seconds=round(time.monotonic() - started, 1),
    )
    problems = []
    if summary["resumedFromStep"] != stopped_at:
        problems.append(f"resumed from {summary['resumedFromStep']}, LATEST was {stopped_at}")
    if summary["steps"] != args.steps:
        problems.append(f"ran {summary['steps']} steps, not {args.steps}")
    quarter = max(len(losses) // 4, 1)
    early, late = losses[:quarter], losses[-quarter:]
    if not losses or not sum(late) / len(late) < sum(early) / len(early):
        problems.append(f"loss did not fall (first vs last quarter of the steps): {losses}")
    result["ok"] = not problems
    if problems:
        result["error"] = "; ".join(problems)
    return result


def run_benchmark(args: argparse.Namespace) -> list[dict[str, Any]]:
    work = args.workdir / "bench"
    env = dict(os.environ, WORKDIR=str(work), ROWS=args.bench_rows)
    if args.smoke:
        env["SMOKE"] = "1"
    else:
        env.setdefault("STEPS", "20")
    env.setdefault("PY", sys.executable)
    code = subprocess.call(["bash", str(REPO / "bench" / "gpu.sh")], env=env)
    results = work / "results.jsonl"
    rows = (
        [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    )
    return rows if code == 0 else [*rows, {"error": f"bench/gpu.sh exited {code}"}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true", help="CPU, gloo, fp32 (no GPU)")
    parser.add_argument("--steps", type=int, default=None, help="200 on CUDA, 40 with --smoke")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--task-timeout", type=float, default=240.0)
    parser.add_argument("--bench-rows", default="core,stall", help="'' skips the benchmark")
    args = parser.parse_args()
    args.steps = args.steps or (40 if args.smoke else 200)
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def one(task: str) -> dict[str, Any]:
        print(f"gpu-check: {task} ...", file=sys.stderr, flush=True)
        result = check_task(args, task)
        error = str(result.get("error", ""))[:300]
        print(f"gpu-check: {task} ok={result['ok']} {error}", file=sys.stderr, flush=True)
        return result

    # The tiny models share one GPU easily, so the tasks run side by side there; the
    # CPU smoke run takes them one at a time.
    with ThreadPoolExecutor(max_workers=1 if args.smoke else len(TASKS)) as pool:
        tasks = list(pool.map(one, args.tasks.split(",")))
    bench = run_benchmark(args) if args.bench_rows else []
    summary = {
        "device": "cpu (smoke)" if args.smoke else _gpu_name(),
        "ok": all(t["ok"] for t in tasks) and not any("error" in b for b in bench),
        "tasks": tasks,
        "benchmark": bench,
        "seconds": round(time.monotonic() - started, 1),
    }
    text = json.dumps(summary, indent=2, default=str)
    (args.workdir / "gpu-check.json").write_text(text + "\n")
    print(text)
    return 0 if summary["ok"] else 1


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def _gpu_name() -> str:
    import torch

    return str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "no CUDA"


if __name__ == "__main__":
    raise SystemExit(main())
