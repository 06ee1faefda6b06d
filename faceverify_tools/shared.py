"""Where the shared weights and images live: `../shared` next to the repository, or `$FACEVERIFY_SHARED`.

The test pack, LFW and the hard cases are never copied into the repository; tests, benchmarks and
measurement commands read them from here.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACEVERIFY_SHARED", REPO.parent / "shared")).resolve()
TEST_PACK = SHARED / "weights" / "scrfd2.5g-sface"
DATA = SHARED / "data"
CASES = DATA / "cases"
LFW = DATA / "lfw"


def shown(path: Path) -> str:
    """A path as a report records it: relative to the repository (`../shared/...`), so that no
    machine's absolute path is committed with the figures."""
    return os.path.relpath(Path(path).resolve(), REPO)


def case(relative: str) -> Path:
    """A file from the shared cases folder (`cases/<relative>`); raises FileNotFoundError naming it."""
    path = CASES / relative
    if not path.is_file():
        raise FileNotFoundError(f"missing image {path}: set FACEVERIFY_SHARED to the shared folder")
    return path
