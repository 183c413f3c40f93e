"""Task adapters on tiny offline models: tokenize/collate shapes, response-only masking,
a few plain-torch AdamW steps that make the loss fall, and sane metrics."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.trainer.data import PreparedData, add_token_lengths, prepare_data
from ftjobs.trainer.tasks import IGNORE_INDEX, get_task

MAX_LEN = 64


def prepared(task: str, data_dir: Path) -> PreparedData:
    spec = FineTuneJobSpec.model_validate(
        {
            "task": task,
            "model": {"uri": "file:///models/tiny"},
            "dataset": {
                "train": f"file://{data_dir}/train.jsonl",
                "split": {"validationRatio": 0.15, "testRatio": 0.15},
            },
            "hyperparameters": {"epochs": 1},
            "storage": {"output": "file:///tmp/ftjobs-out"},
        }
    )
    return prepare_data(spec)


def train_steps(
    adapter: Any, model: Any, tokenizer: Any, rows: Any, *, steps: int, lr: float
) -> list[float]:
    """Plain-torch AdamW over the adapter's tokenized rows and collator; the losses."""
    encoded = adapter.tokenize(rows, tokenizer, MAX_LEN).shuffle(seed=0)
    collate = adapter.collator(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    batch_size = 8
    for step in range(steps):
        start = (step * batch_size) % max(len(encoded) - batch_size, 1)
        batch = collate([encoded[i] for i in range(start, start + batch_size)])
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def falls(losses: list[float], factor: float) -> bool:
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    return last < factor * first


def evaluate_around_training(
    adapter: Any,
    model: Any,
    tokenizer: Any,
    data: PreparedData,
    *,
    steps: int,
    fall: float,
    batch_size: int = 16,
    max_new_tokens: int = 1,
) -> tuple[dict[str, float], dict[str, float]]:
    """Validation metrics before and after `steps` AdamW steps whose loss falls below `fall`x."""

    def evaluate() -> dict[str, float]:
        return dict(
            adapter.evaluate(
                model,
                tokenizer,
                data.validation,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                metrics=None,
            )
        )

    before = evaluate()
    losses = train_steps(adapter, model, tokenizer, data.train, steps=steps, lr=5e-3)
    assert falls(losses, fall), losses
    return before, evaluate()


def load(
    task: str, tiny_model_dir: Callable[..., Path], labels: Any = None, kind: Any = None
) -> tuple[Any, Any, Any]:
    torch.manual_seed(0)  # new heads are initialised from the global RNG
    adapter = get_task(task)
    model, tokenizer = adapter.load_model(
        tiny_model_dir(task, kind=kind), labels=labels, dtype=torch.float32
    )
    return adapter, model, tokenizer


def test_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown task 'summarize'"):
        get_task("summarize")


# -- sequence-classification -----------------------------------------------------------------


def test_classification_shapes_training_and_metrics(
    tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path]
) -> None:
    data = prepared("sequence-classification", tiny_data_dir("sequence-classification", 160))
    adapter, model, tok = load("sequence-classification", tiny_model_dir, labels=data.labels)
    assert model.config.id2label == {0: "negative", 1: "positive"}

    encoded = adapter.tokenize(data.train, tok, MAX_LEN)
    assert {"input_ids", "attention_mask", "labels"} <= set(encoded.column_names)
    assert not {"text", "label"} & set(encoded.column_names)
    batch = adapter.collator(tok)([encoded[i] for i in range(5)])
    width = max(len(encoded[i]["input_ids"]) for i in range(5))
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (5, width)
    assert batch["labels"].shape == (5,) and batch["labels"].dtype == torch.long
    report = add_token_lengths(data.report, "train", encoded)
    tokens = report["splits"]["train"]["length_tokens"]
    lengths = sorted(len(ids) for ids in encoded["input_ids"])
    assert (tokens["min"], tokens["max"]) == (lengths[0], lengths[-1])

    before, after = evaluate_around_training(adapter, model, tok, data, steps=50, fall=0.5)
    assert model.training  # evaluate restores train mode
    for metrics in (before, after):
        assert set(metrics) == {"accuracy", "f1", "loss"}
        assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["f1"] <= 1.0
        assert math.isfinite(metrics["loss"]) and metrics["loss"] > 0
    assert after["accuracy"] >= 0.9 and after["loss"] < before["loss"]
    only = adapter.evaluate(
        model, tok, data.validation, batch_size=7, max_new_tokens=1, metrics=["accuracy"]
    )
    assert only == {"accuracy": after["accuracy"]}  # batch size does not change the result


# -- causal-lm --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gpt2", "chat"])
def test_causal_lm_masks_the_prompt_and_learns_the_response(
    tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path], kind: str
) -> None:
    data = prepared("causal-lm", tiny_data_dir("causal-lm", 160))
    adapter, model, tok = load("causal-lm", tiny_model_dir, kind=kind)
    row = data.train[0]
    encoded = adapter.tokenize(data.train, tok, MAX_LEN)
    assert set(encoded.column_names) == {"input_ids", "attention_mask", "labels"}
    ids, labels = encoded[0]["input_ids"], encoded[0]["labels"]
    prompt_len = sum(1 for x in labels if x == IGNORE_INDEX)
    assert prompt_len > 0
    assert labels[:prompt_len] == [IGNORE_INDEX] * prompt_len  # the prompt carries no loss
    assert labels[prompt_len:] == ids[prompt_len:]  # the response is learned, eos included
    assert ids[-1] == tok.eos_token_id
    assert tok.decode(ids[prompt_len:], skip_special_tokens=True).strip() == row["response"]
    prompt_text = tok.decode(ids[:prompt_len])
    if kind == "chat":  # rendered through the chat template
        assert prompt_text.startswith("<|user|>") and prompt_text.endswith("<|assistant|>")
    else:
        assert prompt_text == row["prompt"]

    batch = adapter.collator(tok)([encoded[i] for i in range(4)])
    assert batch["input_ids"].shape == batch["labels"].shape
    pad_rows = batch["attention_mask"] == 0
    assert bool((batch["labels"][pad_rows] == IGNORE_INDEX).all())

    before, after = evaluate_around_training(
        adapter, model, tok, data, steps=40, fall=0.6, batch_size=8, max_new_tokens=4
    )
    for metrics in (before, after):
        assert set(metrics) == {"perplexity", "loss"}
        assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    assert before["perplexity"] > 100 > 10 > after["perplexity"] >= 1.0


def test_causal_lm_truncation_keeps_the_response(tiny_model_dir: Callable[..., Path]) -> None:
    from datasets import Dataset

    adapter, _, tok = load("causal-lm", tiny_model_dir)
    rows = Dataset.from_list(
        [
            {"prompt": "what color is the ball? " * 40, "response": "the ball is red."},
            {"prompt": "", "response": "plain text to learn whole " * 20},
        ]
    )
    long_prompt, plain = adapter.tokenize(rows, tok, 32)
    assert len(long_prompt["input_ids"]) == len(plain["input_ids"]) == 32
    assert long_prompt["labels"][-1] == tok.eos_token_id  # the answer survived truncation
    assert 0 < long_prompt["labels"].count(IGNORE_INDEX) < 32
    assert IGNORE_INDEX not in plain["labels"]  # plain text: every token learned


# -- seq2seq -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["t5", "decoder"])
def test_seq2seq_learns_and_reports_chrf_and_bleu(
    tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path], kind: str
) -> None:
    data = prepared("seq2seq", tiny_data_dir("seq2seq", 160))
    adapter, model, tok = load("seq2seq", tiny_model_dir, kind=kind)
    assert model.config.is_encoder_decoder is (kind == "t5")
    encoded = adapter.tokenize(data.train, tok, MAX_LEN)
    batch = adapter.collator(tok)([encoded[i] for i in range(4)])
    assert {"input_ids", "attention_mask", "labels"} <= set(batch)
    if kind == "t5":  # source and target sequences are separate
        assert batch["labels"].shape[0] == 4
        target = [t for t in encoded[0]["labels"] if t != IGNORE_INDEX]
        assert tok.decode(target, skip_special_tokens=True) == data.train[0]["target"]
    else:  # one sequence, the source masked
        assert batch["labels"].shape == batch["input_ids"].shape
        assert encoded[0]["labels"][0] == IGNORE_INDEX

    before, after = evaluate_around_training(
        adapter, model, tok, data, steps=40, fall=0.7, max_new_tokens=8
    )
    for metrics in (before, after):
        assert set(metrics) == {"chrf", "bleu", "loss"}
        assert 0.0 <= metrics["chrf"] <= 100.0 and 0.0 <= metrics["bleu"] <= 100.0
    assert after["loss"] < before["loss"]
    assert model.training


# -- question-answering ------------------------------------------------------------------------


def test_question_answering_positions_training_and_squad_metrics(
    tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path]
) -> None:
    data = prepared("question-answering", tiny_data_dir("question-answering", 160))
    adapter, model, tok = load("question-answering", tiny_model_dir)
    encoded = adapter.tokenize(data.train, tok, MAX_LEN)
    assert {"input_ids", "attention_mask", "start_positions", "end_positions"} <= set(
        encoded.column_names
    )
    for i in range(10):  # the positions span exactly the answer
        row, enc = data.train[i], encoded[i]
        span = enc["input_ids"][enc["start_positions"] : enc["end_positions"] + 1]
        assert tok.decode(span) == row["answer_text"]
    batch = adapter.collator(tok)([encoded[i] for i in range(4)])
    assert batch["start_positions"].shape == batch["end_positions"].shape == (4,)

    before, after = evaluate_around_training(adapter, model, tok, data, steps=60, fall=0.7)
    for metrics in (before, after):
        assert set(metrics) == {"exact_match", "f1", "loss"}
        assert 0.0 <= metrics["exact_match"] <= metrics["f1"] <= 100.0
    assert after["loss"] < before["loss"] and after["f1"] > before["f1"]


def test_squad_normalisation() -> None:
    from ftjobs.trainer.tasks.question_answering import answer_f1, normalize_answer

    assert normalize_answer("The  Red, ball!") == "red ball"
    assert answer_f1("the red ball", "red") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert answer_f1("blue", "red") == 0.0


# -- streaming rows tokenize lazily ------------------------------------------------------------


def test_streaming_rows_tokenize_to_the_same_features(
    tiny_model_dir: Callable[..., Path], tiny_data_dir: Callable[..., Path]
) -> None:
    data_dir = tiny_data_dir("causal-lm", 160)
    spec = FineTuneJobSpec.model_validate(
        {
            "task": "causal-lm",
            "model": {"uri": "file:///models/tiny"},
            "dataset": {"train": f"file://{data_dir}/train.jsonl", "streaming": True},
            "hyperparameters": {"epochs": 1},
            "storage": {"output": "file:///tmp/ftjobs-out"},
        }
    )
    streamed = prepare_data(spec)
    in_memory = prepare_data(
        spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"streaming": False})})
    )
    adapter, _, tok = load("causal-lm", tiny_model_dir)
    lazy = list(adapter.tokenize(streamed.train, tok, MAX_LEN))
    assert lazy == list(adapter.tokenize(in_memory.train, tok, MAX_LEN))
    assert len(lazy) == len(in_memory.train) > 100
