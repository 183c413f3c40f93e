"""progress.jsonl: one object, rewritten whole on each append."""

from ftjobs.storage import JsonlWriter, LocalStore, append_jsonl, read_jsonl


def test_append_and_read(store: LocalStore) -> None:
    assert read_jsonl(store, "progress.jsonl") == []
    append_jsonl(store, "progress.jsonl", {"step": 1, "loss": 2.5})
    append_jsonl(store, "progress.jsonl", {"step": 2, "loss": 2.0})
    assert read_jsonl(store, "progress.jsonl") == [
        {"step": 1, "loss": 2.5},
        {"step": 2, "loss": 2.0},
    ]


def test_writer_continues_an_existing_log(store: LocalStore) -> None:
    store.put_bytes("p.jsonl", b'{"step": 1}')  # no trailing newline, as an old writer left it
    writer = JsonlWriter(store, "p.jsonl")
    writer.append({"step": 2})
    writer.append({"step": 3})
    assert [r["step"] for r in read_jsonl(store, "p.jsonl")] == [1, 2, 3]
    assert store.get_bytes("p.jsonl").endswith(b"\n")
