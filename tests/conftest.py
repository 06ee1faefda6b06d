"""Shared fixtures: the real test model pack, real images from ../shared, and a real Cog server.

`FACEVERIFY_SHARED` points at the shared folder (default: ../shared next to the repository).
Nothing here is mocked or skipped: without the shared weights and data the tests fail loudly.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACEVERIFY_SHARED", REPO.parent / "shared")).resolve()
TEST_PACK = SHARED / "weights" / "scrfd2.5g-sface"
CASES = SHARED / "data" / "cases"
LFW = SHARED / "data" / "lfw"


def case(relative: str) -> Path:
    """A file from ../shared/data/cases, failing the test if it is not there."""
    path = CASES / relative
    assert path.is_file(), f"missing test image {path}: set FACEVERIFY_SHARED to the shared folder"
    return path


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    """An image re-encoded in memory with Pillow."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def verifier():
    from faceverify import FaceVerifier

    assert (TEST_PACK / "manifest.json").is_file(), f"test model pack not found at {TEST_PACK}"
    return FaceVerifier.load(TEST_PACK)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CogServer:
    """A real `python -m cog.server.http` subprocess serving predict.py on a free local port."""

    def __init__(self, weights: Path, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = dict(os.environ, COG_PREDICT_TYPE_STUB="predict.py:Predictor", PORT=str(self.port), COG_WEIGHTS=str(weights),
                   COG_MAX_CONCURRENCY="2")  # as cog.yaml concurrency.max; a built image sets it
        # coglet starts its worker with `python` from PATH: make that this interpreter (the venv's).
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cog.server.http", "--host", "127.0.0.1"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def health(self) -> dict:
        return requests.get(f"{self.url}/health-check", timeout=5).json()

    def wait_until(self, statuses: set[str], timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None or statuses & {"SETUP_FAILED", "DEFUNCT"}, self.logs()
            try:
                health = self.health()
                if health.get("status") in statuses:
                    return health
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not in {statuses} after {timeout}s:\n{self.logs()}")

    def predict(self, inputs: dict, timeout: float = 60.0) -> requests.Response:
        """POST /predictions, retrying while the server answers 409 (its one slot is busy)."""
        deadline = time.monotonic() + timeout
        while True:
            response = requests.post(f"{self.url}/predictions", json={"input": inputs}, timeout=timeout)
            if response.status_code != 409 or time.monotonic() > deadline:
                return response
            time.sleep(0.1)

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    cog = CogServer(TEST_PACK, tmp_path_factory.mktemp("cog") / "server.log")
    try:
        cog.wait_until({"READY"})
        yield cog
    finally:
        cog.stop()
