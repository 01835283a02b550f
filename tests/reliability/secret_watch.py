"""
Watching for the two secrets everywhere a test can see text: raw log events (before Airflow's
masking), stdlib log records at DEBUG, captured stdout/stderr, and whatever a test hands over
(exception text with its traceback, XCom values, rendered template fields, files).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from tests.reliability.reliability_kit import SECRETS

_MASK_REQUEST = "MaskSecret(value="


@dataclass
class Tally:
    """What the whole session scanned."""

    tests: int = 0
    texts: int = 0
    mask_requests: int = 0
    characters: int = 0
    sightings: int = 0


#: The session's tally, printed in the terminal summary.
SESSION = Tally()


def as_text(value: Any) -> str:
    """Everything a value can show: an exception with its chain and traceback, or repr and JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseException):
        parts = traceback.format_exception(type(value), value, value.__traceback__)
        parts += [repr(value), str(getattr(value, "body", ""))]
        return "".join(parts)
    try:
        encoded = orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        encoded = ""
    return f"{value!r}\n{encoded}"


@dataclass
class SecretWatch:
    """
    Collects the texts of one test and counts the secrets in them.

    Log events are recorded raw by a structlog processor placed first in the live chain, so Airflow's
    secret masker (a later processor) cannot hide a leak from this check.
    """

    texts: list[str] = field(default_factory=list)
    #: Airflow's in-process test supervisor (dag.test) logs, at DEBUG, each request to register a
    #: secret with its masker, secret included (``InProcessSupervisorComms.send``). Those lines are
    #: Airflow's, exist only under dag.test, and carry the secret by design: counted, not scanned.
    mask_requests: int = 0

    def add(self, *values: Any) -> None:
        """Hand over anything a user could see: exceptions, XCom values, rendered fields, file text."""
        for value in values:
            text = as_text(value)
            if _MASK_REQUEST in text:
                kept = [line for line in text.splitlines() if _MASK_REQUEST not in line]
                self.mask_requests += len(text.splitlines()) - len(kept)
                text = "\n".join(kept)
            self.texts.append(text)

    def record(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        # A structlog processor: read the event as the program produced it, change nothing.
        if any(type(v).__name__ == "MaskSecret" for v in event_dict.values()):
            self.mask_requests += 1
            return event_dict
        event = event_dict.get("event")
        args = event_dict.get("positional_args")
        text = str(event)
        if args:
            try:
                text = text % tuple(args)
            except (TypeError, ValueError):
                text = f"{text} {args!r}"
        extras = " ".join(
            f"{k}={v!r}" for k, v in event_dict.items() if k not in ("event", "positional_args")
        )
        self.texts.append(f"{method_name}: {text} {extras}")
        return event_dict

    def sightings(self) -> int:
        return sum(text.count(secret) for text in self.texts for secret in SECRETS)


def _filtering_levels() -> Any:
    """Airflow's per-logger level table behind its structlog filtering wrapper."""
    maker = structlog.get_config()["wrapper_class"]
    module = sys.modules.get(getattr(maker, "__module__", ""), None)
    return getattr(module, "PER_LOGGER_LEVELS", None)


@contextmanager
def raw_debug_logs(watch: SecretWatch) -> Iterator[None]:
    """Record every structlog event raw, at DEBUG, for loggers created from now on."""
    processors = structlog.get_config()["processors"]
    processors.insert(0, watch.record)  # in place: loggers already bound share this list
    levels = _filtering_levels()
    previous = levels[""] if levels is not None else None
    if levels is not None:
        levels[""] = logging.DEBUG
    try:
        yield
    finally:
        if levels is not None and previous is not None:
            levels[""] = previous
        live = structlog.get_config()["processors"]
        for chain in (processors, live):
            while watch.record in chain:
                chain.remove(watch.record)


def ensure_recording(watch: SecretWatch) -> None:
    """Put the recorder back first in the chain if something (a task runner) reconfigured logging."""
    live = structlog.get_config()["processors"]
    if watch.record not in live:
        live.insert(0, watch.record)
