"""Trainer benchmarks, each measured side by side in one run (docs/architecture.md, Tests).

    python bench/bench_trainer.py step-time  [--rounds 2 --steps 30]
        ftjobs trainer vs a minimal plain-DeepSpeed loop: same model, data, DeepSpeed config
        (the one the trainer resolved), same 2 processes as 2 nodes. Goal: ratio <= 1.05.
    python bench/bench_trainer.py checkpoint [--rounds 2 --steps 30 --every 5]
        trainer step time with background checkpoint uploads every k steps vs none.
        Goal: slowdown <= 5 %.
    The GPU benchmark (trainer vs plain DeepSpeed vs transformers.Trainer, feature rows)
    is bench/bench_gpu.py, started by bench/gpu.sh; it reuses `launch` and `plain` here.
    python bench/bench_trainer.py streaming  [--rows 20000]
        samples/s of the data pipeline (prepare_data streaming + tokenize) from the S3
        server (versitygw, tests/fixtures/s3.py) vs the same file on local disk. Goal >= 0.9.

Model and data: all-MiniLM-L6-v2 and the sentiment tweets of `hack/prepare_demo.py
sentiment` (FTJOBS_DEMO_DIR), i.e. the quickstart's real model. Rounds alternate A/B so
drift of a shared machine's load hits both sides alike; the median of each is reported.
Prints one JSON line per measurement and a summary line per benchmark.

`plain` is an internal mode: the plain-DeepSpeed loop, started by the launcher. It times
the optimizer steps after the first (cuBLAS/allocator warm-up), like the trainer's
`timings.first_step_s` lets the benchmarks do for the trainer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEMO = Path(os.environ.get("FTJOBS_DEMO_DIR", Path.home() / ".cache" / "ftjobs" / "demo"))
MODEL = DEMO / "models" / "minilm"
TRAIN = DEMO / "data" / "sentiment" / "train.jsonl"


def _spec(output: Path, steps: int, every: int | None, data: Path = TRAIN) -> dict[str, Any]:
    return {
        "task": "sequence-classification",
        "model": {"uri": f"file://{MODEL}"},
        "dataset": {
            "train": f"file://{data}",
            "labels": ["negative", "positive"],
            "split": {"validationRatio": 0.02, "testRatio": 0.02},
        },
        "hyperparameters": {
            "learningRate": 1e-4,
            "maxSteps": steps,
            "globalBatchSize": 16,
            "microBatchSize": 8,
            "maxSeqLength": 64,
        },
        "deepspeed": {"zeroStage": 2},
        "resources": {"nodes": 2},
        "storage": {"output": f"file://{output}"},
        "checkpointing": {"everySteps": every, "keep": 2} if every else {},
        "evaluation": {"compareBaseModel": False, "maxSamples": 8},
    }


def launch(command: list[str], workdir: Path, *, nnodes: int = 2, nproc: int = 1) -> None:
    """`nnodes` launcher processes of `nproc` workers running `command`; raise on failure.

    CPU (gloo) unless BENCH_ACCELERATOR=cuda. Logs: `workdir`/node-<i>.log.
    """
    from ftjobs.sdk.local import free_port, launcher_argv

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    procs = []
    accelerator = os.environ.get("BENCH_ACCELERATOR", "cpu")
    for node in range(nnodes):
        env = dict(
            os.environ,
            DS_ACCELERATOR=accelerator,
            HF_HUB_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            OMP_NUM_THREADS="1" if accelerator == "cpu" else "4",
            FTJOBS_SCRATCH=str(workdir / f"scratch-{node}"),
            FTJOBS_TERMINATION_LOG=str(workdir / f"term-{node}"),
        )
        log = (workdir / f"node-{node}.log").open("wb")
        procs.append(
            subprocess.Popen(
                launcher_argv(command, nnodes=nnodes, node_rank=node, nproc=nproc, port=port),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    codes = [p.wait() for p in procs]
    if any(codes):
        tail = (workdir / "node-0.log").read_text()[-3000:]
        raise SystemExit(f"run failed {codes} in {workdir}:\n{tail}")


def trainer_step_s(workdir: Path, steps: int, every: int | None = None) -> tuple[float, Path]:
    """Seconds per optimizer step of the ftjobs trainer (its own train-loop timing)."""
    from tests.training.trainer_run import write_config

    from ftjobs.sdk.local import trainer_args

    out = workdir / "out"
    write_config(workdir / "job.json", _spec(out, steps, every), name="bench")
    launch(trainer_args(workdir / "job.json"), workdir)
    job = out / "t" / "bench"
    return step_seconds(json.loads((job / "summary.json").read_text())), job / "ds_config.json"


def step_seconds(summary: dict[str, Any]) -> float:
    """Seconds per optimizer step of a trainer run after its first (warm-up) step."""
    timings = summary["timings"]
    steps = max(summary["steps"] - 1, 1)
    return float(timings["train_s"] - timings.get("first_step_s", 0.0)) / steps


def plain_step_s(workdir: Path, steps: int, ds_config: Path, config: Path) -> float:
    result = workdir / "plain.json"
    launch(
        [
            str(Path(__file__).resolve()),
            "plain",
            "--config",
            str(config),
            "--ds-config",
            str(ds_config),
            "--steps",
            str(steps),
            "--result",
            str(result),
        ],
        workdir,
    )
    return float(json.loads(result.read_text())["step_s"])


def plain(args: argparse.Namespace) -> None:
    """The minimal plain-DeepSpeed loop on one rank: same model, data and DS config.

    Data and model come through the same task adapter as the trainer (outside the timed
    loop), so the loop machinery is the only difference being measured.
    """
    import deepspeed
    import torch

    from ftjobs.api.trainer_config import TrainerConfig
    from ftjobs.trainer.data import prepare_data
    from ftjobs.trainer.runtime import _without_shm_comm
    from ftjobs.trainer.tasks import get_task
    from ftjobs.trainer.tasks.common import to_device

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    _without_shm_comm()  # the same native op build the trainer avoids
    deepspeed.init_distributed()
    spec = TrainerConfig.model_validate_json(Path(args.config).read_text()).spec
    config = json.loads(Path(args.ds_config).read_text())
    torch.manual_seed(42)
    task = get_task(str(spec.task))
    data = prepare_data(spec)
    dtype = torch.bfloat16 if spec.deepspeed.precision == "bf16" else torch.float32
    model, tokenizer = task.load_model(
        Path(spec.model.uri.removeprefix("file://")), labels=data.labels, dtype=dtype
    )
    features = task.tokenize(data.train, tokenizer, spec.hyperparameters.max_seq_length)
    # The same samples in the same order as the trainer's first epoch (padding lengths,
    # hence compute, depend on which rows share a batch).
    order = torch.randperm(
        len(features), generator=torch.Generator().manual_seed(spec.hyperparameters.seed)
    ).tolist()
    mine = [features[i] for i in order[rank::world]]
    collate = task.collator(tokenizer)
    engine, _, _, _ = deepspeed.initialize(
        model=model, model_parameters=model.parameters(), config=config
    )
    mbs, gas = config["train_micro_batch_size_per_gpu"], config["gradient_accumulation_steps"]
    engine.train()
    started = time.monotonic()
    micro = 0
    for step in range(args.steps + 1):  # step 0 warms up, untimed
        if step == 1:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            started = time.monotonic()
        for _ in range(gas):
            start = (micro * mbs) % max(len(mine) - mbs, 1)
            batch = to_device(collate(mine[start : start + mbs]), engine.device)
            loss = engine(**batch).loss
            engine.backward(loss)
            engine.step()
            micro += 1
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    step_s = (time.monotonic() - started) / max(args.steps, 1)
    if rank == 0:
        peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        Path(args.result).write_text(json.dumps({"step_s": step_s, "peak_memory_bytes": peak}))
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()


def _emit(doc: dict[str, Any]) -> None:
    print(json.dumps(doc), flush=True)


def step_time(args: argparse.Namespace) -> None:
    trainer, plain_loop = [], []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-a-") as a:
            t, ds_config = trainer_step_s(Path(a), args.steps)
            keep = Path(tempfile.mkdtemp(prefix="bench-ds-"))
            (keep / "ds_config.json").write_text(ds_config.read_text())
            (keep / "job.json").write_text((Path(a) / "job.json").read_text())
        with tempfile.TemporaryDirectory(prefix="bench-b-") as b:
            p = plain_step_s(Path(b), args.steps, keep / "ds_config.json", keep / "job.json")
        trainer.append(t)
        plain_loop.append(p)
        _emit({"bench": "step-time", "round": r, "trainer_step_s": t, "plain_step_s": p})
    ratio = statistics.median(trainer) / statistics.median(plain_loop)
    _emit({"bench": "step-time", "ratio_trainer_over_plain": round(ratio, 3), "goal": "<= 1.05"})


def checkpoint(args: argparse.Namespace) -> None:
    none, some = [], []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-n-") as a:
            n, _ = trainer_step_s(Path(a), args.steps)
        with tempfile.TemporaryDirectory(prefix="bench-c-") as b:
            c, _ = trainer_step_s(Path(b), args.steps, every=args.every)
        none.append(n)
        some.append(c)
        _emit({"bench": "checkpoint", "round": r, "no_ckpt_step_s": n, "ckpt_step_s": c})
    slowdown = statistics.median(some) / statistics.median(none) - 1
    _emit(
        {
            "bench": "checkpoint",
            "every_steps": args.every,
            "slowdown": round(slowdown, 4),
            "goal": "<= 0.05",
        }
    )


def streaming(args: argparse.Namespace) -> None:
    from tests.fixtures.s3 import S3Server

    from ftjobs.api.spec import FineTuneJobSpec
    from ftjobs.storage import datasets_storage_options
    from ftjobs.trainer.data import prepare_data
    from ftjobs.trainer.tasks import get_task

    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    source = DEMO / "data" / "sentiment" / "movies.jsonl"
    lines = source.read_text().splitlines()
    rows = []
    for i in range(args.rows):  # unique rows (dedupe would drop repeats)
        doc = json.loads(lines[i % len(lines)])
        doc["text"] = f"{doc['text']} #{i}"
        rows.append(json.dumps(doc))
    local = work / "train.jsonl"
    local.write_text("\n".join(rows) + "\n")
    size_mb = local.stat().st_size / 2**20

    server = S3Server.start(work / "s3", die_with_parent=True)
    try:
        os.environ.update(server.env())
        client = server.client()
        client.create_bucket(Bucket="bench")
        client.upload_file(str(local), "bench", "train.jsonl")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(MODEL, local_files_only=True)
        task = get_task("sequence-classification")

        def rate(uri: str) -> float:
            doc = _spec(work, 1, None)
            doc["dataset"].update(train=uri, streaming=True)
            spec = FineTuneJobSpec.model_validate(doc)
            started = time.monotonic()
            data = prepare_data(
                spec,
                storage_options=lambda: datasets_storage_options(server.endpoint_url),
            )
            count = sum(1 for _ in task.tokenize(data.train, tokenizer, 64))
            return count / (time.monotonic() - started)

        s3_rates, local_rates = [], []
        for r in range(args.rounds):
            s = rate("s3://bench/train.jsonl")
            f = rate(f"file://{local}")
            s3_rates.append(s)
            local_rates.append(f)
            _emit({"bench": "streaming", "round": r, "s3_samples_s": s, "local_samples_s": f})
        ratio = statistics.median(s3_rates) / statistics.median(local_rates)
        _emit(
            {
                "bench": "streaming",
                "rows": args.rows,
                "mb": round(size_mb, 1),
                "ratio_s3_over_local": round(ratio, 3),
                "goal": ">= 0.9",
            }
        )
    finally:
        server.stop(clean=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("step-time", "checkpoint"):
        p = sub.add_parser(name)
        p.add_argument("--rounds", type=int, default=2)
        p.add_argument("--steps", type=int, default=30)
        p.add_argument("--every", type=int, default=5)
    p = sub.add_parser("streaming")
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=2)
    p = sub.add_parser("plain")
    p.add_argument("--config", required=True)
    p.add_argument("--ds-config", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--result", required=True)
    args = parser.parse_args()
    modes = {
        "step-time": step_time,
        "checkpoint": checkpoint,
        "streaming": streaming,
        "plain": plain,
    }
    modes[args.mode](args)


if __name__ == "__main__":
    main()
