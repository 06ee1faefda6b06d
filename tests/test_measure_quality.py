"""script/measure-quality, the command behind docs/quality.md, on a few real LFW View 1 pairs: every
figure it reports (false alarms, detection by severity, error against discard, the embedding norm),
its plots, and its listing of the cases folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, TEST_PACK
from faceverify.quality import QualityIssue
from faceverify_tools.degrade import DEGRADATIONS

PAIRS = 2
"""Same-person and different-person pairs of View 1 to run (the command's --limit-pairs)."""


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "script" / "measure-quality"), *args, "--weights", str(TEST_PACK)],
                          check=False, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, FACEVERIFY_PYTHON=sys.executable))


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("measure-quality")
    completed = run("--limit-pairs", str(PAIRS), "--workers", "2", "--out", str(out), "--no-progress")
    assert completed.returncode == 0, completed.stderr
    return json.loads((out / "report.json").read_text()), out, completed.stdout


def test_reports_false_alarms_for_every_issue_and_role(small_run):
    report, _, stdout = small_run
    shipped = json.loads((REPO / "faceverify" / "calibrations" / "scrfd2.5g-sface.json").read_text())["default_threshold"]
    assert report["same_person_pairs"] == PAIRS and report["default_threshold"] == shipped
    assert report["rules"]["reference"]["max_second_face"] is None
    assert not os.path.isabs(report["model_pack"]) and not any(os.path.isabs(path) for path in report["pairs_files"])
    for name in ("photos as probes", "photos as references", "cards as references"):
        row = report["false_alarms"][name]
        assert set(row["rates"]) == {issue.value for issue in QualityIssue}
        assert row["with_a_face"] >= PAIRS and all(0 <= rate <= 1 for rate in row["rates"].values())
        assert row["counts"] == {issue: round(rate * row["with_a_face"]) for issue, rate in row["rates"].items()}
        assert all(row["rates"][issue] < bound <= 1 for issue, bound in row["upper_bounds"].items())
    assert "false alarms" in stdout and "FNMR doubles at" in stdout


def test_reports_detection_at_every_severity(small_run):
    report, _, _ = small_run
    assert list(report["detection"]) == [degradation.name for degradation in DEGRADATIONS]
    for degradation in DEGRADATIONS:
        entry = report["detection"][degradation.name]
        assert entry["issue"] == degradation.issue.value
        assert [row["severity"] for row in entry["severities"]] == list(degradation.severities)
        assert all(row["probes"] == PAIRS for row in entry["severities"])
    # The harshest blur and darkening leave a face that raises its issue on every probe compared.
    for name in ("gaussian blur", "darkening"):
        harshest = report["detection"][name]["severities"][-1]
        assert harshest["issue_fires"] == 1.0, (name, harshest)


def test_reports_error_against_discard_and_plots_it(small_run):
    report, out, _ = small_run
    edc = report["edc"]
    assert list(edc) == ["clean photo vs photo", "clean card vs photo", "degraded probes"]
    assert edc["clean photo vs photo"]["pairs"] == PAIRS
    assert edc["degraded probes"]["pairs"] == PAIRS * sum(len(d.severities) for d in DEGRADATIONS)
    for entry in edc.values():
        assert [row["discarded"] for row in entry["quality_score"]][:2] == [0.0, 0.01]
        assert entry["curve"]["shares"][0] == 0 and len(entry["curve"]["quality_score"]) == len(entry["curve"]["shares"])
    degraded = edc["degraded probes"]
    # The degraded set holds errors, and dropping the flagged pairs cannot leave more of them.
    assert degraded["quality_score"][0]["fnmr"] > 0
    assert degraded["discard_flagged"]["fnmr_kept"] <= degraded["discard_flagged"]["fnmr_all"]
    assert report["embedding_norm"]["from"] == "1st percentile of these clean photos"
    for name in ("edc.png", "detection.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lists_the_issues_on_the_cases_folder():
    completed = run("--cases")
    assert completed.returncode == 0, completed.stderr
    rows = {line.split()[0]: line for line in completed.stdout.splitlines()}
    assert "multiple_faces" in rows["multi-face/couple.jpg"]
    assert "face_cut_off" in rows["partial-face/obama_partial_face.jpg"]
    assert "no issue" in rows["single-face/obama.jpg"]
    assert rows["id-documents/100_pass-cze.jpg"].split()[1] == "reference"


def test_second_face_control_compares_the_face_with_a_grey_picture():
    completed = run("--second-face-control", "--limit-pairs", "3")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    shipped = json.loads((REPO / "faceverify" / "calibrations" / "scrfd2.5g-sface.json").read_text())["default_threshold"]
    assert lines[0].startswith(f"3 same-person pairs, threshold {shipped}: clean FNMR")
    for size in ("0.7", "0.8"):
        assert any(line.strip().startswith(f"{size} second face   FNMR") for line in lines)
        assert any(line.strip().startswith(f"{size} grey instead  FNMR") for line in lines)
        assert any(line.strip().startswith(f"{size} pairs the second face turns into false non-matches:") for line in lines)
