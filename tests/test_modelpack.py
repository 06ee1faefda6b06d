"""Setup: the model pack is checked before use and never downloaded."""

from __future__ import annotations

import json

import pytest

from conftest import REPO, TEST_PACK, case
from faceverify import FaceVerifier, ModelPackError

SHIPPED = REPO / "faceverify" / "calibrations"


def load_error(path) -> str:
    with pytest.raises(ModelPackError) as raised:
        FaceVerifier.load(path)
    return str(raised.value)


def test_the_test_pack_loads_only_detection_and_recognition(verifier):
    assert verifier.pack.model_id == "scrfd2.5g-sface"
    assert verifier.default_threshold == json.loads((SHIPPED / "scrfd2.5g-sface.json").read_text())["default_threshold"]
    assert set(verifier.pack.sha256) == {"detection", "recognition"}


def test_shipped_test_pack_calibration_shows_its_target_with_its_counts(verifier):
    text = (SHIPPED / "scrfd2.5g-sface.json").read_text()
    record = json.loads(text)
    assert len(text.encode()) < 200_000 and record["sha256"] == verifier.pack.sha256
    assert record["target_fmr"] == 1e-4 and record["confidence"] == 0.95 and record["target_supported"] is True
    assert record["at_default"]["threshold"] == record["default_threshold"] and record["at_default"]["fmr_upper"] <= 1e-4
    assert record["impostor_pairs"] >= 30_000 and record["genuine_pairs"] > 0 and record["images"] > record["people"] > 0
    assert "LFW View 1" in record["source"] and "South Asian" in record["population"]
    rows = record["table"]
    below = [row for row in rows if row["threshold"] < record["default_threshold"]]
    assert all(row["fmr_upper"] > 1e-4 for row in below)  # the default is the LOWEST threshold meeting the target
    assert all(row["fmr_upper"] > 0 and row["fmr"] <= row["fmr_upper"] for row in rows)
    calibration = verifier.pack.calibration
    assert min(calibration.false_match_rate(s / 1000) for s in range(-1000, 1001)) == rows[-1]["fmr_upper"] > 0


def test_buffalo_l_keeps_its_unmeasured_default_and_no_rate():
    from faceverify.calibration import parse_calibration

    path = SHIPPED / "buffalo_l.json"
    calibration = parse_calibration(json.loads(path.read_text()), path)
    assert calibration.default_threshold == 0.45 and calibration.false_match_rate(0.9) is None


def test_missing_folder_is_not_taken_for_a_model_name_to_download(tmp_path):
    message = load_error(tmp_path / "buffalo_l")
    assert "does not exist" in message and "script/download-weights" in message


def test_bare_model_name_is_refused_not_downloaded():
    assert "does not exist" in load_error("buffalo_l")


def test_folder_without_manifest_is_refused(pack_copy):
    (pack_copy / "manifest.json").unlink()
    assert "no manifest.json" in load_error(pack_copy)


@pytest.mark.parametrize("task,file_name", [("detection", "det_2.5g.onnx"), ("recognition", "sface_int8bq.onnx")])
def test_missing_weight_file_is_named(pack_copy, task, file_name):
    (pack_copy / file_name).unlink()
    message = load_error(pack_copy)
    assert file_name in message and "script/download-weights" in message


@pytest.mark.parametrize("file_name", ["det_2.5g.onnx", "sface_int8bq.onnx"])
def test_truncated_weight_file_fails_its_checksum(pack_copy, file_name):
    path = pack_copy / file_name
    path.write_bytes(path.read_bytes()[:100_000])
    message = load_error(pack_copy)
    assert file_name in message and "sha256" in message


def test_tampered_weight_file_fails_its_checksum(pack_copy):
    path = pack_copy / "sface_int8bq.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "sface_int8bq.onnx" in load_error(pack_copy)


def test_manifest_without_sha256_is_refused(pack_copy):
    manifest = json.loads((pack_copy / "manifest.json").read_text())
    del manifest["tasks"]["recognition"]["sha256"]
    (pack_copy / "manifest.json").write_text(json.dumps(manifest))
    assert "no sha256" in load_error(pack_copy)


def test_calibration_in_the_pack_folder_sets_the_default(pack_copy, verifier):
    record = {"sha256": verifier.pack.sha256, "default_threshold": 0.5, "method": "test", "source": "test"}
    (pack_copy / "calibration.json").write_text(json.dumps(record))
    loaded = FaceVerifier.load(pack_copy)
    assert loaded.default_threshold == 0.5
    # a calibration without a measured table gives no false match rate
    assert loaded.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg")).false_match_rate is None


@pytest.mark.parametrize("table, message", [
    ([{"threshold": 0.3, "fmr": 0.0, "fnmr": 0.01}], "fmr_upper"),  # the format before the upper bound
    ([{"threshold": 0.3, "fmr": 0.0, "fmr_upper": 0.0, "fnmr": 0.01}], "never shows a false match rate of 0"),
])
def test_malformed_calibration_in_the_pack_folder_fails_setup(pack_copy, verifier, table, message):
    record = {"sha256": verifier.pack.sha256, "default_threshold": 0.5, "impostor_pairs": 1600, "table": table}
    (pack_copy / "calibration.json").write_text(json.dumps(record))
    error = load_error(pack_copy)
    assert "calibration.json" in error and message in error


def test_pack_without_calibration_needs_an_explicit_threshold(verifier):
    from dataclasses import replace


    uncalibrated = FaceVerifier(replace(verifier.pack, calibration=None))
    with pytest.raises(ValueError, match="no calibrated default threshold"):
        uncalibrated.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg"))
    result = uncalibrated.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg"), 0.5)
    assert result.match is True and result.false_match_rate is None


def test_unknown_pack_has_no_default_threshold(verifier):
    from faceverify.calibration import find_calibration

    assert find_calibration(TEST_PACK, {"detection": "0" * 64, "recognition": "1" * 64}) is None
    assert find_calibration(TEST_PACK, verifier.pack.sha256).default_threshold == verifier.default_threshold
