"""prepare_data on local files: formats, cleaning, splits, leakage, labels, errors, report,
streaming shards. Real files and the real `datasets` readers; no mocks."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.trainer.data import DataError, PreparedData, prepare_data


def make_spec(task: str, train: Path | str, **dataset: Any) -> FineTuneJobSpec:
    """A valid spec around the dataset settings under test (camelCase keys, as users write)."""
    uri = train if isinstance(train, str) else f"file://{train}"
    return FineTuneJobSpec.model_validate(
        {
            "task": task,
            "model": {"uri": "file:///models/tiny"},
            "dataset": {"train": uri, **dataset},
            "hyperparameters": {"epochs": 1},
            "storage": {"output": "file:///tmp/ftjobs-out"},
        }
    )


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def sentiment_rows(n: int, offset: int = 0) -> list[dict[str, Any]]:
    words = ["good", "bad"]
    return [
        {"text": f"review {i} is {words[i % 2]}", "label": ["positive", "negative"][i % 2]}
        for i in range(offset, offset + n)
    ]


def texts(ds: Any, column: str = "text") -> list[str]:
    return [row[column] for row in ds]


def all_rows(p: PreparedData) -> list[dict[str, Any]]:
    return [*p.train, *p.validation, *p.test]


# -- formats and locations ---------------------------------------------------------------


def test_jsonl_parquet_and_csv_give_the_same_prepared_rows(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sentiment_rows(60)
    jsonl = write_jsonl(tmp_path / "d.jsonl", rows)
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    csv_path = tmp_path / "d.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)

    prepared = [
        prepare_data(make_spec("sequence-classification", p)) for p in (jsonl, parquet, csv_path)
    ]
    first = prepared[0]
    assert first.labels == ["negative", "positive"]
    assert len(first.train) + len(first.validation) + len(first.test) == 60
    for other in prepared[1:]:
        assert other.labels == first.labels
        for split in ("train", "validation", "test"):
            assert list(getattr(other, split)) == list(getattr(first, split))


def test_a_folder_means_every_data_file_in_it_in_name_order(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data" / "b.jsonl", sentiment_rows(20, offset=100))
    write_jsonl(tmp_path / "data" / "a.jsonl", sentiment_rows(20))
    (tmp_path / "data" / "_SUCCESS").write_text("")
    p = prepare_data(
        make_spec(
            "sequence-classification",
            tmp_path / "data",
            split={"testRatio": 0.0, "validationRatio": 0.0},
        )
    )
    assert p.report["sources"]["train"] == [
        f"file://{tmp_path}/data/a.jsonl",
        f"file://{tmp_path}/data/b.jsonl",
    ]
    assert texts(p.train) == texts(sentiment_rows(20)) + texts(sentiment_rows(20, offset=100))
    assert len(p.validation) == len(p.test) == 0  # ratio 0: not carved, and that is fine


# -- cleaning -------------------------------------------------------------------------------


def test_cleaning_strips_drops_and_dedupes_with_counts_per_rule(tmp_path: Path) -> None:
    rows = [
        {"text": "  padded  ", "label": "a"},
        {"text": "padded", "label": "a"},  # duplicate after stripping
        {"text": "   ", "label": "a"},  # empty after stripping
        {"text": "", "label": "b"},
        {"text": "x" * 50, "label": "b"},  # over maxChars
        {"text": "fine one", "label": "b"},
        {"text": "fine one", "label": "a"},  # same text, other label: not an exact duplicate
        {"text": "fine two", "label": "b"},
    ]
    given = write_jsonl(tmp_path / "test.jsonl", [{"text": "held out", "label": "a"}])
    spec = make_spec(
        "sequence-classification",
        write_jsonl(tmp_path / "train.jsonl", rows),
        validation=f"file://{given}",
        test=f"file://{given}",
        cleaning={"maxChars": 20},
    )
    p = prepare_data(spec)
    steps = p.report["cleaning"]["train"]["steps"]
    assert p.report["cleaning"]["train"]["rows_read"] == 8
    assert [(s["rule"], s["before"], s["after"]) for s in steps] == [
        ("drop_empty", 8, 6),
        ("drop_too_long", 6, 5),
        ("dedupe", 5, 4),
    ]
    assert sorted(texts(p.train)) == ["fine one", "fine one", "fine two", "padded"]

    off = make_spec(
        "sequence-classification",
        tmp_path / "train.jsonl",
        validation=f"file://{given}",
        test=f"file://{given}",
        cleaning={"stripWhitespace": False, "dropEmpty": False, "dedupe": False},
    )
    assert sorted(texts(prepare_data(off).train))[:3] == ["", "   ", "  padded  "]


# -- splits and leakage ----------------------------------------------------------------------


def test_splits_are_deterministic_per_seed_and_follow_the_ratios(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "t.jsonl", sentiment_rows(400))

    def split_texts(seed: int) -> tuple[list[str], list[str], list[str]]:
        spec = make_spec(
            "sequence-classification",
            train,
            split={"validationRatio": 0.2, "testRatio": 0.1, "seed": seed},
        )
        p = prepare_data(spec)
        return texts(p.train), texts(p.validation), texts(p.test)

    a, again, other = split_texts(7), split_texts(7), split_texts(8)
    assert a == again
    assert a != other
    tr, va, te = a
    assert sorted(tr + va + te) == sorted(texts(sentiment_rows(400)))
    assert not set(tr) & set(te) and not set(tr) & set(va) and not set(va) & set(te)
    # sha1 is uniform: 400 rows at 0.2 / 0.1 land near 80 / 40.
    assert 55 <= len(va) <= 105 and 22 <= len(te) <= 60


def test_identical_inputs_land_in_one_split(tmp_path: Path) -> None:
    # Same text with two labels: carving must not put one copy in train and one in test.
    rows = [{"text": f"t{i}", "label": lab} for i in range(100) for lab in ("x", "y")]
    p = prepare_data(make_spec("sequence-classification", write_jsonl(tmp_path / "t.jsonl", rows)))
    tr, te = set(texts(p.train)), set(texts(p.test)) | set(texts(p.validation))
    assert not tr & te
    assert p.report["leakage"]["dropped_from_train"] == 0


def test_train_rows_seen_in_the_given_test_set_are_dropped_and_counted(tmp_path: Path) -> None:
    train_rows = sentiment_rows(50)
    test_rows = [*sentiment_rows(3, offset=10), *sentiment_rows(5, offset=500)]
    val_rows = sentiment_rows(2, offset=20)
    spec = make_spec(
        "sequence-classification",
        write_jsonl(tmp_path / "train.jsonl", train_rows),
        test=f"file://{write_jsonl(tmp_path / 'test.jsonl', test_rows)}",
        validation=f"file://{write_jsonl(tmp_path / 'val.jsonl', val_rows)}",
    )
    p = prepare_data(spec)
    leak = p.report["leakage"]
    assert (leak["train_rows_in_test"], leak["train_rows_in_validation"]) == (3, 2)
    assert leak["dropped_from_train"] == 5
    assert len(p.train) == 45
    assert not set(texts(p.train)) & (set(texts(p.test)) | set(texts(p.validation)))
    assert p.report["split"]["carved"] == []


def test_max_samples_caps_train_only(tmp_path: Path) -> None:
    spec = make_spec(
        "sequence-classification",
        write_jsonl(tmp_path / "t.jsonl", sentiment_rows(200)),
        maxSamples=30,
    )
    p = prepare_data(spec)
    assert len(p.train) == 30
    assert len(p.validation) + len(p.test) > 20
    assert p.report["max_samples"] == {
        "limit": 30,
        "train_rows_cut": 200 - 30 - len(p.validation) - len(p.test),
    }


# -- labels ------------------------------------------------------------------------------------


def test_string_labels_map_to_sorted_names_or_the_spec_order(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "t.jsonl", sentiment_rows(40))
    inferred = prepare_data(make_spec("sequence-classification", train))
    assert inferred.labels == ["negative", "positive"]
    assert all(r["label"] == int("good" in r["text"]) for r in all_rows(inferred))

    ordered = prepare_data(
        make_spec("sequence-classification", train, labels=["positive", "negative"])
    )
    assert ordered.labels == ["positive", "negative"]
    assert all(r["label"] == int("bad" in r["text"]) for r in all_rows(ordered))
    assert set(ordered.report["splits"]["train"]["label_balance"]) == {"positive", "negative"}


def test_numeric_labels_are_indices(tmp_path: Path) -> None:
    rows = [{"text": f"row {i}", "label": i % 3} for i in range(60)]
    p = prepare_data(make_spec("sequence-classification", write_jsonl(tmp_path / "t.jsonl", rows)))
    assert p.labels == ["0", "1", "2"]
    assert all(r["label"] == int(r["text"].split()[1]) % 3 for r in all_rows(p))


# -- bad data fails fast, naming file, row and field ----------------------------------------


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        (
            [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}, {"txt": "c", "label": "x"}],
            {},
            "t.jsonl: row 3: field 'text': missing field",
        ),
        (
            [{"text": "a", "label": "negative"}, {"text": "b", "label": "neutral"}],
            {"labels": ["negative", "positive"]},
            "t.jsonl: row 2: field 'label': unknown label 'neutral' (known: negative, positive)",
        ),
        (
            [{"text": "a", "label": "x"}, {"text": "b", "label": None}],
            {},
            "t.jsonl: row 2: field 'label': missing field (null or absent in this row)",
        ),
        (
            [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}],
            {"promptTemplate": "Review: {review}"},
            "t.jsonl: row 1: field 'review': missing field used by promptTemplate",
        ),
        (
            [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}],
            {},
            "validation split is empty",
        ),
    ],
)
def test_bad_classification_data_names_file_row_and_field(
    tmp_path: Path, rows: list[dict[str, Any]], extra: dict[str, Any], message: str
) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    with pytest.raises(DataError) as err:
        prepare_data(make_spec("sequence-classification", path, **extra))
    assert message in str(err.value)
    assert str(err.value).startswith(f"file://{tmp_path}/t.jsonl")


def test_unknown_label_in_a_given_test_file_is_named(tmp_path: Path) -> None:
    test = write_jsonl(
        tmp_path / "test.jsonl", [{"text": "x", "label": "positive"}, {"text": "y", "label": "meh"}]
    )
    spec = make_spec(
        "sequence-classification",
        write_jsonl(tmp_path / "train.jsonl", sentiment_rows(30)),
        test=f"file://{test}",
    )
    with pytest.raises(
        DataError,
        match=r"test\.jsonl: row 2: field 'label': unknown label 'meh' "
        r"\(known: negative, positive\)",
    ):
        prepare_data(spec)


def test_unreadable_and_missing_files_are_data_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": "x"}\n{"text": oops\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: row 2: invalid JSON: Expecting value"):
        prepare_data(make_spec("sequence-classification", bad))
    with pytest.raises(DataError, match="no such file or prefix"):
        prepare_data(make_spec("sequence-classification", tmp_path / "nope.jsonl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no data files"):
        prepare_data(make_spec("sequence-classification", tmp_path / "empty"))


def test_question_answering_answer_outside_the_context_is_an_error(tmp_path: Path) -> None:
    rows = [
        {"question": "q1", "context": "the ball is red.", "answer": "red"},
        {"question": "q2", "context": "", "answer": "red"},  # empty: dropped, no error
        {"question": "q3", "context": "the box is blue.", "answer": "green"},
    ]
    with pytest.raises(
        DataError, match=r"row 3: field 'answer': answer 'green' is not in the context"
    ):
        prepare_data(make_spec("question-answering", write_jsonl(tmp_path / "qa.jsonl", rows)))


# -- formatting per task ------------------------------------------------------------------------


def test_field_mapping_and_prompt_templates_per_task(tmp_path: Path) -> None:
    pairs = [{"en": f"word {i}", "de": f"wort {i}"} for i in range(30)]
    p = prepare_data(
        make_spec(
            "seq2seq",
            write_jsonl(tmp_path / "mt.jsonl", pairs),
            fields={"target": "de"},
            promptTemplate="Translate to German: {en}",
            split={"testRatio": 0.2, "validationRatio": 0.2},
        )
    )
    row = next(r for r in all_rows(p) if r["target"] == "wort 3")
    assert row == {"source": "Translate to German: word 3", "target": "wort 3"}

    plain = [{"body": f"some text {i}"} for i in range(30)]
    p = prepare_data(
        make_spec(
            "causal-lm",
            write_jsonl(tmp_path / "lm.jsonl", plain),
            fields={"text": "body"},
            split={"testRatio": 0.2, "validationRatio": 0.2},
        )
    )
    assert {r["prompt"] for r in all_rows(p)} == {""}
    assert sorted(r["response"] for r in all_rows(p)) == sorted(r["body"] for r in plain)

    qa = [{"q": f"color {i}?", "c": f"the thing {i} is red.", "a": "red"} for i in range(30)] + [
        {"q": "squad?", "c": "x red y red", "a": {"text": ["red"], "answer_start": [8]}}
    ]
    p = prepare_data(
        make_spec(
            "question-answering",
            write_jsonl(tmp_path / "qa.jsonl", qa),
            fields={"question": "q", "context": "c", "answer": "a"},
            split={"testRatio": 0.2, "validationRatio": 0.2},
        )
    )
    rows = {r["question"]: r for r in all_rows(p)}
    assert rows["color 12?"]["answer_start"] == len("the thing 12 is ")
    assert rows["squad?"]["answer_start"] == 8  # the given offset wins over find()

    nli = [{"premise": f"p {i}", "hypothesis": f"h {i}", "label": i % 2} for i in range(30)]
    p = prepare_data(
        make_spec(
            "sequence-classification",
            write_jsonl(tmp_path / "nli.jsonl", nli),
            fields={"text": "premise", "textPair": "hypothesis"},
            split={"testRatio": 0.2, "validationRatio": 0.2},
        )
    )
    assert set(p.train.column_names) == {"text", "text_pair", "label"}
    assert all(r["text_pair"] == "h" + r["text"][1:] for r in all_rows(p))


# -- report -----------------------------------------------------------------------------------


def test_report_has_counts_label_balance_and_length_percentiles(tmp_path: Path) -> None:
    rows = [{"text": "a" * (i + 1), "label": "pos" if i < 75 else "neg"} for i in range(100)]
    p = prepare_data(
        make_spec(
            "sequence-classification",
            write_jsonl(tmp_path / "t.jsonl", rows),
            split={"validationRatio": 0.1, "testRatio": 0.1, "seed": 3},
        )
    )
    r = p.report
    json.dumps(r)  # data-report.json must serialise as is
    assert r["task"] == "sequence-classification" and r["labels"] == ["neg", "pos"]
    assert r["split"]["carved"] == ["validation", "test"]
    sizes = {s: r["splits"][s]["rows"] for s in ("train", "validation", "test")}
    assert sizes == {"train": len(p.train), "validation": len(p.validation), "test": len(p.test)}
    assert sum(sizes.values()) == 100
    balance = {s: r["splits"][s]["label_balance"] for s in sizes}
    assert sum(b["pos"]["count"] for b in balance.values()) == 75
    assert sum(b["neg"]["count"] for b in balance.values()) == 25
    train_lengths = sorted(len(t) for t in texts(p.train))
    pct = r["splits"]["train"]["length_chars"]["input"]
    assert pct["min"] == train_lengths[0] and pct["max"] == train_lengths[-1]
    assert pct["min"] <= pct["p50"] <= pct["p90"] <= pct["p99"] <= pct["max"]
    assert r["splits"]["train"]["length_chars"]["output"] is None  # classification: no text out


# -- streaming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("files", [1, 2, 3])
def test_streaming_train_is_the_same_rows_sharded_disjointly_across_ranks(
    tmp_path: Path, files: int
) -> None:
    data = tmp_path / "data"
    for k in range(files):
        write_jsonl(data / f"part-{k}.jsonl", sentiment_rows(60, offset=1000 * k))
    write_jsonl(data / "part-0.jsonl", [*sentiment_rows(60), sentiment_rows(1)[0]])  # a duplicate
    common = {"split": {"seed": 5}, "maxSamples": 100}
    whole = prepare_data(make_spec("sequence-classification", data, **common))
    shards = [
        prepare_data(
            make_spec("sequence-classification", data, streaming=True, **common),
            rank=r,
            world_size=2,
        )
        for r in range(2)
    ]
    from datasets import IterableDataset

    assert all(isinstance(s.train, IterableDataset) for s in shards)
    got = [texts(s.train) for s in shards]
    assert got[0] and got[1] and not set(got[0]) & set(got[1])
    assert sorted(got[0] + got[1]) == sorted(texts(whole.train))
    assert len(whole.train) == min(100, len(whole.train))
    for s in shards:  # evaluation sets are whole, map-style and equal on every rank
        assert list(s.validation) == list(whole.validation)
        assert list(s.test) == list(whole.test)
        assert s.report["splits"]["train"] == whole.report["splits"]["train"]
    # A second pass (epoch) yields the same rows again.
    assert texts(shards[0].train) == got[0]
