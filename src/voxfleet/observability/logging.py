"""Structured logging: fixed message text, values in fields.

``log.info("call created", call_id=..., profile=...)``. Transcripts and caller
audio are personal data and never go into logs; neither do tokens and keys:
the handler's RedactSecrets filter blanks ``token=`` and ``resume=`` query values and Bearer
credentials in every record (uvicorn's WebSocket accept line prints the full
query string) and the values of fields named like secrets."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
REDACTED = "[redacted]"
_SECRET_TEXT = (
    re.compile(r"(?i)([?&;](?:token|resume)=)[^&\s\"'#;]+"),
    re.compile(r"(?i)(\bbearer\s+)[^\s\"',;]+"),
)
_SECRET_FIELD = re.compile(r"(?i)token|secret|password|api_key|authorization")


def redact(text: str) -> str:
    """``text`` with token query values and Bearer credentials blanked."""
    for pattern in _SECRET_TEXT:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return text


class RedactSecrets(logging.Filter):
    """Blanks secrets in a record before any formatter sees it: the message
    (arguments merged in), string fields, and the exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), ()
        fields = getattr(record, "fields", None)
        if fields:
            record.fields = {
                k: REDACTED if _SECRET_FIELD.search(k) else redact(v) if isinstance(v, str) else v
                for k, v in fields.items()
            }
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = getattr(record, "fields", {})
        tail = " ".join(f"{k}={v}" for k, v in fields.items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if tail:
            line = f"{line}  {tail}"
        if record.exc_info:
            line = f"{line}\n{record.exc_text or self.formatException(record.exc_info)}"
        return line


_BOUND: ContextVar[dict[str, object] | None] = ContextVar("log_fields", default=None)


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add ``fields`` to every line logged in this context, and in the tasks it
    starts (a room's session binds its room id, so a provider's fault is logged
    with the call it hurt)."""
    token = _BOUND.set({**(_BOUND.get() or {}), **fields})
    try:
        yield
    finally:
        _BOUND.reset(token)


class Logger:
    """A thin wrapper so call sites pass fields as keywords."""

    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(name)

    def _emit(self, level: int, msg: str, exc: bool, fields: dict[str, object]) -> None:
        if self._log.isEnabledFor(level):
            context = _BOUND.get()
            if context:
                fields = {**context, **fields}
            self._log.log(level, msg, exc_info=exc, extra={"fields": fields}, stacklevel=3)

    def debug(self, msg: str, **fields: object) -> None:
        self._emit(logging.DEBUG, msg, False, fields)

    def info(self, msg: str, **fields: object) -> None:
        self._emit(logging.INFO, msg, False, fields)

    def warning(self, msg: str, **fields: object) -> None:
        self._emit(logging.WARNING, msg, False, fields)

    def error(self, msg: str, **fields: object) -> None:
        self._emit(logging.ERROR, msg, False, fields)

    def exception(self, msg: str, **fields: object) -> None:
        self._emit(logging.ERROR, msg, True, fields)


def get_logger(name: str) -> Logger:
    return Logger(name)


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _ConsoleFormatter())
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
