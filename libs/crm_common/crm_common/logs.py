"""JSON log lines that carry the request id of the call they belong to.

A line holds the time, level, logger, message, request id and any ``extra`` fields: not the
caller's file, line, thread or process. A process that logs through :class:`JsonFormatter`
therefore stops collecting those for every record (the stack walk to find the caller costs
more than formatting the line), as the logging documentation's "Optimization" section
describes.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from crm_common.context import current_request_id

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id of the green thread that logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        logging._srcfile = None  # the documented switch: no stack walk for the caller
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
