"""script/benchmark runs end to end on a tiny setting (timings are its job, not the tests')."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO, SHARED, TEST_PACK


def test_benchmark_runs_every_measurement_and_writes_json(tmp_path):
    report_path = tmp_path / "benchmark.json"
    completed = subprocess.run(
        [str(REPO / "script" / "benchmark"), "--weights", str(TEST_PACK), "--runs", "2", "--warmup", "1",
         "--json", str(report_path)],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, FACEVERIFY_PYTHON=sys.executable, FACEVERIFY_SHARED=str(SHARED)),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(report_path.read_text())
    names = list(report["scenarios"])
    assert len(names) == 5
    for figures in report["scenarios"].values():
        assert set(figures) == {"this_model", "floor", "original"}
        assert figures["this_model"]["median_ms"] > 0 and figures["floor"]["network_calls"]
        assert set(figures["this_model"]["stages_median_ms"]) == {"decode", "detection", "alignment + embedding", "quality", "comparison"}
    assert set(report["http"]["latency"]) == set(report["scenarios"])
    assert report["http"]["cold_start_to_ready_s"] > 0 and report["http"]["server_rss_mb"] > 100
    assert report["setup_s"] > 0 and report["import_s"] > 0
    assert report["concurrency"]["predictions"] >= 2
    assert [item["scenario"] for item in report["http"]["throughput"]] == [names[0], names[3]]
    assert all(item["two_clients_per_s"] > 0 for item in report["http"]["throughput"])
    assert "this model" in completed.stdout and "original" in completed.stdout
