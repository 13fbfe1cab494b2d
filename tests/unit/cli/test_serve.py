"""``dockyard serve``'s start-up: the warnings an operator sees before the server starts, uvicorn's configuration, and
the application built without cyclic collection and then frozen."""

from __future__ import annotations

import gc
import socket
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn

import dockyard.app
from dockyard.cli.serve import built_then_frozen, is_loopback, run_server, startup_warnings, uvicorn_config
from dockyard.settings import Settings, load_settings


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "LOCALHOST", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.10", "registry.example.com", "2001:db8::1"]
)
def test_hosts_others_can_reach(host: str) -> None:
    assert not is_loopback(host)


def _settings(**values: object) -> Settings:
    return load_settings(None, **values)


def test_base_url_unset_on_a_reachable_address_is_warned_about() -> None:
    warnings = startup_warnings(_settings(host="0.0.0.0"))
    assert any("base_url" in w and "Host header" in w for w in warnings)
    assert not any("base_url" in w for w in startup_warnings(_settings(host="127.0.0.1")))
    assert not any(
        "base_url" in w for w in startup_warnings(_settings(host="0.0.0.0", base_url="https://registry.example.com"))
    )


def test_open_mode_is_warned_about() -> None:
    assert any("authentication is off" in w for w in startup_warnings(_settings(open=True)))
    assert not any("authentication is off" in w for w in startup_warnings(_settings()))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("127.0.0.1:9100", True),
        ("[::1]:9100", True),
        (":9100", True),
        ("9100", False),
        ("host:0", False),
        ("h:x", False),
    ],
)
def test_metrics_address_is_host_and_port(value: str, ok: bool) -> None:
    from dockyard.settings import SettingsError

    if ok:
        assert _settings(metrics_address=value).metrics_address == value
    else:
        with pytest.raises(SettingsError, match="metrics_address"):
            _settings(metrics_address=value)


def test_idle_connections_outlive_uvicorns_default_keep_alive() -> None:
    # uvicorn closes an idle connection after 5 s; a client reusing it just then sees it drop unanswered.
    assert uvicorn_config(_settings(), "dockyard.app:create_app").timeout_keep_alive == 75
    assert uvicorn_config(_settings(keep_alive_seconds=9), "dockyard.app:create_app").timeout_keep_alive == 9


def test_the_application_is_built_without_cyclic_collection_and_then_frozen() -> None:
    frozen = gc.get_freeze_count()
    during: list[bool] = []

    def build() -> list[object]:
        during.append(gc.isenabled())
        return [object() for _ in range(100)]

    made = built_then_frozen(build)
    try:
        assert during == [False]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(made)

        def fails() -> None:
            raise RuntimeError("no database")

        with pytest.raises(RuntimeError, match="no database"):
            built_then_frozen(fails)
        assert gc.isenabled()  # a failed start does not leave collection off
    finally:
        gc.unfreeze()


def test_one_worker_serves_a_frozen_application(monkeypatch: pytest.MonkeyPatch) -> None:
    """The single-process server (one worker) freezes what it built, as each worker of a supervisor does."""
    settings = _settings(workers=1)
    built: list[bool] = []
    served: list[int] = []

    def create_app(given: Settings) -> Any:
        built.append(gc.isenabled())
        return SimpleNamespace(state=SimpleNamespace(settings=given, metrics=SimpleNamespace(exposition_registry=None)))

    def run(self: uvicorn.Server, sockets: list[socket.socket]) -> None:
        served.append(gc.get_freeze_count())
        self.started = True

    monkeypatch.setattr(dockyard.app, "create_app", create_app)
    monkeypatch.setattr(uvicorn.Server, "run", run)
    gc.unfreeze()
    try:
        with socket.socket() as sock:
            run_server(settings, sock)
        assert built == [False]
        assert len(served) == 1
        assert served[0] > 0
        assert gc.isenabled()
    finally:
        gc.unfreeze()
