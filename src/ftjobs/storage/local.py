"""The `file://` backend: a directory on the local filesystem.

It behaves like S3 where that matters for correctness: an object appears whole (written
to a hidden temporary file in the same directory, then renamed), listing is by string
prefix, and deleting the last object of a "directory" leaves no empty directories.
Used by `ftjobs run` and by the unit tests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftjobs.storage.backends import Access
from ftjobs.storage.base import CHUNK, HashingReader, ObjectInfo, TransferSettings
from ftjobs.storage.errors import ObjectNotFound, StorageError
from ftjobs.storage.failures import FailureClass
from ftjobs.storage.uri import StoreURI, as_dir, check_key

if TYPE_CHECKING:
    from ftjobs.api.spec import Storage

# Temporary files carry this prefix so listings never show a half-written object.
_TMP_PREFIX = ".ftjobs-tmp-"


class LocalStore:
    """An ObjectStore over a local directory (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"file://{root}"
        # No multipart transfers: every file is one copy.
        self.settings: TransferSettings | None = None

    def url(self, key: str) -> str:
        return f"{self.uri}/{key}" if key else self.uri

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _atomic_write(self, key: str, write: object) -> Path:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=target.parent)
        except OSError as e:
            msg = f"write {self.url(key)} failed: {e.strerror}"
            raise StorageError(msg, uri=self.url(key)) from None
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)  # type: ignore[operator]
            os.replace(tmp, target)
        except BaseException as e:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise StorageError(
                    f"write {self.url(key)} failed: {e.strerror}", uri=self.url(key)
                ) from None
            raise
        return target

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        self._atomic_write(key, lambda f: f.write(data))
        return ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest())

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        try:
            src = path.open("rb")
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror}", uri=self.url(key)) from None
        with src:
            reader = HashingReader(src)

            def copy(f: object) -> None:
                while chunk := reader.read(CHUNK):
                    f.write(chunk)  # type: ignore[attr-defined]

            self._atomic_write(key, copy)
        return ObjectInfo(key, reader.size, reader.hexdigest())

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object at {self.url(key)}", uri=self.url(key)) from None
        except OSError as e:
            msg = f"read {self.url(key)} failed: {e.strerror}"
            raise StorageError(msg, uri=self.url(key)) from None

    def get_file(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise ObjectNotFound(f"no object at {self.url(key)}", uri=self.url(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, path)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(
                f"download {self.url(key)} to {path} failed: {e.strerror}", uri=self.url(key)
            ) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _walk(self, prefix: str) -> Iterator[tuple[str, Path]]:
        check_key(prefix, allow_empty=True)
        # Only walk the directory the prefix can live in: "a/b/ste" -> walk "a/b".
        base = self.root / prefix.rpartition("/")[0]
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(_TMP_PREFIX):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key, full

    def list(self, prefix: str = "") -> list[str]:
        return sorted(key for key, _ in self._walk(prefix))

    def sizes(self, prefix: str = "") -> dict[str, int]:
        return {key: full.stat().st_size for key, full in sorted(self._walk(prefix))}

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for _key, full in list(self._walk(prefix)):
            full.unlink(missing_ok=True)
            self._prune(full.parent)
            count += 1
        return count

    def _prune(self, directory: Path) -> None:
        # S3 has no directories; remove the ones a delete leaves empty so listings and
        # `ls` agree with what an S3 listing would show.
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def child(self, prefix: str) -> LocalStore:
        check_key(prefix.rstrip("/"))
        return LocalStore(self.root / as_dir(prefix).rstrip("/"))

    def __repr__(self) -> str:
        return f"LocalStore({self.uri!r})"


class LocalBackend:
    """The file:// scheme for the registry (storage.backends): paths inside the pod or on
    the caller's machine; no server, no credentials."""

    scheme = "file"

    def access(self, storage: Storage | None) -> Access:
        return Access()

    def open(self, uri: StoreURI, access: Access, transfer: TransferSettings) -> LocalStore:
        assert uri.path is not None
        return LocalStore(uri.path)

    def fsspec_options(self, access: Access, transfer: TransferSettings) -> dict[str, Any]:
        return {}

    def classify(self, error: BaseException) -> tuple[FailureClass, str] | None:
        return None

    def server(self, options: Mapping[str, Any]) -> str:
        return "local filesystem"

    def credentials(self, values: Mapping[str, str]) -> AbstractContextManager[None]:
        return nullcontext()


BACKEND = LocalBackend()
