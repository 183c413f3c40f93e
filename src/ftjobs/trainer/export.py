"""Export the fine-tuned model as a Hugging Face folder with a model card and a manifest.

`<output>/model/` holds config.json, model.safetensors, the tokenizer and README.md (the
model card); with LoRA it holds the PEFT adapter instead (adapter_config.json,
adapter_model.safetensors), plus `merged/` with full weights when `lora.mergeOnExport`.
The folder is committed with the storage package's `upload_dir` (MANIFEST.json last), so
a reader never sees half an export.

Weights are gathered first under ZeRO-3 (each rank holds a slice of every parameter), and
every tensor is cloned before saving: safetensors refuses tensors that share storage, and
DeepSpeed can leave tied weights (embeddings / LM head) as views of one buffer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.trainer.runtime import World

log = logging.getLogger("ftjobs.trainer.export")


@contextlib.contextmanager
def full_parameters(model: torch.nn.Module, zero_stage: int) -> Iterator[None]:
    """Inside, every rank sees the full parameters (a collective under ZeRO-3)."""
    if zero_stage == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
            yield
    else:
        yield


def _cloned_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}


def _is_peft(model: torch.nn.Module) -> bool:
    return hasattr(model, "peft_config")


def _quantizers(model: torch.nn.Module) -> list[tuple[torch.nn.Module, Any]]:
    """(module, transformers quantizer) for every module that carries one."""
    found = []
    for module in model.modules():
        quantizer = getattr(module, "hf_quantizer", None)
        if quantizer is not None:
            found.append((module, quantizer))
    return found


def _method(quantizer: Any) -> str:
    method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", None)
    return str(getattr(method, "value", method) or "unknown")  # an enum in transformers


def export_blocker(model: torch.nn.Module) -> str | None:
    """Why `save_model` could not save this model, or None. Checked in setup, before any
    training, so a model that cannot be exported fails in seconds rather than at the end.

    GGUF is no blocker: transformers dequantizes GGUF weights when it loads them, so the
    weights in memory are plain tensors and are exported as such (`release_gguf`).
    """
    for _, quantizer in _quantizers(model):
        method = _method(quantizer)
        if method == "gguf":
            continue
        serializable = getattr(quantizer, "is_serializable", None)
        if callable(serializable) and not serializable():
            return f"the model is quantized with {method}, which transformers cannot save"
    return None


def release_gguf(model: torch.nn.Module) -> bool:
    """Drop the GGUF marks of a GGUF-loaded model so it saves as plain safetensors.

    The weights were dequantized at load time; only the marks make `save_pretrained`
    refuse ("quantized with gguf and is not serializable"), which used to lose a whole
    finished run at export. Returns whether the model came from GGUF.
    """
    released = False
    for module, quantizer in _quantizers(model):
        if _method(quantizer) != "gguf":
            continue
        setattr(module, "hf_quantizer", None)  # noqa: B010  (nn.Module typing)
        for name in ("is_quantized", "quantization_method"):
            if name in vars(module):
                delattr(module, name)
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "quantization_config"):
            del config.quantization_config
        released = True
    return released


def save_model(
    model: torch.nn.Module,
    tokenizer: Any,
    out_dir: Path,
    *,
    world: World,
    zero_stage: int,
    merge_lora: bool,
) -> None:
    """Write the HF folder to `out_dir` on rank 0 (all ranks must call: ZeRO-3 gathers)."""
    with full_parameters(model, zero_stage):
        if not world.is_main:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        release_gguf(model)
        if _is_peft(model):
            model.save_pretrained(str(out_dir))  # type: ignore[operator]  # the adapter only
            if merge_lora:
                import copy

                merged = copy.deepcopy(model).merge_and_unload()  # type: ignore[operator]
                merged.save_pretrained(
                    str(out_dir / "merged"), state_dict=_cloned_state_dict(merged)
                )
                tokenizer.save_pretrained(str(out_dir / "merged"))
        else:
            model.save_pretrained(  # type: ignore[operator]
                str(out_dir), state_dict=_cloned_state_dict(model)
            )
        tokenizer.save_pretrained(str(out_dir))


def _table(metrics: Mapping[str, Mapping[str, float]]) -> str:
    base, tuned = metrics.get("base", {}), metrics.get("fine_tuned", {})
    names = sorted(set(base) | set(tuned))
    if not names:
        return "_No test metrics were computed._\n"
    rows = ["| metric | base model | fine-tuned |", "|---|---|---|"]
    for name in names:
        b = f"{base[name]:.4f}" if name in base else "—"
        t = f"{tuned[name]:.4f}" if name in tuned else "—"
        rows.append(f"| {name} | {b} | {t} |")
    return "\n".join(rows) + "\n"


# The chain of ftjobs runs behind a model, newest first: written into every exported
# model/ and read back when a job starts from such a folder (model.uri = <job>/model/).
LINEAGE_FILE = "lineage.json"


def read_lineage(model_dir: Path) -> list[dict[str, Any]]:
    path = model_dir / LINEAGE_FILE
    if not path.is_file():
        return []
    import json

    try:
        doc = json.loads(path.read_text())
    except ValueError:
        log.warning("ignoring unreadable %s", path)
        return []
    return [e for e in doc if isinstance(e, dict)] if isinstance(doc, list) else []


def _lineage(lineage: Sequence[Mapping[str, Any]]) -> str:
    if len(lineage) < 2:
        return ""
    lines = ["", "## Lineage", "", "Each model was fine-tuned from the one below it:", ""]
    for entry in lineage:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted((entry.get("metrics") or {}).items()))
        lines.append(
            f"- job `{entry.get('namespace')}/{entry.get('job')}` → `{entry.get('model')}` "
            f"({entry.get('steps')} steps{'; ' + metrics if metrics else ''})"
        )
    lines.append(f"- base: `{lineage[-1].get('baseModel')}`")
    return "\n".join(lines) + "\n"


_CAPTIONS = {
    "loss.png": "Training loss per logged step (and validation loss when evaluated)",
    "metrics.png": "Base model vs fine-tuned on the test split",
}


def _pictures(pictures: Sequence[str]) -> str:
    return "".join(f"\n![{_CAPTIONS.get(p, p)}]({p})\n" for p in pictures)


def model_card(
    config: TrainerConfig,
    *,
    report: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, float]],
    steps: int,
    world_size: int,
    pictures: Sequence[str] = (),
    lineage: Sequence[Mapping[str, Any]] = (),
) -> str:
    """README.md of the exported model: what it is, how it was made, how good, its limits."""
    spec = config.spec
    splits = report.get("splits", {})
    counts = ", ".join(
        f"{name}: {info.get('rows', '?')} rows" for name, info in splits.items() if info
    )
    labels = report.get("labels")
    lora = spec.lora
    method = (
        f"LoRA adapter (r={lora.r}, alpha={lora.alpha}, dropout={lora.dropout})"
        if lora
        else "full fine-tuning"
    )
    hyper_lines = _hyperparameter_lines(config, steps=steps, world_size=world_size)
    continued, weights = _origin_notes(config)
    return f"""---
base_model: {spec.model.uri}
tags: [ftjobs, {spec.task}]
---

# {config.name}

A `{spec.task}` model fine-tuned from `{spec.model.uri}` by ftjobs ({method}).
{continued}{weights}
## Data

- train: `{spec.dataset.train}`
- validation: `{spec.dataset.validation or "carved from train"}`
- test: `{spec.dataset.test or "carved from train"}`
- after preparation: {counts or "see data-report.json"}
{f"- labels: {', '.join(labels)}" if labels else ""}

Cleaning, splits, the leakage check and length statistics are in `data-report.json`
next to this folder in the job's output.

## Training

{hyper_lines}

The resolved DeepSpeed config is `ds_config.json` in the job's output.
{_lineage(lineage)}
## Evaluation (test split)

{_table(metrics)}{_pictures(pictures)}
## Intended use and limits

Fine-tuned for the task and data above; expect it to do well only on text like the
training data. It inherits the base model's limits and biases, and the data's. Metrics
come from the held-out test split described above and say little about other domains.
Review outputs before using them for decisions about people.
"""


def _hyperparameter_lines(config: TrainerConfig, *, steps: int, world_size: int) -> str:
    spec = config.spec
    hp = spec.hyperparameters
    hyper = {
        "learningRate": hp.learning_rate,
        "epochs": hp.epochs,
        "maxSteps": hp.max_steps,
        "optimizerSteps": steps,
        "globalBatchSize": hp.global_batch_size,
        "microBatchSize": hp.micro_batch_size,
        "optimizer": hp.optimizer,
        "scheduler": hp.scheduler,
        "warmupSteps": hp.warmup_steps,
        "weightDecay": hp.weight_decay,
        "gradientClipping": hp.gradient_clipping,
        "maxSeqLength": hp.max_seq_length,
        "seed": hp.seed,
        "zeroStage": spec.deepspeed.zero_stage,
        "precision": spec.deepspeed.precision,
        "processes": world_size,
    }
    return "\n".join(f"- {k}: {v}" for k, v in hyper.items() if v is not None)


def _origin_notes(config: TrainerConfig) -> tuple[str, str]:
    """The card's notes on where the base weights came from: (continued from, GGUF)."""
    spec = config.spec
    weights = (
        f"\nThe base model was loaded from the GGUF file `{spec.model.gguf_file}`, which "
        "transformers dequantizes on load; the weights here are that dequantized model, "
        "fine-tuned, saved unquantized as safetensors (quantize again for llama.cpp).\n"
        if spec.model.gguf_file
        else ""
    )
    parent = config.parent
    continued = (
        f"\nContinued from the FineTuneJob `{parent.namespace}/{parent.name}` "
        f"(`model.fromJob: {parent.name}`), whose exported model `{parent.uri}` was the base.\n"
        if parent is not None
        else ""
    )
    return continued, weights
