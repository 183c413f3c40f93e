"""Reading FineTuneJob files: YAML documents, `--set` overrides, validation.

Every problem becomes a `SpecError` naming the file, and the line and column for YAML
syntax errors, so the CLI only has to print it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ftjobs.api.constants import GROUP, KIND
from ftjobs.api.job import FineTuneJob
from ftjobs.api.validation import FieldError, SpecError, parse_job

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
# YAML 1.2 (what kubectl reads) takes `5e-5` as a number; PyYAML's YAML 1.1 wants `5.0e-5`
# and would hand the validator the string "5e-5".
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def load_documents(path: str | Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a file; `-` reads standard input."""
    return parse_documents(_read(path), str(path))


def _read(path: str | Path) -> str:
    source = str(path)
    try:
        return sys.stdin.read() if source == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([FieldError("", f"cannot read file: {exc.strerror}")], source) from None
    except UnicodeDecodeError as exc:
        message = f"not a text file (not UTF-8 at byte {exc.start}); expected FineTuneJob YAML"
        raise SpecError([FieldError("", message)], source) from None


def parse_documents(text: str, source: str = "<string>") -> list[dict[str, Any]]:
    """The non-empty YAML documents of a string; syntax errors carry line and column."""
    try:
        docs = [d for d in yaml.load_all(text, Loader=_StrictLoader) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(
            [FieldError("", f"YAML syntax error at {where}{problem}")], source
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([FieldError("", f"YAML syntax error: {exc}")], source) from None
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise SpecError(
                [FieldError("", f"document {i + 1} is not a mapping (got {type(doc).__name__})")],
                source,
            )
    return docs


def is_finetunejob(doc: dict[str, Any]) -> bool:
    """Documents that claim to be FineTuneJobs (or our API group, to catch kind typos)."""
    api_version = str(doc.get("apiVersion", ""))
    return doc.get("kind") == KIND or api_version.startswith(f"{GROUP}/")


def load_job(path: str | Path, overrides: Sequence[str] = ()) -> FineTuneJob:
    """The one FineTuneJob in a file, with `--set` overrides applied, validated."""
    source = str(path)
    text = _read(path)
    docs = parse_documents(text, source)
    jobs = [(i, d) for i, d in enumerate(docs) if is_finetunejob(d)]
    if len(jobs) != 1:
        raise SpecError(
            [FieldError("", f"expected exactly one {KIND} document, found {len(jobs)}")], source
        )
    index, doc = jobs[0]
    try:
        return parse_job(apply_overrides(doc, overrides), source)
    except SpecError as exc:
        raise _located(exc, text, index, source) from None


def _located(exc: SpecError, text: str, index: int, source: str) -> SpecError:
    """`exc` with each error's line in the file (its field's, else its nearest parent's),
    sorted by line as an editor shows them."""
    lines = field_lines(text)[index]
    start = min(lines.values(), default=None)
    located = [replace(e, line=line_of(lines, e.path) or start) for e in exc.errors]
    located.sort(key=lambda e: e.line or 0)
    return SpecError(located, source)


def validate_file(path: str | Path) -> list[tuple[str, FineTuneJob | SpecError]]:
    """Every FineTuneJob document of a file, each validated on its own.

    Returns (label, job or error) per document; the label names the file, and the
    document number when the file holds several. Each error carries the line of its
    field (of the nearest parent present, or of the document, for a missing one).
    Documents of other kinds are ignored; a file with no FineTuneJob at all, or with
    broken YAML, raises SpecError.
    """
    source = str(path)
    text = _read(path)
    docs = parse_documents(text, source)
    jobs = [(i, d) for i, d in enumerate(docs) if is_finetunejob(d)]
    if not jobs:
        raise SpecError([FieldError("", f"no {KIND} document found")], source)
    out: list[tuple[str, FineTuneJob | SpecError]] = []
    for i, doc in jobs:
        label = f"{source} (document {i + 1})" if len(docs) > 1 else source
        try:
            out.append((label, parse_job(doc, label)))
        except SpecError as exc:
            out.append((label, _located(exc, text, i, source)))
    return out


def field_lines(text: str) -> list[dict[str, int]]:
    """Per non-empty YAML document: camelCase field path -> 1-based line of its key."""
    out = []
    for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            _walk(node, "", lines)
            out.append(lines)
    return out


def _walk(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = f"{path}.{key.value}" if path else str(key.value)
            lines[child] = key.start_mark.line + 1
            _walk(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines)


def line_of(lines: dict[str, int], path: str) -> int | None:
    """The line of `path`, or of its nearest parent present in the file (a missing field)."""
    while path:
        if path in lines:
            return lines[path]
        shorter = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", path)
        # A malformed path (`a..b`, from --set) ends in no segment: cut at its last dot.
        path = shorter if shorter != path else path.rpartition(".")[0]
    return None


def apply_overrides(doc: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of `doc` with `path=value` overrides applied (Helm-style `--set`).

    The path is camelCase and relative to `spec` unless it starts with `metadata.` or
    `spec.`; `[i]` indexes a list (`resources.tolerations[0].key=gpu`, where index
    len(list) appends). The value is a YAML scalar: `5e-5`, `true`, `null`, `"007"`.
    """
    out: dict[str, Any] = yaml.safe_load(yaml.safe_dump(doc))  # deep copy of plain data
    for item in overrides:
        path, sep, raw = item.partition("=")
        path = path.strip()
        if not sep or not path:
            raise SpecError([FieldError("", f"override {item!r} is not PATH=VALUE")])
        if not path.startswith(("metadata.", "spec.")):
            path = f"spec.{path}"
        try:
            value = yaml.load(raw, Loader=_StrictLoader) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set(out, path, value)
    return out


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    tokens: list[str | int] = []
    pos = 0
    for match in _TOKEN.finditer(path):
        gap = path[pos : match.start()]
        if gap not in ("", "."):
            break
        tokens.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    if pos != len(path) or not tokens:
        raise SpecError([FieldError(path, "cannot parse this override path")])
    node: Any = doc
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        fresh: Any = value if last else ([] if isinstance(tokens[i + 1], int) else {})
        where = _path_of(tokens[: i + 1])
        if isinstance(token, int):
            if not isinstance(node, list):
                raise SpecError([FieldError(where, "is not a list")])
            if token > len(node):
                raise SpecError([FieldError(where, f"index out of range (length {len(node)})")])
            if token == len(node):
                node.append(fresh)
            elif last:
                node[token] = value
            node = node[token]
        else:
            if not isinstance(node, dict):
                raise SpecError([FieldError(where, "is not a mapping")])
            if last:
                node[token] = value
            elif node.get(token) is None:
                node[token] = fresh
            elif not isinstance(node[token], dict | list):
                raise SpecError([FieldError(where, f"is a {type(node[token]).__name__}")])
            node = node[token]


def _path_of(tokens: Sequence[str | int]) -> str:
    return "".join(f"[{t}]" if isinstance(t, int) else f".{t}" for t in tokens).lstrip(".")
