"""The evaluation tool: metrics on known scores, synthetic ID cards, calibration files, and the
command on a small real pairs file (real images, real model pack, real worker processes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import LFW, REPO, TEST_PACK, case
from faceverify.calibration import Calibration, RatePoint, parse_calibration
from faceverify.errors import ModelPackError
from faceverify_tools.evaluation import metrics
from faceverify_tools.evaluation.idcards import make_id_card

# --- metrics, on scores whose answers can be worked out by hand ---------------------------------

SCORES = np.array([0.9, 0.8, 0.7, 0.35, 0.6, 0.3, 0.2, 0.1])
GENUINE = np.array([True, True, True, True, False, False, False, False])


def test_rates_count_impostors_at_or_above_and_genuine_below():
    rates = metrics.rates_at(SCORES, GENUINE, 0.6)
    assert (rates.false_matches, rates.false_non_matches) == (1, 1)
    assert rates.fmr == rates.fnmr == 0.25


def test_best_threshold_separates_when_it_can():
    separable = np.array([0.9, 0.8, 0.2, 0.1])
    labels = np.array([True, True, False, False])
    threshold = metrics.best_threshold(separable, labels)
    assert 0.2 < threshold < 0.8


def test_ten_fold_tests_each_fold_on_a_threshold_from_the_others():
    rng = np.random.default_rng(0)
    genuine = np.tile([True, False], 50)
    scores = np.where(genuine, rng.normal(0.6, 0.1, 100), rng.normal(0.1, 0.1, 100))
    scores[0] = -0.5  # one genuine pair far below every impostor: no threshold can save it
    folds = metrics.ten_fold_accuracy(scores, genuine, 10)
    assert len(folds) == 10
    assert folds[0].accuracy <= 0.9 and all(fold.accuracy == 1.0 for fold in folds[1:])


def test_tar_at_fmr_lets_through_only_the_allowed_impostors():
    point = metrics.tar_at_fmr(SCORES, GENUINE, 0.25)  # 1 of 4 impostors may pass
    assert point.fmr == 0.25 and point.tar == 1.0 and 0.3 < point.threshold <= 0.35
    strict = metrics.tar_at_fmr(SCORES, GENUINE, 0.0)
    assert strict.fmr == 0.0 and strict.tar == 0.75 and strict.threshold > 0.6


def test_equal_error_rate_where_the_rates_cross():
    eer, threshold = metrics.equal_error_rate(SCORES, GENUINE)
    assert eer == 0.25 and threshold == 0.6


def test_failed_pairs_never_match():
    scores = np.array([metrics.FAILED_SCORE, 0.5])
    assert metrics.rates_at(scores, np.array([True, False]), -1.0).false_non_matches == 1


def test_threshold_for_fmr_is_the_lowest_grid_point_meeting_it():
    assert metrics.threshold_for_fmr(SCORES, GENUINE, 0.0) == 0.61
    assert metrics.threshold_for_fmr(SCORES, GENUINE, 0.25) == 0.31


# --- calibration lookup -------------------------------------------------------------------------

CALIBRATION = Calibration(0.4, "m", "s", (RatePoint(0.3, 0.02, 0.001), RatePoint(0.4, 0.001, 0.01), RatePoint(0.5, 0.0, 0.05)))


@pytest.mark.parametrize("similarity, fmr", [(0.45, 0.001), (0.4, 0.001), (0.3999, 0.02), (0.9, 0.0), (0.1, 0.02)])
def test_false_match_rate_reads_the_grid_point_at_or_below(similarity, fmr):
    assert CALIBRATION.false_match_rate(similarity) == fmr


def test_calibration_without_a_table_has_no_rate():
    assert Calibration(0.45, "m", "s").false_match_rate(0.7) is None


def test_malformed_calibration_tables_are_refused():
    rising_fmr = {"default_threshold": 0.4, "table": [{"threshold": 0.3, "fmr": 0.1, "fnmr": 0}, {"threshold": 0.4, "fmr": 0.2, "fnmr": 0}]}
    with pytest.raises(ModelPackError, match="must rise"):
        parse_calibration(rising_fmr, Path("x.json"))
    with pytest.raises(ModelPackError, match="malformed table"):
        parse_calibration({"default_threshold": 0.4, "table": [{"threshold": 0.3}]}, Path("x.json"))


def test_predictions_carry_the_shipped_calibrations_false_match_rate(verifier):
    same = verifier.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg"))
    different = verifier.verify(case("single-face/obama.jpg"), case("single-face/biden.jpg"))
    assert same.false_match_rate == verifier.pack.calibration.false_match_rate(same.similarity)
    assert different.false_match_rate > same.false_match_rate >= 0.0
    failed = verifier.verify(case("single-face/obama.jpg"), case("no-face/dogs.jpg"))
    assert failed.false_match_rate is None


# --- synthetic ID cards -------------------------------------------------------------------------

PHOTO = LFW / "images" / "Abdullah_Gul" / "Abdullah_Gul_0013.jpg"
SAME_PERSON = LFW / "images" / "Abdullah_Gul" / "Abdullah_Gul_0014.jpg"


def test_cards_are_reproducible_jpegs():
    card = make_id_card(Image.open(PHOTO), seed=7)
    assert card == make_id_card(Image.open(PHOTO), seed=7) != make_id_card(Image.open(PHOTO), seed=8)
    assert card[:3] == b"\xff\xd8\xff"


def test_card_portrait_matches_another_photo_of_the_person(verifier):
    card = make_id_card(Image.open(PHOTO), seed=3, greyscale=True, ghost=True)
    result = verifier.verify(card, SAME_PERSON)
    assert result.error_code is None and result.match, result
    assert result.image1.face_count >= 1


def test_ghost_portrait_is_not_the_face_compared(verifier):
    card = make_id_card(Image.open(PHOTO), seed=5, ghost=True)
    found = verifier.find_face(card)
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in found.faces]
    chosen = (found.face.box[2] - found.face.box[0]) * (found.face.box[3] - found.face.box[1])
    assert chosen == max(areas)


# --- the command, on a small real pairs file ----------------------------------------------------

@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """script/evaluate on 12 LFW View 1 pairs plus one pair whose first image has no face."""
    work = tmp_path_factory.mktemp("evaluate")
    images = work / "images"
    lines = (LFW / "pairsDevTest.txt").read_text().splitlines()
    chosen = lines[1:7] + lines[501:507]
    for line in chosen:
        fields = line.split()
        names = [(fields[0], fields[1]), (fields[0], fields[2])] if len(fields) == 3 else [(fields[0], fields[1]), (fields[2], fields[3])]
        for name, number in names:
            target = images / name / f"{name}_{int(number):04d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(LFW / "images" / name / target.name, target)
    dog = images / "Not_A_Face" / "Not_A_Face_0001.jpg"
    dog.parent.mkdir()
    shutil.copy(case("no-face/dogs.jpg"), dog)
    pairs = work / "pairs.txt"
    pairs.write_text("\n".join(["1\t13", *chosen, "Not_A_Face\t1\tAbdullah_Gul\t13"]) + "\n")
    out = work / "out"
    completed = subprocess.run(
        [str(REPO / "script" / "evaluate"), "--pairs", str(pairs), "--images", str(images), "--weights", str(TEST_PACK),
         "--cards", "--documents", str(case("id-documents/0_pass-lva.jpg").parent), "--out", str(out),
         "--write-calibration", str(work / "calibration.json"), "--folds", "2", "--workers", "2", "--no-progress"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, FACEVERIFY_PYTHON=sys.executable),
    )
    assert completed.returncode == 0, completed.stderr
    return work, out, completed.stdout


def test_command_reports_every_figure(small_run):
    _, out, stdout = small_run
    report = json.loads((out / "report.json").read_text())
    photo = report["sets"]["photo vs photo"]
    assert (photo["pairs"], photo["genuine_pairs"], photo["impostor_pairs"]) == (13, 6, 7)
    assert photo["failed_pairs"] == 1 and photo["failures"] == {"image1_no_face": 1}
    assert photo["failed_images"] == ["photo:Not_A_Face_0001.jpg"]
    assert photo["off_centre_images"] == []  # every LFW subject is centred, and so is the face chosen
    assert len(photo["ten_fold_accuracy"]["folds"]) == 2
    assert [p["target_fmr"] for p in photo["tar_at_fmr"]] == [0.01, 0.001]
    assert 0.0 <= photo["eer"] <= 0.5
    assert photo["at_default_threshold"]["threshold"] == report["default_threshold"] == 0.38
    assert len(photo["table"]) == 201
    assert "ID card vs photo" in report["sets"] and "10-fold accuracy" in stdout


def test_command_checks_documents(small_run):
    _, out, _ = small_run
    documents = {row["file"]: row for row in json.loads((out / "report.json").read_text())["documents"]}
    assert documents["53_id-d.jpg"]["outcome"] == "no_face"
    assert all(row["chosen_is_largest"] for row in documents.values() if row["faces"])
    assert documents["100_pass-cze.jpg"]["faces"] >= 1


def test_command_draws_png_plots(small_run):
    _, out, _ = small_run
    for name in ("roc.png", "scores.png"):
        with Image.open(out / name) as plot:
            assert plot.format == "PNG" and plot.width > 300


def test_written_calibration_loads_and_sets_the_default(small_run, tmp_path):
    work, _, _ = small_run
    record = json.loads((work / "calibration.json").read_text())
    calibration = parse_calibration(record, work / "calibration.json")
    assert record["impostor_pairs"] == 7 and record["target_fmr"] == 1e-3
    assert len(calibration.table) == 201 and calibration.false_match_rate(1.0) == 0.0
    assert calibration.false_match_rate(calibration.default_threshold) == 0.0  # FMR <= 1e-3 with 7 impostors
