"""A real SMTP server for tests: aiosmtpd on loopback, in its own thread, keeping every message it is given
(envelope and parsed message), so that a test can wait for a mail and read the link in it."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.checks import wait_for
from tests.support.ports import free_port

LINK = re.compile(r"https?://\S+/invites/(dy_inv_[A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())

    @property
    def link(self) -> str:
        found = LINK.search(self.body)
        assert found is not None, self.body
        return found.group(0)

    @property
    def token(self) -> str:
        found = LINK.search(self.body)
        assert found is not None, self.body
        return found.group(1)


class SmtpSink:
    """Messages the server accepted, in order of arrival."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd calls handle_DATA
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._mails.append(Mail(envelope.mail_from, tuple(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    @property
    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)

    def to(self, address: str) -> list[Mail]:
        return [mail for mail in self.mails if address in mail.recipients]

    def wait_for_mail(self, address: str, count: int = 1, timeout: float = 30.0) -> Mail:
        """The ``count``-th mail to ``address`` (the last one once it arrived)."""
        mails = wait_for(lambda: len(self.to(address)) >= count, timeout=timeout, what=f"mail {count} to {address}")
        assert mails
        return self.to(address)[count - 1]

    def settings(self) -> dict[str, str]:
        """The server settings that send mail here."""
        return {
            "DOCKYARD_SMTP_HOST": "127.0.0.1",
            "DOCKYARD_SMTP_PORT": str(self.port),
            "DOCKYARD_SMTP_FROM": "hub@dockyard.test",
        }


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
