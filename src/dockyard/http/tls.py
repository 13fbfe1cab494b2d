"""TLS for ``dockyard serve --tls-cert F --tls-key F``: the server's ``SSLContext`` (TLS 1.2 and 1.3 only, forward-
secret AEAD cipher suites, HTTP/1.1 by ALPN) and its reload when the certificate or key files change.

The reload needs no watcher thread and no restart: the context uvicorn listens with has a server-name callback,
which OpenSSL calls at the start of every handshake (with or without SNI). The callback looks at the files at most
once a second (their modification time, size and inode); when they changed it loads them into a new context and
hands that context to the handshake and to every later one. Connections already open keep their certificate. A
pair that does not load — the certificate replaced but the key not yet, a half-written file — keeps the previous
context, logs a warning and is tried again at the next check, so that replacing the two files one after the other
(or with a ``mv`` each) never interrupts service. Each worker process reloads on its own.

Everything runs on the event loop's thread (the callback runs inside the handshake), so no lock is needed.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from pathlib import Path

log = logging.getLogger("dockyard.tls")

CHECK_SECONDS = 1.0  # the certificate files are looked at no more often than this
# Mozilla's "intermediate" TLS 1.2 suites (ECDHE key exchange, AEAD ciphers); TLS 1.3 suites are OpenSSL's own.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)

_Stamp = tuple[tuple[int, int, int], ...]


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context with ``cert`` (the certificate chain, PEM) and ``key`` (its private key, PEM) loaded.
    Raises ``OSError`` or ``ssl.SSLError`` when they cannot be read or do not match."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(certfile=cert, keyfile=key)
    return context


def _stamp(paths: tuple[Path, ...]) -> _Stamp:
    stamps = []
    for path in paths:
        status = os.stat(path)
        stamps.append((status.st_mtime_ns, status.st_size, status.st_ino))
    return tuple(stamps)


class ReloadingContext:
    """The context of a TLS listener whose certificate follows the files ``cert`` and ``key``.

    ``listener`` is the context to listen with; its handshakes use whatever pair was last loaded successfully.
    Raises (``OSError``, ``ssl.SSLError``) at construction when the files do not load: a server does not start
    with a broken pair.
    """

    def __init__(self, cert: Path, key: Path, *, check_seconds: float = CHECK_SECONDS) -> None:
        self.paths = (cert, key)
        self.check_seconds = check_seconds
        self._stamp = _stamp(self.paths)
        self.current = server_context(cert, key)
        self._checked = time.monotonic()
        self.listener = self.current
        self.listener.sni_callback = self._on_handshake

    def _on_handshake(self, connection: ssl.SSLObject | ssl.SSLSocket, _server_name: str | None, _: object) -> None:
        self.refresh()
        if connection.context is not self.current:
            connection.context = self.current

    def refresh(self, *, now: float | None = None) -> bool:
        """Load the files again if they changed since the last load (looked at once per ``check_seconds``);
        whether a new pair is now in use."""
        now = time.monotonic() if now is None else now
        if now - self._checked < self.check_seconds:
            return False
        self._checked = now
        try:
            stamp = _stamp(self.paths)
            if stamp == self._stamp:
                return False
            context = server_context(*self.paths)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("TLS certificate %s not reloaded (keeping the previous one): %s", self.paths[0], exc)
            return False
        self._stamp = stamp
        self.current = context
        log.info("TLS certificate %s reloaded", self.paths[0])
        return True
