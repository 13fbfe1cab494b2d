"""Process-wide logging set-up, shared by the CLI and by server worker processes (which start fresh): one JSON
object per line on stderr, for every logger — Dockyard's, uvicorn's (``dockyard serve`` hands uvicorn no logging
configuration of its own, so its records reach this handler) and Alembic's.

Each line has ``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``, plus the record's extra fields (as
``extra={...}``, or as one dict ``extra={FIELDS: {...}}``, the cheaper way on hot paths): the access log
(``dockyard.access``) adds the request id, method, path, route, status, sizes, duration, client
address, actor, user agent and repository. A traceback is the ``exc_info`` field of its line. python-json-logger
formats the lines.

uvicorn's ``Invalid HTTP request received.`` warning is logged when bytes that are not HTTP/1.1 arrive: almost
always a client trying TLS first on a plain-HTTP port (podman, skopeo and containerd try ``https://`` before
``http://`` for a registry not marked insecure, or always probe it). The request is refused either way, and the line
says nothing an operator can act on, so it is logged at DEBUG instead (seen with ``log_level = "debug"``).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import pythonjsonlogger.json
from pythonjsonlogger.json import JsonFormatter

_PROBE_MESSAGE = "Invalid HTTP request received."
FIELDS = "fields"
"""A record's structured fields, given as one dict: ``log.info("request", extra={FIELDS: {...}})``."""


class _Formatter(JsonFormatter):
    """python-json-logger's formatter, with a fast path for records that bring their fields as one dict (the
    access log, on every request): the same line, without scanning the record's attributes for extras."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = pythonjsonlogger.json.JsonEncoder(ensure_ascii=False)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        fields = record.__dict__.get(FIELDS)
        if not isinstance(fields, dict):
            super().add_fields(log_data, record, message_dict)
            return
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data.update(message_dict)
        log_data.update(fields)
        log_data["time"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat()

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        # One encoder for every line (json.dumps with an encoder class builds a new one each time).
        return self._encoder.encode(log_data)


class _DemoteTlsProbes(logging.Filter):
    """uvicorn's warning for a request that is not HTTP (a TLS probe) becomes a DEBUG record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.error" and record.levelno > logging.DEBUG and record.msg == _PROBE_MESSAGE:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def json_formatter() -> logging.Formatter:
    return _Formatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        json_ensure_ascii=False,
    )


def configure_logging(level: str) -> None:
    """Log JSON lines to stderr at ``level`` (uvicorn's and Alembic's loggers included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    handler.addFilter(_DemoteTlsProbes())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        # Loggers someone configured before (uvicorn's own set-up) send their records here, and only here.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
