"""A real webhook receiver for tests: an HTTP (or HTTPS) server on loopback, in a thread, that records every
request and answers as scripted per path (status, headers, body, a delay, a huge body; a sequence such as
500-then-200). Also a throwaway CA and server certificate for HTTPS receivers.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``stream_bytes``: send a body of that many bytes (Content-Length set) in chunks until
    the client goes away. ``delay``: wait before answering (cut short when the receiver stops)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    stream_bytes: int = 0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-case
    body: bytes
    server_name: str | None  # the TLS SNI the client sent (HTTPS receivers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early (capped reads, timeouts) are part of the tests


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        sni = getattr(self.connection, "_dockyard_sni", None)
        receiver._record(Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, sni))
        reply = receiver._next_reply(self.path)
        if reply.delay and receiver._stopping.wait(reply.delay):
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.stream_bytes:
                self.send_header("Content-Length", str(reply.stream_bytes))
                self.end_headers()
                chunk = b"x" * 65536
                sent = 0
                while sent < reply.stream_bytes:
                    self.wfile.write(chunk)
                    sent += len(chunk)
            else:
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    do_PUT = do_POST


class WebhookReceiver:
    """``with WebhookReceiver() as r: r.script("/hook", Reply(500), Reply(200)); … r.received``.

    ``port`` 0 picks a free one; a given port lets a test start the receiver late, on a URL it handed out before.
    Unscripted paths answer 200 ``ok``. A scripted sequence is consumed one reply per request, its last reply
    repeating. ``host`` may be ``::1``; ``tls`` makes it HTTPS (see ``TestCertificates``).
    """

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None, port: int = 0) -> None:
        self.host = host
        self._tls = tls
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._received: list[Received] = []
        self._stopping = threading.Event()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(_Server):
            address_family = family

        self._server = Server((host, port), _Handler)
        self._server.receiver = self
        if tls is not None:
            tls.sni_callback = _remember_sni
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        scheme = "https" if self._tls is not None else "http"
        name = host or self.host
        netloc = f"[{name}]" if ":" in name else name
        return f"{scheme}://{netloc}:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[path] = list(replies)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def wait_for(self, count: int, timeout: float = 10.0, path: str | None = None) -> list[Received]:
        """Block until at least ``count`` requests (to ``path``, if given) arrived; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received if path is None else self.requests_to(path)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def _record(self, request: Received) -> None:
        with self._lock:
            self._received.append(request)

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            replies = self._scripts.get(path.split("?", 1)[0])
            if not replies:
                return Reply()
            return replies.pop(0) if len(replies) > 1 else replies[0]


def _remember_sni(sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, context: ssl.SSLContext) -> None:
    sock._dockyard_sni = server_name  # type: ignore[union-attr]


@dataclass(frozen=True)
class TestCertificates:
    """A CA and a server certificate for ``names`` signed by it, written as PEM files under ``directory``."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    __test__ = False  # not a pytest test class

    @classmethod
    def create(cls, directory: Path, names: Iterator[str] | list[str]) -> TestCertificates:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        alt_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook receiver")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        paths = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        paths.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        paths.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return paths

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))
