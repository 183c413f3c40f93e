"""Multi-turn chat rows of causal-lm: a `messages` list of {role, content} turns.

Rows: `parse_messages` checks one row's list and names what is wrong by file, row and
field path (`messages[2].role`); the canonical record keeps the turns as JSON in the
`messages` column, plus the user-side and assistant-side text in `prompt` / `response`,
so cleaning, the split hash, the leakage check and the length statistics work for chat
rows as for prompt/response rows.

Tokens: the conversation is rendered turn by turn with the tokenizer's chat template
(`apply_chat_template(tokenize=False)`). For each assistant turn the text up to it with
the generation prompt (`<|assistant|>` or the template's equivalent) is context, and
what the turn adds after that (its content and the template's end-of-turn text) is
learned. Each piece is tokenized on its own, so a label is -100 exactly on the tokens of
system, user and tool turns and of the template's headers. This needs a template that
renders a conversation incrementally (the text of the first k turns is a prefix of the
text of k+1); one that does not (for example, one that rewrites earlier turns) is
refused rather than masked wrongly.
"""

from __future__ import annotations

import json
from typing import Any

from ftjobs.trainer.data.errors import DataError, where
from ftjobs.trainer.errors import ModelError
from ftjobs.trainer.tasks.common import IGNORE_INDEX

ROLES = ("system", "user", "assistant", "tool")
ASSISTANT = "assistant"
# The column a chat row is read from when dataset.fields.messages is not set.
DEFAULT_FIELD = "messages"


def parse_messages(
    value: Any, uri: str, n: int, field: str, *, strip: bool = True
) -> list[dict[str, str]]:
    """The turns of one row, checked: a non-empty list of {role, content} mappings with
    known roles, string contents and at least one assistant turn."""
    if isinstance(value, str):  # CSV and some exports keep the list as a JSON string
        try:
            value = json.loads(value)
        except ValueError:
            raise DataError(
                f"{where(uri, n, field)}: not a list of messages (a string that is not JSON)"
            ) from None
    if not isinstance(value, list) or not value:
        got = "an empty list" if isinstance(value, list) else type(value).__name__
        raise DataError(
            f"{where(uri, n, field)}: must be a non-empty list of {{role, content}} messages "
            f"(got {got})"
        )
    turns: list[dict[str, str]] = []
    for i, message in enumerate(value):
        at = f"{field}[{i}]"
        if not isinstance(message, dict):
            raise DataError(
                f"{where(uri, n, at)}: a message is a mapping with role and content "
                f"(got {type(message).__name__})"
            )
        role = message.get("role")
        if role is None:
            raise DataError(f"{where(uri, n, at + '.role')}: missing role ({', '.join(ROLES)})")
        if role not in ROLES:
            raise DataError(
                f"{where(uri, n, at + '.role')}: unknown role {role!r} ({', '.join(ROLES)})"
            )
        content = message.get("content")
        if not isinstance(content, str):
            what = "missing content" if content is None else f"content is {type(content).__name__}"
            raise DataError(f"{where(uri, n, at + '.content')}: {what}, not text")
        turns.append({"role": role, "content": content.strip() if strip else content})
    if not any(t["role"] == ASSISTANT for t in turns):
        raise DataError(
            f"{where(uri, n, field)}: no assistant turn (the loss is on assistant turns only, "
            "so this conversation would teach nothing)"
        )
    return turns


def chat_values(turns: list[dict[str, str]]) -> dict[str, str]:
    """Canonical causal-lm columns of a chat row."""
    # \x1e between turns, role tags: ("a", "b c") and ("a b", "c") stay apart for the hash.
    user_side = "\x1e".join(f"{t['role']}: {t['content']}" for t in turns if t["role"] != ASSISTANT)
    return {
        "prompt": user_side,
        "response": "\x1e".join(t["content"] for t in turns if t["role"] == ASSISTANT),
        "messages": json.dumps(turns, ensure_ascii=False),
    }


def _render(tokenizer: Any, turns: list[dict[str, str]], *, generation: bool) -> str:
    return str(
        tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=generation)
    )


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def chat_pieces(tokenizer: Any, turns: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """(text, learned) pieces whose concatenation is the rendered conversation up to its
    last assistant turn."""
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(
            "dataset rows with messages need a tokenizer with a chat template "
            "(tokenizer_config.json chat_template); this model's tokenizer has none"
        )
    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, turn in enumerate(turns):
        if turn["role"] != ASSISTANT:
            continue
        head = _render(tokenizer, turns[:i], generation=True)
        full = _render(tokenizer, turns[: i + 1], generation=False)
        if not head.startswith(done) or not full.startswith(head):
            raise ModelError(
                "the tokenizer's chat template does not render a conversation turn by turn "
                f"(turn {i} changes the text before it), so the assistant turns cannot be "
                "masked exactly; use a template without that rewriting"
            )
        pieces += [(head[len(done) :], False), (full[len(head) :], True)]
        done = full
    return [(text, learned) for text, learned in pieces if text]


def encode_chat(tokenizer: Any, turns: list[dict[str, str]], max_len: int) -> dict[str, list[int]]:
    """input_ids / attention_mask / labels of one conversation, non-assistant tokens -100."""
    ids: list[int] = []
    labels: list[int] = []
    for text, learned in chat_pieces(tokenizer, turns):
        piece = _ids(tokenizer, text)
        ids += piece
        labels += piece if learned else [IGNORE_INDEX] * len(piece)
    if len(ids) > max_len:
        # Keep the start (system and first turns); when that leaves nothing to learn, keep
        # the end instead, which holds the last assistant turn.
        start = 0 if any(x != IGNORE_INDEX for x in labels[:max_len]) else len(ids) - max_len
        ids, labels = ids[start : start + max_len], labels[start : start + max_len]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}
