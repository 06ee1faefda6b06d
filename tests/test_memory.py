"""Peak server memory under the heaviest accepted image stays bounded (script/measure-memory, small setting).

The full per-format measurement is a command (docs/operations.md, "Memory"). Here the costliest
format to decode (a 49-megapixel WebP with transparency) and the largest accepted file go through
the real Cog server, two predictions at once, each with two such images, sent as URLs as on
Replicate: the server's whole process tree must stay under 1.5 GB. Without the decode budget the
WebP case alone took the server past 3 GB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO, TEST_PACK


def test_the_server_stays_under_its_memory_bound_for_the_worst_images(tmp_path):
    report_path = tmp_path / "memory.json"
    completed = subprocess.run(
        [str(REPO / "script" / "measure-memory"), "--formats", "WEBP,PNG-25MB", "--rounds", "1",
         "--weights", str(TEST_PACK), "--limit-mb", "1536", "--json", str(report_path)],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, FACEVERIFY_PYTHON=sys.executable),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["passed"] and [result["format"] for result in report["results"]] == ["WEBP", "PNG-25MB"]
    for result in report["results"]:
        assert result["answers"] == ["image1_no_face"], result  # decoded whole, then searched: no face
        assert 300 < result["tree_peak_mb"] < 1536, result
