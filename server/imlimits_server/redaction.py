"""Credentials never reach a log line or an error message: `scheme://user:password@host` loses its userinfo."""

from __future__ import annotations

import logging
import re

# userinfo of any URL, e.g. redis://:secret@host or redis+cluster://user:secret@a:1,b:2
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def redact(text: str) -> str:
    return _USERINFO.sub(r"\g<scheme>***@", text)


class RedactCredentials(logging.Filter):
    """Installed on every log handler: whatever a message or an exception says, no password is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install() -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactCredentials())
