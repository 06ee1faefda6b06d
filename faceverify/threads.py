"""How many threads the pipeline uses, from the CPUs this process may really use.

`os.cpu_count()` is the machine's core count. In a container it is usually the host's, not what the
container may use: a 4-vCPU instance on a 64-core host would start 32 ONNX Runtime threads per
network call. The CPUs that count are the fewest of:

- the CPUs the process may run on (its affinity, `os.sched_getaffinity`);
- the cgroup CPU quota, rounded up: cgroup v2 `cpu.max` ("QUOTA PERIOD", or "max PERIOD" for no
  limit), cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1 for no limit), for the process's
  own cgroup and each cgroup above it (the tightest one applies).

A prediction works on its two images at once (FaceVerifier), so each network call gets half of
these CPUs as ONNX Runtime intra-op threads, at least one; OpenCV's own thread pool, which it
would otherwise size from all the host's cores, gets the same number. docs/how-it-decides.md,
"Threads", has the measurements and what a 4-vCPU instance gets.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def affinity_cpus() -> int:
    """How many CPUs the process may be scheduled on (os.cpu_count() where affinity is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cgroup_dirs(mount: Path, relative: str) -> list[Path]:
    """The process's cgroup folder under `mount` and every folder above it up to `mount`.
    When the folder is not there (a container that sees its own cgroup as the root, while
    /proc/self/cgroup names the host's path), the mount alone."""
    folder = mount / relative.lstrip("/")
    if not folder.is_dir():
        return [mount]
    dirs = [folder]
    while folder != mount and mount in folder.parents:
        folder = folder.parent
        dirs.append(folder)
    return dirs


def _v2_limit(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")
    if not text:
        return None
    parts = text.split()
    try:
        if parts[0] == "max":
            return None
        quota, period = int(parts[0]), int(parts[1]) if len(parts) > 1 else 100_000
    except (ValueError, IndexError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_limit(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    try:
        quota_us, period_us = int(quota or "-1"), int(period or "0")
    except ValueError:
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def cgroup_cpu_limit(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> float | None:
    """The tightest cgroup CPU quota of this process in CPUs (1.5 for "150000 100000"), or None
    when there is none or it cannot be read."""
    text = _read(proc_cgroup)
    if text is None:
        return None
    limits: list[float] = []
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, relative = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2, the unified hierarchy
            folders, reader = _cgroup_dirs(cgroup_root, relative), _v2_limit
        elif "cpu" in controllers.split(","):  # cgroup v1, the cpu controller's hierarchy
            mount = next((cgroup_root / name for name in (controllers, "cpu,cpuacct", "cpu") if (cgroup_root / name).is_dir()), None)
            if mount is None:
                continue
            folders, reader = _cgroup_dirs(mount, relative), _v1_limit
        else:
            continue
        limits.extend(limit for limit in map(reader, folders) if limit is not None)
    return min(limits) if limits else None


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> int:
    """The CPUs this process may really use: its affinity, capped by its cgroup quota rounded up."""
    cpus = affinity_cpus()
    limit = cgroup_cpu_limit(cgroup_root, proc_cgroup)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit - 1e-9)))
    return cpus


def threads_per_call(cpus: int | None = None) -> int:
    """ONNX Runtime intra-op threads (and OpenCV threads) for one network call: half the usable
    CPUs, at least one, since a prediction works on both of its images at once."""
    return max(1, (cpus if cpus is not None else usable_cpus()) // 2)


def max_concurrency() -> int:
    """How many predictions the Cog server runs at once: COG_MAX_CONCURRENCY, which a built image
    sets from cog.yaml's `concurrency.max` (1 when unset or not a positive number, as in Cog)."""
    try:
        return max(1, int(os.environ.get("COG_MAX_CONCURRENCY", "1")))
    except ValueError:
        return 1


def set_opencv_threads(threads: int | None = None) -> int:
    """Size OpenCV's own thread pool (process-wide) like one network call; return the size."""
    import cv2

    count = threads or threads_per_call()
    cv2.setNumThreads(count)
    return count
