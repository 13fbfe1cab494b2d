"""The HTTP/1.1 protocol ``dockyard serve`` runs uvicorn with: httptools, with the request head bounded.

uvicorn's h11 protocol bounds an incomplete request head (``h11_max_incomplete_event_size``); its httptools
protocol, which Dockyard uses for speed, has no such option and buffers a header line of any length. This
subclass counts the bytes of a request head as they arrive and, once they pass the limit (the same
``h11_max_incomplete_event_size`` setting, so that either protocol honours it), answers 431 and closes the
connection — before more than one read past the limit has been buffered. A head that arrives complete in one
read is checked by the ASGI middleware (``http.limits``) instead.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

PROTOCOL = "dockyard.http.server:LimitedHttpToolsProtocol"  # what ``uvicorn.run(http=…)`` is given
_DEFAULT_LIMIT = 64 * 1024
_BODY = b"request header fields too large\n"


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    _head_bytes = 0
    _in_head = True  # bytes before a request's first callback belong to its head too
    _refused = False

    @property
    def _head_limit(self) -> int:
        return self.config.h11_max_incomplete_event_size or _DEFAULT_LIMIT

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head and self._head_bytes > self._head_limit:
            self._refuse()
            return
        super().data_received(data)
        if self._in_head:
            # May count the end of a pipelined previous request as well: a bound, not an exact size.
            self._head_bytes += len(data)

    def _refuse(self) -> None:
        self._refused = True
        self.logger.warning("Request head larger than %d bytes refused.", self._head_limit)
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(_BODY)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                _BODY,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
