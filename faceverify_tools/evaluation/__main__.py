"""Measure a model pack's accuracy on a pairs file, and calibrate it on populations of people.

    script/evaluate --pairs PAIRS.txt --images ROOT [--pairs MORE.txt ...] [--weights PACK]
                    [--cards] [--documents DIR] [--held-out-from PAIRS.txt ...] [--also-at T ...] [--out DIR]
                    [CALIBRATION OPTIONS]
    script/evaluate --labelled FOLDER [--groups CSV] [--pad-no-face SHARE] [--weights PACK] [--out DIR]
                    [CALIBRATION OPTIONS]
    CALIBRATION OPTIONS: [--write-calibration FILE [--add-population] [--target-fmr 1e-4]
                          [--allow-unsupported-target]] [--population-name NAME] [--source TEXT]
                         [--population TEXT] [--exclude-pairs FILE] [--list-impostors N] [--coverage-splits 40]

Every image goes once through the predictor's own pipeline (see embedding_run.py). For each set
(photo vs photo; with --cards also synthetic ID card vs photo, the card made from each pair's
first image; with --held-out-from also both on the pairs none of whose people are in those pairs
files) it prints and writes to OUT/report.json: pairs used and failed (with the reason),
10-fold accuracy (mean and standard deviation), TAR and FNMR at FMR 1e-2, 1e-3 and 1e-4, the equal
error rate, FMR (with its 95% upper bound) and FNMR at the pack's default threshold (and at each
--also-at), a threshold -> FMR/FNMR table, and the rate of each quality issue on the first images
(the reference's rules) and the second images (the probe's); and it draws OUT/roc.png and
OUT/scores.png. A pair the model could not compare counts as a non-match.

A population is one sample of people, calibrated all-vs-all (calibrate.py): impostor pairs are
every image against every image of every other person, genuine pairs every two images of one
person. Its images are those the pairs files reference (the pairs themselves only say which
images), or with --labelled every image of FOLDER/<person>/ (then no pairs are scored); --groups
CSV (columns identity and gender) adds FMR and FNMR within and between its groups, --pad-no-face
retries each image without a face inside a grey border SHARE of its longer side wide (for crops cut
too tight), --exclude-pairs drops impostor pairs that are not two people (lines `A/img.jpg
B/img.jpg reason` for one pair of images, `A B reason` for every pair of two people filed under
two names), --list-impostors prints the N highest-scoring impostor pairs to check by eye, and
--coverage-splits N checks the bound on N random halvings of the people. --write-calibration FILE
writes the calibration with this population (named by --population-name); with --add-population,
FILE's populations are kept and this one is added or replaced. The default threshold is the lowest
threshold on a 0.005 grid whose one-sided 95% Clopper-Pearson upper bound on the FMR is at most
--target-fmr in every population. A target a sample cannot support is refused unless
--allow-unsupported-target is given, and the file then records it. Calibrate on LFW View 1
(pairsDevTrain.txt + pairsDevTest.txt), the South Asian set or your own data, never on the pairs
you report on (LFW View 2).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceverify.errors import ImageError, ModelPackError
from faceverify.modelpack import default_pack_path
from faceverify.verifier import FaceVerifier
from faceverify_tools.pairs import Pair, image_path, read_pairs

from . import calibrate, metrics
from .embedding_run import CARD, PADDED, PHOTO, ImageTask, embed_with_padding
from .report import ScoredPairs, format_quality, format_summary, quality_issue_rates, rates_record, score_pairs, summarize

DOCUMENT_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    paragraphs = __doc__.split("\n\n")
    parser = argparse.ArgumentParser(prog="script/evaluate", description=paragraphs[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=next(p for p in paragraphs if p.startswith("A population")))
    parser.add_argument("--pairs", type=Path, action="append", default=[],
                        help="LFW-style pairs file (repeat to pool several, e.g. both View 1 files)")
    parser.add_argument("--images", type=Path, help="image root of the pairs files: ROOT/Name/Name_0001.jpg")
    parser.add_argument("--labelled", type=Path, metavar="FOLDER",
                        help="instead of pairs files, calibrate on every image of FOLDER/<person>/")
    parser.add_argument("--groups", type=Path, metavar="CSV", help="with --labelled: a CSV with columns identity and gender")
    parser.add_argument("--pad-no-face", type=float, metavar="SHARE",
                        help="retry an image without a face inside a grey border SHARE of its longer side wide")
    parser.add_argument("--held-out-from", type=Path, action="append", default=[], metavar="PAIRS",
                        help="also report on the pairs none of whose people appear in this pairs file (repeat)")
    parser.add_argument("--also-at", type=float, action="append", default=[], metavar="T",
                        help="also report FMR and FNMR at this threshold (repeat)")
    parser.add_argument("--weights", type=Path, default=default_pack_path(), help="model pack folder (default: $COG_WEIGHTS or weights/buffalo_l)")
    parser.add_argument("--threshold", type=float, help="threshold to report FMR/FNMR at (default: the pack's)")
    parser.add_argument("--cards", action="store_true", help="also evaluate synthetic ID card vs photo on the same pairs")
    parser.add_argument("--documents", type=Path, help="folder of document images: report the faces found and the one chosen")
    parser.add_argument("--out", type=Path, default=Path("reports/evaluation"), help="folder for report.json and the plots")
    parser.add_argument("--write-calibration", type=Path, metavar="FILE",
                        help="write a calibration file, all-vs-all on the images the pairs files reference")
    parser.add_argument("--target-fmr", type=float, default=1e-4,
                        help="FMR whose 95%% upper bound the calibrated default threshold must meet (default 1e-4)")
    parser.add_argument("--allow-unsupported-target", action="store_true",
                        help="write the calibration even when the sample is too small to show --target-fmr (the file says so)")
    parser.add_argument("--source", help="the calibration data, as the file records it (default: the pairs files and image root)")
    parser.add_argument("--population", default="not described (pass --population)",
                        help="whom the calibration images represent, as the file records it")
    parser.add_argument("--population-name", default="population", help="the population's short name in the file")
    parser.add_argument("--add-population", action="store_true",
                        help="keep the populations of the existing --write-calibration FILE and add (or replace) this one")
    parser.add_argument("--exclude-pairs", type=Path, metavar="FILE", help="impostor pairs to leave out, with the reason")
    parser.add_argument("--list-impostors", type=int, default=0, metavar="N", help="print the N highest-scoring impostor pairs")
    parser.add_argument("--coverage-splits", type=int, default=0, metavar="N",
                        help="check the bound on N random halvings of the population's people (docs/accuracy.md)")
    parser.add_argument("--folds", type=int, default=10, help="folds for the accuracy protocol (default 10)")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if bool(args.labelled) == bool(args.pairs):
        parser.error("give either --pairs (with --images) or --labelled")
    if args.pairs and not args.images:
        parser.error("--pairs needs --images")
    if args.add_population and not (args.write_calibration and args.write_calibration.is_file()):
        parser.error("--add-population needs an existing --write-calibration FILE")
    if not 0.0 < args.target_fmr < 1.0:
        parser.error(f"--target-fmr must be between 0 and 1, got {args.target_fmr:g}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        verifier = FaceVerifier.load(args.weights)
        pairs = [pair for path in args.pairs for pair in read_pairs(path)]
        held_out_from = {name for path in args.held_out_from for pair in read_pairs(path) for name in (pair.first[0], pair.second[0])}
        groups = read_groups(args.groups) if args.groups else None
        exclusions = read_exclusions(args.exclude_pairs) if args.exclude_pairs else []
    except (ModelPackError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pack = verifier.pack
    threshold = args.threshold if args.threshold is not None else verifier.default_threshold

    if args.labelled:
        photo_tasks = {(path.parent.name, path.name): ImageTask(PHOTO, path) for path in sorted(args.labelled.glob("*/*"))
                       if path.suffix.lower() in DOCUMENT_SUFFIXES}
        if groups is not None and (unknown := sorted({name for name, _ in photo_tasks} - set(groups))):
            print(f"error: {args.groups} gives no group for {len(unknown)} people, e.g. {unknown[0]}", file=sys.stderr)
            return 2
    else:
        keys = sorted({key for pair in pairs for key in (pair.first, pair.second)})
        photo_tasks = {key: ImageTask(PHOTO, image_path(args.images, key)) for key in keys}
    if args.write_calibration and not args.allow_unsupported_target:
        possible = all_vs_all_impostor_pairs([name for name, _ in photo_tasks])
        needed = calibrate.sample_needed(args.target_fmr)
        if possible < needed:
            print(f"error: {len(photo_tasks)} images give at most {possible} impostor pairs, fewer than the {needed} a target "
                  f"FMR of {args.target_fmr:g} needs (with no false match in n pairs, the floor, the 95% bound for a quarter of "
                  f"them, is about 12/n); add images or pass --allow-unsupported-target", file=sys.stderr)
            return 2
    missing = [str(task.path) for task in photo_tasks.values() if not task.path.is_file()]
    if missing:
        print(f"error: {len(missing)} images of the pairs are missing under {args.images}, e.g. {missing[0]}", file=sys.stderr)
        return 2
    card_tasks = {pair.first: ImageTask(CARD, photo_tasks[pair.first].path) for pair in pairs} if args.cards else {}
    tasks = list(photo_tasks.values()) + list(dict.fromkeys(card_tasks.values()))
    print(f"{len(pairs)} pairs, {len(tasks)} images, model pack {pack.model_id} ({args.weights})", file=sys.stderr)
    outcomes = embed_with_padding(tasks, args.weights, args.pad_no_face, args.workers, progress=not args.no_progress)

    photos = {key: outcomes[task] for key, task in photo_tasks.items()}
    sets, quality = [], {}
    if pairs:
        held_out = [pair for pair in pairs if not {pair.first[0], pair.second[0]} & held_out_from]
        subsets = [("", pairs)] + ([(", people not in --held-out-from", held_out)] if args.held_out_from else [])
        for suffix, chosen in subsets:
            sets.append(score_pairs(f"photo vs photo{suffix}", chosen, photos, photos))
            quality[sets[-1].name] = quality_issue_rates(chosen, photos, photos)
            if args.cards:
                cards = {key: outcomes[task] for key, task in card_tasks.items()}
                sets.append(score_pairs(f"ID card vs photo{suffix}", chosen, cards, photos))
                quality[sets[-1].name] = quality_issue_rates(chosen, cards, photos)

    report = {
        "date": datetime.date.today().isoformat(),
        "command": " ".join(["script/evaluate", *(argv if argv is not None else sys.argv[1:])]),
        "model_pack": {"model_id": pack.model_id, "path": str(args.weights), "sha256": pack.sha256},
        "pairs_files": [str(path) for path in args.pairs],
        "images": str(args.images or args.labelled),
        "default_threshold": threshold,
        "sets": {},
    }
    if args.held_out_from:
        report["held_out_from"] = [str(path) for path in args.held_out_from]
    for scored in sets:
        summary = summarize(scored, threshold, args.folds)
        summary["at_thresholds"] = [rates_at_threshold(scored, value) for value in args.also_at]
        summary["quality_issues"] = quality[scored.name]
        report["sets"][scored.name] = summary
        print(format_summary(scored.name, summary, threshold))
        print(format_quality(scored.name, quality[scored.name]))
    if args.documents:
        report["documents"] = check_documents(verifier, args.documents)
        for row in report["documents"]:
            print(f"  {row['file']}: {row['outcome']}")
    if args.labelled:
        unpadded = [Pair(key, key, True) for key, outcome in photos.items() if outcome.task.kind == PHOTO]
        report["quality_issues"] = quality_issue_rates(unpadded, photos, photos)
        print(format_quality("every image as it is, unpadded: as a document and as a selfie", report["quality_issues"]))
    if args.labelled and args.pad_no_face:
        padded_images = sorted(f"{key[0]}/{key[1]}" for key, outcome in photos.items() if outcome.task.kind == PADDED)
        report["padded_images"] = padded_images
        print(f"{len(padded_images)} images found a face only inside a grey border {args.pad_no_face:g} of their longer side wide")
    try:
        counts, population = measure_population(args, photos, groups, exclusions, report["date"])
        report["population"] = {key: value for key, value in population.items() if key != "table"}
        print(calibrate.format_population(population))
        if args.list_impostors:
            highest = calibrate.highest_impostors(counts, args.list_impostors)
            print(f"the {len(highest)} highest-scoring impostor pairs (of those scoring {TAIL_FROM} or more):")
            for first, second, score in highest:
                print(f"  impostor {score:.4f}  {photo_path(counts, photos, first)}  {photo_path(counts, photos, second)}")
        if args.write_calibration:
            existing = json.loads(args.write_calibration.read_text()) if args.add_population else {}
            populations = calibrate.add_population(existing, population)
            record = calibrate.calibration_record(populations, pack.model_id, pack.sha256, args.target_fmr, date=report["date"],
                                                  allow_unsupported=args.allow_unsupported_target)
            add_group_figures(record, counts)
            args.write_calibration.parent.mkdir(parents=True, exist_ok=True)
            args.write_calibration.write_text(calibrate.calibration_json(record))
            report["calibration"] = {key: value for key, value in record.items() if key != "populations"}
            print(calibrate.format_calibration(record))
            print(f"calibration -> {args.write_calibration}")
    except calibrate.UnsupportedTarget as error:
        print(f"error: {error}; pass --allow-unsupported-target to write it anyway", file=sys.stderr)
        return 2

    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    if sets:
        from .plots import write_plots

        written = write_plots(sets, threshold, args.out)
    report["seconds"] = round(time.monotonic() - started, 1)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {', '.join(str(path) for path in [args.out / 'report.json', *written])} in {report['seconds']} s")
    return 0


def all_vs_all_impostor_pairs(people: list[str]) -> int:
    """How many pairs of these images (one person label each) show two different people."""
    sizes = Counter(people).values()
    return (len(people) ** 2 - sum(size * size for size in sizes)) // 2


def read_groups(path: Path) -> dict[str, str]:
    """Each person's group from a CSV with columns `identity` and `gender`; raises ValueError if malformed."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"identity", "gender"} <= set(rows[0]):
        raise ValueError(f"{path} needs the columns identity and gender")
    return {row["identity"]: row["gender"] for row in rows}


@dataclass(frozen=True)
class Exclusion:
    """Impostor pairs to leave out of a calibration, and why: two images (`A/x.jpg B/y.jpg`), one image
    and every image of a person (`A/x.jpg B`: a photo filed under the wrong name), or every pair of
    two people's images (`A B`: one person filed under two names)."""

    first: str
    second: str
    reason: str


def read_exclusions(path: Path) -> list[Exclusion]:
    """The lines `first second reason` of an exclusions file (`#` starts a comment); raises ValueError without a reason."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("#", 1)[0].split(maxsplit=2)
        if not fields:
            continue
        if len(fields) < 3 or ("/" not in fields[0] and "/" in fields[1]):
            raise ValueError(f"{path}:{number}: expected 'A/image B/image reason', 'A/image B reason' or 'A B reason', "
                             f"got {line!r}")
        found.append(Exclusion(*fields))
    return found


def excluded_indices(exclusions: list[Exclusion], keys: list[tuple[str, object]]) -> list[tuple[int, int]]:
    """The pairs of indices into `keys` (person, image) that `exclusions` name; raises ValueError for a name not found."""
    by_image = {f"{person}/{image}": index for index, (person, image) in enumerate(keys)}
    by_person: dict[str, list[int]] = {}
    for index, (person, _) in enumerate(keys):
        by_person.setdefault(person, []).append(index)
    pairs = []
    for exclusion in exclusions:
        sides = []
        for name in (exclusion.first, exclusion.second):
            table = by_image if "/" in name else by_person
            if name not in table:
                raise ValueError(f"excluded pair {exclusion.first} {exclusion.second}: {name} is not among the images with a face")
            sides.append([table[name]] if table is by_image else table[name])
        pairs += [(a, b) for a in sides[0] for b in sides[1]]
    return pairs


def measure_population(args: argparse.Namespace, photos: dict, groups: dict[str, str] | None,
                       exclusions: list[Exclusion], date: str) -> tuple[calibrate.PairCounts, dict]:
    """All-vs-all counts of the embedded photos and the population record built from them;
    raises calibrate.UnsupportedTarget when there is nothing to count."""
    embedded = [(key, outcome.embedding) for key, outcome in sorted(photos.items()) if outcome.embedding is not None]
    if not embedded:
        raise calibrate.UnsupportedTarget("no image yielded a face")
    keys = [key for key, _ in embedded]
    counts = calibrate.count_all_vs_all(
        np.array([embedding for _, embedding in embedded]).reshape(len(embedded), -1),
        [key[0] for key in keys],
        [key[0] for key, outcome in sorted(photos.items()) if outcome.embedding is None],
        groups=groups, excluded=excluded_indices(exclusions, keys), tail_from=TAIL_FROM,
    )
    origin = args.labelled or args.images
    source = args.source or (f"{', '.join(path.name for path in args.pairs) or 'every image'}: the {len(photos)} images "
                             f"under {origin}, embedded by the faceverify pipeline as shipped")
    details: dict = {}
    if args.pad_no_face:
        padded_count = sum(outcome.task.kind == PADDED for outcome in photos.values())
        details["padding"] = (f"{padded_count} images without a face at first found one inside a mid-grey border "
                              f"{args.pad_no_face:g} times their longer side wide on each side (for measurement only)")
    if exclusions:
        details["exclusions"] = [f"{e.first} {e.second}: {e.reason}" for e in exclusions]
    if args.coverage_splits:
        details["coverage"] = [calibrate.person_split_coverage(counts, args.coverage_splits),
                               calibrate.person_split_coverage(counts, args.coverage_splits, people_level=None)]
    population = calibrate.population_record(counts, args.population_name, source=source, population=args.population,
                                             date=date, **details)
    if counts.groups:
        extra = [value for value in (args.threshold, *args.also_at) if value is not None]
        population["groups"] = calibrate.group_figures(counts, group_thresholds(population, extra))
        population["table"] = population.pop("table")
    return counts, population


def group_thresholds(population: dict, extra: list[float]) -> list[float]:
    """The thresholds group figures are given at: the population's operating points and `extra`, on the grid."""
    points = [point["threshold"] for point in population["operating_points"] if point["threshold"] is not None]
    return sorted({round(float(value), 3) for value in [*points, *extra]})


TAIL_FROM = 0.3
"""Impostor pairs scoring at least this are kept for the bound over people, the person-split coverage
and the listing (below it the FMR is over 1e-2 on the calibration sets, where no one operates)."""


def photo_path(counts: calibrate.PairCounts, photos: dict, index: int) -> str:
    """The image file of the `index`-th embedded photo (in the order `measure_population` counted them)."""
    embedded = [outcome for _, outcome in sorted(photos.items()) if outcome.embedding is not None]
    return str(embedded[index].task.path)


def add_group_figures(record: dict, counts: calibrate.PairCounts) -> None:
    """Record the new population's FMR and FNMR within and between its groups at the calibration's
    default and at the population's own operating points."""
    if not counts.groups:
        return
    population = record["populations"][-1]
    known = [point["threshold"] for point in population["groups"][next(iter(population["groups"]))]["at"]]
    population["groups"] = calibrate.group_figures(counts, group_thresholds(population, [*known, record["default_threshold"]]))
    population["table"] = population.pop("table")


def rates_at_threshold(scored: ScoredPairs, value: float) -> dict:
    """FMR (with its bound) and FNMR of a scored set at one threshold."""
    at = metrics.rates_at(scored.scores, scored.genuine, value)
    return {**rates_record(at), "fmr_upper": calibrate.fmr_upper_bound(at.false_matches, at.impostor_pairs)}


def check_documents(verifier: FaceVerifier, folder: Path) -> list[dict]:
    """For each image in `folder`: the faces found and whether the chosen one is the largest
    (a document's main portrait, not its small ghost copy), or the error code (e.g. no_face)."""
    rows = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in DOCUMENT_SUFFIXES):
        try:
            found = verifier.find_face(path)
        except ImageError as error:
            rows.append({"file": path.name, "faces": 0, "outcome": error.problem.value})
            continue
        areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in found.faces]
        chosen = found.faces.index(found.face)
        largest = chosen == max(range(len(areas)), key=areas.__getitem__)
        outcome = (f"{len(found.faces)} face(s), chose the {'largest' if largest else 'NOT the largest'} "
                   f"(score {found.face.score:.2f})")
        rows.append({"file": path.name, "faces": len(found.faces), "chosen_is_largest": largest,
                     "score": round(found.face.score, 4), "outcome": outcome})
    return rows


if __name__ == "__main__":
    sys.exit(main())
