"""``tests.support.ports``: the suite's servers listen on ports that outgoing connections are never given."""

from __future__ import annotations

import random
import socket

import pytest

from tests.support.ports import ephemeral_range, free_port


def test_picked_ports_are_free_and_below_the_ephemeral_range() -> None:
    low, high = ephemeral_range()
    assert 1024 <= low <= high <= 65535
    picked = {free_port() for _ in range(50)}
    assert len(picked) > 40  # random, not one port handed out again and again
    for port in picked:
        assert 10_000 <= port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_port()))
        busy.listen()
        taken = busy.getsockname()[1]
        other = free_port()
        draws: list[int] = [taken, taken, other]

        class Draws:
            def randrange(self, start: int, stop: int) -> int:
                return draws.pop(0)

        monkeypatch.setattr(random, "SystemRandom", Draws)
        assert free_port() == other
        assert draws == []  # the taken port was drawn twice and passed over both times
