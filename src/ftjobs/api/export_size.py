"""How much disk the exported model needs: the one estimate that the trainer's setup
check and `ftjobs preflight` share.

The export (`trainer.export.save_model`) writes safetensors in the dtype the weights are
trained in, to the node's scratch volume, before uploading them: a full model is its
parameter count times the bytes per weight; a LoRA job writes the adapter, plus the
merged full model when `lora.mergeOnExport`. A margin covers the tokenizer, the model
card and its pictures, and safetensors headers.
"""

from __future__ import annotations

from ftjobs.api.spec import FineTuneJobSpec

# Tokenizer files, README.md and report pictures, config files.
MARGIN_BYTES = 256 * 2**20
# Headers, alignment, a tied weight saved twice: a tenth more.
MARGIN_FRACTION = 0.10


def bytes_per_weight(spec: FineTuneJobSpec) -> int:
    """Bytes of one exported weight: 4 in float32, else 2 (bf16/fp16 training)."""
    dtype = spec.model.dtype
    if dtype == "auto":
        return 4 if spec.deepspeed.precision == "fp32" else 2
    return 4 if dtype == "float32" else 2


def export_bytes(spec: FineTuneJobSpec, *, params: int, adapter_params: int = 0) -> int:
    """Scratch bytes the export of a model of `params` weights needs (`adapter_params`:
    the LoRA weights, when known; ~1% of the model when not)."""
    per = bytes_per_weight(spec)
    if spec.lora is None:
        raw = params * per
    else:
        adapter = adapter_params or max(params // 100, 1)
        raw = adapter * per + (params * per if spec.lora.merge_on_export else 0)
    return int(raw * (1 + MARGIN_FRACTION)) + MARGIN_BYTES
