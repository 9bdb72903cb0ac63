"""No secret of a source URL in any log line: query-string credentials and user info are masked.

Partners often put their key in the URL (`?key=…`, `?apikey=…`, `?token=…`). The HTTP client logs every
request URL at INFO (`httpx2`: `HTTP Request: GET https://…?key=SECRET "HTTP/1.1 200 OK"`), and error
messages of the client may quote the URL. A logging filter on the client's loggers and ours rewrites
every record's message before any handler sees it: the value of a secret-looking query parameter and the
user info of a URL become `***`. Log filters are not inherited by child loggers, so each logger that
may carry a URL is named here.
"""

from __future__ import annotations

import logging
import re

SECRET_NAMES = (
    "key",
    "apikey",
    "api_key",
    "api-key",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "authorization",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "session",
    "sessionid",
    "code",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
)
# `name=value` in a query string: the name (any case, possibly prefixed like `partner_key`) then the value
_NAMES = "|".join(re.escape(name) for name in SECRET_NAMES)
_PARAM = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<name>(?:[A-Za-z0-9_.-]*[_.-])?(?:" + _NAMES + r"))=(?P<value>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s\"'<>]+@")

LOGGERS = (
    "httpx2",
    "httpcore2",
    "httpcore2.connection",
    "httpcore2.http11",
    "httpcore2.http2",
    "httpcore2.proxy",
    "connectors",
    "connectors.runner",
    "connectors.fetch",
)


def mask_secrets(text: str) -> str:
    """`text` with secret query values and URL user info replaced by `***`."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    return _PARAM.sub(lambda match: f"{match.group('name')}=***", text)


class MaskSecrets(logging.Filter):
    """Rewrites the record's message (arguments merged) with secrets masked; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:  # a traceback may quote the URL too
            record.exc_text = mask_secrets(_FORMATTER.formatException(record.exc_info))
        return True


_FORMATTER = logging.Formatter()


_FILTER = MaskSecrets()


def install() -> None:
    """Put the filter on every logger that may carry a source URL (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
