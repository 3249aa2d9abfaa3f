"""The two ways a notification leaves: an HTTP POST of JSON, and an email over SMTP.

Each call is bounded by a timeout and ends in a one-line outcome or a
`DeliveryError` saying why, and whether trying again can help (`permanent`): a
receiver that answers 404 or a mailbox that does not exist will not change its mind.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any

from edgebatch.framework.errors import FrameworkError
from edgebatch.settings import NotifySettings

USER_AGENT = "edgebatch-notify/1"
# Client errors worth another try: timeout, too early, too many requests.
_RETRYABLE_4XX = {408, 425, 429}


class DeliveryError(FrameworkError):
    """An attempt to deliver failed; `permanent` when retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


def post_webhook(url: str, body: dict[str, Any], *, timeout: float, key: str = "") -> str:
    """POST `body` as JSON; 2xx is delivered. `key` goes in `Idempotency-Key` for receivers
    that deduplicate. `timeout` bounds the connect and each read."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body, default=str).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **({"Idempotency-Key": key} if key else {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        permanent = 400 <= exc.code < 500 and exc.code not in _RETRYABLE_4XX
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}", permanent=permanent) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError | socket.timeout):
            raise DeliveryError(f"no answer within {timeout:g} s") from None
        raise DeliveryError(f"cannot reach the receiver: {reason}") from None
    except TimeoutError:
        raise DeliveryError(f"no answer within {timeout:g} s") from None
    except OSError as exc:
        raise DeliveryError(f"connection failed: {exc}") from None


def send_email(settings: NotifySettings, message: EmailMessage, *, timeout: float) -> str:
    """Send one message through the `[notify]` SMTP server; the server's acceptance is delivery."""
    if not settings.smtp_host:
        raise DeliveryError(
            "no SMTP server configured: set [notify] smtp_host (or EDGEBATCH_NOTIFY_SMTP_HOST)",
            permanent=True,
        )
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(
            f"{who}: {code} {text!r}" for who, (code, text) in exc.recipients.items()
        )
        raise DeliveryError(f"recipient refused: {detail}", permanent=True) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        raise DeliveryError(f"SMTP {exc.smtp_code} {text}".strip()) from None
    except TimeoutError:
        raise DeliveryError(f"no answer from the SMTP server within {timeout:g} s") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"SMTP server {settings.smtp_host}:{settings.smtp_port}: {exc or type(exc).__name__}"
        ) from None
    if refused:
        raise DeliveryError(f"recipient refused: {refused}", permanent=True)
    return f"accepted by {settings.smtp_host}:{settings.smtp_port}"
