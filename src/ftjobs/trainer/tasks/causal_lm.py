"""causal-lm: plain text, prompt -> response with the loss on the response only, or a chat.

A row with a prompt is rendered with the tokenizer's chat template when it has one (the
prompt as the user turn plus the generation prompt), else the prompt text is tokenized
as is; the response follows, ended by eos. Prompt tokens get label -100, so only the
response is learned. Plain text (prompt "") is learned whole. A chat row (a `messages`
list) is rendered with the chat template, the loss on its assistant turns only
(`ftjobs.trainer.tasks.chat`). Metrics: token-weighted
loss and perplexity = exp(loss).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from ftjobs.trainer.data.formatting import Record, RowFormatter
from ftjobs.trainer.tasks.base import TaskAdapter
from ftjobs.trainer.tasks.chat import DEFAULT_FIELD, chat_values, encode_chat, parse_messages
from ftjobs.trainer.tasks.common import (
    IGNORE_INDEX,
    Collator,
    default_max_length,
    device_of,
    eval_batches,
    evaluating,
    load_tokenizer,
    map_rows,
    model_kwargs,
    select,
    sync_pad,
    token_loss_sums,
)


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of a prompt, through the chat template when the tokenizer has one."""
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(prompt)["input_ids"])  # with the model's own bos, if it adds one


def encode_pair(tokenizer: Any, prompt: str, response: str, max_len: int) -> dict[str, list[int]]:
    """input_ids / attention_mask / labels of one prompt+response, prompt masked."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if prompt:
        head = prompt_ids(tokenizer, prompt)
        tail = list(tokenizer(response, add_special_tokens=False)["input_ids"]) + eos
    else:  # plain text: bos (if the tokenizer adds one) + text + eos, all learned
        head = []
        tail = list(tokenizer(response)["input_ids"]) + eos
    # Keep room for the response: a long prompt loses its start, never the whole answer.
    keep_tail = min(len(tail), max(max_len - len(head), max_len // 2))
    tail = tail[:keep_tail]
    head = head[-(max_len - len(tail)) :] if max_len > len(tail) else []
    ids = head + tail
    labels = [IGNORE_INDEX] * len(head) + tail
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def tokenize_pairs(
    rows: Any,
    tokenizer: Any,
    max_seq_length: int,
    prompt_col: str,
    response_col: str,
    messages_col: str | None = None,
) -> Any:
    """Rows of prompt/response (or plain text) and, in `messages_col` when given, chat rows
    (their turns as JSON; "" for the other kinds)."""

    def encode(batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
        out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
        prompts, responses = batch[prompt_col], batch[response_col]
        chats = batch.get(messages_col or "") or [""] * len(prompts)
        for prompt, response, chat in zip(prompts, responses, chats, strict=True):
            encoded = (
                encode_chat(tokenizer, json.loads(chat), max_seq_length)
                if chat
                else encode_pair(tokenizer, prompt, response, max_seq_length)
            )
            for key, value in encoded.items():
                out[key].append(value)
        return out

    return map_rows(rows, encode)


def pad_collator(tokenizer: Any) -> Collator:
    """Dynamic padding of input_ids/attention_mask, labels padded with -100."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX, return_tensors="pt")


def lm_loss(model: Any, collate: Collator, encoded: Any, batch_size: int, *, shift: bool) -> float:
    """Token-weighted mean loss of `encoded` rows (under the caller's no_grad)."""
    total, count = 0.0, 0
    for _, batch in eval_batches(encoded, batch_size, collate, device_of(model)):
        labels = batch.pop("labels")
        if not shift:  # encoder-decoder: the model builds decoder inputs from labels
            batch["labels"] = labels
        logits = model(**batch).logits
        s, c = token_loss_sums(logits, labels, shift=shift)
        total, count = total + s, count + c
    return total / max(count, 1)


class CausalLM(TaskAdapter):
    name = "causal-lm"
    columns = ("prompt", "response")
    required = ("response",)
    inputs = ("prompt",)
    outputs = ("response",)

    # -- rows: prompt ("" for plain text), response -----------------------------------------

    def record(
        self, fmt: RowFormatter, row: dict[str, Any], uri: str, n: int, *, pair: bool
    ) -> Record:
        chat_field = fmt.fields["messages"] or (DEFAULT_FIELD if DEFAULT_FIELD in row else None)
        if chat_field is not None:  # a conversation (ftjobs.trainer.tasks.chat)
            turns = parse_messages(
                fmt.get(row, chat_field, uri, n), uri, n, chat_field, strip=fmt.strip
            )
            return Record(chat_values(turns))
        response_field = fmt.fields["response"] or ("response" if "response" in row else None)
        if response_field is None:  # plain text: the whole text is the response
            text = fmt.text(row, fmt.fields["text"] or "", uri, n)
            return Record({"prompt": "", "response": text, "messages": ""})
        if fmt.template:
            prompt = fmt.format(row, uri, n)
        elif fmt.fields["prompt"] is not None or "prompt" in row:
            prompt = fmt.text(row, fmt.fields["prompt"] or "prompt", uri, n)
        else:
            prompt = ""
        response = fmt.text(row, response_field, uri, n)
        return Record({"prompt": prompt, "response": response, "messages": ""})

    def features(self, pair: bool) -> dict[str, str]:
        # `messages`: the turns of a chat row as JSON, "" for the other rows. Not one of
        # `columns`: cleaning and dedupe read the chat's text through prompt/response.
        return {"prompt": "string", "response": "string", "messages": "string"}

    def input_text(self, rec: Record) -> str:
        if not rec.values["prompt"]:
            return str(rec.values["response"])  # plain text: the text is the input
        return rec.text(self.inputs)

    # -- model ----------------------------------------------------------------------------

    def load_model(
        self,
        model_dir: Path,
        *,
        labels: list[str] | None = None,
        dtype: torch.dtype,
        gguf_file: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[torch.nn.Module, Any]:
        from transformers import AutoModelForCausalLM

        tokenizer = load_tokenizer(model_dir, gguf_file)
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, **model_kwargs(dtype, gguf_file), **(options or {})
        )
        sync_pad(model, tokenizer)
        return model, tokenizer

    def tokenize(self, rows: Any, tokenizer: Any, max_seq_length: int) -> Any:
        return tokenize_pairs(rows, tokenizer, max_seq_length, "prompt", "response", "messages")

    def collator(self, tokenizer: Any) -> Collator:
        return pad_collator(tokenizer)

    def evaluate(
        self,
        model: Any,
        tokenizer: Any,
        rows: Any,
        *,
        batch_size: int,
        max_new_tokens: int = 0,
        metrics: list[str] | None = None,
        synced_gpus: bool = False,
        max_seq_length: int | None = None,
    ) -> dict[str, float]:
        encoded = self.tokenize(
            rows, tokenizer, max_seq_length or default_max_length(model, tokenizer)
        )
        with evaluating(model):
            loss = lm_loss(model, self.collator(tokenizer), encoded, batch_size, shift=True)
        return select({"perplexity": math.exp(min(loss, 50.0)), "loss": loss}, metrics)
