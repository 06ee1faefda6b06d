"""The Next.js integration (integrations/nextjs/) and the Replicate JavaScript client, run from the
one test command: `tsc --noEmit`, then Node's test runner (`npm test`) against the real local Cog
server that this session's `server` fixture started (with the committed schema). The page in a real
browser is tests/test_nextjs_browser.py.

What the Node tests cover (integrations/nextjs/test/):
- replicate-client.test.ts: the Replicate JavaScript client (replicate 1.4.0) `replicate.run()`
  through `baseUrl`: same person, different people, a selfie with no face, a threshold given, a
  bad threshold (the client's ApiError with the server's 422);
- verify-face.test.ts: verifyFace() on the inline path, retries (409, 5xx, dropped connections),
  outputs that do not fit the schema or break the model's contract, and multiple_faces, through a
  fault-injecting proxy in front of the server;
- keep-nothing.test.ts: uploads through a stand-in of Replicate's Files and predictions API in
  front of the server, each deleted whatever the outcome; the timeout's cancel; a deployment;
- transport.test.ts: the inline-or-upload decision, messages, the output check (no server);
- route.test.ts: the App Router route handler with Web Request/Response, and its limits.

script/setup installs the packages with `npm ci` from package-lock.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO, SHARED
from faceverify.errors import ImageProblem

NEXTJS = REPO / "integrations" / "nextjs"


def run(command: list[str], timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    assert shutil.which(command[0]), f"{command[0]} not found: the Next.js tests need Node 20 and npm"
    assert (NEXTJS / "node_modules" / "replicate").is_dir(), "integrations/nextjs/node_modules is missing: run script/setup (npm ci)"
    return subprocess.run(command, check=False, cwd=NEXTJS, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env})


def test_typescript_types_are_generated_from_the_committed_schema():
    completed = run(["node", "scripts/generate-types.mjs", "--check"])
    assert completed.returncode == 0, completed.stderr + "\nrun script/generate-schema"
    generated = (NEXTJS / "lib" / "generated" / "openapi.ts").read_text()
    schema = json.loads((REPO / ".cog" / "openapi_schema.json").read_text())
    for field in schema["components"]["schemas"]["Output"]["properties"]:
        assert re.search(rf"^  {field}\??: ", generated, re.MULTILINE), field


def test_typescript_type_checks():
    completed = run(["npx", "--no-install", "tsc", "--noEmit"])
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def npm_test(server):
    """`npm test` (compile, then `node --test`) against the session's Cog server, once."""
    return run(["npm", "test"], COG_SERVER_URL=server.url, FACEVERIFY_SHARED=str(SHARED))


def test_node_tests_pass_against_the_local_cog_server(npm_test):
    output = npm_test.stdout + npm_test.stderr
    assert npm_test.returncode == 0, output[-12000:]
    counts = {key: int(value) for key, value in re.findall(r"^# (tests|pass|fail|skipped|todo|cancelled) (\d+)$", output, re.MULTILINE)}
    assert counts["fail"] == counts["skipped"] == counts["todo"] == counts["cancelled"] == 0, output[-12000:]
    assert counts["pass"] == counts["tests"] >= 48, counts
    for name in ("same person: match", "a bad threshold: the client throws the server's 422",
                 "transient failures (409, 503, a dropped connection) are retried",
                 "a large image takes the upload path: the client posts it to the Files API",
                 "a selfie with no face: 200, not verified, with the message to show",
                 "fail closed on the contract: outputs that break it are never verified",
                 "multiple_faces in the selfie: refused by default, with its sentence",
                 "keep nothing: uploaded images are deleted once the prediction has succeeded",
                 "a timeout on the model call: its own reason, the prediction cancelled, the upload deleted",
                 "a deployment is called through its own endpoint",
                 "a body over the cap: 413 with its own sentence, the model not called",
                 "authorize(request): its answer stops the request before the model is called"):
        assert re.search(rf"^ok \d+ - {re.escape(name)}$", output, re.MULTILINE), name


def exported_messages(name: str) -> dict:
    """A message table that build/lib/verify-face.js exports, read by Node."""
    script = ("import('./build/lib/verify-face.js').then((m) => console.log(JSON.stringify("
              f"Object.fromEntries(Object.entries(m.{name})))))")
    completed = run(["node", "-e", script])
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_every_image_problem_has_a_message(npm_test):
    """Each ImageProblem of the model has a sentence for both images in verifyFace()."""
    messages = exported_messages("PROBLEM_MESSAGES")
    assert set(messages) == {problem.value for problem in ImageProblem}
    assert all(len(pair) == 2 and all(pair) for pair in messages.values())


def test_every_quality_issue_has_a_message(npm_test):
    """Each QualityIssue of the model has a sentence for both images in verifyFace()."""
    from faceverify.quality import QualityIssue

    messages = exported_messages("QUALITY_MESSAGES")
    assert set(messages) == {issue.value for issue in QualityIssue}
    assert all(len(pair) == 2 and all(pair) for pair in messages.values())
