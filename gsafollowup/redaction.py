"""Keep hashtags out of logs and error messages. No Django: domain errors use it too.

A hashtag is ``<PREFIX>_<32 hex>``; legacy ones can be any word, but clients send them as the
``hashtag`` field or parameter, or as ``Authorization: Hashtag <value>``. Anything matching
either shape is replaced before a log line is written or an error report is built.
"""

import logging
import re

REDACTED = "[redacted]"
# The prefix stays: it names the observatory, which helps whoever reads the log.
# From 8 hex digits on: a message that cut a hashtag short must not show its first half either.
_ISSUED = re.compile(r"(?<![A-Za-z0-9.-])([A-Za-z0-9][A-Za-z0-9.-]{0,31})_[0-9a-fA-F]{8,32}(?![0-9a-fA-F])")
# hashtag=VALUE in a query string or form body, 'hashtag': 'VALUE' in a dict's repr.
_NAMED = re.compile(r"(?i)(\bhashtag(?:=|%3D|['\"]\s*:\s*['\"]))([^\s&;,'\"]+)")
# Authorization: Hashtag VALUE (also as HTTP_AUTHORIZATION in a dict's repr).
_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?hashtag\s+)([^\s'\",}]+)")


def _replace(match: re.Match) -> str:
    return match.group(1) + REDACTED


def redact(text: str) -> str:
    """The text with every hashtag replaced by [redacted] (issued ones keep their prefix)."""
    text = _ISSUED.sub(lambda m: f"{m.group(1)}_{REDACTED}", text)
    return _HEADER.sub(_replace, _NAMED.sub(_replace, text))


class RedactHashtags(logging.Filter):
    """Logging filter (on handlers): rewrites the record's message, traceback and stack."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
