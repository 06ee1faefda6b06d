"""Measure a model pack's accuracy on a pairs file, and optionally write its calibration.

    script/evaluate --pairs PAIRS.txt --images ROOT [--pairs MORE.txt ...] [--weights PACK]
                    [--cards] [--documents DIR] [--out DIR] [--write-calibration FILE] [--target-fmr 1e-3]

Every image goes once through the predictor's own pipeline (see embedding_run.py). For each set
(photo vs photo; with --cards also synthetic ID card vs photo, the card made from each pair's
first image) it prints and writes to OUT/report.json: pairs used and failed (with the reason),
10-fold accuracy (mean and standard deviation), TAR at FMR 1e-2 and 1e-3, the equal error rate,
FMR and FNMR at the pack's default threshold, and a threshold -> FMR/FNMR table; and it draws
OUT/roc.png and OUT/scores.png. A pair the model could not compare counts as a non-match.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

from faceverify.errors import ImageError, ModelPackError
from faceverify.modelpack import default_pack_path
from faceverify.verifier import FaceVerifier
from faceverify_tools.pairs import image_path, read_pairs

from .embedding_run import CARD, PHOTO, ImageTask, embed_images
from .report import (
    calibration_json,
    calibration_record,
    format_summary,
    score_pairs,
    summarize,
)

DOCUMENT_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="script/evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, action="append", required=True,
                        help="LFW-style pairs file (repeat to pool several, e.g. both View 1 files)")
    parser.add_argument("--images", type=Path, required=True, help="image root: ROOT/Name/Name_0001.jpg")
    parser.add_argument("--weights", type=Path, default=default_pack_path(), help="model pack folder (default: $COG_WEIGHTS or weights/buffalo_l)")
    parser.add_argument("--threshold", type=float, help="threshold to report FMR/FNMR at (default: the pack's)")
    parser.add_argument("--cards", action="store_true", help="also evaluate synthetic ID card vs photo on the same pairs")
    parser.add_argument("--documents", type=Path, help="folder of document images: report the faces found and the one chosen")
    parser.add_argument("--out", type=Path, default=Path("reports/evaluation"), help="folder for report.json and the plots")
    parser.add_argument("--write-calibration", type=Path, metavar="FILE", help="write a calibration file from the photo pairs")
    parser.add_argument("--target-fmr", type=float, default=1e-3, help="FMR the calibrated default threshold may reach (default 1e-3)")
    parser.add_argument("--folds", type=int, default=10, help="folds for the accuracy protocol (default 10)")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


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
    if args.cards:
        cards = {key: outcomes[task] for key, task in card_tasks.items()}
        sets.append(score_pairs("ID card vs photo", pairs, cards, photos))

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
        report["sets"][scored.name] = summary
        print(format_summary(scored.name, summary, threshold))
    if args.documents:
        report["documents"] = check_documents(verifier, args.documents)
        for row in report["documents"]:
            print(f"  {row['file']}: {row['outcome']}")
    if args.write_calibration:
        source = (f"{', '.join(path.name for path in args.pairs)} ({len(pairs)} pairs, images {args.images}), "
                  f"faceverify pipeline as shipped")
        record = calibration_record(sets[0], pack.model_id, pack.sha256, args.target_fmr, source, report["date"])
        args.write_calibration.parent.mkdir(parents=True, exist_ok=True)
        args.write_calibration.write_text(calibration_json(record))
        report["calibration"] = {k: v for k, v in record.items() if k != "table"}
        print(f"calibration: default threshold {record['default_threshold']:.2f} -> {args.write_calibration}")

    from .plots import write_plots

    args.out.mkdir(parents=True, exist_ok=True)
    written = write_plots(sets, threshold, args.out)
    report["seconds"] = round(time.monotonic() - started, 1)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out / 'report.json'}, {', '.join(str(path) for path in written)} in {report['seconds']} s")
    return 0


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
