"""The evaluation tool: metrics on known scores, the FMR upper bound and all-vs-all calibration,
synthetic ID cards, calibration files, and the command on a small real pairs file (real images,
real model pack, real worker processes)."""

from __future__ import annotations

import itertools
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
from faceverify.calibration import Calibration, Population, RatePoint, parse_calibration
from faceverify.compare import cosine_similarity
from faceverify.errors import ImageError, ModelPackError
from faceverify_tools.evaluation import calibrate, metrics
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


# --- the FMR upper bound, on counts worked out by hand ------------------------------------------

def test_zero_false_matches_bound_the_rate_at_about_three_over_n():
    assert calibrate.fmr_upper_bound(0, 30000) == pytest.approx(1 - 0.05 ** (1 / 30000), rel=1e-9)
    assert 0.99e-4 < calibrate.fmr_upper_bound(0, 30000) < 1e-4  # about 3 / 30000, never 0
    assert calibrate.fmr_upper_bound(0, 1600) == pytest.approx(0.00187, abs=1e-5)  # the old calibration's 0 of 1600
    assert calibrate.fmr_upper_bound(1, 1000) == pytest.approx(0.00474, abs=1e-5)  # one-sided Clopper-Pearson table value
    assert calibrate.fmr_upper_bound(5, 5) == 1.0


def test_pairs_needed_for_a_target_is_where_zero_errors_first_reach_it():
    needed = calibrate.pairs_needed(1e-4)
    assert 29_000 < needed < 31_000
    assert calibrate.fmr_upper_bound(0, needed) <= 1e-4 < calibrate.fmr_upper_bound(0, needed - 1)


def test_stored_bounds_are_rounded_up_never_down():
    for value in (9.985e-05, 0.0018705809, 0.123456, 2.0001e-7):
        stored = calibrate.ceil_significant(value)
        assert value <= stored <= value * 1.01


def counts(impostors_at_or_above: list[int], genuine_below: list[int], impostor_pairs: int, genuine_pairs: int = 100):
    """PairCounts over the real GRID: the given counts at thresholds 0.0, 0.005, ..., then 0 impostors above."""
    start = int(np.searchsorted(calibrate.GRID, 0.0))
    above = np.full(len(calibrate.GRID), impostor_pairs)
    above[start:] = 0
    above[start:start + len(impostors_at_or_above)] = impostors_at_or_above
    below = np.zeros(len(calibrate.GRID), dtype=int)
    below[start:start + len(genuine_below)] = genuine_below
    below[start + len(genuine_below):] = genuine_below[-1]
    return calibrate.PairCounts(above, below, impostor_pairs, genuine_pairs, images=300, people=250, failed_images=0)


def population(pair_counts, name="p"):
    return calibrate.population_record(pair_counts, name, source="s", population="whom", date="2026-01-01")


def record(pair_counts, target=1e-4, **options):
    return calibrate.calibration_record([population(pair_counts)], "pack", {"detection": "d", "recognition": "r"}, target,
                                        date="2026-01-01", **options)


def test_default_threshold_is_the_lowest_whose_upper_bound_meets_the_target():
    # 2 million impostors: 400 at or above 0.0, 300 at or above 0.005, 100 at 0.01, none from 0.015
    written = record(counts([400, 300, 100], [1, 2, 3, 5], 2_000_000))
    assert written["default_threshold"] == 0.01  # 300 of 2 million have a bound above 1e-4; 100 give 5.9e-5
    at = written["at_default"]["populations"]["p"]
    assert at["impostors_at_or_above"] == 100 and at["genuine_below"] == 3
    assert at["fmr_upper"] == pytest.approx(5.91e-5, abs=1e-7) and written["target_supported"]
    assert [point["target_fmr"] for point in written["operating_points"]] == [1e-3, 1e-4, 1e-5]
    assert written["operating_points"][0]["threshold"] == 0.0 and written["operating_points"][2]["threshold"] == 0.015
    only = written["populations"][0]
    assert (only["impostor_pairs"], only["images"], only["population"], only["name"]) == (2_000_000, 300, "whom", "p")
    assert min(row["fmr_upper"] for row in only["table"]) == only["floor"] > 0.0
    assert len(calibrate.calibration_json(written)) < 200_000


def test_the_floor_is_the_bound_a_quarter_of_the_pairs_gives_and_no_rate_is_below_it():
    # 0 of 2 million would give 1.5e-6; a quarter of the pairs (half the people) can only check 6e-6
    floor = calibrate.sample_floor(2_000_000)
    assert floor == calibrate.ceil_significant(calibrate.fmr_upper_bound(0, 500_000)) == pytest.approx(6e-6, rel=1e-3)
    assert calibrate.fmr_upper_bound(0, 2_000_000) < floor
    written = record(counts([400, 300, 100], [1, 2, 3, 5], 2_000_000))
    rows = written["populations"][0]["table"]
    assert all(row["fmr_upper"] >= floor for row in rows) and rows[-1]["fmr_upper"] == floor
    calibration = parse_calibration(json.loads(calibrate.calibration_json(written)), Path("x.json"))
    assert min(calibration.false_match_rate(s) for s in np.linspace(-1, 1, 4001)) == floor
    # a hand-edited row below the floor is refused
    written["populations"][0]["table"][-1]["fmr_upper"] = floor / 2
    with pytest.raises(ModelPackError, match="floor"):
        parse_calibration(written, Path("x.json"))


def test_a_target_the_sample_cannot_support_is_refused():
    with pytest.raises(calibrate.UnsupportedTarget, match="cannot support a target FMR of 0.0001.*119824"):
        record(counts([0], [0], 60_000))
    with pytest.raises(calibrate.UnsupportedTarget, match="score 1.0"):  # enough pairs, but impostors at every threshold
        record(counts([50] * 201, [0], 200_000))


def test_the_flag_writes_an_unsupported_target_and_says_so():
    written = record(counts([30, 0], [0, 1], 20_000), allow_unsupported=True)
    assert written["target_supported"] is False and "NOT SUPPORTED" in written["method"]
    assert written["default_threshold"] == 0.005  # the lowest threshold with the smallest bound, the floor
    assert written["at_default"]["populations"]["p"]["fmr_upper"] > 1e-4
    assert parse_calibration(json.loads(calibrate.calibration_json(written)), Path("x.json")).default_threshold == 0.005


def test_two_populations_take_the_worse_for_the_default_and_the_rate():
    easy = population(counts([400, 300, 100], [1, 2, 3, 5], 2_000_000), "easy")  # meets 1e-4 from 0.010
    hard = population(counts([3000, 2000, 1000, 400, 300, 100], [1, 2, 3, 5, 8, 9], 2_000_000), "hard")  # from 0.025
    both = calibrate.calibration_record([easy, hard], "pack", {"detection": "d", "recognition": "r"}, 1e-4, date="2026-01-01")
    assert (easy["operating_points"][1]["threshold"], hard["operating_points"][1]["threshold"]) == (0.01, 0.025)
    assert both["default_threshold"] == 0.025 and set(both["at_default"]["populations"]) == {"easy", "hard"}
    calibration = parse_calibration(json.loads(calibrate.calibration_json(both)), Path("x.json"))
    for similarity in (0.0, 0.012, 0.02, 0.5):
        assert calibration.false_match_rate(similarity) == max(p.false_match_rate(similarity) for p in calibration.populations)
    assert calibration.false_match_rate(0.012) == calibration.populations[1].false_match_rate(0.012) > 1e-4
    # adding a population replaces one of the same name and keeps the others
    assert [p["name"] for p in calibrate.add_population(both, dict(easy, source="again"))] == ["hard", "easy"]
    # a stated default that does not meet the target in every population is refused
    with pytest.raises(ModelPackError, match="population 'hard'"):
        parse_calibration(dict(both, default_threshold=0.01), Path("x.json"))


def test_a_calibration_without_populations_is_refused_clearly():
    with pytest.raises(ModelPackError, match="has no populations field.*whom it represents"):
        parse_calibration({"default_threshold": 0.4, "table": [ROW], "impostor_pairs": 10}, Path("x.json"))
    entry = population(counts([400, 300, 100], [1, 2, 3, 5], 2_000_000))
    del entry["population"]
    with pytest.raises(ModelPackError, match="population 'p'.*has no population"):
        parse_calibration({"default_threshold": 0.4, "populations": [entry]}, Path("x.json"))


def test_all_vs_all_counts_every_pair_of_real_embeddings_once(verifier):
    people = {"Abdullah_Gul": [1, 6, 7], "Aaron_Peirsol": [1, 2], "Colin_Powell": [38], "Tony_Blair": [6, 18]}
    images = [(name, LFW / "images" / name / f"{name}_{number:04d}.jpg") for name, numbers in people.items() for number in numbers]
    images.append(("Tony_Blair", case("no-face/dogs.jpg")))  # a third "Tony Blair" image in which no face is found
    names, embeddings, failed = [], [], []
    for name, path in images:
        try:
            found = verifier.find_face(path)
        except ImageError:
            failed.append(name)
            continue
        names.append(name)
        embeddings.append(verifier.embed([found])[0])
    embeddings = np.array(embeddings)
    assert failed == ["Tony_Blair"]
    result = calibrate.count_all_vs_all(embeddings, names, failed_people=failed, block=3)
    # 8 images with a face: 28 pairs, of which 3 + 1 + 1 = 5 genuine; the failed image adds 2 genuine non-matches
    assert (result.impostor_pairs, result.genuine_pairs, result.images, result.people) == (23, 7, 9, 4)
    scores = {(i, j): cosine_similarity(embeddings[i], embeddings[j]) for i in range(8) for j in range(i + 1, 8)}
    for index, threshold in enumerate(calibrate.GRID):
        impostors = sum(score >= threshold for (i, j), score in scores.items() if names[i] != names[j])
        genuine = sum(score < threshold for (i, j), score in scores.items() if names[i] == names[j]) + 2
        assert (result.impostors_at_or_above[index], result.genuine_below[index]) == (impostors, genuine), threshold
    assert result.genuine_below[0] == 2 and result.impostors_at_or_above[-1] == 0  # Tony Blair's third image never matches
    # within and between groups, with one impostor pair left out and the tail kept
    groups = {"Abdullah_Gul": "M", "Aaron_Peirsol": "M", "Colin_Powell": "M", "Tony_Blair": "X"}
    dropped = (0, 3)  # Abdullah_Gul 1 and Aaron_Peirsol 1
    split = calibrate.count_all_vs_all(embeddings, names, failed_people=failed, block=3, groups=groups, excluded=[dropped],
                                       tail_from=-1.0)
    assert (split.impostor_pairs, split.excluded_pairs) == (22, 1)
    assert {label: group.impostor_pairs for label, group in split.groups.items()} == {"M": 10, "M-X": 12, "X": 0}
    assert (split.groups["M"].genuine_pairs, split.groups["X"].genuine_pairs) == (4, 3)  # Tony Blair: 1 + 2 failed
    assert sorted(zip(split.tail[0].tolist(), split.tail[1].tolist())) == sorted(
        (i, j) for (i, j) in scores if names[i] != names[j] and (i, j) != dropped)
    for index, threshold in enumerate(calibrate.GRID):
        m = sum(score >= threshold for (i, j), score in scores.items()
                if names[i] != names[j] and (i, j) != dropped and "Tony_Blair" not in (names[i], names[j]))
        assert split.groups["M"].impostors_at_or_above[index] == m


# --- calibration lookup -------------------------------------------------------------------------

CALIBRATION = Calibration(0.4, "m", "s", (Population("p", "s", "whom", (
    RatePoint(0.3, 0.02, 0.021, 0.001), RatePoint(0.4, 0.001, 0.0012, 0.01), RatePoint(0.5, 0.0, 0.0001, 0.05)), 30000, 1e-5),))


@pytest.mark.parametrize("similarity, fmr", [(0.45, 0.0012), (0.4, 0.0012), (0.3999, 0.021), (0.9, 0.0001), (0.3, 0.021), (0.1, 1.0)])
def test_false_match_rate_is_the_upper_bound_at_the_grid_point_at_or_below(similarity, fmr):
    assert CALIBRATION.false_match_rate(similarity) == fmr


def test_calibration_without_a_population_has_no_rate():
    assert Calibration(0.45, "m", "s").false_match_rate(0.7) is None
    assert parse_calibration({"default_threshold": 0.45, "populations": []}, Path("x.json")).false_match_rate(0.7) is None


ROW = {"threshold": 0.3, "impostors_at_or_above": 1, "genuine_below": 0, "fmr": 0.1, "fmr_upper": 0.2, "fnmr": 0.0}


@pytest.mark.parametrize("table, message", [
    ([{"threshold": 0.3, "fmr": 0.1, "fnmr": 0.0}], "fmr_upper"),  # a file from before the upper bound
    ([{**ROW, "fmr_upper": "0.2"}], "malformed table"),
    ([{**ROW, "fmr": 0.0, "fmr_upper": 0.0}], "never shows a false match rate of 0"),
    ([{**ROW, "fmr": 0.3}], "fmr <= fmr_upper"),
    ([ROW, {**ROW, "threshold": 0.4, "fmr_upper": 0.3}], "must rise and fmr_upper must not"),
    ([ROW, {**ROW, "threshold": 0.3}], "must rise"),
    ({"threshold": 0.3}, "list of rows"),
    ([], "non-empty list of rows"),
])
def test_malformed_calibration_tables_are_refused(table, message):
    entry = {"name": "p", "source": "s", "population": "whom", "impostor_pairs": 10, "floor": 0.01, "table": table}
    with pytest.raises(ModelPackError, match=message):
        parse_calibration({"default_threshold": 0.4, "populations": [entry]}, Path("x.json"))


def test_a_table_needs_its_impostor_count():
    entry = {"name": "p", "source": "s", "population": "whom", "floor": 0.01, "table": [ROW]}
    with pytest.raises(ModelPackError, match="impostor_pairs"):
        parse_calibration({"default_threshold": 0.4, "populations": [entry]}, Path("x.json"))


def test_predictions_carry_the_upper_bound_never_zero(verifier):
    same = verifier.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg"))
    different = verifier.verify(case("single-face/obama.jpg"), case("single-face/biden.jpg"))
    assert same.false_match_rate == verifier.pack.calibration.false_match_rate(same.similarity)
    assert different.false_match_rate > same.false_match_rate > 0.0
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
         "--write-calibration", str(work / "calibration.json"), "--allow-unsupported-target", "--population", "test people",
         "--folds", "2", "--workers", "2", "--no-progress"],
        check=False, capture_output=True, text=True, timeout=600, env=dict(os.environ, FACEVERIFY_PYTHON=sys.executable),
    )
    assert completed.returncode == 0, completed.stderr
    return work, out, completed.stdout


def shipped_default() -> float:
    return json.loads((REPO / "faceverify" / "calibrations" / "scrfd2.5g-sface.json").read_text())["default_threshold"]


def test_command_reports_every_figure(small_run):
    _, out, stdout = small_run
    report = json.loads((out / "report.json").read_text())
    photo = report["sets"]["photo vs photo"]
    assert (photo["pairs"], photo["genuine_pairs"], photo["impostor_pairs"]) == (13, 6, 7)
    assert photo["failed_pairs"] == 1 and photo["failures"] == {"image1_no_face": 1}
    assert photo["failed_images"] == ["photo:Not_A_Face_0001.jpg"]
    assert photo["off_centre_images"] == []  # every LFW subject is centred, and so is the face chosen
    assert len(photo["ten_fold_accuracy"]["folds"]) == 2
    assert [p["target_fmr"] for p in photo["tar_at_fmr"]] == [0.01, 0.001, 0.0001]
    assert [p["impostors_allowed"] for p in photo["tar_at_fmr"]] == [0, 0, 0]  # 7 impostors cannot resolve these rates
    assert 0.0 <= photo["eer"] <= 0.5
    at = photo["at_default_threshold"]
    assert at["threshold"] == report["default_threshold"] == shipped_default()
    assert at["fmr_upper"] == pytest.approx(calibrate.fmr_upper_bound(at["false_matches"], 7)) and at["fmr_upper"] > 0.2
    assert len(photo["table"]) == 201
    assert "ID card vs photo" in report["sets"] and "10-fold accuracy" in stdout
    assert "TAR at FMR 0.0001" in stdout and "95% upper bound" in stdout and "TARGET NOT SUPPORTED" in stdout
    # Each quality issue's rate: on the first images by the reference's rules, the second by the probe's.
    quality = photo["quality_issues"]
    assert set(quality) == {"references", "probes"} and quality["probes"]["images"] >= 10
    assert set(quality["probes"]) == {"images", "any", "face_too_small", "face_cut_off", "head_turned", "blurry",
                                      "too_dark", "overexposed", "multiple_faces", "upper_bounds"}
    # A share from a sample comes with its bound, which is never 0.
    assert all(0 < bound <= 1 and bound > quality["probes"][issue] for issue, bound in quality["probes"]["upper_bounds"].items())
    assert report["sets"]["ID card vs photo"]["quality_issues"]["references"]["multiple_faces"] == 0.0
    assert "quality issues (photo vs photo)" in stdout


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


def test_written_calibration_counts_all_vs_all_and_records_the_unsupported_target(small_run):
    work, out, _ = small_run
    record = json.loads((work / "calibration.json").read_text())
    lines = (work / "pairs.txt").read_text().splitlines()[1:]
    keys = set()
    for fields in (line.split() for line in lines):
        keys |= {(fields[0], fields[1]), (fields[0], fields[2])} if len(fields) == 3 else {(fields[0], fields[1]), (fields[2], fields[3])}
    faces = [name for name, _ in keys if name != "Not_A_Face"]
    impostors = sum(a != b for a, b in itertools.combinations(faces, 2))
    (population,) = record["populations"]
    assert (population["images"], population["failed_images"], population["impostor_pairs"]) == (len(keys), 1, impostors)
    assert population["genuine_pairs"] == sum(a == b for a, b in itertools.combinations(faces, 2)) >= 6
    assert population["population"] == "test people" and population["name"] == "population"
    assert record["target_fmr"] == 1e-4 and record["target_supported"] is False
    at = record["at_default"]["populations"]["population"]
    assert at["fmr_upper"] > 1e-4 and record["default_threshold"] == at["threshold"]
    assert [point["threshold"] for point in record["operating_points"]] == [None, None, None]
    calibration = parse_calibration(record, work / "calibration.json")
    assert len(calibration.populations[0].table) == len(calibrate.GRID) == 401
    # never below the floor: no false match in a quarter of the pairs
    floor = calibrate.fmr_upper_bound(0, impostors // 4)
    assert min(calibration.false_match_rate(s) for s in np.linspace(-1, 1, 2001)) >= floor > 1 - 0.05 ** (1 / impostors)
    assert json.loads((out / "report.json").read_text())["population"]["impostor_pairs"] == impostors


def test_labelled_folder_pads_tight_crops_excludes_pairs_and_adds_a_population(small_run, tmp_path):
    """--labelled on a folder of real images: one tight crop (no face until padded), one excluded
    pair, groups, and the population added to the calibration the pairs run wrote."""
    work, _, _ = small_run
    folder = tmp_path / "people"
    people = ("Abdullah_Gul", "Abdullatif_Sener", "Al_Pacino", "Alan_Greenspan")
    for name in people:
        shutil.copytree(work / "images" / name, folder / name)
    images = sorted(folder.glob("*/*.jpg"))
    tight = folder / "Abdullah_Gul" / "Abdullah_Gul_0016.jpg"
    with Image.open(tight) as photo:  # the face only, no margin: the detector finds none until it is padded
        photo.crop((85, 95, 165, 175)).save(tight)
    exclusions = tmp_path / "exclusions.txt"
    exclusions.write_text(f"# why\n{images[1].parent.name}/{images[1].name} {images[-1].parent.name}/{images[-1].name} a test pair\n")
    groups = tmp_path / "groups.csv"
    groups.write_text("identity,gender\n" + "".join(f"{name},M\n" for name in people))
    calibration = tmp_path / "calibration.json"
    shutil.copy(work / "calibration.json", calibration)
    completed = subprocess.run(
        [str(REPO / "script" / "evaluate"), "--labelled", str(folder), "--groups", str(groups), "--pad-no-face", "0.5",
         "--exclude-pairs", str(exclusions), "--weights", str(TEST_PACK), "--write-calibration", str(calibration),
         "--add-population", "--allow-unsupported-target", "--population-name", "labelled", "--population", "four men",
         "--list-impostors", "3", "--out", str(tmp_path / "out"), "--workers", "2", "--no-progress"],
        check=False, capture_output=True, text=True, timeout=600, env=dict(os.environ, FACEVERIFY_PYTHON=sys.executable),
    )
    assert completed.returncode == 0, completed.stderr
    record = json.loads(calibration.read_text())
    assert [p["name"] for p in record["populations"]] == ["population", "labelled"]
    added = record["populations"][1]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    padded = report["padded_images"]
    assert f"{tight.parent.name}/{tight.name}" in padded and added["padding"].startswith(f"{len(padded)} images")
    assert added["excluded_impostor_pairs"] == 1 and added["exclusions"] == [
        f"{images[1].parent.name}/{images[1].name} {images[-1].parent.name}/{images[-1].name}: a test pair"]
    sizes = [len(list((folder / name).glob("*.jpg"))) for name in people]
    assert added["impostor_pairs"] == (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2 - 1
    assert set(added["groups"]) == {"M"} and added["groups"]["M"]["impostor_pairs"] == added["impostor_pairs"]
    assert record["source"].count(":") >= 2 and added["population"] == "four men"
    listed = [line.split() for line in completed.stdout.splitlines() if line.startswith("  impostor ")]
    assert "highest-scoring impostor pairs (of those scoring 0.3 or more)" in completed.stdout and len(listed) <= 3
    assert all(float(line[1]) >= 0.3 and line[2].split("/")[-2] != line[3].split("/")[-2] for line in listed)
    assert "quality issues" in completed.stdout
    assert parse_calibration(record, calibration).false_match_rate(0.3) == max(
        population.false_match_rate(0.3) for population in parse_calibration(record, calibration).populations)


def test_command_refuses_a_target_its_images_cannot_support(small_run, tmp_path):
    work, _, _ = small_run
    written = tmp_path / "calibration.json"
    completed = subprocess.run(
        [str(REPO / "script" / "evaluate"), "--pairs", str(work / "pairs.txt"), "--images", str(work / "images"),
         "--weights", str(TEST_PACK), "--write-calibration", str(written), "--out", str(tmp_path / "out"), "--no-progress"],
        check=False, capture_output=True, text=True, timeout=120, env=dict(os.environ, FACEVERIFY_PYTHON=sys.executable),
    )
    assert completed.returncode == 2 and not written.exists()
    assert "fewer than the 119824 a target FMR of 0.0001 needs" in completed.stderr
    assert "--allow-unsupported-target" in completed.stderr
