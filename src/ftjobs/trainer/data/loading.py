"""Finding data files behind a URI and reading their rows one by one.

A storage backend's URI (s3://, ...; ftjobs.storage.backends) goes through `datasets`
streaming readers and that scheme's fsspec filesystem with the caller's per-URI storage
options; hf://datasets/org/name[@revision][/path] through the same readers and
huggingface_hub's fsspec filesystem (streamed from the Hub, nothing downloaded whole);
file:// through the same readers on local paths. A URI that names a
folder or key prefix means every data file under it (sorted, so row order is stable).
Rows are read file by file so every row keeps its file and 1-based row number for
error messages and for the deterministic streaming filter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from ftjobs.storage.backends import call_options, failure_from, is_remote
from ftjobs.trainer.data.errors import DataError, where

# uri -> fsspec storage_options (ftjobs.storage.options_for); a callable without
# parameters gives the same options for every remote URI (the older form).
StorageOptions = Callable[[str], dict[str, Any]] | Callable[[], dict[str, Any]] | None

# Extension (before any compression suffix) -> `datasets` packaged builder.
_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}
_BUILDERS = {"jsonl": "json", "parquet": "parquet", "csv": "csv"}
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst", ".zstd")


@dataclass(frozen=True)
class DataFile:
    """One data file: its URI (as shown in messages), path for the reader, and format."""

    uri: str
    path: str
    format: str


def _options(uri: str, storage_options: StorageOptions) -> dict[str, Any]:
    # A fresh dict per call: datasets/fsspec mutate what they are given.
    if is_remote(uri) and storage_options is not None:
        return call_options(storage_options, uri)
    return {}


def _local(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


def detect_format(uri: str, requested: str = "auto") -> str | None:
    """jsonl/parquet/csv from the extension (compression suffixes ignored); None if unknown."""
    if requested != "auto":
        return requested
    name = uri.rsplit("/", 1)[-1].lower()
    for suffix in _COMPRESSION:
        name = name.removesuffix(suffix)
    dot = name.rfind(".")
    return _FORMATS.get(name[dot:]) if dot >= 0 else None


def resolve_files(uri: str, fmt: str, storage_options: StorageOptions) -> list[DataFile]:
    """The data files behind `uri`: the file itself, or every data file under a prefix."""
    import fsspec

    if is_remote(uri):
        fs, path = fsspec.core.url_to_fs(uri, **_options(uri, storage_options))
        scheme = uri.split("://", 1)[0] + "://"
    elif uri.startswith("hf://"):
        # huggingface_hub's HfFileSystem: HF_ENDPOINT and HF_TOKEN from the environment.
        fs, path = fsspec.core.url_to_fs(uri)
        scheme = "hf://"
    else:
        fs, path = fsspec.core.url_to_fs(_local(uri))
        scheme = "file://"
    try:
        if fs.isfile(path):
            found = [path]
        elif fs.isdir(path):
            found = sorted(fs.find(path))
        else:
            raise DataError(f"{uri}: no such file or prefix")
    except DataError:
        raise
    except Exception as exc:
        _raise_if_storage_failure(exc, uri, storage_options)
        raise DataError(f"{uri}: cannot list: {exc}") from exc
    files: list[DataFile] = []
    for item in found:
        base = item.rsplit("/", 1)[-1]
        if base.startswith((".", "_")):  # _SUCCESS markers, hidden files
            continue
        file_fmt = detect_format(item, fmt)
        if file_fmt is None:
            if len(found) == 1:
                raise DataError(
                    f"{uri}: unknown format; use .jsonl, .parquet or .csv or set dataset.format"
                )
            continue
        remote = scheme != "file://"
        full = f"{scheme}{item.lstrip('/')}" if remote else f"file://{item}"
        files.append(DataFile(uri=full, path=full if remote else item, format=file_fmt))
    if not files:
        raise DataError(f"{uri}: no data files (.jsonl, .parquet, .csv) found")
    return files


def iter_rows(
    file: DataFile, storage_options: StorageOptions
) -> Generator[tuple[int, dict[str, Any]], None, None]:
    """(1-based row number, row) for every row of one file, via a `datasets` streaming reader.

    CSV cannot tell an empty cell from a missing one, so its empty cells read as "".
    """
    import datasets

    kwargs: dict[str, Any] = {}
    if is_remote(file.uri):
        kwargs["storage_options"] = _options(file.uri, storage_options)
    row = 0
    try:
        ds = datasets.load_dataset(
            _BUILDERS[file.format], data_files=[file.path], split="train", streaming=True, **kwargs
        )
        for row, record in enumerate(ds, start=1):
            if file.format == "csv":
                record = {k: "" if _is_null(v) else v for k, v in record.items()}
            yield row, record
    except DataError:
        raise
    except Exception as exc:
        # A network or permission failure mid-read is no bad row: classify it as storage
        # (retriable or permanent by storage.failures), before blaming the data.
        _raise_if_storage_failure(exc, file.uri, storage_options)
        if file.format == "jsonl":
            _raise_bad_json_line(file, storage_options)
        raise DataError(f"{where(file.uri, row + 1)}: cannot read {file.format}: {exc}") from exc


def _raise_if_storage_failure(exc: Exception, uri: str, storage_options: StorageOptions) -> None:
    failure = failure_from(exc, uri, _options(uri, storage_options))
    if failure is not None:
        raise failure from None


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _raise_bad_json_line(file: DataFile, storage_options: StorageOptions) -> None:
    """Find the first line that is not a JSON object (the reader reports chunk positions)."""
    import fsspec

    opts = _options(file.uri, storage_options)
    with fsspec.open(file.path, "rt", compression="infer", encoding="utf-8", **opts) as f:
        row = 0
        for line in f:
            if not line.strip():
                continue
            row += 1
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{where(file.uri, row)}: invalid JSON: {exc}") from None
            if not isinstance(value, dict):
                raise DataError(f"{where(file.uri, row)}: not a JSON object")
