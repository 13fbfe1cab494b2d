"""Lease holder names: only a process of this machine and PID namespace that has exited is known dead."""

from __future__ import annotations

import os
import subprocess

from dockyard.core.holders import MACHINE, is_dead, new_holder, new_short_holder
from tests.support.holders import dead_holder


def test_a_new_holder_names_this_process_and_is_unique() -> None:
    first, second = new_holder(), new_holder()
    assert first != second
    assert len(first) <= 64
    assert first.rsplit(":", 3)[1:3] == [MACHINE, str(os.getpid())]
    assert not is_dead(first)  # this process is alive


def test_an_exited_process_of_this_machine_is_dead() -> None:
    assert is_dead(dead_holder())


def test_a_live_process_is_not_dead() -> None:
    with subprocess.Popen(["sleep", "30"]) as child:
        try:
            holder = f"host:{MACHINE}:{child.pid}:00000000"
            assert not is_dead(holder)
        finally:
            child.kill()
            child.wait()
    assert is_dead(holder)


def test_other_machines_and_other_formats_are_never_known_dead() -> None:
    _, machine, pid, suffix = dead_holder().rsplit(":", 3)
    other = "0" * 10 if machine != "0" * 10 else "1" * 10
    assert not is_dead(f"host:{other}:{pid}:{suffix}")  # another machine or container: its PIDs are not ours
    assert not is_dead("5f0c6a2d9b1e4c3a8d7e6f5a4b3c2d1e")  # a plain uuid (an older holder name)
    assert not is_dead(f"host:{MACHINE}:notapid:{suffix}")
    assert not is_dead(f"host:{MACHINE}:0:{suffix}")
    assert not is_dead(None)
    assert not is_dead("")


def test_a_short_holder_fits_an_upload_lease_token_and_is_known_dead_the_same_way() -> None:
    short = new_short_holder()
    assert len(short) <= 32  # uploads.lease_token
    assert short != new_short_holder()
    assert not is_dead(short)
    gone = dead_holder()
    assert is_dead("-:" + gone.split(":", 1)[1])
