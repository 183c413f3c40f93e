"""spec.performance on a tiny Llama built from config (CPU): packing keeps samples apart,
the attention kernel and activation checkpointing are what the spec asks for, and the
settings that need a GPU or a missing package are refused with the field to change.

Packing is proven on logits, not only on the loss: every sample's logits inside a packed
row equal its logits alone, changing one sample leaves its neighbours' logits unchanged,
and the packed loss equals the token-weighted loss of the samples one by one. The
negative controls run the same checks with the packed-sequence masking defeated (the KV
cache on, or positions that do not restart) and require them to fail.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from ftjobs.api.performance import Performance
from ftjobs.trainer.ds_config import ConfigError
from ftjobs.trainer.packing import pack, pack_block, packed_collator
from ftjobs.trainer.performance import load_options, prepare_model
from ftjobs.trainer.prefetch import DeviceBatches
from ftjobs.trainer.tasks import get_task
from ftjobs.trainer.tasks.common import IGNORE_INDEX, token_loss_sums

PROMPTS = [
    ("what is the color of the ball ?", "the ball is red ."),
    ("", "the quick brown fox jumps over the lazy dog ."),
    ("translate to german : one two three", "eins zwei drei"),
    ("hello", "world"),
    ("question", "yes no yes no yes"),
]
ROW = 26  # packs the samples above (14, 12, 12, 6, 7 tokens) into rows of 26 and 25 + 1 pad


def _llama(
    tiny_model_dir: Callable[..., Path], perf: Performance
) -> tuple[torch.nn.Module, Any, Any]:
    from datasets import Dataset

    task = get_task("causal-lm")
    options = load_options(perf, dtype=torch.float32, device_index=0)
    model, tokenizer = task.load_model(
        tiny_model_dir("causal-lm", kind="llama"), dtype=torch.float32, options=options
    )
    model = prepare_model(model, perf)
    model.eval()  # no dropout: logits comparable run to run
    rows = Dataset.from_dict(
        {"prompt": [p for p, _ in PROMPTS], "response": [r for _, r in PROMPTS]}
    )
    return model, tokenizer, task.tokenize(rows, tokenizer, 64)


def _spans(positions: list[int]) -> list[tuple[int, int]]:
    """(start, end) of each sample in a packed row: where the positions restart at 0."""
    starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
    return list(itertools.pairwise(starts))


def _alone(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def _packed_logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def _samples_match_alone(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], samples: torch.Tensor
) -> bool:
    """Every sample's logits in the batch equal its logits when run alone.

    `samples`: the packed position ids that say where each sample is (the batch's own,
    except in the control that feeds the model other positions).
    """
    logits = _packed_logits(model, batch)
    for row in range(batch["input_ids"].shape[0]):
        ids = batch["input_ids"][row].tolist()
        for start, end in _spans(samples[row].tolist()):
            alone = _alone(model, ids[start:end])
            if not torch.allclose(logits[row, start:end], alone, atol=1e-4, rtol=1e-4):
                return False
    return True


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_samples_never_attend_across_their_boundary(
    tiny_model_dir: Callable[..., Path], attention: str
) -> None:
    perf = Performance(attention=attention, packing=True)  # type: ignore[arg-type]
    model, tokenizer, features = _llama(tiny_model_dir, perf)
    assert model.config._attn_implementation == attention
    packed = pack(features, ROW)
    assert len(packed) < len(features)  # several samples share a row
    collate = packed_collator(tokenizer.pad_token_id)
    # Rows of different lengths: the shorter is padded (padding is a sample of its own).
    items = [packed[i] for i in range(len(packed))]
    batch = collate(items)
    assert sum(len(_spans(r)) for r in batch["position_ids"].tolist()) > len(features)

    assert _samples_match_alone(model, batch, batch["position_ids"])

    # Changing the first sample of the first row leaves every later sample unchanged.
    before = _packed_logits(model, batch)
    changed = {k: v.clone() for k, v in batch.items()}
    (start, end), *rest = _spans(batch["position_ids"][0].tolist())
    assert rest, "the first row must hold more than one sample"
    changed["input_ids"][0, start:end] = tokenizer.pad_token_id + 7
    after = _packed_logits(model, changed)
    assert torch.allclose(before[0, end:], after[0, end:], atol=1e-5)
    assert not torch.allclose(before[0, start:end], after[0, start:end], atol=1e-5)

    # Negative controls: the same checks catch attention that crosses the boundary.
    model.config.use_cache = True  # a KV cache turns transformers' packed masking off
    assert not _samples_match_alone(model, batch, batch["position_ids"])
    model.config.use_cache = False
    running = dict(
        batch, position_ids=torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"])
    )
    assert not _samples_match_alone(model, running, batch["position_ids"])


def test_packed_loss_equals_the_per_sample_loss(tiny_model_dir: Callable[..., Path]) -> None:
    perf = Performance(packing=True)
    model, tokenizer, features = _llama(tiny_model_dir, perf)
    batch = packed_collator(tokenizer.pad_token_id)(list(pack(features, ROW)))
    with torch.no_grad():
        packed_loss = float(model(**batch).loss)
    total, count = 0.0, 0
    for item in features:  # each sample alone, token-weighted like the packed mean
        logits = _alone(model, item["input_ids"])[None]
        s, c = token_loss_sums(logits, torch.tensor([item["labels"]]), shift=True)
        total, count = total + s, count + c
    assert packed_loss == pytest.approx(total / count, rel=1e-5)
    # Control: without the boundary labels (-100 on each sample's first token) the last
    # token of a sample is trained to predict the next sample's first: the loss differs.
    leaky = dict(batch, labels=batch["input_ids"].clone())
    leaky["labels"][batch["labels"] == IGNORE_INDEX] = IGNORE_INDEX
    starts = batch["position_ids"] == 0
    leaky["labels"][starts] = batch["input_ids"][starts]
    with torch.no_grad():
        assert float(model(**leaky).loss) != pytest.approx(total / count, rel=1e-5)


def test_pack_block_fills_rows_in_order_and_masks_each_first_token() -> None:
    samples = {
        "input_ids": [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10] * 12],
        "labels": [[-100, 2, 3], [4, 5], [-100, 7, 8, 9], [10] * 12],
    }
    rows = pack_block(samples, 8)
    assert rows["input_ids"] == [[1, 2, 3, 4, 5], [6, 7, 8, 9], [10] * 8]
    assert rows["position_ids"] == [[0, 1, 2, 0, 1], [0, 1, 2, 3], list(range(8))]
    assert rows["labels"][0] == [-100, 2, 3, -100, 5]
    assert rows["labels"][2][0] == -100  # a sample longer than the row is truncated


def test_activation_checkpointing_gives_the_same_gradients(
    tiny_model_dir: Callable[..., Path],
) -> None:
    grads = []
    for on in (False, True):
        model, tokenizer, features = _llama(tiny_model_dir, Performance(gradient_checkpointing=on))
        model.train()
        assert bool(getattr(model, "is_gradient_checkpointing", False)) is on
        batch = get_task("causal-lm").collator(tokenizer)(list(features))
        torch.manual_seed(0)
        model(**batch).loss.backward()
        grads.append(
            torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        )
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_attention_default_is_sdpa_and_eager_is_honoured(
    tiny_model_dir: Callable[..., Path],
) -> None:
    model, _, _ = _llama(tiny_model_dir, Performance())
    assert model.config._attn_implementation == "sdpa"
    model, _, _ = _llama(tiny_model_dir, Performance(attention="eager"))
    assert model.config._attn_implementation == "eager"


def test_flash_attention_without_the_package_names_the_field() -> None:
    perf = Performance(attention="flash_attention_2")
    if importlib.util.find_spec("flash_attn") is not None:
        options = load_options(perf, dtype=torch.bfloat16, device_index=0)
        assert options["attn_implementation"] == "flash_attention_2"
        return
    with pytest.raises(ConfigError, match=r"performance\.attention: flash_attention_2 needs"):
        load_options(perf, dtype=torch.bfloat16, device_index=0)


def test_qlora_without_cuda_is_refused_before_loading() -> None:
    assert not torch.cuda.is_available()  # the CPU tier
    with pytest.raises(ConfigError, match=r"performance\.quantization: nf4 \(QLoRA\) needs a CUDA"):
        load_options(Performance(quantization="nf4"), dtype=torch.bfloat16, device_index=0)


def _items(n: int) -> list[list[dict[str, Any]]]:
    return [[{"input_ids": list(range(i + 1)), "labels": [i]}] * 2 for i in range(n)]


def _collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    width = max(len(item["input_ids"]) for item in items)
    ids = [item["input_ids"] + [0] * (width - len(item["input_ids"])) for item in items]
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor([i["labels"] for i in items])}


def test_prefetch_yields_the_same_batches_in_order_and_reraises() -> None:
    import threading

    cpu = torch.device("cpu")
    plain = list(DeviceBatches(iter(_items(7)), _collate, cpu, prefetch=False))
    ahead = list(DeviceBatches(iter(_items(7)), _collate, cpu, prefetch=True, depth=3))
    assert [b.tokens for b in plain] == [b.tokens for b in ahead] == [2 * (i + 1) for i in range(7)]
    for a, b in zip(plain, ahead, strict=True):
        assert a.wait().keys() == b.wait().keys()
        assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)

    def broken() -> Any:
        yield from _items(2)
        raise ValueError("bad row 3")

    batches = DeviceBatches(broken(), _collate, cpu, prefetch=True)
    assert next(batches).tokens == 2 and next(batches).tokens == 4
    with pytest.raises(ValueError, match="bad row 3"):
        next(batches)

    # close() ends the reader even while the source has more (end of epoch, a stop).
    endless = DeviceBatches(iter(_items(10_000)), _collate, cpu, prefetch=True, depth=2)
    next(endless)
    endless.close()
    reader = next(t for t in threading.enumerate() if t.name == "batch-prefetch")
    reader.join(timeout=5)
    assert not reader.is_alive()
