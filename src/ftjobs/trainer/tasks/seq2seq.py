"""seq2seq: source -> target, with an encoder-decoder model or a decoder-only one.

Encoder-decoder models (config.is_encoder_decoder: T5, BART, Marian...) encode the
source and learn the target as decoder labels. Decoder-only models treat the source
(already prompt-templated by the data step) as the prompt of a causal LM and learn the
target as the response (loss on the target only). Metrics: chrF and BLEU (sacrebleu) of
greedy generations capped at max_new_tokens, plus the token-weighted loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ftjobs.trainer.data.formatting import Record, RowFormatter
from ftjobs.trainer.tasks.base import TaskAdapter
from ftjobs.trainer.tasks.causal_lm import lm_loss, pad_collator, prompt_ids, tokenize_pairs
from ftjobs.trainer.tasks.common import (
    Collator,
    default_max_length,
    device_of,
    evaluating,
    load_tokenizer,
    map_rows,
    model_kwargs,
    select,
    sync_pad,
    unwrap,
)


class Seq2Seq(TaskAdapter):
    name = "seq2seq"
    columns = ("source", "target")
    required = ("source", "target")
    inputs = ("source",)
    outputs = ("target",)

    def __init__(self) -> None:
        # Decided by load_model from the model config; tokenize() follows it.
        self.encoder_decoder: bool | None = None

    # -- rows: source (prompt-templated), target --------------------------------------------

    def record(
        self, fmt: RowFormatter, row: dict[str, Any], uri: str, n: int, *, pair: bool
    ) -> Record:
        source = fmt.input_or_template(row, "source", uri, n)
        return Record(
            {"source": source, "target": fmt.text(row, fmt.fields["target"] or "", uri, n)}
        )

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
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

        kwargs = model_kwargs(dtype, gguf_file)
        config_kwargs = {k: v for k, v in kwargs.items() if k != "dtype"}
        config = AutoConfig.from_pretrained(model_dir, **config_kwargs)
        self.encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
        tokenizer = load_tokenizer(model_dir, gguf_file)
        auto = AutoModelForSeq2SeqLM if self.encoder_decoder else AutoModelForCausalLM
        model = auto.from_pretrained(model_dir, **kwargs, **(options or {}))
        sync_pad(model, tokenizer)
        return model, tokenizer

    def _is_encoder_decoder(self, model: Any | None = None) -> bool:
        if model is not None:
            return bool(getattr(unwrap(model).config, "is_encoder_decoder", False))
        if self.encoder_decoder is None:
            raise RuntimeError("seq2seq: call load_model() before tokenize() (it picks the layout)")
        return self.encoder_decoder

    def _tokenize(self, rows: Any, tokenizer: Any, max_seq_length: int, enc_dec: bool) -> Any:
        if not enc_dec:
            return tokenize_pairs(rows, tokenizer, max_seq_length, "source", "target")

        def encode(batch: dict[str, list[str]]) -> dict[str, Any]:
            enc = tokenizer(batch["source"], truncation=True, max_length=max_seq_length)
            target = tokenizer(
                text_target=batch["target"], truncation=True, max_length=max_seq_length
            )
            return {**enc, "labels": target["input_ids"]}

        return map_rows(rows, encode)

    def tokenize(self, rows: Any, tokenizer: Any, max_seq_length: int) -> Any:
        return self._tokenize(rows, tokenizer, max_seq_length, self._is_encoder_decoder())

    def collator(self, tokenizer: Any) -> Collator:
        return pad_collator(tokenizer)

    def _generate(
        self,
        model: Any,
        tokenizer: Any,
        sources: list[str],
        *,
        enc_dec: bool,
        max_len: int,
        max_new_tokens: int,
        synced_gpus: bool,
    ) -> list[str]:
        """Greedy generations for a batch of sources (left-padded prompts for decoders)."""
        device = device_of(model)
        if enc_dec:
            enc = tokenizer(
                sources, truncation=True, max_length=max_len, padding=True, return_tensors="pt"
            )
        else:
            ids = [prompt_ids(tokenizer, s)[-max_len:] for s in sources]
            width = max(len(x) for x in ids)
            pad = tokenizer.pad_token_id
            enc = {
                "input_ids": torch.tensor([[pad] * (width - len(x)) + x for x in ids]),
                "attention_mask": torch.tensor(
                    [[0] * (width - len(x)) + [1] * len(x) for x in ids]
                ),
            }
        inputs = {
            k: v.to(device) for k, v in dict(enc).items() if k in ("input_ids", "attention_mask")
        }
        out = unwrap(model).generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=tokenizer.pad_token_id,
            synced_gpus=synced_gpus,
        )
        if not enc_dec:  # the prompt comes back in front of the new tokens
            out = out[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]

    def evaluate(
        self,
        model: Any,
        tokenizer: Any,
        rows: Any,
        *,
        batch_size: int,
        max_new_tokens: int,
        metrics: list[str] | None = None,
        synced_gpus: bool = False,
        max_seq_length: int | None = None,
    ) -> dict[str, float]:
        enc_dec = self._is_encoder_decoder(model)
        max_len = max_seq_length or default_max_length(model, tokenizer)
        encoded = self._tokenize(rows, tokenizer, max_len, enc_dec)
        sources, refs = list(rows["source"]), list(rows["target"])
        hyps: list[str] = []
        with evaluating(model):
            loss = lm_loss(model, self.collator(tokenizer), encoded, batch_size, shift=not enc_dec)
            for start in range(0, len(sources), batch_size):
                hyps += self._generate(
                    model,
                    tokenizer,
                    sources[start : start + batch_size],
                    enc_dec=enc_dec,
                    max_len=max_len,
                    max_new_tokens=max_new_tokens,
                    synced_gpus=synced_gpus,
                )
        return select({**self.scores(hyps, refs), "loss": loss}, metrics)

    def scores(self, hypotheses: list[str], references: list[str]) -> dict[str, float]:
        """Corpus scores (0-100) of greedy generations against the targets: chrF and BLEU."""
        import sacrebleu

        return {
            "chrf": float(sacrebleu.corpus_chrf(hypotheses, [references]).score),
            "bleu": float(sacrebleu.corpus_bleu(hypotheses, [references]).score),
        }
