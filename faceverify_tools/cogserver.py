"""The real Cog HTTP server (`python -m cog.server.http`) as a subprocess, for tests, soak and benchmark.

It serves this repository's predict.py on a free local port with a model pack, the way a built
image would: COG_WEIGHTS names the pack, COG_MAX_CONCURRENCY is cog.yaml's `concurrency.max`,
and the server runs in the repository root, where coglet loads the OpenAPI schema
`.cog/openapi_schema.json` (script/generate-schema) and so validates inputs as in production.
The harness refuses to start without that file and checks, once the server is ready, that it
serves exactly that schema. Not used by the model itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .schema import SCHEMA_PATH, cog_config
from .shared import REPO

MAX_CONCURRENCY = str(cog_config()["concurrency"]["max"])
"""cog.yaml's `concurrency.max`; a built image sets COG_MAX_CONCURRENCY from it."""


class CogServer:
    """A real `python -m cog.server.http` subprocess serving predict.py on a free local port."""

    def __init__(self, weights: Path, log_path: Path) -> None:
        if not SCHEMA_PATH.is_file():
            raise RuntimeError(f"{SCHEMA_PATH} is missing, so the server would validate no input: run script/generate-schema")
        self.schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        self.schema_checked = False
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = dict(os.environ, COG_PREDICT_TYPE_STUB="predict.py:Predictor", PORT=str(self.port),
                   COG_WEIGHTS=str(weights), COG_MAX_CONCURRENCY=MAX_CONCURRENCY)
        # coglet starts its worker with `python` from PATH: make that this interpreter (the venv's).
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.log = log_path.open("wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cog.server.http", "--host", "127.0.0.1"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.session = requests.Session()

    def health(self) -> dict:
        """GET /health-check."""
        return requests.get(f"{self.url}/health-check", timeout=5).json()

    def wait_until(self, statuses: set[str], timeout: float = 60.0) -> dict:
        """Poll /health-check until its status is one of `statuses`; return it. Raises if the server
        exits first (unless a failed status is awaited) or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None and not statuses & {"SETUP_FAILED", "DEFUNCT"}:
                raise RuntimeError(f"the Cog server exited with {self.process.returncode}:\n{self.logs()}")
            try:
                health = self.health()
                if health.get("status") == "READY" and not self.schema_checked:
                    self.check_schema()
                if health.get("status") in statuses:
                    return health
            except requests.ConnectionError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"the Cog server was not in {statuses} after {timeout} s:\n{self.logs()}")

    def check_schema(self) -> None:
        """Raise unless the ready server serves the committed schema at /openapi.json (so it validates with it)."""
        served = requests.get(f"{self.url}/openapi.json", timeout=5)
        if served.status_code != 200 or served.json() != self.schema:
            raise RuntimeError(f"the Cog server does not serve {SCHEMA_PATH} (HTTP {served.status_code}):\n{self.logs()}")
        self.schema_checked = True

    def post(self, inputs: dict, session: requests.Session | None = None, timeout: float = 120.0) -> requests.Response:
        """One POST /predictions, no retry."""
        return (session or self.session).post(f"{self.url}/predictions", json={"input": inputs}, timeout=timeout)

    def predict(self, inputs: dict, timeout: float = 60.0) -> requests.Response:
        """POST /predictions, retrying while the server answers 409 (its slots are busy)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.post(inputs, timeout=timeout)
            if response.status_code != 409 or time.monotonic() > deadline:
                return response
            time.sleep(0.01)

    def rss_by_process(self) -> dict[str, float]:
        """Resident memory (VmRSS, MB) of the server and every process below it, keyed "pid name"."""
        return {f"{pid} {name}": rss for pid, name, rss in process_tree_rss(self.process.pid)}

    def logs(self) -> str:
        """Everything the server has written so far."""
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate the server (and so its worker)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def process_tree_rss(root: int) -> list[tuple[int, str, float]]:
    """(pid, command name, VmRSS in MB) for `root` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        queue.extend(children.get(pid, []))
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss_kb = int(fields.get("VmRSS", "0 kB").split()[0])
        found.append((pid, fields.get("Name", "?").strip(), rss_kb / 1024))
    return found
