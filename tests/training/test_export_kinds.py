"""Export works for every kind of model the API accepts: plain, LoRA (adapter only and
merged) and GGUF-loaded; and a model that cannot be exported is refused in setup.

The GGUF file is made here with the `gguf` package (a 2-layer llama with Q8_0-quantized
projections), loaded by the causal-lm task as the recipe loads `model.ggufFile`.
Exported folders are loaded back and compared tensor by tensor with the model in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ftjobs.trainer.export import export_blocker, save_model
from ftjobs.trainer.runtime import World
from ftjobs.trainer.tasks import get_task
from tests.training.tiny import make_tiny_model

pytestmark = pytest.mark.training

WORLD = World(rank=0, size=1, local_rank=0, local_size=1)


def make_tiny_gguf(path: Path) -> Path:
    """A tiny llama GGUF: byte-level BPE vocab of 64, 2 layers, Q8_0 projections."""
    import gguf

    vocab, dim, ffn, layers, heads = 64, 32, 64, 2, 4
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(128)
    writer.add_embedding_length(dim)
    writer.add_feed_forward_length(ffn)
    writer.add_block_count(layers)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(dim // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    tokens = ["<|endoftext|>"] + [chr(c) for c in range(97, 123)]
    tokens += ["Ġ" + chr(c) for c in range(97, 123)] + ["ab"]
    tokens += [f"x{i}" for i in range(vocab - len(tokens))]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * vocab)
    writer.add_token_merges(["a b"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)
    rng = np.random.default_rng(0)

    def tensor(name: str, *shape: int, quantize: bool = False) -> None:
        data = (rng.standard_normal(shape) * 0.02).astype(np.float32)
        if quantize:
            q8 = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(data, q8), raw_dtype=q8)
        else:
            writer.add_tensor(name, data)

    tensor("token_embd.weight", vocab, dim)
    for i in range(layers):
        tensor(f"blk.{i}.attn_norm.weight", dim)
        tensor(f"blk.{i}.ffn_norm.weight", dim)
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensor(f"blk.{i}.{name}.weight", dim, dim, quantize=True)
        tensor(f"blk.{i}.ffn_gate.weight", ffn, dim, quantize=True)
        tensor(f"blk.{i}.ffn_up.weight", ffn, dim, quantize=True)
        tensor(f"blk.{i}.ffn_down.weight", dim, ffn, quantize=True)
    tensor("output_norm.weight", dim)
    tensor("output.weight", vocab, dim)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def load(model_dir: Path, gguf_file: str | None = None) -> tuple[torch.nn.Module, Any]:
    return get_task("causal-lm").load_model(model_dir, dtype=torch.float32, gguf_file=gguf_file)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def reload(folder: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder)


def with_lora(model: torch.nn.Module) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, task_type="CAUSAL_LM"))
    # Non-zero adapter weights, as after training (B starts at zero).
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.01)
    return peft_model  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gguf")
    make_tiny_gguf(folder / "tiny-q8_0.gguf")
    return folder


def test_plain_model(tmp_path: Path) -> None:
    model, tokenizer = load(make_tiny_model("causal-lm", tmp_path / "base"))
    assert export_blocker(model) is None
    save_model(model, tokenizer, tmp_path / "out", world=WORLD, zero_stage=0, merge_lora=False)
    same_weights(model, reload(tmp_path / "out"))


@pytest.mark.parametrize("merge", [False, True], ids=["adapter-only", "merged"])
def test_lora_model(tmp_path: Path, merge: bool) -> None:
    model, tokenizer = load(make_tiny_model("causal-lm", tmp_path / "base"))
    peft_model = with_lora(model)
    out = tmp_path / "out"
    save_model(peft_model, tokenizer, out, world=WORLD, zero_stage=0, merge_lora=merge)
    assert (out / "adapter_model.safetensors").exists()
    assert (out / "merged").exists() is merge
    if merge:
        expected = peft_model.merge_and_unload()  # type: ignore[operator]
        same_weights(expected, reload(out / "merged"))


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora-merged"])
def test_gguf_model_exports_dequantized_safetensors(
    gguf_dir: Path, tmp_path: Path, lora: bool
) -> None:
    # The original failure: transformers refuses to save a GGUF-loaded model as is.
    raw, _ = load(gguf_dir, "tiny-q8_0.gguf")
    with pytest.raises(ValueError, match="quantized with gguf"):
        raw.save_pretrained(tmp_path / "refused")  # type: ignore[operator]

    model, tokenizer = load(gguf_dir, "tiny-q8_0.gguf")
    assert export_blocker(model) is None  # setup lets it train
    out = tmp_path / "out"
    to_save = with_lora(model) if lora else model
    save_model(to_save, tokenizer, out, world=WORLD, zero_stage=0, merge_lora=lora)
    folder = out / "merged" if lora else out
    assert (folder / "model.safetensors").exists()
    assert "quantization_config" not in (folder / "config.json").read_text()
    expected = to_save.merge_and_unload() if lora else model  # type: ignore[operator]
    same_weights(expected, reload(folder))


def test_a_model_that_cannot_be_saved_is_refused_before_training(gguf_dir: Path) -> None:
    model, _ = load(gguf_dir, "tiny-q8_0.gguf")

    class Unserializable:
        quantization_config = type("Config", (), {"quant_method": "fancy-4bit"})()

        def is_serializable(self) -> bool:
            return False

    # A stand-in for a quantizer transformers cannot save (named as such: no such
    # quantizer ships in the test environment).
    model.hf_quantizer = Unserializable()  # type: ignore[assignment]
    blocker = export_blocker(model)
    assert blocker is not None and "fancy-4bit" in blocker
