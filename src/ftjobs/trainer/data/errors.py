"""The one exception of data preparation: bad data, named by file, row and field."""

from __future__ import annotations

from ftjobs.api.errors import PermanentError


class DataError(PermanentError):
    """Bad data (missing field, unknown label, empty split, unreadable file).

    The message names the file, the 1-based data row and the field, e.g.
    ``s3://b/train.jsonl: row 17: field 'label': unknown label 'neutral' (known: ...)``.
    A `PermanentError`: the trainer exits EXIT_PERMANENT, retrying cannot fix the data.
    """


def where(uri: str, row: int | None = None, field: str | None = None) -> str:
    """`uri: row N: field 'f'` prefix of a DataError message (parts left out when unknown)."""
    parts = [uri]
    if row is not None:
        parts.append(f"row {row}")
    if field is not None:
        parts.append(f"field {field!r}")
    return ": ".join(parts)
