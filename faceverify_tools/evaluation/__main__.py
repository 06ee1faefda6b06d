"""Measure a model pack's accuracy on a pairs file, and optionally write its calibration.

    script/evaluate --pairs PAIRS.txt --images ROOT [--pairs MORE.txt ...] [--weights PACK]
                    [--cards] [--documents DIR] [--out DIR]
                    [--write-calibration FILE [--target-fmr 1e-4] [--allow-unsupported-target]
                     [--source TEXT] [--population TEXT]]

Every image goes once through the predictor's own pipeline (see embedding_run.py). For each set
(photo vs photo; with --cards also synthetic ID card vs photo, the card made from each pair's
first image) it prints and writes to OUT/report.json: pairs used and failed (with the reason),
10-fold accuracy (mean and standard deviation), TAR and FNMR at FMR 1e-2, 1e-3 and 1e-4, the equal
error rate, FMR (with its 95% upper bound) and FNMR at the pack's default threshold, a
threshold -> FMR/FNMR table, and the rate of each quality issue on the first images (the
reference's rules) and the second images (the probe's); and it draws OUT/roc.png and
OUT/scores.png. A pair the model could not compare counts as a non-match.

--write-calibration FILE calibrates all-vs-all on the images the pairs files reference (the pairs
themselves only say which images): impostor pairs are every image against every image of every
other person, genuine pairs every two images of one person (calibrate.py). The default threshold
is the lowest threshold on a 0.005 grid whose one-sided 95% Clopper-Pearson upper bound on the FMR
is at most --target-fmr. A target the sample cannot support (too few impostor pairs: zero false
matches in n give a bound of about 3/n) is refused unless --allow-unsupported-target is given, and
the file then records it. Calibrate on LFW View 1 (pairsDevTrain.txt + pairsDevTest.txt) or your
own data, never on the pairs you report on (LFW View 2).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from faceverify.errors import ImageError, ModelPackError
from faceverify.modelpack import default_pack_path
from faceverify.verifier import FaceVerifier
from faceverify_tools.pairs import image_path, read_pairs

from . import calibrate
from .embedding_run import CARD, PHOTO, ImageTask, embed_images
from .report import format_quality, format_summary, quality_issue_rates, score_pairs, summarize

DOCUMENT_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    paragraphs = __doc__.split("\n\n")
    parser = argparse.ArgumentParser(prog="script/evaluate", description=paragraphs[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=next(p for p in paragraphs if p.startswith("--write-calibration")))
    parser.add_argument("--pairs", type=Path, action="append", required=True,
                        help="LFW-style pairs file (repeat to pool several, e.g. both View 1 files)")
    parser.add_argument("--images", type=Path, required=True, help="image root: ROOT/Name/Name_0001.jpg")
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
    parser.add_argument("--folds", type=int, default=10, help="folds for the accuracy protocol (default 10)")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not 0.0 < args.target_fmr < 1.0:
        parser.error(f"--target-fmr must be between 0 and 1, got {args.target_fmr:g}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        verifier = FaceVerifier.load(args.weights)
        pairs = [pair for path in args.pairs for pair in read_pairs(path)]
    except (ModelPackError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pack = verifier.pack
    threshold = args.threshold if args.threshold is not None else verifier.default_threshold

    keys = sorted({key for pair in pairs for key in (pair.first, pair.second)})
    if args.write_calibration and not args.allow_unsupported_target:
        possible = all_vs_all_impostor_pairs([name for name, _ in keys])
        if possible < calibrate.pairs_needed(args.target_fmr):
            print(f"error: {len(keys)} images give at most {possible} impostor pairs, fewer than the "
                  f"{calibrate.pairs_needed(args.target_fmr)} a target FMR of {args.target_fmr:g} needs (zero false matches in n "
                  f"give a 95% upper bound of about 3/n); add images or pass --allow-unsupported-target", file=sys.stderr)
            return 2
    photo_tasks = {key: ImageTask(PHOTO, image_path(args.images, key)) for key in keys}
    missing = [str(task.path) for task in photo_tasks.values() if not task.path.is_file()]
    if missing:
        print(f"error: {len(missing)} images of the pairs are missing under {args.images}, e.g. {missing[0]}", file=sys.stderr)
        return 2
    card_tasks = {pair.first: ImageTask(CARD, photo_tasks[pair.first].path) for pair in pairs} if args.cards else {}
    tasks = list(photo_tasks.values()) + list(dict.fromkeys(card_tasks.values()))
    print(f"{len(pairs)} pairs, {len(tasks)} images, model pack {pack.model_id} ({args.weights})", file=sys.stderr)
    outcomes = embed_images(tasks, args.weights, args.workers, progress=not args.no_progress)

    photos = {key: outcomes[task] for key, task in photo_tasks.items()}
    sets = [score_pairs("photo vs photo", pairs, photos, photos)]
    quality = {"photo vs photo": quality_issue_rates(pairs, photos, photos)}
    if args.cards:
        cards = {key: outcomes[task] for key, task in card_tasks.items()}
        sets.append(score_pairs("ID card vs photo", pairs, cards, photos))
        quality["ID card vs photo"] = quality_issue_rates(pairs, cards, photos)

    report = {
        "date": datetime.date.today().isoformat(),
        "command": " ".join(["script/evaluate", *(argv if argv is not None else sys.argv[1:])]),
        "model_pack": {"model_id": pack.model_id, "path": str(args.weights), "sha256": pack.sha256},
        "pairs_files": [str(path) for path in args.pairs],
        "images": str(args.images),
        "default_threshold": threshold,
        "sets": {},
    }
    for scored in sets:
        summary = summarize(scored, threshold, args.folds)
        summary["quality_issues"] = quality[scored.name]
        report["sets"][scored.name] = summary
        print(format_summary(scored.name, summary, threshold))
        print(format_quality(scored.name, quality[scored.name]))
    if args.documents:
        report["documents"] = check_documents(verifier, args.documents)
        for row in report["documents"]:
            print(f"  {row['file']}: {row['outcome']}")
    if args.write_calibration:
        try:
            record = calibration(args, photos, pack.model_id, pack.sha256, report["date"])
        except calibrate.UnsupportedTarget as error:
            print(f"error: {error}; pass --allow-unsupported-target to write it anyway", file=sys.stderr)
            return 2
        args.write_calibration.parent.mkdir(parents=True, exist_ok=True)
        args.write_calibration.write_text(calibrate.calibration_json(record))
        report["calibration"] = {k: v for k, v in record.items() if k != "table"}
        print(calibrate.format_calibration(record))
        print(f"calibration -> {args.write_calibration}")

    from .plots import write_plots

    args.out.mkdir(parents=True, exist_ok=True)
    written = write_plots(sets, threshold, args.out)
    report["seconds"] = round(time.monotonic() - started, 1)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out / 'report.json'}, {', '.join(str(path) for path in written)} in {report['seconds']} s")
    return 0


def all_vs_all_impostor_pairs(people: list[str]) -> int:
    """How many pairs of these images (one person label each) show two different people."""
    sizes = Counter(people).values()
    return (len(people) ** 2 - sum(size * size for size in sizes)) // 2


def calibration(args: argparse.Namespace, photos: dict, model_id: str, sha256: dict[str, str], date: str) -> dict:
    """The calibration record, all-vs-all on the embedded photos; raises calibrate.UnsupportedTarget."""
    embedded = [(key, outcome.embedding) for key, outcome in sorted(photos.items()) if outcome.embedding is not None]
    if not embedded:
        raise calibrate.UnsupportedTarget("no image of the pairs yielded a face")
    counts = calibrate.count_all_vs_all(
        np.array([embedding for _, embedding in embedded]).reshape(len(embedded), -1),
        [key[0] for key, _ in embedded],
        [key[0] for key, outcome in sorted(photos.items()) if outcome.embedding is None],
    )
    source = args.source or (f"{', '.join(path.name for path in args.pairs)}: the {len(photos)} images they reference "
                             f"under {args.images}, embedded by the faceverify pipeline as shipped")
    return calibrate.calibration_record(counts, model_id, sha256, args.target_fmr, source=source,
                                        population=args.population, date=date,
                                        allow_unsupported=args.allow_unsupported_target)


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
