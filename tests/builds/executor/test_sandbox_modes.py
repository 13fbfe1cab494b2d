"""How the sandbox picks its mode and what it writes, on fake cgroup trees (this machine has writable cgroup v1
hierarchies and a controller-less v2 mount, so the v2 path is checked here on a directory that looks like one)."""

from __future__ import annotations

from pathlib import Path

from dockyard.builds.executor import BuildLimits
from dockyard.builds.sandbox import Sandbox, cgroup_mounts

LIMITS = BuildLimits(wall_seconds=60, cpu_seconds=30, memory_bytes=256 * 1024**2, pids=64, disk_bytes=10**9)


def _mounts(tmp_path: Path, lines: list[str]) -> Path:
    mounts = tmp_path / "mounts"
    mounts.write_text("".join(f"{line}\n" for line in lines))
    return mounts


def test_cgroup2_writes_limits_and_joins(tmp_path: Path) -> None:
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    mounts = _mounts(tmp_path, [f"cgroup2 {root} cgroup2 rw,nosuid 0 0"])
    confinement = Sandbox("builds-parent", mounts_file=mounts).confine("b1", LIMITS)
    assert confinement.mode == "cgroup2"
    build = root / "builds-parent" / "b1"
    assert (build / "memory.max").read_text() == str(256 * 1024**2)
    assert (build / "memory.swap.max").read_text() == "0"
    assert (build / "pids.max").read_text() == "64"
    assert (root / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    argv = confinement.wrap(["buildah", "build"])
    assert argv[:2] == ["/bin/sh", "-c"]
    assert f"echo 0 > {build / 'cgroup.procs'}" in argv[2]
    assert argv[4:] == ["prlimit", f"--fsize={10**9}", "--", "buildah", "build"]
    (build / "cpu.stat").write_text("usage_usec 31000000\nuser_usec 1\n")
    (build / "pids.events").write_text("max 3\n")
    assert confinement.cpu_seconds_used() == 31.0
    assert confinement.pids_refused() == 3
    assert confinement.describe().startswith("sandbox: cgroup2; memory 268435456 bytes; pids 64; cpu 30s in total")


def test_v2_without_controllers_falls_back_to_v1(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("hugetlb\n")
    lines = [f"cgroup2 {unified} cgroup2 rw 0 0"]
    for controller in ("memory", "pids", "cpuacct"):
        (tmp_path / controller).mkdir()
        lines.append(f"cgroup {tmp_path / controller} cgroup rw,relatime,{controller} 0 0")
    confinement = Sandbox("p", mounts_file=_mounts(tmp_path, lines)).confine("b2", LIMITS)
    assert confinement.mode == "cgroup1"
    assert (tmp_path / "memory" / "p" / "b2" / "memory.limit_in_bytes").read_text() == str(256 * 1024**2)
    assert (tmp_path / "pids" / "p" / "b2" / "pids.max").read_text() == "64"
    assert "cgroup v2 not usable (controllers memory and pids not available (have: hugetlb))" in confinement.describe()
    (tmp_path / "cpuacct" / "p" / "b2" / "cpuacct.usage").write_text("2500000000\n")
    assert confinement.cpu_seconds_used() == 2.5


def test_no_cgroups_means_rlimits(tmp_path: Path) -> None:
    confinement = Sandbox(mounts_file=_mounts(tmp_path, ["proc /proc proc rw 0 0"])).confine("b3", LIMITS)
    assert confinement.mode == "rlimits"
    assert confinement.wrap(["buildah"]) == [
        "prlimit",
        f"--fsize={10**9}",
        "--cpu=30",
        "--nproc=64",
        "--",
        "buildah",
    ]
    text = confinement.describe()
    assert "memory not limited (no writable cgroup)" in text
    assert "RLIMIT_NPROC=64 (not binding for root)" in text
    assert confinement.kill_all() is True


def test_cgroup_mounts_reads_joint_hierarchies(tmp_path: Path) -> None:
    mounts = _mounts(
        tmp_path,
        [
            "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0",
            "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0",
            "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0",
        ],
    )
    v2, v1 = cgroup_mounts(mounts)
    assert v2 == Path("/sys/fs/cgroup")
    assert v1 == {"cpuacct": Path("/sys/fs/cgroup/cpu,cpuacct"), "memory": Path("/sys/fs/cgroup/memory")}
