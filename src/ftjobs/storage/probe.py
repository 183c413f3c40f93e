"""Write access to an output prefix, proven by writing and deleting a small object.

The one probe for `ftjobs preflight` (before anything is created) and the trainer's
setup (before any training): a bucket or prefix the credentials cannot write would
otherwise fail only at the first checkpoint, or at the export, hours later.
"""

from __future__ import annotations

from ftjobs.storage.base import ObjectStore
from ftjobs.storage.errors import StorageError

PROBE_NAME = ".ftjobs-write-probe"
_PROBE = b"ftjobs write probe: safe to delete\n"


def probe_write(store: ObjectStore, name: str = PROBE_NAME) -> None:
    """Put and delete `name` under `store`.

    Raises StorageError naming the output URI: permanent for a refusal (no permission,
    no such bucket), retriable for a network failure or a server error, as
    storage.failures classifies them; never with a credential in the message.
    """
    try:
        store.put_bytes(name, _PROBE)
        store.delete(name)
    except StorageError as e:
        raise type(e)(
            f"no write access to the output {store.uri}: {e}",
            uri=e.uri or store.uri,
            code=e.code,
            retriable=e.retriable,
            failure=e.failure,
        ) from None
