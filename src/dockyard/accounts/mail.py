"""E-mail through the configured SMTP server (``smtp_*`` settings): one message per call, sent by the standard
library's ``smtplib`` in a worker thread so that the job runner's event loop never blocks on the network.

``smtp_starttls`` upgrades the connection with STARTTLS (the server's certificate verified against the system's
trust store) before anything else is said; ``smtp_username``/``smtp_password``, when set, sign in. Errors come
back as ``MailError`` with the server's answer, for the calling job to retry.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from dockyard.settings import Settings


class MailError(Exception):
    """The SMTP server could not be reached or refused the message."""


def compose(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    message.set_content(body)
    return message


def _send(settings: Settings, message: EmailMessage) -> None:
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"{settings.smtp_host}:{settings.smtp_port}: {exc}") from exc


async def send_mail(settings: Settings, to: str, subject: str, body: str) -> None:
    """Send one plain-text message to ``to``; ``MailError`` when it was not accepted."""
    await asyncio.to_thread(_send, settings, compose(settings, to, subject, body))
