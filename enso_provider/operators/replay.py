"""EnsoReplayRejectedOperator: re-send the events of rejected-records files, carry the rest over."""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from enso_provider.delivery import (
    DeliveryReport,
    Failure,
    is_transient_status,
)
from enso_provider.events import Event, Rejection, dumps
from enso_provider.exceptions import EnsoError
from enso_provider.operators.base import EnsoDeliveryOperator
from enso_provider.operators.policy import FailurePolicy
from enso_provider.operators.rejected import PARTIAL_SUFFIX, RejectedRecordsWriter, as_url
from enso_provider.version_compat import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

#: Codes replayed by default: the customer was not known to Enso yet. Records whose ``statusCode`` is
#: transient (408, 425, 429, 5xx: see is_transient_status) are replayed whatever the codes.
DEFAULT_REPLAY_CODES: tuple[int | str, ...] = (2002,)
#: The code of a source line that is not a rejected record (not JSON, not an object, no event).
CORRUPT_RECORD = "corrupt_record"
#: The code of a replayable record whose event has no usable ``eventId``.
MISSING_EVENT_ID = "missing_event_id"
#: How many corrupt lines are logged one by one (the rest are counted in the report).
_LOGGED_CORRUPT_LINES = 10
_GLOB_CHARS = frozenset("*?[")
_LOCAL_PROTOCOLS = ("file", "local", "")


def _store_key(path: ObjectStoragePath) -> tuple[str, str]:
    """What identifies a file, to compare a source with the output (``a/./b`` is ``a/b`` locally)."""
    protocol = "file" if path.protocol in _LOCAL_PROTOCOLS else str(path.protocol)
    where = str(path.path)
    if protocol == "file":
        where = posixpath.normpath(where)
    return protocol, where


@dataclass
class _ReadState:
    """Counters of the source stream, and the carried-over lines waiting for their failure callback."""

    files: int = 0
    corrupt: int = 0
    carried: dict[int, bytes] = field(default_factory=dict)


class EnsoReplayRejectedOperator(EnsoDeliveryOperator):
    """
    Re-send the events recorded in rejected-records files, such as those of
    :class:`~enso_provider.operators.batch_events.EnsoBatchEventsOperator`, and write what is still not
    accepted to a new file of the same format, so that replays chain run after run.

    Each source line is one record. A record whose ``code`` is in ``replay_codes`` (compared as strings,
    so ``2002`` and ``"2002"`` match), or whose ``statusCode`` is transient (408, 425, 429, 5xx), is
    replayed: its recorded event (``eventJson``, the bytes first sent) is sent as is, with its original
    ``eventId``, never mapped again, so Enso stores it once however often it is replayed. Records
    rejected locally (``"rejectedBy": "local"``) and records of other codes are never sent: their
    lines are copied to ``output_path`` unchanged. Records sent and refused again are written there
    too, with their new error. A line that is not a record (not JSON, or no event) is reported with
    its file and line number, code ``corrupt_record``, and written to ``output_path`` with the raw
    line; the rest of the files is replayed.

    The report is the batch operator's: ``total == success + failed + invalid``, where ``invalid``
    counts the records not replayed (carried over, or corrupt), and ``sent == success + failed``. A
    record's ``index`` in the report is its 0-based line position in the source stream (the files in
    path order, one after the other). Once everything is delivered and the output written, the
    failure policy decides the task's state.

    Source and output:

    :param source_path: one path or URL, a glob (``.../2024-05-*.jsonl``), or a list of them, read
        through Airflow's ``ObjectStoragePath`` (``file://``, ``s3://``, ``gs://``, ...; a bare path is
        a local file). Files are read in path order, line by line. (templated)
    :param output_path: where the records still not accepted are written as JSON Lines. It is written
        under a temporary name and moved into place at the end, so it is complete or absent; a run
        that leaves nothing behind removes an older file there. Never one of the source files.
        (templated)
    :param replay_codes: the codes to replay (default ``(2002,)``, "customer entity not found");
        records with a transient ``statusCode`` (408, 425, 429, 5xx) are replayed whatever their code.
    :param allow_missing: a source path or glob that matches no file is logged and skipped (the
        default), or fails the task before anything is sent.

    Delivery and policy, as for ``EnsoBatchEventsOperator``:

    :param enso_conn_id: the Enso connection.
    :param batch_size: most events per request (default 500).
    :param max_batch_bytes: most bytes per request body (default 512 KiB).
    :param concurrency: most requests in flight (default 4).
    :param max_failures: most records not accepted (refused again + not replayed) before the run is a
        breach; None for no limit. Default 0.
    :param max_failure_ratio: most records not accepted as a share of all records (0.0-1.0); None for
        no limit.
    :param on_breach: ``"fail"`` (the task fails without retrying) or ``"warn"`` (it logs a warning and
        succeeds).
    :param dry_run: read and check every record, post nothing and write no output.
    """

    template_fields: Sequence[str] = ("source_path", "output_path")
    ui_color = "#f4efe8"

    def __init__(
        self,
        *,
        source_path: str | Sequence[str],
        output_path: str,
        replay_codes: Collection[int | str] | int | str = DEFAULT_REPLAY_CODES,
        allow_missing: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_path = source_path
        self.output_path = output_path
        self.replay_codes = replay_codes
        self.allow_missing = allow_missing

    # -- argument checks, at execute time ----------------------------------------------------------------

    def _sources(self) -> list[str]:
        paths = [self.source_path] if isinstance(self.source_path, str) else self.source_path
        if not isinstance(paths, (list, tuple)) or not all(isinstance(p, str) for p in paths):
            raise AirflowFailException(
                f"source_path must be a path, a glob or a list of them, got {self.source_path!r}"
            )
        paths = [p.strip() for p in paths if p.strip()]
        if not paths:
            raise AirflowFailException("source_path is empty: give the rejected-records file(s) to replay.")
        return paths

    def _codes(self) -> frozenset[str]:
        codes = self.replay_codes
        if isinstance(codes, (int, str)) and not isinstance(codes, bool):
            codes = (codes,)
        if (
            isinstance(codes, (bytes, dict))
            or not isinstance(codes, Collection)
            or not all(isinstance(c, (int, str)) and not isinstance(c, bool) for c in codes)
        ):
            raise AirflowFailException(
                f"replay_codes must be a list of codes (numbers or strings), got {self.replay_codes!r}"
            )
        return frozenset(str(c).strip() for c in codes)

    def _check_arguments(self) -> FailurePolicy:
        if not isinstance(self.output_path, str) or not self.output_path.strip():
            raise AirflowFailException(
                "output_path is empty: the records still not accepted need a file to go to, "
                "or they would be lost to the next replay."
            )
        if not isinstance(self.allow_missing, bool):
            raise AirflowFailException(f"allow_missing must be True or False, got {self.allow_missing!r}")
        return self.checked_policy()

    # -- sources ------------------------------------------------------------------------------------------

    def _resolve(self, sources: list[str]) -> list[ObjectStoragePath]:
        """Every file the sources name, globs expanded, once each, in path order."""
        from airflow.sdk import ObjectStoragePath

        found: dict[tuple[str, str], ObjectStoragePath] = {}
        missing: list[str] = []
        for source in sources:
            root = ObjectStoragePath(as_url(source))
            if _GLOB_CHARS.intersection(source):
                detail: Any = root.fs.glob(str(root.path), detail=True)
                matches = [
                    ObjectStoragePath(root.fs.unstrip_protocol(name), conn_id=_conn_id_of(root))
                    for name, info in sorted(detail.items())
                    if info.get("type") == "file"
                ]
            elif root.is_file():
                matches = [root]
            elif root.exists():
                raise AirflowFailException(
                    f"source_path {source!r} is not a file; to replay the files of a directory, "
                    "give a glob such as '.../*.jsonl'."
                )
            else:
                matches = []
            if not matches:
                missing.append(source)
            for match in matches:
                found.setdefault(_store_key(match), match)
        if missing and not self.allow_missing:
            raise AirflowFailException(
                f"No file matches source_path {', '.join(map(repr, missing))} (allow_missing=False)."
            )
        for source in missing:
            self.log.info("No rejected-records file matches %r: nothing to replay from it.", source)
        return [found[key] for key in sorted(found)]

    def _items(
        self, files: list[ObjectStoragePath], codes: frozenset[str], state: _ReadState
    ) -> Iterator[Event | Rejection]:
        """One Event (replayed) or Rejection (not replayed) per record line, streamed."""
        position = 0
        for path in files:
            state.files += 1
            with path.open("rb") as stream:
                for line_number, raw in enumerate(stream, 1):
                    line = raw.rstrip(b"\r\n")
                    if not line.strip():
                        continue  # a blank line is no record
                    yield self._item(line, position, path, line_number, codes, state)
                    position += 1

    def _item(
        self,
        line: bytes,
        position: int,
        path: ObjectStoragePath,
        line_number: int,
        codes: frozenset[str],
        state: _ReadState,
    ) -> Event | Rejection:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            return self._corrupt(line, position, path, line_number, f"not JSON ({err})", state)
        if not isinstance(record, dict):
            return self._corrupt(line, position, path, line_number, "not a JSON object", state)
        code, status = record.get("code"), _status(record.get("statusCode"))
        event = record.get("event")
        if record.get("rejectedBy") == "local":
            return self._carry(line, position, record, "rejected locally", state)
        if not isinstance(event, dict):
            return self._corrupt(line, position, path, line_number, "a record without an event", state)
        if str(code).strip() not in codes and not is_transient_status(status):
            return self._carry(line, position, record, f"code {code} is not replayed", state)
        event_id = event.get("eventId")
        if event_id is None and isinstance(record.get("eventId"), str):
            # Only ever the record's own id: an event sent without one could be counted twice.
            event_id = record["eventId"]
            event = {**event, "eventId": event_id}
        if not isinstance(event_id, str) or not event_id:
            state.carried[position] = line
            return Rejection(
                index=position,
                error=f"not replayed: the event has no eventId ({path}, line {line_number})",
                code=MISSING_EVENT_ID,
                status_code=400,
                event=event,
            )
        sent = record.get("eventJson")
        if isinstance(sent, str) and event.get("eventId") == event_id:
            # The bytes first sent, digit for digit (``event`` holds numbers read back as doubles).
            data = sent.encode()
            try:
                again = orjson.loads(data)
            except orjson.JSONDecodeError:
                again = None
            if not isinstance(again, dict) or again.get("eventId") != event_id:
                return self._corrupt(line, position, path, line_number, "eventJson is not the event", state)
            return Event(position, event_id, data)
        try:
            data = dumps(event)  # a file written before eventJson: the event as decoded
        except (TypeError, ValueError) as err:
            return self._corrupt(line, position, path, line_number, f"event not encodable ({err})", state)
        return Event(position, event_id, data)

    def _carry(
        self, line: bytes, position: int, record: dict[str, Any], why: str, state: _ReadState
    ) -> Rejection:
        """A record not replayed: its line is copied to the output unchanged."""
        state.carried[position] = line
        code = record.get("code")
        event = record.get("event")
        status = _status(record.get("statusCode"))
        return Rejection(
            index=position,
            error=f"not replayed ({why})" + (f": {record['error']}" if record.get("error") else ""),
            code=str(code),
            status_code=status if status is not None else 400,
            row_key=record.get("rowKey") if isinstance(record.get("rowKey"), str) else None,
            event=event if isinstance(event, dict) else None,
        )

    def _corrupt(
        self,
        line: bytes,
        position: int,
        path: ObjectStoragePath,
        line_number: int,
        why: str,
        state: _ReadState,
    ) -> Rejection:
        state.corrupt += 1
        where = f"{path}, line {line_number}"
        if state.corrupt <= _LOGGED_CORRUPT_LINES:
            self.log.warning("Corrupt rejected record at %s: %s", where, why)
        return Rejection(
            index=position,
            error=f"corrupt record at {where}: {why}",
            code=CORRUPT_RECORD,
            status_code=400,
            row={"source": str(path), "line": line_number, "raw": line.decode("utf-8", "backslashreplace")},
        )

    # -- the run ------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk import ObjectStoragePath

        policy = self._check_arguments()
        sources = self._sources()
        codes = self._codes()
        output_url = as_url(self.output_path.strip())
        output = ObjectStoragePath(output_url)
        partial_url = f"{output_url}{PARTIAL_SUFFIX}"
        files = self._resolve(sources)
        own = {_store_key(output), _store_key(ObjectStoragePath(partial_url))}
        if any(_store_key(f) in own for f in files):
            raise AirflowFailException(
                f"output_path {self.output_path!r} (or its {PARTIAL_SUFFIX} file) is also a source file: "
                "give the output its own name, e.g. one per run, outside the sources' globs."
            )
        self.log.info(
            "Replaying %s rejected-records file(s) to Enso (connection %r), codes %s and transient "
            "statuses (408/425/429/5xx)%s",
            len(files),
            self.enso_conn_id,
            ", ".join(sorted(codes)) or "none",
            " as a dry run: nothing will be posted or written" if self.is_dry_run else "",
        )
        state = _ReadState()
        partial = None if self.is_dry_run else RejectedRecordsWriter(output_url)

        def on_failure(failure: Failure) -> None:
            line = state.carried.pop(failure.index, None) if failure.local else None
            if partial is None:
                return
            if line is not None:
                partial.write_line(line)
            else:
                partial.write(failure)

        try:
            report: DeliveryReport = self.deliver(self._items(files, codes, state), on_failure=on_failure)
        except BaseException as err:
            if partial is not None:
                partial.discard()
            if isinstance(err, EnsoError):
                self.log.error(
                    "Replay stopped; %s was not written. A retry replays the same eventIds, never twice.",
                    output,
                )
            raise
        written = self._finish(partial, output)
        if state.corrupt:
            self.log.warning("%s corrupt line(s) in the sources, kept in the output as is.", state.corrupt)
        return self.conclude(
            report, policy, rejected_records_path=output_url if written else None, unit="records"
        )

    def _finish(self, partial: RejectedRecordsWriter | None, output: ObjectStoragePath) -> bool:
        """Move the complete output into place; remove an older one when nothing is left. Written?"""
        if partial is None:
            return False
        written = partial.commit()
        if partial.removed_stale:
            self.log.info("Nothing is left to replay: removed the older %s", output)
        return written


def _conn_id_of(path: ObjectStoragePath) -> str | None:
    """The path's connection id: an attribute from Airflow 3.2, a storage option in 3.1."""
    conn_id = getattr(path, "conn_id", None)
    return conn_id if conn_id is not None else path.storage_options.get("conn_id")


def _status(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


__all__ = [
    "CORRUPT_RECORD",
    "DEFAULT_REPLAY_CODES",
    "MISSING_EVENT_ID",
    "PARTIAL_SUFFIX",
    "EnsoReplayRejectedOperator",
]
