"""prepare_data: read, clean, format, split and check a FineTuneJob's data.

One pass over every source decides everything deterministically (row positions, sha1
split hashes): cleaning counts, duplicates, labels, validation/test rows carved from
train, leakage and the `maxSamples` cut-off. Map-style train rows are kept from that
pass; a streaming train set re-reads its files lazily and applies the same decisions
row by row, so every rank and every epoch sees the same rows without holding them.
Every rank runs the pass (it needs the validation/test rows anyway for evaluation).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.trainer.data.errors import DataError
from ftjobs.trainer.data.formatting import Record, RowFormatter, infer_labels
from ftjobs.trainer.data.loading import DataFile, StorageOptions, iter_rows, resolve_files
from ftjobs.trainer.data.report import SplitStats
from ftjobs.trainer.data.splits import TEST, TRAIN, VALIDATION, assign, digest

Position = tuple[int, int]  # (file index, 1-based row): the stable identity of a source row


@dataclass
class PreparedData:
    """Formatted splits (canonical task columns), label names and data-report.json."""

    train: Any  # datasets.Dataset, or datasets.IterableDataset when dataset.streaming
    validation: Any  # datasets.Dataset
    test: Any  # datasets.Dataset
    labels: list[str] | None
    report: dict[str, Any]


@dataclass
class _Kept:
    uri: str
    row: int
    record: Record


@dataclass
class _Scan:
    """What one pass over a source found."""

    stats: SplitStats = field(default_factory=SplitStats)
    kept: dict[str, list[_Kept]] = field(
        default_factory=lambda: {TRAIN: [], VALIDATION: [], TEST: []}
    )
    split_stats: dict[str, SplitStats] = field(
        default_factory=lambda: {TRAIN: SplitStats(), VALIDATION: SplitStats(), TEST: SplitStats()}
    )
    duplicates: set[Position] = field(default_factory=set)
    labels_seen: set[Any] = field(default_factory=set)
    leaked: dict[str, int] = field(default_factory=lambda: {TEST: 0, VALIDATION: 0})
    cut_by_max_samples: int = 0
    cutoff: Position | None = None


class _Preparer:
    def __init__(self, spec: FineTuneJobSpec, storage_options: StorageOptions) -> None:
        self.spec = spec
        self.ds = spec.dataset
        # Imported here: the adapters import trainer.data (formatting, errors).
        from ftjobs.trainer.tasks import get_task

        self.task = str(spec.task)
        self.adapter = get_task(self.task)
        self.fmt = RowFormatter(self.adapter, self.ds)
        self.storage_options = storage_options
        self.pair: bool | None = None  # decided from the first train row
        c = self.ds.cleaning
        self.rules = {
            "drop_empty": c.drop_empty,
            "drop_too_long": c.max_chars is not None,
            "dedupe": c.dedupe,
        }
        self.carve = {VALIDATION: self.ds.validation is None, TEST: self.ds.test is None}
        self.ratios = {
            VALIDATION: self.ds.split.validation_ratio if self.carve[VALIDATION] else 0.0,
            TEST: self.ds.split.test_ratio if self.carve[TEST] else 0.0,
        }
        self.leak_keys: dict[bytes, str] = {}  # input digest -> given split it belongs to

    # -- the shared row decision ----------------------------------------------------------

    def clean(self, rec: Record) -> str | None:
        """Name of the first cleaning rule that drops the record (dedupe aside), or None."""
        values = rec.values
        if self.rules["drop_empty"] and any(not values.get(c) for c in self.fmt.required):
            return "drop_empty"
        limit = self.ds.cleaning.max_chars
        if limit is not None and sum(len(values.get(c) or "") for c in self.fmt.columns) > limit:
            return "drop_too_long"
        return None

    def split_of(self, key: str) -> str:
        return assign(
            key,
            self.ds.split.seed,
            validation_ratio=self.ratios[VALIDATION],
            test_ratio=self.ratios[TEST],
        )

    def record(self, row: dict[str, Any], file: DataFile, n: int) -> Record:
        if self.pair is None:
            self.pair = self.fmt.uses_pair(row)
        return self.fmt.record(row, file.uri, n, pair=self.pair)

    # -- the pass -------------------------------------------------------------------------

    def scan(self, files: list[DataFile], *, source: str) -> _Scan:
        """Read every row of a source; `source` is train, validation or test."""
        out = _Scan()
        seen: set[bytes] = set()
        max_samples = self.ds.max_samples if source == TRAIN else None
        train_rows = 0
        for idx, file in enumerate(files):
            for n, row in iter_rows(file, self.storage_options):
                out.stats.read += 1
                rec = self.record(row, file, n)
                rule = self.clean(rec)
                if rule is not None:
                    out.stats.dropped[rule] += 1
                    continue
                if self.rules["dedupe"]:
                    key = digest(rec.text(self.fmt.columns) + "\x1e" + repr(rec.label))
                    if key in seen:
                        out.stats.dropped["dedupe"] += 1
                        out.duplicates.add((idx, n))
                        continue
                    seen.add(key)
                if self.adapter.uses_labels:
                    out.labels_seen.add(rec.label)
                self.fmt.check(rec, file.uri, n)
                input_text = self.fmt.input_text(rec)
                split = self.split_of(input_text) if source == TRAIN else source
                if split == TRAIN:
                    leak = self.leak_keys.get(digest(input_text))
                    if leak is not None:
                        out.leaked[leak] += 1
                        continue
                    if max_samples is not None and train_rows >= max_samples:
                        out.cut_by_max_samples += 1
                        continue
                    train_rows += 1
                    out.cutoff = (idx, n)
                output = rec.text(self.fmt.outputs) if self.fmt.outputs else None
                out.split_stats[split].add(input_text, output, rec.label)
                if split != TRAIN or not self.ds.streaming:
                    out.kept[split].append(_Kept(file.uri, n, rec))
        if out.stats.read == 0:
            raise DataError(f"{files[0].uri if len(files) == 1 else source}: no rows")
        return out

    # -- streaming train ------------------------------------------------------------------

    def stream(
        self,
        file_idx: list[int],
        files: tuple[DataFile, ...],
        scan: _Scan,
        labels: tuple[str, ...] | None,
    ) -> Iterator[dict[str, Any]]:
        """The train rows of `files[file_idx]`, decided exactly as in the pass."""
        for idx in file_idx:
            if scan.cutoff is None or idx > scan.cutoff[0]:
                continue
            file = files[idx]
            for n, row in iter_rows(file, self.storage_options):
                if (idx, n) > scan.cutoff:
                    break
                rec = self.record(row, file, n)
                if self.clean(rec) is not None or (idx, n) in scan.duplicates:
                    continue
                input_text = self.fmt.input_text(rec)
                if self.split_of(input_text) != TRAIN or digest(input_text) in self.leak_keys:
                    continue
                yield self.fmt.finish(rec, list(labels) if labels else None, file.uri, n)


def _features(types: dict[str, str]) -> Any:
    from datasets import Features, Value

    return Features({column: Value(kind) for column, kind in types.items()})


def _to_dataset(rows: list[dict[str, Any]], features: Any) -> Any:
    """A map-style Dataset with the canonical columns, also when there are no rows."""
    from datasets import Dataset

    return Dataset.from_dict({c: [r[c] for r in rows] for c in features}, features=features)


def prepare_data(
    spec: FineTuneJobSpec,
    *,
    rank: int = 0,
    world_size: int = 1,
    storage_options: StorageOptions = None,
) -> PreparedData:
    """Read, clean, format, split and check the data of `spec` (see the module docstring).

    `storage_options` is called for a fresh dict whenever a storage URI is opened.
    With `dataset.streaming` the train split is an IterableDataset already sharded for
    `rank` of `world_size`; map-style train is returned whole (the engine samples it).
    Raises DataError naming the file, row and field of bad data.
    """
    p = _Preparer(spec, storage_options)
    sources = _resolve_sources(p)
    if p.adapter.has_pairs:  # decided by the train data, before the given splits' pass
        p.pair = _first_row_pairs(p, sources[TRAIN][0])
    # Given validation/test first: their inputs are the leakage keys for the train pass.
    given = _scan_given(p, sources)
    scan = p.scan(sources[TRAIN], source=TRAIN)
    labels = None
    if p.adapter.uses_labels:
        labels = infer_labels(scan.labels_seen, p.ds.labels, p.ds.train)
    features = _features(p.adapter.features(bool(p.pair)))
    evaluation, stats = _evaluation_splits(p, given, scan, labels, features)
    stats[TRAIN] = scan.split_stats[TRAIN]
    if stats[TRAIN].rows == 0:
        raise DataError(
            f"{p.ds.train}: train split is empty after cleaning, splitting and the "
            f"leakage check ({scan.stats.read} rows read)"
        )
    train = _train_split(p, sources[TRAIN], scan, labels, features, rank, world_size)
    report = _report(p, sources, given, scan, labels, stats)
    return PreparedData(
        train=train,
        validation=evaluation[VALIDATION],
        test=evaluation[TEST],
        labels=labels,
        report=report,
    )


def _resolve_sources(p: _Preparer) -> dict[str, list[DataFile]]:
    """The files of train and of the given validation/test sets."""
    ds = p.ds
    sources = {TRAIN: resolve_files(ds.train, ds.format, p.storage_options)}
    for split, uri in ((VALIDATION, ds.validation), (TEST, ds.test)):
        if uri is not None:
            sources[split] = resolve_files(uri, ds.format, p.storage_options)
    return sources


def _first_row_pairs(p: _Preparer, file: DataFile) -> bool:
    with closing(iter_rows(file, p.storage_options)) as reader:
        first = next(reader, None)
    return p.fmt.uses_pair(first[1]) if first else False


def _scan_given(p: _Preparer, sources: dict[str, list[DataFile]]) -> dict[str, _Scan]:
    """The pass over the given validation/test sets; their inputs become leakage keys."""
    given: dict[str, _Scan] = {}
    for split in (VALIDATION, TEST):
        if split in sources:
            given[split] = p.scan(sources[split], source=split)
            for kept in given[split].kept[split]:
                p.leak_keys.setdefault(digest(p.fmt.input_text(kept.record)), split)
    return given


def _rows_of(
    p: _Preparer, split: str, given: dict[str, _Scan], scan: _Scan, labels: list[str] | None
) -> tuple[list[dict[str, Any]], SplitStats]:
    src = given.get(split, scan)
    rows = [p.fmt.finish(k.record, labels, k.uri, k.row) for k in src.kept[split]]
    return rows, src.split_stats[split]


def _evaluation_splits(
    p: _Preparer,
    given: dict[str, _Scan],
    scan: _Scan,
    labels: list[str] | None,
    features: Any,
) -> tuple[dict[str, Any], dict[str, SplitStats]]:
    """Validation and test Datasets (given or carved); an expected split that is empty fails."""
    ds = p.ds
    out: dict[str, Any] = {}
    stats: dict[str, SplitStats] = {}
    for split in (VALIDATION, TEST):
        rows, stats[split] = _rows_of(p, split, given, scan, labels)
        if not rows and (split in given or p.ratios[split] > 0):
            where_from = ds.validation if split == VALIDATION else ds.test
            if where_from is None:
                raise DataError(
                    f"{ds.train}: {split} split is empty: no row of {scan.stats.read} hashed into "
                    f"it ({split}Ratio {p.ratios[split]}); add rows or raise the ratio"
                )
            raise DataError(f"{where_from}: {split} split is empty after cleaning")
        out[split] = _to_dataset(rows, features)
    return out, stats


def _train_split(
    p: _Preparer,
    files: list[DataFile],
    scan: _Scan,
    labels: list[str] | None,
    features: Any,
    rank: int,
    world_size: int,
) -> Any:
    """Map-style train rows from the pass, or a lazy stream re-reading the files."""
    if not p.ds.streaming:
        return _to_dataset(_rows_of(p, TRAIN, {}, scan, labels)[0], features)
    from datasets import IterableDataset

    train = IterableDataset.from_generator(
        p.stream,
        features=features,
        # Only file_idx is a list: datasets shards lists in gen_kwargs across ranks.
        gen_kwargs={
            "file_idx": list(range(len(files))),
            "files": tuple(files),
            "scan": scan,
            "labels": tuple(labels) if labels else None,
        },
    )
    if world_size > 1:
        from datasets.distributed import split_dataset_by_node

        train = split_dataset_by_node(train, rank=rank, world_size=world_size)
    return train


def _report(
    p: _Preparer,
    sources: dict[str, list[DataFile]],
    given: dict[str, _Scan],
    scan: _Scan,
    labels: list[str] | None,
    stats: dict[str, SplitStats],
) -> dict[str, Any]:
    """data-report.json: what each step read, dropped, carved and checked."""
    ds = p.ds

    def name(raw: Any) -> str:
        return raw if isinstance(raw, str) or labels is None else labels[int(raw)]

    return {
        "task": p.task,
        "streaming": ds.streaming,
        "sources": {s: [f.uri for f in files] for s, files in sources.items()},
        "labels": labels,
        "cleaning": {
            s: {"rows_read": src.stats.read, "steps": src.stats.steps(p.rules)}
            for s, src in ((TRAIN, scan), *given.items())
        },
        "split": {
            "carved": [s for s in (VALIDATION, TEST) if p.carve[s]],
            "seed": ds.split.seed,
            "validation_ratio": p.ratios[VALIDATION],
            "test_ratio": p.ratios[TEST],
            "key": "sha1(seed, input text)",
        },
        "leakage": {
            "check": "exact input text of train rows against given validation/test",
            "train_rows_in_test": scan.leaked[TEST],
            "train_rows_in_validation": scan.leaked[VALIDATION],
            "dropped_from_train": scan.leaked[TEST] + scan.leaked[VALIDATION],
        },
        "max_samples": {"limit": ds.max_samples, "train_rows_cut": scan.cut_by_max_samples},
        "splits": {s: stats[s].summary(name) for s in (TRAIN, VALIDATION, TEST)},
    }
