"""The handler registry: one factory per kind, built once per runner, modules loaded by name."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from unittest.mock import Mock

import pytest

from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.registry import HandlerRegistry, JobEnvironment, import_handler_modules
from dockyard.settings import Settings, load_settings


def test_a_kind_has_one_factory_and_build_calls_each_once(tmp_path: Path) -> None:
    registry = HandlerRegistry()
    built: list[str] = []

    @registry.register("test.one")
    def one(env: JobEnvironment) -> Handler:
        built.append("one")

        async def handle(job: JobContext) -> None:
            return None

        return handle

    registry.add("test.one", one)  # the same factory again (a module imported twice) is fine

    def other(env: JobEnvironment) -> Handler:
        raise AssertionError("never built")

    with pytest.raises(ValueError, match=r"'test\.one' already has a handler"):
        registry.add("test.one", other)
    env = JobEnvironment(Mock(), Settings(data_dir=tmp_path), Mock(), AsyncExitStack())
    handlers = registry.build(env)
    assert list(handlers) == ["test.one"] == registry.kinds()
    assert built == ["one"]
    env.wake()  # no runner yet: nothing to wake, no error


def test_handler_modules_are_imported_by_name() -> None:
    import_handler_modules(["tests.support.job_handlers"])
    from dockyard.jobs.registry import HANDLERS

    assert {"test.touch", "test.sleep"} <= set(HANDLERS.kinds())
    with pytest.raises(ValueError, match=r"'tests\.support\.nothing_here' cannot be imported"):
        import_handler_modules(["tests.support.nothing_here"])


def test_handler_modules_setting_takes_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_JOBS_HANDLER_MODULES", "a.tasks, b.tasks")
    assert load_settings().jobs_handler_modules == ["a.tasks", "b.tasks"]


def test_handler_kinds_name_the_module_that_registers_each() -> None:
    from dockyard.jobs.registry import HANDLER_KINDS, HANDLER_MODULES, HANDLERS

    import_handler_modules(HANDLER_MODULES)
    assert {kind: HANDLERS.module_of(kind) for kind in HANDLER_KINDS} == dict(HANDLER_KINDS)
    own = {kind for kind in HANDLERS.kinds() if HANDLERS.module_of(kind).startswith("dockyard.")}
    assert own == set(HANDLER_KINDS)  # a kind registered by one of Dockyard's modules but not listed never runs


async def test_a_lazy_handler_builds_on_its_first_job_once(tmp_path: Path) -> None:
    from dockyard.jobs.registry import LazyHandler

    registry = HandlerRegistry()
    built: list[str] = []
    ran: list[int] = []

    @registry.register("test.lazy")
    def lazy(env: JobEnvironment) -> Handler:
        built.append("lazy")

        async def handle(job: JobContext) -> None:
            ran.append(job.job_id)

        return handle

    env = JobEnvironment(Mock(), Settings(data_dir=tmp_path), Mock(), AsyncExitStack())
    handler = LazyHandler("test.lazy", "tests.support.job_handlers", env, registry)
    assert built == []
    await handler(Mock(job_id=1))
    await handler(Mock(job_id=2))
    assert built == ["lazy"]
    assert ran == [1, 2]
    missing = LazyHandler("test.lazy", "tests.support.nothing_here", env, HandlerRegistry())
    with pytest.raises(ValueError, match="cannot be imported"):
        await missing(Mock(job_id=3))
