"""Logging setup: one JSON object a line under systemd, readable lines on a terminal.

A filter masks anything shaped like a node token, so a token that slips into an exception
message (a URL, a header dump) never reaches a log. Resident names are never logged by the
code in the first place: log 宛名番号 instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from typing import Any

_TOKEN = re.compile(r"en1\.[A-Za-z0-9_-]{8,}")


class RedactSecrets(logging.Filter):
    """Replaces token-shaped strings in the message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if _TOKEN.search(msg):
            record.msg = _TOKEN.sub("en1.********", msg)
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and exception text)."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            obj["exception"] = _TOKEN.sub("en1.********", self.formatException(record.exc_info))
        return json.dumps(obj, ensure_ascii=False)


def setup(verbose: bool = False, fmt: str = "auto") -> None:
    """Configure the root logger on stderr; `fmt` is auto, json or text."""
    if fmt == "auto":
        fmt = (
            "json"
            if os.environ.get("JOURNAL_STREAM") or (not sys.stderr.isatty() and os.environ.get("INVOCATION_ID"))
            else "text"
        )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every change it sees
