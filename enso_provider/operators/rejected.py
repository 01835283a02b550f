"""The rejected-records file: every failed row as one JSON line, through Airflow's ObjectStoragePath."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from enso_provider.delivery import Failure


class RejectedRecordsWriter:
    """
    Writes failures as JSON Lines to a local path or any object store Airflow knows (``s3://``, ...).

    The file is opened on the first failure, so a clean run leaves no empty file behind.

    :param path: a path or URL; a bare path is a local file.
    """

    def __init__(self, path: str) -> None:
        self.path = path if "://" in path else f"file://{path}"
        self.written = 0
        self._file: IO[bytes] | None = None

    def write(self, failure: Failure) -> None:
        if self._file is None:
            self._file = self._open()
        self._file.write(orjson.dumps(failure.as_record(), option=orjson.OPT_APPEND_NEWLINE))
        self.written += 1

    def _open(self) -> IO[bytes]:
        from airflow.sdk import ObjectStoragePath

        target: Any = ObjectStoragePath(self.path)
        if target.protocol in ("file", "local", ""):
            target.parent.mkdir(parents=True, exist_ok=True)
        return target.open("wb")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
