"""The rejected-records file: every failed row as one JSON line, through Airflow's ObjectStoragePath."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from enso_provider.delivery import Failure

#: The file is written under its name plus this suffix, then moved into place.
PARTIAL_SUFFIX = ".partial"


def as_url(path: str) -> str:
    """A bare path is a local file."""
    return path if "://" in path else f"file://{path}"


def check_writable(path: str, argument: str) -> None:
    """
    Fail early, naming the argument, when no filesystem Airflow knows serves ``path``'s scheme.

    :raises ValueError: with a message naming ``argument`` and the scheme.
    """
    from airflow.sdk import ObjectStoragePath

    try:
        ObjectStoragePath(as_url(path)).fs  # noqa: B018 - resolving the filesystem is the check
    except Exception as err:
        raise ValueError(
            f"{argument} {path!r} cannot be written: {type(err).__name__}: {err}. Use a local path, "
            "file://, or a scheme whose filesystem is installed (s3:// needs the Amazon provider)."
        ) from None


class RejectedRecordsWriter:
    """
    Writes failures as JSON Lines to a local path or any object store Airflow knows (``s3://``, ...).

    Lines go to ``<path>.partial``, opened on the first failure; :meth:`commit` moves it into place,
    or, when nothing failed, removes a file an earlier try left at ``path``. So the file at ``path``
    always describes the latest run that wrote there, and is never half written.

    :param path: a path or URL; a bare path is a local file.
    """

    def __init__(self, path: str) -> None:
        self.path = as_url(path)
        self.partial_path = f"{self.path}{PARTIAL_SUFFIX}"
        self.written = 0
        self.removed_stale = False
        self._file: IO[bytes] | None = None

    def write(self, failure: Failure) -> None:
        """Write one failure in the rejected-records format."""
        self.write_line(orjson.dumps(failure.as_record()))

    def write_line(self, line: bytes) -> None:
        """Write one record that is already encoded (without its newline)."""
        if self._file is None:
            self._file = self._open()
        self._file.write(line + b"\n")
        self.written += 1

    def _open(self) -> IO[bytes]:
        from airflow.sdk import ObjectStoragePath

        target: Any = ObjectStoragePath(self.partial_path)
        if target.protocol in ("file", "local", ""):
            target.parent.mkdir(parents=True, exist_ok=True)
        return target.open("wb")

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def commit(self) -> bool:
        """Put the file in place (or remove a stale one when nothing was written). Written?"""
        from airflow.sdk import ObjectStoragePath

        self._close()
        final = ObjectStoragePath(self.path)
        if self.written:
            ObjectStoragePath(self.partial_path).rename(final)
            return True
        if final.exists():
            final.unlink()
            self.removed_stale = True
        return False

    def discard(self) -> None:
        """Drop what was written; leave any earlier file at ``path`` alone."""
        from airflow.sdk import ObjectStoragePath

        self._close()
        partial = ObjectStoragePath(self.partial_path)
        try:
            if partial.exists():
                partial.unlink()
        except OSError:
            pass
