"""script/measure-kyc-checks, the command behind docs/kyc-checks.md, on a few real LFW View 1 pairs:
every figure it reports for the two KYC checks, and the sweeps the thresholds were chosen from."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO, TEST_PACK
from faceverify_tools.measure_kyc_checks import CARD_REPLAYS, MARGIN_SWEEP, REPLAYS, SECOND_FACE_SIZES

PAIRS = 3
"""Same-person and different-person pairs of View 1 to run (the command's --limit)."""


def test_the_command_reports_every_figure(tmp_path, verifier):
    completed = subprocess.run([str(REPO / "script" / "measure-kyc-checks"), "--limit", str(PAIRS), "--workers", "1",
                                "--weights", str(TEST_PACK), "--out", str(tmp_path)],
                               check=False, capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, FACEVERIFY_PYTHON=sys.executable))
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["genuine_pairs"] == report["impostor_pairs"] == PAIRS and report["threshold"] == verifier.default_threshold
    assert not os.path.isabs(report["weights"]) and not any(os.path.isabs(path) for path in report["pairs_files"])

    detection = report["same_photo_detection"]
    assert set(detection) == set(REPLAYS) | set(CARD_REPLAYS)
    assert detection["copy"]["flagged"] == {"count": PAIRS, "total": PAIRS, "rate": 1.0, "lower_95": detection["copy"]["flagged"]["lower_95"]}
    assert 0 < detection["copy"]["flagged"]["lower_95"] < 1, "a finite sample never shows 100%"
    assert detection["copy"]["verified"]["count"] == 0 and detection["copy"]["verified"]["upper_95"] > 0
    for row in report["same_photo_false_alarms"].values():
        assert row["total"] >= PAIRS - 1 and row["upper_95"] > 0

    second = report["second_face"]["by_size"]
    assert set(second) == {str(size) for size in SECOND_FACE_SIZES}
    for row in second.values():
        assert row["fnmr"]["total"] >= PAIRS - 1 and set(row["by_side"]) == {"left", "right"}
    assert set(report["sweep_ambiguity_margin"]) == {str(margin) for margin in MARGIN_SWEEP}
    assert "image2_same_photo, detection" in completed.stdout and "someone else in the picture" in completed.stdout
