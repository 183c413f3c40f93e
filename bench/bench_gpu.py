"""The GPU benchmark (bench/gpu.sh): tokens/s, MFU and peak GPU memory, one row per setup.

    python bench/bench_gpu.py --rows core,stall,features,lora --gpus 1 --workdir DIR

Rows (all on the same random-weight Llama built from config, the same rows of data and,
for the three loops, the same DeepSpeed config: the one the trainer resolved):
  core      ftjobs trainer | plain DeepSpeed loop | transformers.Trainer (HF) with that
            DeepSpeed config, model and data.
  stall     ftjobs with a checkpoint every K steps (background upload) vs none.
  features  each spec.performance switch flipped from its default: activation
            checkpointing on, prefetch off, fused AdamW off, torch.compile on, eager
            attention, flash_attention_2 (when flash-attn is installed), and packing on/off
            on variable-length rows (tokens/s counts real tokens, no padding).
  lora      LoRA (r=16) on an 8B Llama shape (Llama-3-8B's) with peak memory, and the
            same over 4-bit NF4 base weights (QLoRA) when bitsandbytes is installed.

Times exclude each run's first optimizer step (allocator/cuBLAS warm-up, compilation).
MFU = tokens/s x FLOPs per token / (peak x GPUs), FLOPs per token = 6 N (4 N for LoRA: no
weight gradients of the frozen base) + 12 L d S for attention (forward and backward).
Writes DIR/results.jsonl (one JSON object per row, then the ratios) and prints a table.
`--smoke` runs every row on CPU with a tiny Llama, to prove the script end to end without
a GPU (numbers meaningless). Internal mode `hf` is the transformers.Trainer worker.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_trainer import launch, step_seconds  # noqa: E402

SHAPES: dict[str, dict[str, int]] = {
    "1b": {  # TinyLlama-1.1B
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": 22,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "vocab_size": 32000,
    },
    "8b": {  # Llama-3-8B
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
    },
    "smoke": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 512,
    },
}
GOALS = {
    "mfu_ftjobs": ">= 0.50",
    "ratio_ftjobs_over_plain": ">= 1.0 (tokens/s)",
    "ratio_ftjobs_over_hf": ">= 1.15 (tokens/s)",
    "checkpoint_stall": "<= 0.05",
}


def build_llama(work: Path, shape: str, *, cuda: bool) -> tuple[Path, int, dict[str, int]]:
    """A Llama of `shape` from config with random bf16 weights and the test BPE tokenizer."""
    import torch
    from tests.training.tiny import _bpe_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    out = work / f"model-{shape}"
    dims = SHAPES[shape]
    config = LlamaConfig(**dims, max_position_embeddings=8192, tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device("cuda" if cuda else "cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    if not (out / "config.json").exists():
        model.save_pretrained(out)
        _bpe_tokenizer(seq2seq=False, chat=False).save_pretrained(out)
    del model
    return out, params, dims


def write_rows(path: Path, rows: int, words: int, *, variable: bool) -> Path:
    """Text rows; fixed ones are longer than the sequence (every sample is seq_len tokens),
    variable ones are 1/8 to the full length (what packing is for)."""
    from tests.training.tiny import COLORS, FILLER, NEGATIVE, POSITIVE, THINGS

    vocab = POSITIVE + NEGATIVE + FILLER + COLORS + THINGS
    rng = random.Random(0)
    with path.open("w") as f:
        for _ in range(rows):
            n = rng.randint(max(words // 8, 4), words) if variable else words
            f.write(json.dumps({"text": " ".join(rng.choice(vocab) for _ in range(n))}) + "\n")
    return path


def ftjobs_spec(args: argparse.Namespace, model: Path, data: Path, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "task": "causal-lm",
        "model": {"uri": f"file://{model}", "dtype": "bfloat16" if not args.smoke else "float32"},
        "dataset": {
            "train": f"file://{data}",
            "split": {"validationRatio": 0.0, "testRatio": 0.02},
        },
        "hyperparameters": {
            "learningRate": 1e-4,
            "maxSteps": args.steps,
            "globalBatchSize": args.global_batch,
            "microBatchSize": args.micro_batch,
            "maxSeqLength": args.seq_len,
        },
        "deepspeed": {"zeroStage": 2, "precision": "fp32" if args.smoke else "bf16"},
        "resources": {"nodes": 1, "gpusPerNode": 0 if args.smoke else args.gpus},
        "storage": {"output": f"file://{args.workdir / 'out'}"},
        "evaluation": {"compareBaseModel": False, "maxSamples": 2, "maxNewTokens": 1},
    }
    for key, value in extra.items():
        spec[key] = {**spec.get(key, {}), **value}
    return spec


def run_ftjobs(args: argparse.Namespace, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One trainer run; its steady step time, tokens/s and peak memory."""
    from tests.training.trainer_run import write_config

    from ftjobs.sdk.local import trainer_args

    config = args.workdir / f"{name}.json"
    write_config(config, spec, name=name)
    launch(trainer_args(config), args.workdir / "logs" / name, nnodes=1, nproc=args.nproc)
    job = args.workdir / "out" / "t" / name
    summary = json.loads((job / "summary.json").read_text())
    # The exported model and checkpoints (GBs per row at 1B) are not needed afterwards.
    for bulky in (job / "model", job / "checkpoints", args.workdir / "logs" / name):
        shutil.rmtree(bulky, ignore_errors=True)
    throughput = summary.get("throughput", {})
    return {
        "step_s": step_seconds(summary),
        "tokens_per_s": throughput.get("tokensPerSecond"),
        "peak_memory_bytes": throughput.get("peakMemoryBytes"),
        "ds_config": job / "ds_config.json",
        "config": config,
    }


def run_worker(
    args: argparse.Namespace, mode: str, name: str, base: dict[str, Any]
) -> dict[str, Any]:
    """The plain-DeepSpeed loop (bench_trainer plain) or transformers.Trainer (hf)."""
    result = args.workdir / "logs" / name / "result.json"
    script = Path(__file__).resolve().parent / (
        "bench_trainer.py" if mode == "plain" else "bench_gpu.py"
    )
    command = [str(script), mode, "--config", str(base["config"]), "--ds-config"]
    command += [str(base["ds_config"]), "--steps", str(args.steps), "--result", str(result)]
    launch(command, result.parent, nnodes=1, nproc=args.nproc)
    doc = json.loads(result.read_text())
    return {"step_s": doc["step_s"], "peak_memory_bytes": doc.get("peak_memory_bytes")}


def hf(args: argparse.Namespace) -> None:
    """transformers.Trainer on the trainer's model, data and DeepSpeed config (one rank)."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from ftjobs.api.trainer_config import TrainerConfig
    from ftjobs.trainer.data import prepare_data
    from ftjobs.trainer.runtime import _without_shm_comm
    from ftjobs.trainer.tasks import get_task

    _without_shm_comm()  # no 2-minute native op build on CPU (the trainer avoids it too)
    spec = TrainerConfig.model_validate_json(Path(args.config).read_text()).spec
    ds = json.loads(Path(args.ds_config).read_text())
    task = get_task(str(spec.task))
    data = prepare_data(spec)
    dtype = torch.bfloat16 if ds["bf16"]["enabled"] else torch.float32
    model, tokenizer = task.load_model(
        Path(spec.model.uri.removeprefix("file://")), labels=data.labels, dtype=dtype
    )
    features = task.tokenize(data.train, tokenizer, spec.hyperparameters.max_seq_length)
    optimizer, scheduler = ds["optimizer"]["params"], ds["scheduler"]["params"]
    marks: list[float] = []

    class Timer(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, *_: Any, **__: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            marks.append(time.monotonic())

    training_args = TrainingArguments(
        output_dir=str(Path(args.result).parent / "hf-output"),
        per_device_train_batch_size=ds["train_micro_batch_size_per_gpu"],
        gradient_accumulation_steps=ds["gradient_accumulation_steps"],
        max_steps=args.steps + 1,  # + the untimed warm-up step, like the other loops
        learning_rate=optimizer["lr"],
        weight_decay=optimizer["weight_decay"],
        adam_beta1=optimizer["betas"][0],
        adam_beta2=optimizer["betas"][1],
        adam_epsilon=optimizer["eps"],
        max_grad_norm=ds["gradient_clipping"],
        warmup_steps=scheduler["warmup_num_steps"],
        lr_scheduler_type="linear",
        bf16=ds["bf16"]["enabled"],
        deepspeed={
            **ds,
            "scheduler": {
                **ds["scheduler"],
                "params": {**scheduler, "total_num_steps": args.steps + 1},
            },
        },
        save_strategy="no",
        report_to=[],
        logging_steps=args.steps + 1,
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_drop_last=True,
        seed=spec.hyperparameters.seed,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=features,
        data_collator=task.collator(tokenizer),
        callbacks=[Timer()],
    )
    trainer.train()
    step_s = (marks[-1] - marks[0]) / max(len(marks) - 1, 1)
    if int(os.environ.get("RANK", "0")) == 0:
        peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        Path(args.result).write_text(json.dumps({"step_s": step_s, "peak_memory_bytes": peak}))


def row(
    args: argparse.Namespace,
    name: str,
    run: dict[str, Any],
    *,
    params: int,
    dims: dict[str, int],
    lora: bool = False,
    tokens_per_step: int | None = None,
) -> dict[str, Any]:
    tokens = (
        run.get("tokens_per_s")
        or (tokens_per_step or args.global_batch * args.seq_len) / run["step_s"]
    )
    attention = 12 * dims["num_hidden_layers"] * dims["hidden_size"] * args.seq_len
    flops_per_token = (4 if lora else 6) * params + attention
    peak = run.get("peak_memory_bytes")
    doc = {
        "bench": "gpu",
        "row": name,
        "params": params,
        "step_s": round(run["step_s"], 4),
        "tokens_per_s": round(tokens, 1),
        "mfu": round(tokens * flops_per_token / (args.peak_tflops * 1e12 * args.gpus), 4),
        "peak_memory_gib": round(peak / 2**30, 2) if peak else None,
    }
    emit(args, doc)
    return doc


def emit(args: argparse.Namespace, doc: dict[str, Any]) -> None:
    with (args.workdir / "results.jsonl").open("a") as f:
        f.write(json.dumps(doc) + "\n")
    print(json.dumps(doc), flush=True)


def bench(args: argparse.Namespace) -> None:
    import importlib.util

    cuda = not args.smoke
    os.environ["BENCH_ACCELERATOR"] = "cuda" if cuda else "cpu"
    args.nproc = 1 if args.smoke else args.gpus
    wanted = set(args.rows.split(","))
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    shape = "smoke" if args.smoke else "1b"
    model, params, dims = build_llama(work, shape, cuda=cuda)
    rows_needed = max(args.global_batch * (args.steps + 3) + 8, 200)  # ~4 test rows
    fixed = write_rows(work / "fixed.jsonl", rows_needed, args.seq_len, variable=False)
    common = {"params": params, "dims": dims}
    results: dict[str, dict[str, Any]] = {}

    base = run_ftjobs(args, "ftjobs", ftjobs_spec(args, model, fixed))
    results["ftjobs"] = row(args, "ftjobs", base, **common)
    if "core" in wanted:
        results["plain"] = row(
            args, "plain-deepspeed", run_worker(args, "plain", "plain", base), **common
        )
        results["hf"] = row(args, "hf-trainer", run_worker(args, "hf", "hf", base), **common)
        emit(
            args,
            {
                "bench": "gpu",
                "ratio_ftjobs_over_plain": round(
                    results["ftjobs"]["tokens_per_s"] / results["plain"]["tokens_per_s"], 3
                ),
                "ratio_ftjobs_over_hf": round(
                    results["ftjobs"]["tokens_per_s"] / results["hf"]["tokens_per_s"], 3
                ),
                "mfu_ftjobs": results["ftjobs"]["mfu"],
                "goals": GOALS,
            },
        )
    if "stall" in wanted:
        every = {"everySteps": args.checkpoint_every, "keep": 1}  # ~15 GB each at 1B
        spec = ftjobs_spec(args, model, fixed, checkpointing=every)
        stalled = row(
            args,
            f"ftjobs-checkpoint-every-{args.checkpoint_every}",
            run_ftjobs(args, "ckpt", spec),
            **common,
        )
        emit(
            args,
            {
                "bench": "gpu",
                "checkpoint_stall": round(stalled["step_s"] / results["ftjobs"]["step_s"] - 1, 4),
                "goal": GOALS["checkpoint_stall"],
            },
        )
    if "features" in wanted:
        flips: dict[str, dict[str, Any]] = {
            "gradient-checkpointing": {"gradientCheckpointing": True},
            "no-prefetch": {"prefetch": False},
            "no-fused-adamw": {"fusedOptimizer": False},
            "compile": {"compile": True},
            "eager-attention": {"attention": "eager"},
        }
        if importlib.util.find_spec("flash_attn") is not None and cuda:
            flips["flash-attention-2"] = {"attention": "flash_attention_2"}
        else:
            emit(
                args,
                {
                    "bench": "gpu",
                    "row": "flash-attention-2",
                    "skipped": "flash-attn not installed" if cuda else "CPU",
                },
            )
        for name, perf in flips.items():
            row(
                args,
                name,
                run_ftjobs(args, name, ftjobs_spec(args, model, fixed, performance=perf)),
                **common,
            )
        varlen = write_rows(work / "varlen.jsonl", rows_needed * 4, args.seq_len, variable=True)
        for name, packing in (("varlen-padded", False), ("varlen-packed", True)):
            spec = ftjobs_spec(args, model, varlen, performance={"packing": packing})
            row(args, name, run_ftjobs(args, name, spec), **common)
    if "lora" in wanted:
        big, big_params, big_dims = build_llama(work, "smoke" if args.smoke else "8b", cuda=cuda)
        spec = ftjobs_spec(
            args,
            big,
            fixed,
            lora={"r": 16, "alpha": 32, "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        )
        spec["hyperparameters"]["globalBatchSize"] = spec["hyperparameters"]["microBatchSize"] = (
            args.lora_micro_batch
        )
        run = run_ftjobs(args, "lora", spec)
        row(
            args,
            "lora-8b" if not args.smoke else "lora-smoke",
            run,
            params=big_params,
            dims=big_dims,
            lora=True,
        )
        # QLoRA: the same adapter over 4-bit NF4 base weights (needs bitsandbytes and CUDA).
        if cuda and importlib.util.find_spec("bitsandbytes") is not None:
            spec["performance"] = {"quantization": "nf4"}
            run = run_ftjobs(args, "qlora", spec)
            row(args, "qlora-8b", run, params=big_params, dims=big_dims, lora=True)
        else:
            why = "bitsandbytes not installed" if cuda else "CPU"
            emit(args, {"bench": "gpu", "row": "qlora-8b", "skipped": why})
    print_table(args)


def print_table(args: argparse.Namespace) -> None:
    lines = [json.loads(line) for line in (args.workdir / "results.jsonl").read_text().splitlines()]
    print("\n| row | tokens/s | MFU | peak GPU memory (GiB) | step (s) |")
    print("|---|---|---|---|---|")
    for doc in lines:
        if "row" in doc and "skipped" not in doc:
            cells = [doc["row"], f"{doc['tokens_per_s']:.0f}", f"{doc['mfu']:.1%}"]
            cells += [str(doc["peak_memory_gib"]), str(doc["step_s"])]
            print("| " + " | ".join(cells) + " |")
    for doc in lines:
        if "row" not in doc or "skipped" in doc:
            print(json.dumps(doc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    p = sub.add_parser("hf")
    p.add_argument("--config", required=True)
    p.add_argument("--ds-config", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--result", required=True)
    parser.add_argument("--rows", default="core,stall,features,lora")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--global-batch", type=int, default=16)
    parser.add_argument("--lora-micro-batch", type=int, default=4)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU")
    args = parser.parse_args()
    if args.mode == "hf":
        hf(args)
        return
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    bench(args)


if __name__ == "__main__":
    main()
