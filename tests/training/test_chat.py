"""Multi-turn chat rows for causal-lm: the chat template, loss on assistant turns only
(checked token by token against an independent reading of the rendered text, with a
negative control), errors that name file, row and field path, and training on them."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.trainer.data import prepare_data
from ftjobs.trainer.data.errors import DataError
from ftjobs.trainer.tasks import IGNORE_INDEX
from ftjobs.trainer.tasks.chat import encode_chat
from tests.training.test_tasks import MAX_LEN, falls, load, train_steps
from tests.training.tiny import COLORS, THINGS
from tests.training.trainer_run import classification_spec, run, write_config

CONVERSATION = [
    {"role": "system", "content": "question answer"},
    {"role": "user", "content": "what is the color of the ball ?"},
    {"role": "assistant", "content": "the ball is red ."},
    {"role": "user", "content": "and the box ?"},
    {"role": "assistant", "content": "blue"},
    {"role": "user", "content": "yes"},  # a last user turn: context only, never learned
]


def chat_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Two exchanges per conversation; each answer names the colour the user gave."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.sample(COLORS, 2)
        t1, t2 = rng.sample(THINGS, 2)
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "question answer"},
                    {"role": "user", "content": f"the {t1} is {a} . what is the color ?"},
                    {"role": "assistant", "content": f"{a}"},
                    {"role": "user", "content": f"the {t2} is {b} . what is the color ?"},
                    {"role": "assistant", "content": f"{b}"},
                ]
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def spec(train: Path, **dataset: Any) -> FineTuneJobSpec:
    return FineTuneJobSpec.model_validate(
        {
            "task": "causal-lm",
            "model": {"uri": "file:///models/tiny"},
            "dataset": {
                "train": f"file://{train}",
                "split": {"validationRatio": 0.15, "testRatio": 0.15},
                **dataset,
            },
            "hyperparameters": {"epochs": 1},
            "storage": {"output": "file:///tmp/ftjobs-out"},
        }
    )


def mask_errors(
    tokenizer: Any, turns: list[dict[str, str]], ids: list[int], labels: list[int]
) -> list[str]:
    """What is wrong with (ids, labels) of `turns`, judged without the code under test:
    the rendered text is tokenized whole with character offsets, and a token must be
    learned exactly when it lies inside what an assistant turn added after the template's
    `<|assistant|>` header (its content and the end-of-turn `</s>`)."""
    text = tokenizer.apply_chat_template(turns, tokenize=False)
    last = max(i for i, t in enumerate(turns) if t["role"] == "assistant")
    # Only up to the last assistant turn: a trailing user turn is not part of any example.
    text = text[: text.index("</s>", text.index("<|assistant|>" + turns[last]["content"])) + 4]
    spans = [m.span(1) for m in re.finditer(r"<\|assistant\|>(.*?</s>)", text)]
    whole = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    errors = []
    if ids != whole["input_ids"]:
        errors.append("input_ids differ from the rendered conversation's tokens")
    for k, (start, end) in enumerate(whole["offset_mapping"]):
        inside = any(s <= start and end <= e for s, e in spans)
        learned = k < len(labels) and labels[k] != IGNORE_INDEX
        if learned != inside:
            errors.append(f"token {k} {text[start:end]!r}: learned={learned}, assistant={inside}")
        elif learned and labels[k] != whole["input_ids"][k]:
            errors.append(f"token {k}: label {labels[k]} is not its id")
    if len(labels) != len(whole["input_ids"]):
        errors.append(f"{len(labels)} labels for {len(whole['input_ids'])} tokens")
    return errors


def test_only_assistant_turns_are_learned_token_by_token(
    tiny_model_dir: Callable[..., Path],
) -> None:
    _, _, tok = load("causal-lm", tiny_model_dir, kind="chat")
    encoded = encode_chat(tok, CONVERSATION, 512)
    ids, labels = encoded["input_ids"], encoded["labels"]
    assert mask_errors(tok, CONVERSATION, ids, labels) == []
    learned = tok.decode([x for x in labels if x != IGNORE_INDEX])
    assert learned == "the ball is red .</s>blue</s>"
    assert sum(x != IGNORE_INDEX for x in labels) < len(labels) / 2
    assert encoded["attention_mask"] == [1] * len(ids)


def test_a_wrong_mask_is_caught(tiny_model_dir: Callable[..., Path]) -> None:
    """Negative control: the checker above rejects masks that are almost right."""
    _, _, tok = load("causal-lm", tiny_model_dir, kind="chat")
    good = encode_chat(tok, CONVERSATION, 512)
    ids, labels = good["input_ids"], good["labels"]
    first = next(k for k, x in enumerate(labels) if x != IGNORE_INDEX)
    shifted = [IGNORE_INDEX, *labels[:-1]]  # off by one at every boundary
    header_learned = list(labels)
    header_learned[first - 1] = ids[first - 1]  # the <|assistant|> header learned too
    everything = list(ids)  # plain causal-lm: the user turns learned too
    last_missing = list(labels)
    last_missing[-1] = IGNORE_INDEX  # the final </s> not learned
    for wrong in (shifted, header_learned, everything, last_missing):
        assert mask_errors(tok, CONVERSATION, ids, wrong), wrong


def test_prepared_chat_rows_train_and_keep_the_loss_on_assistant_turns(
    tmp_path: Path, tiny_model_dir: Callable[..., Path]
) -> None:
    train = write_jsonl(tmp_path / "chat" / "train.jsonl", chat_rows(200))
    data = prepare_data(spec(train))
    assert set(data.train.column_names) == {"prompt", "response", "messages"}
    row = data.train[0]
    turns = json.loads(row["messages"])
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user", "assistant"]
    assert row["response"] == "\x1e".join(t["content"] for t in turns[2::2])
    assert data.report["splits"]["train"]["rows"] == len(data.train)

    adapter, model, tok = load("causal-lm", tiny_model_dir, kind="chat")
    encoded = adapter.tokenize(data.train, tok, MAX_LEN)
    for k in range(3):
        turns = json.loads(data.train[k]["messages"])
        assert mask_errors(tok, turns, encoded[k]["input_ids"], encoded[k]["labels"]) == []
    before = adapter.evaluate(model, tok, data.validation, batch_size=8)
    losses = train_steps(adapter, model, tok, data.train, steps=40, lr=5e-3)
    assert falls(losses, 0.6), losses
    after = adapter.evaluate(model, tok, data.validation, batch_size=8)
    assert after["loss"] < before["loss"] / 2


def test_a_tokenizer_without_chat_template_is_refused(tiny_model_dir: Callable[..., Path]) -> None:
    from ftjobs.trainer.errors import ModelError

    _, _, tok = load("causal-lm", tiny_model_dir)  # GPT-2 kind: no chat template
    with pytest.raises(ModelError, match="chat template"):
        encode_chat(tok, CONVERSATION, 64)


BAD_ROWS: list[tuple[Any, str, str]] = [
    (
        [{"content": "hi"}, {"role": "assistant", "content": "yo"}],
        "messages[0].role",
        "missing role",
    ),
    (
        [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}],
        "messages[1].role",
        "unknown role 'bot'",
    ),
    (
        [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
        "messages",
        "no assistant turn",
    ),
    (
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 3}],
        "messages[1].content",
        "content is int",
    ),
    (
        [{"role": "user", "content": "hi"}, {"role": "assistant"}],
        "messages[1].content",
        "missing content",
    ),
    (["hi", {"role": "assistant", "content": "yo"}], "messages[0]", "a message is a mapping"),
    ([], "messages", "must be a non-empty list"),
    ("hello", "messages", "not a list of messages"),
]


@pytest.mark.parametrize(("messages", "path", "words"), BAD_ROWS, ids=[b[2] for b in BAD_ROWS])
def test_malformed_messages_are_named_by_file_row_and_field_path(
    tmp_path: Path, messages: Any, path: str, words: str
) -> None:
    rows = [*chat_rows(3), {"messages": messages}, *chat_rows(3, seed=1)]
    train = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as err:
        prepare_data(spec(train))
    assert f"file://{train}: row 4: field {path!r}: {words}" in str(err.value)


def test_fields_messages_names_another_column(tmp_path: Path) -> None:
    rows = [{"conversation": r["messages"]} for r in chat_rows(40)]
    train = write_jsonl(tmp_path / "renamed.jsonl", rows)
    data = prepare_data(spec(train, fields={"messages": "conversation"}))
    assert json.loads(data.train[0]["messages"])[0]["role"] == "system"
    with pytest.raises(DataError, match="field 'conversation': missing field"):
        prepare_data(
            spec(
                write_jsonl(tmp_path / "other.jsonl", chat_rows(40)),
                fields={"messages": "conversation"},
            )
        )


def test_the_trainer_runs_a_chat_job(tmp_path: Path, tiny_model_dir: Callable[..., Path]) -> None:
    """DeepSpeed on one process: prepare, tokenize, train, evaluate, export a chat job."""
    train = write_jsonl(tmp_path / "data" / "train.jsonl", chat_rows(120))
    job = classification_spec(
        tiny_model_dir("causal-lm", kind="chat"),
        train,
        tmp_path / "out",
        task="causal-lm",
        resources={"nodes": 1},
        hyperparameters={"maxSteps": 8, "learningRate": 5e-3},
        checkpointing={"everySteps": 8},
    )
    write_config(tmp_path / "job.json", job, name="chat")
    codes, nodes = run(tmp_path / "job.json", tmp_path / "run", nnodes=1)
    assert codes == [0], nodes.output()[-3000:]
    summary = json.loads((tmp_path / "out" / "t" / "chat" / "summary.json").read_text())
    assert summary["steps"] == 8
    assert set(summary["metrics"]["fineTuned"]) == {"perplexity", "loss"}
