"""Shared fixtures: the real test model pack, real images from ../shared, and a real Cog server.

`FACEVERIFY_SHARED` points at the shared folder (default: ../shared next to the repository).
Nothing here is mocked or skipped: without the shared weights and data the tests fail loudly.
"""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image

from faceverify_tools.cogserver import CogServer  # noqa: F401  (the tests' server harness)
from faceverify_tools.shared import CASES, LFW, REPO, SHARED, TEST_PACK, case  # noqa: F401  (used by the tests)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    """An image re-encoded in memory with Pillow."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture
def pack_copy(tmp_path):
    """A private, writable copy of the test pack that a test may damage."""
    target = tmp_path / "pack"
    shutil.copytree(TEST_PACK, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


@pytest.fixture(scope="session")
def verifier():
    from faceverify import FaceVerifier

    assert (TEST_PACK / "manifest.json").is_file(), f"test model pack not found at {TEST_PACK}"
    return FaceVerifier.load(TEST_PACK)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    cog = CogServer(TEST_PACK, tmp_path_factory.mktemp("cog") / "server.log")
    try:
        cog.wait_until({"READY"})
        yield cog
    finally:
        cog.stop()
