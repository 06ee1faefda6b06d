"""Thread counts from the CPUs the process may really use (faceverify/threads.py), on sample cgroup
files written here: cgroup v2 `cpu.max`, cgroup v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO, TEST_PACK
from faceverify import threads


def v2(tmp_path, limits: dict[str, str], own: str = "/") -> tuple:
    """A cgroup v2 tree: `limits` maps a cgroup path ("/" for the root) to its cpu.max text."""
    root = tmp_path / "cgroup"
    for path, text in limits.items():
        folder = root / path.strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cpu.max").write_text(text + "\n")
    (root / own.strip("/")).mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::{own}\n")
    return root, proc


def v1(tmp_path, quota: str, period: str, own: str = "/", mount: str = "cpu,cpuacct") -> tuple:
    root = tmp_path / "cgroup"
    folder = root / mount / own.strip("/")
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text(quota + "\n")
    (folder / "cpu.cfs_period_us").write_text(period + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"12:memory:{own}\n11:{mount}:{own}\n10:pids:{own}\n")
    return root, proc


@pytest.fixture
def many_cpus(monkeypatch):
    """The process may run on 64 CPUs (a large host), whatever this machine has."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))


# (cpu.max, usable CPUs, ONNX Runtime / OpenCV threads per call) with 64 CPUs in the affinity mask
V2_CASES = [
    ("max 100000", 64, 32),         # no quota: the affinity counts
    ("400000 100000", 4, 2),        # a 4-vCPU instance
    ("200000 100000", 2, 1),        # 2 CPUs, like the build machine
    ("150000 100000", 2, 1),        # 1.5 CPUs, rounded up
    ("100000 100000", 1, 1),
    ("50000 100000", 1, 1),         # half a CPU: still one thread
    ("800000 100000", 8, 4),
    ("1600000 100000", 16, 8),
    ("350000 50000", 7, 3),         # another period
]


@pytest.mark.parametrize("cpu_max,cpus,per_call", V2_CASES)
def test_cgroup_v2_quota(tmp_path, many_cpus, cpu_max, cpus, per_call):
    root, proc = v2(tmp_path, {"/": cpu_max})
    assert threads.usable_cpus(root, proc) == cpus
    assert threads.threads_per_call(threads.usable_cpus(root, proc)) == per_call


def test_cgroup_v2_the_tightest_quota_on_the_path_applies(tmp_path, many_cpus):
    root, proc = v2(tmp_path, {"/": "max 100000", "/kubepods": "800000 100000", "/kubepods/pod1/ctr": "max 100000",
                               "/kubepods/pod1": "300000 100000", "/other": "100000 100000"}, own="/kubepods/pod1/ctr")
    assert threads.cgroup_cpu_limit(root, proc) == 3.0
    assert threads.usable_cpus(root, proc) == 3


def test_cgroup_v2_host_path_not_visible_uses_the_root(tmp_path, many_cpus):
    """In a container without a cgroup namespace, /proc/self/cgroup names the host's path, which
    is not under the container's /sys/fs/cgroup: the root's cpu.max is the container's."""
    root, proc = v2(tmp_path, {"/": "400000 100000"})
    proc.write_text("0::/system.slice/docker-0123abcd.scope\n")
    assert threads.usable_cpus(root, proc) == 4


@pytest.mark.parametrize("quota,period,cpus,per_call", [
    ("-1", "100000", 64, 32),        # no quota
    ("400000", "100000", 4, 2),
    ("200000", "100000", 2, 1),
    ("150000", "100000", 2, 1),
    ("50000", "100000", 1, 1),
])
def test_cgroup_v1_quota(tmp_path, many_cpus, quota, period, cpus, per_call):
    root, proc = v1(tmp_path, quota, period, own="/docker/abc")
    assert threads.usable_cpus(root, proc) == cpus
    assert threads.threads_per_call(cpus) == per_call


def test_cgroup_v1_mounted_as_cpu(tmp_path, many_cpus):
    root, proc = v1(tmp_path, "400000", "100000", mount="cpu")
    proc.write_text("4:cpu:/\n")
    assert threads.usable_cpus(root, proc) == 4


def test_affinity_caps_a_larger_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    root, proc = v2(tmp_path, {"/": "800000 100000"})
    assert threads.usable_cpus(root, proc) == 2


@pytest.mark.parametrize("text", ["", "garbage", "0 100000", "-5 100000", "100000 0", "abc def"])
def test_unreadable_or_odd_quota_means_no_limit(tmp_path, many_cpus, text):
    root, proc = v2(tmp_path, {"/": text})
    assert threads.cgroup_cpu_limit(root, proc) is None
    assert threads.usable_cpus(root, proc) == 64


def test_no_cgroup_files_at_all(tmp_path, many_cpus):
    assert threads.usable_cpus(tmp_path / "none", tmp_path / "no-proc-file") == 64


def test_max_concurrency_comes_from_the_environment(monkeypatch):
    for value, expected in (("2", 2), ("5", 5), ("0", 1), ("x", 1)):
        monkeypatch.setenv("COG_MAX_CONCURRENCY", value)
        assert threads.max_concurrency() == expected
    monkeypatch.delenv("COG_MAX_CONCURRENCY")
    assert threads.max_concurrency() == 1


def test_loaded_verifier_uses_the_sized_threads():
    """In a fresh process limited to one CPU by affinity: ONNX Runtime sessions get 1 intra-op
    thread, OpenCV 1 thread, and the helper pool COG_MAX_CONCURRENCY workers."""
    snippet = (
        "import os, cv2\n"
        "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
        "from faceverify import FaceVerifier\n"
        f"verifier = FaceVerifier.load({str(TEST_PACK)!r})\n"
        "options = verifier.pack.recognizer.session.get_session_options()\n"
        "print(options.intra_op_num_threads, cv2.getNumThreads(), verifier.helper._max_workers)\n"
    )
    env = {**os.environ, "COG_MAX_CONCURRENCY": "3"}
    completed = subprocess.run([sys.executable, "-c", snippet], check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["1", "1", "3"]
