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
    populations = record["populations"]
    by_name = {entry["name"]: entry for entry in populations}
    assert "LFW View 1" in by_name["lfw-view1"]["source"] and "South Asian" in by_name["south-asian-imfdb"]["population"]
    calibration = verifier.pack.calibration
    for entry, loaded in zip(populations, calibration.populations, strict=True):
        assert entry["population"].strip() and entry["source"].strip()
        assert entry["impostor_pairs"] >= 30_000 and entry["genuine_pairs"] > 0 and entry["images"] > entry["people"] > 0
        rows = entry["table"]
        assert all(row["fmr_upper"] >= entry["floor"] > 0 and row["fmr"] <= row["fmr_upper"] for row in rows)
        at = record["at_default"]["populations"][entry["name"]]
        assert at["threshold"] == record["default_threshold"] and at["fmr_upper"] <= 1e-4
        # the rate a prediction carries is never below the floor of any population, however high the similarity
        assert min(loaded.false_match_rate(s / 1000) for s in range(-1000, 1001)) == loaded.floor == entry["floor"]
    # the default is the LOWEST threshold meeting the target in every population at once
    below = [row["threshold"] for row in populations[0]["table"] if 0 <= row["threshold"] < record["default_threshold"]]
    assert all(max(entry["table"][index]["fmr_upper"] for entry in populations) > 1e-4
               for index, row in enumerate(populations[0]["table"]) if row["threshold"] in below)
    assert min(calibration.false_match_rate(s / 1000) for s in range(-1000, 1001)) == max(p.floor for p in calibration.populations)


def test_two_populations_the_worse_sets_the_default_and_the_rate(pack_copy, verifier):
    """The shipped calibration's LFW population alone, then with a second population made from it
    whose bounds are those of a threshold 0.05 higher (a harder population): loaded with the real
    pack, the default and every prediction's rate follow the harder one."""
    from faceverify_tools.evaluation import calibrate

    shipped = json.loads((SHIPPED / "scrfd2.5g-sface.json").read_text())
    lfw = next(entry for entry in shipped["populations"] if entry["name"] == "lfw-view1")
    shift = 10  # grid steps of 0.005
    rows = lfw["table"]
    harder = dict(lfw, name="harder", population="a population whose impostors score 0.05 higher",
                  table=[dict(row, **{key: rows[max(index - shift, 0)][key] for key in ("impostors_at_or_above", "fmr", "fmr_upper")})
                         for index, row in enumerate(rows)])
    alone = calibrate.calibration_record([lfw], shipped["model_id"], verifier.pack.sha256, 1e-4, date="2026-12-03")
    both = calibrate.calibration_record([lfw, harder], shipped["model_id"], verifier.pack.sha256, 1e-4, date="2026-12-03")
    assert both["default_threshold"] == round(alone["default_threshold"] + 0.05, 3)
    (pack_copy / "calibration.json").write_text(calibrate.calibration_json(both))
    loaded = FaceVerifier.load(pack_copy)
    assert loaded.default_threshold == both["default_threshold"]
    result = loaded.verify(case("single-face/obama.jpg"), case("single-face/biden.jpg"))
    lfw_rate, harder_rate = (population.false_match_rate(result.similarity) for population in loaded.pack.calibration.populations)
    assert result.false_match_rate == max(lfw_rate, harder_rate) == harder_rate > lfw_rate


def test_a_calibration_without_the_population_field_fails_setup(pack_copy, verifier):
    record = json.loads((SHIPPED / "scrfd2.5g-sface.json").read_text())
    del record["populations"][-1]["population"]
    (pack_copy / "calibration.json").write_text(json.dumps(record))
    error = load_error(pack_copy)
    assert "calibration.json" in error and "has no population" in error and "whom it represents" in error
    del record["populations"]
    (pack_copy / "calibration.json").write_text(json.dumps(record))
    assert "has no populations field" in load_error(pack_copy)


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
    record = {"sha256": verifier.pack.sha256, "default_threshold": 0.5, "method": "test", "source": "test", "populations": []}
    (pack_copy / "calibration.json").write_text(json.dumps(record))
    loaded = FaceVerifier.load(pack_copy)
    assert loaded.default_threshold == 0.5
    # a calibration without a measured population gives no false match rate
    assert loaded.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg")).false_match_rate is None


@pytest.mark.parametrize("table, message", [
    ([{"threshold": 0.3, "fmr": 0.0, "fnmr": 0.01}], "fmr_upper"),  # the format before the upper bound
    ([{"threshold": 0.3, "fmr": 0.0, "fmr_upper": 0.0, "fnmr": 0.01}], "never shows a false match rate of 0"),
])
def test_malformed_calibration_in_the_pack_folder_fails_setup(pack_copy, verifier, table, message):
    entry = {"name": "p", "source": "s", "population": "whom", "impostor_pairs": 1600, "floor": 1e-5, "table": table}
    record = {"sha256": verifier.pack.sha256, "default_threshold": 0.5, "populations": [entry]}
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
