"""Measure the two KYC checks: the selfie as a copy of the reference's photo, and someone else in it.

    script/measure-kyc-checks [--pairs PAIRS.txt ...] [--images ROOT] [--weights PACK] [--out DIR]
                              [--limit N] [--workers N]

On the pairs files (default: LFW View 1, pairsDevTrain + pairsDevTest, where the thresholds are
chosen; run it on View 2, pairs.txt, to report), every answer comes from `FaceVerifier.judge`, the
verifier's own decision, at the pack's default threshold:

- `image2_same_photo`, detection: for each same-person pair, its first photo as the reference and
  copies of it as the selfie (each kind in REPLAYS), and a synthetic ID card made from it (as
  `script/evaluate --cards` makes them) as the reference with the photo it was made from, its
  portrait cut out of the card, and the card itself as the selfie: the share refused as the same
  photo, and the share that would still verify (`match` true);
- `image2_same_photo`, false alarms: the same-person pairs of two different photos, and their card
  (made from the first photo) against the second photo; and the different-person pairs;
- someone else in the picture: each same-person pair's second photo with another person's photo set
  beside it (faceverify_tools/degrade.py `second_face`, the other face SECOND_FACE_SIZES times as
  large, on the right or the left as the file name draws): the FNMR, the share that reports
  `multiple_faces` (as an issue or as `image2_multiple_faces`), and of the pairs the second face
  turns from a match into a non-match, the share that says so; on the clean pairs, the share that
  reports it (false alarms);
- the sweeps the thresholds were chosen from: detection and false alarms at other values of
  SAME_PHOTO_LIKENESS and of AMBIGUITY_MARGIN, recomputed from the measures each answer carries.

It prints the tables and writes OUT/report.json. Rates come with their counts and 95% upper bounds.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
from PIL import Image, ImageOps
from tqdm import tqdm

from faceverify.compare import AMBIGUITY_MARGIN
from faceverify.modelpack import default_pack_path
from faceverify.quality import QualityIssue, Role
from faceverify.same_photo import SAME_PHOTO_LIKENESS, SCREEN_LIKENESS
from faceverify.verifier import Verification
from faceverify_tools.degrade import BY_NAME, Face, encode_jpeg, seed_for
from faceverify_tools.evaluation.calibrate import fmr_upper_bound as upper_bound
from faceverify_tools.pairs import Pair, image_path, read_pairs
from faceverify_tools.shared import LFW, REPO, TEST_PACK, shown

SAME_PHOTO, MULTIPLE_FACES = "image2_same_photo", "image2_multiple_faces"
SECOND_FACE_SIZES = (0.5, 0.7, 1.0)
LIKENESS_SWEEP = (0.95, 0.96, 0.965, 0.97, 0.975, 0.98, 0.985, 0.99)
MARGIN_SWEEP = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)


def _jpeg(image: Image.Image, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _centre_crop(image: Image.Image, share: float) -> Image.Image:
    width, height = image.size
    left, top = round(width * (1 - share) / 2), round(height * (1 - share) / 2)
    return image.crop((left, top, width - left, height - top))


def _rotated(image: Image.Image, degrees: float, seed: int) -> Image.Image:
    return image.rotate(degrees if seed % 2 else -degrees, resample=Image.Resampling.BICUBIC)


REPLAYS = {
    "copy": lambda data, image, seed: data,
    "re-encoded (JPEG quality 40)": lambda data, image, seed: _jpeg(image, 40),
    "half size": lambda data, image, seed: _jpeg(image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)),
    "cropped to 75%": lambda data, image, seed: _jpeg(_centre_crop(image, 0.75)),
    "rotated 4 degrees": lambda data, image, seed: _jpeg(_rotated(image, 4, seed)),
    "greyscale": lambda data, image, seed: _jpeg(ImageOps.grayscale(image)),
    "all of these at once": lambda data, image, seed: _jpeg(ImageOps.grayscale(_rotated(_centre_crop(image, 0.75), 4, seed).resize(
        (round(image.width * 0.375), round(image.height * 0.375)), Image.Resampling.LANCZOS)), 40),
}
"""The copies of a photo sent as the selfie, by kind: bytes from (the file's bytes, the photo, a seed)."""

CARD_REPLAYS = ("card: the photo it was made from", "card: its portrait cut out", "card: the card itself")


@dataclass(frozen=True)
class Answer:
    """What one judged pair came to: error code, match, the selfie's issues and the measures."""

    error_code: str | None
    match: bool
    issues: tuple[str, ...]
    looks_alike: float | None
    photo_likeness: float | None
    similarity: float | None
    other_similarities: tuple[float, ...]


def answer_of(result: Verification) -> Answer:
    """The parts of a Verification the figures need."""
    quality = result.image2.quality
    measures = result.measures
    return Answer(result.error_code, result.match, tuple(issue.value for issue in quality.issues) if quality else (),
                  measures.looks_alike, measures.photo_likeness, measures.similarity, measures.other_similarities)


_verifier = None
_threshold = 0.0


def _load_worker(pack_path: str) -> None:
    global _verifier, _threshold
    from faceverify.verifier import FaceVerifier

    _verifier = FaceVerifier.load(pack_path, threads=1)
    _threshold = _verifier.threshold_or_default(None)


def _judge(reference, probe) -> Answer:
    """The verifier's answer for an examined reference and a probe (bytes, or already examined)."""
    examined = _verifier.examine(probe, Role.PROBE) if isinstance(probe, bytes) else probe
    return answer_of(_verifier.judge(reference, examined, _threshold))


def _portrait_cut_out(card: bytes, found) -> bytes | None:
    """The card's chosen face (`found`, examined) cut out with a margin of 60% of its box, as
    someone would crop it; None when the card has no usable face."""
    if found is None:
        return None
    with Image.open(io.BytesIO(card)) as image:
        x1, y1, x2, y2 = (v / found.image.scale for v in found.face.box)
        margin_x, margin_y = 0.6 * (x2 - x1), 0.6 * (y2 - y1)
        box = (max(x1 - margin_x, 0), max(y1 - margin_y, 0), min(x2 + margin_x, image.width), min(y2 + margin_y, image.height))
        return _jpeg(image.crop(tuple(round(v) for v in box)), 90)


@dataclass(frozen=True)
class Task:
    """One pair of a pairs file, with the photo whose face is set beside its second photo."""

    index: int
    pair: Pair
    first: Path
    second: Path
    other: Path | None


def _run(task: Task) -> tuple[int, dict]:
    from faceverify_tools.evaluation.embedding_run import CARD as EVALUATION_CARD
    from faceverify_tools.evaluation.embedding_run import ImageTask
    from faceverify_tools.evaluation.idcards import make_id_card

    first_data, second_data = task.first.read_bytes(), task.second.read_bytes()
    reference = _verifier.examine(first_data, Role.REFERENCE)
    with Image.open(task.first) as photo:
        photo.load()
    card = make_id_card(photo, ImageTask(EVALUATION_CARD, task.first).card_seed)
    card_reference = _verifier.examine(card, Role.REFERENCE)
    second = _verifier.examine(second_data, Role.PROBE)
    results: dict = {"clean": _judge(reference, second), "card": _judge(card_reference, second)}
    if not task.pair.genuine:
        return task.index, results
    seed = seed_for(task.first.name)
    results["replays"] = {kind: _judge(reference, make(first_data, photo, seed)) for kind, make in REPLAYS.items()}
    cut_out = _portrait_cut_out(card, card_reference[0] if card_reference[1] is None else None)
    card_probes = (first_data, cut_out, card)
    results["replays"].update({kind: _judge(card_reference, data) if data is not None else None
                               for kind, data in zip(CARD_REPLAYS, card_probes)})
    second_found, problem = second
    other_found, other_problem = _verifier.examine(task.other.read_bytes(), Role.PROBE) if task.other else (None, True)
    if problem is None and other_problem is None:
        probe = cv2.imread(str(task.second), cv2.IMREAD_COLOR)
        other = cv2.imread(str(task.other), cv2.IMREAD_COLOR)
        side_seed = seed_for(task.second.name)
        results["side"] = "right" if side_seed % 2 else "left"
        results["second_face"] = {
            size: _judge(reference, encode_jpeg(BY_NAME["second face"].apply(
                probe, Face.of(second_found), size, side_seed, other=other, other_face=Face.of(other_found))))
            for size in SECOND_FACE_SIZES
        }
    return task.index, results


def make_tasks(pairs: list[Pair], images: Path) -> list[Task]:
    """A task per pair; a same-person pair's second face is the first photo of the next same-person
    pair of another person (in file order, wrapping round)."""
    genuine = [pair for pair in pairs if pair.genuine]
    tasks = []
    for index, pair in enumerate(pairs):
        other = None
        if pair.genuine:
            start = genuine.index(pair)
            for step in range(1, len(genuine)):
                candidate = genuine[(start + step) % len(genuine)]
                if candidate.first[0] != pair.first[0]:
                    other = image_path(images, candidate.first)
                    break
        tasks.append(Task(index, pair, image_path(images, pair.first), image_path(images, pair.second), other))
    return tasks


def run_all(tasks: list[Task], pack_path: Path, workers: int) -> list[dict]:
    """Every task in `workers` processes, each with one ONNX Runtime thread, in task order."""
    context = multiprocessing.get_context("spawn")
    results: dict[int, dict] = {}
    with context.Pool(workers, initializer=_load_worker, initargs=(str(pack_path),)) as pool:
        for index, result in tqdm(pool.imap_unordered(_run, tasks, chunksize=2), total=len(tasks), unit="pair",
                                  disable=not sys.stderr.isatty()):
            results[index] = result
    return [results[task.index] for task in tasks]


# --- the figures ---------------------------------------------------------------------------------------

def rate(count: int, total: int) -> dict:
    """A share with its count and one-sided 95% upper bound (never 0 for a finite sample)."""
    return {"count": count, "total": total, "rate": count / total if total else None,
            "upper_95": upper_bound(count, total) if total else None}


def low_bound(count: int, total: int) -> float | None:
    """The one-sided 95% lower bound on a detection rate of `count` in `total`."""
    return 1.0 - upper_bound(total - count, total) if total else None


def detection(count: int, total: int) -> dict:
    """A detection share with its count and one-sided 95% lower bound."""
    return {"count": count, "total": total, "rate": count / total if total else None, "lower_95": low_bound(count, total)}


def reports_second_person(answer: Answer) -> bool:
    """The answer says someone else is in the picture (issue or error)."""
    return answer.error_code == MULTIPLE_FACES or QualityIssue.MULTIPLE_FACES.value in answer.issues


def likeness_of(answer: Answer) -> float:
    """The photo likeness as measured, -1 where the screen ruled a copy out."""
    return answer.photo_likeness if answer.photo_likeness is not None else -1.0


def gap_of(answer: Answer, threshold: float) -> float | None:
    """The margin at which this answer would turn ambiguous (see compare.is_ambiguous); None
    without other faces or a similarity."""
    if answer.similarity is None or not answer.other_similarities:
        return None
    return max(answer.similarity, threshold) - max(answer.other_similarities)


def figures(pairs: list[Pair], results: list[dict], threshold: float) -> dict:
    """Every table of the report from the judged pairs."""
    genuine = [result for pair, result in zip(pairs, results) if pair.genuine]
    impostor = [result for pair, result in zip(pairs, results) if not pair.genuine]
    report: dict = {"threshold": threshold, "same_photo_likeness": SAME_PHOTO_LIKENESS, "screen_likeness": SCREEN_LIKENESS,
                    "ambiguity_margin": AMBIGUITY_MARGIN, "genuine_pairs": len(genuine), "impostor_pairs": len(impostor)}

    kinds = list(REPLAYS) + list(CARD_REPLAYS)
    replays = {}
    for kind in kinds:
        answers = [result["replays"][kind] for result in genuine if result["replays"].get(kind) is not None]
        compared = [a for a in answers if a.error_code in (None, SAME_PHOTO)]
        replays[kind] = {
            "flagged": detection(sum(a.error_code == SAME_PHOTO for a in compared), len(compared)),
            "verified": rate(sum(a.match for a in answers), len(answers)),
            "refused_otherwise": sum(a.error_code not in (None, SAME_PHOTO) for a in answers),
        }
    report["same_photo_detection"] = replays

    def false_same(answers: list[Answer]) -> dict:
        compared = [a for a in answers if a.error_code in (None, SAME_PHOTO, MULTIPLE_FACES)]
        return rate(sum(a.error_code == SAME_PHOTO for a in compared), len(compared))
    report["same_photo_false_alarms"] = {
        "photo vs photo, same person": false_same([r["clean"] for r in genuine]),
        "card vs photo, same person": false_same([r["card"] for r in genuine]),
        "photo vs photo, different people": false_same([r["clean"] for r in impostor]),
        "card vs photo, different people": false_same([r["card"] for r in impostor]),
    }
    report["same_photo_highest_likeness_of_different_photos"] = sorted(
        (likeness_of(r[key]) for r in genuine for key in ("clean", "card")), reverse=True)[:10]

    clean = [r["clean"] for r in genuine if r["clean"].error_code is None]
    clean_fnmr = sum(not a.match for a in clean) / len(clean)
    second = {"clean_fnmr": rate(sum(not a.match for a in clean), len(clean)), "by_size": {}}
    for size in SECOND_FACE_SIZES:
        rows = [(r["clean"], r["second_face"][size], r["side"]) for r in genuine if "second_face" in r and r["clean"].error_code is None]
        degraded = [d for _, d, _ in rows]
        turned = [d for c, d, _ in rows if c.match and not d.match]
        entry = {
            "fnmr": rate(sum(not d.match for d in degraded), len(degraded)),
            "reported": detection(sum(reports_second_person(d) for d in degraded), len(degraded)),
            "refused_ambiguous": rate(sum(d.error_code == MULTIPLE_FACES for d in degraded), len(degraded)),
            "turned_into_non_matches": len(turned),
            "turned_and_reported": detection(sum(reports_second_person(d) for d in turned), len(turned)),
            "by_side": {side: detection(sum(reports_second_person(d) for _, d, s in rows if s == side),
                                        sum(1 for _, _, s in rows if s == side)) for side in ("left", "right")},
            "matched_on_another_face": sum(d.match and d.error_code is None and bool(d.other_similarities)
                                           and max(d.other_similarities) > d.similarity for d in degraded),
        }
        entry["fnmr_doubled"] = entry["fnmr"]["rate"] >= 2 * clean_fnmr
        second["by_size"][str(size)] = entry
    report["second_face"] = second
    report["multiple_faces_false_alarms"] = {
        "photo vs photo, same person": rate(sum(reports_second_person(r["clean"]) for r in genuine if r["clean"].error_code in (None, MULTIPLE_FACES)),
                                            sum(r["clean"].error_code in (None, MULTIPLE_FACES) for r in genuine)),
        "refused as ambiguous, same person": rate(sum(r["clean"].error_code == MULTIPLE_FACES for r in genuine), len(genuine)),
        "refused as ambiguous, different people": rate(sum(r["clean"].error_code == MULTIPLE_FACES for r in impostor), len(impostor)),
    }

    sweep_likeness = {}
    different = [likeness_of(r[key]) for r in genuine for key in ("clean", "card")]
    copies = {kind: [likeness_of(r["replays"][kind]) for r in genuine if r["replays"].get(kind) is not None
                     and r["replays"][kind].error_code in (None, SAME_PHOTO)] for kind in kinds}
    for value in LIKENESS_SWEEP:
        sweep_likeness[str(value)] = {"false_alarms": rate(sum(v >= value for v in different), len(different)),
                                      "lowest_detection": min(sum(v >= value for v in vs) / len(vs) for vs in copies.values() if vs)}
    report["sweep_same_photo_likeness"] = sweep_likeness

    sweep_margin = {}
    for margin in MARGIN_SWEEP:
        def ambiguous(answer: Answer, margin: float = margin) -> bool:
            gap = gap_of(answer, threshold)
            return gap is not None and gap <= margin
        cleans = [r["clean"] for r in genuine if r["clean"].similarity is not None]
        impostors = [r["clean"] for r in impostor if r["clean"].similarity is not None]
        row = {"clean_same_person": rate(sum(ambiguous(a) for a in cleans), len(cleans)),
               "clean_different_people": rate(sum(ambiguous(a) for a in impostors), len(impostors))}
        for size in SECOND_FACE_SIZES:
            turned = [r["second_face"][size] for r in genuine if "second_face" in r and r["clean"].match
                      and not r["second_face"][size].match and r["second_face"][size].similarity is not None]
            row[f"turned_{size}"] = detection(sum(ambiguous(a) or QualityIssue.MULTIPLE_FACES.value in a.issues for a in turned), len(turned))
        sweep_margin[str(margin)] = row
    report["sweep_ambiguity_margin"] = sweep_margin
    return report


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def format_report(report: dict) -> str:
    """The report as plain-text tables."""
    lines = [(f"threshold {report['threshold']}, SAME_PHOTO_LIKENESS {report['same_photo_likeness']}, "
              f"AMBIGUITY_MARGIN {report['ambiguity_margin']}; {report['genuine_pairs']} same-person and "
              f"{report['impostor_pairs']} different-person pairs"),
             "", "image2_same_photo, detection (copies of the reference's photo as the selfie):"]
    for kind, row in report["same_photo_detection"].items():
        flagged, verified = row["flagged"], row["verified"]
        lines.append(f"  {kind:34} refused as the same photo {flagged['count']}/{flagged['total']} = {percent(flagged['rate'])} "
                     f"(>= {percent(flagged['lower_95'])}); still verified {verified['count']} ({percent(verified['rate'])}, "
                     f"<= {percent(verified['upper_95'])}); other errors {row['refused_otherwise']}")
    lines.append("image2_same_photo, false alarms (two different photos):")
    for kind, row in report["same_photo_false_alarms"].items():
        lines.append(f"  {kind:34} {row['count']}/{row['total']} = {percent(row['rate'])} (<= {percent(row['upper_95'])})")
    lines.append(f"  highest likeness of two different photos: {[round(v, 4) for v in report['same_photo_highest_likeness_of_different_photos']]}")
    second = report["second_face"]
    lines += ["", f"someone else in the picture (clean FNMR {percent(second['clean_fnmr']['rate'])}):"]
    for size, row in second["by_size"].items():
        lines.append(f"  size {size}: FNMR {percent(row['fnmr']['rate'])}{' (doubled)' if row['fnmr_doubled'] else ''}; "
                     f"multiple_faces reported {percent(row['reported']['rate'])} (left {percent(row['by_side']['left']['rate'])}, "
                     f"right {percent(row['by_side']['right']['rate'])}); refused as ambiguous {percent(row['refused_ambiguous']['rate'])}; "
                     f"turned into non-matches {row['turned_into_non_matches']}, of which reported "
                     f"{row['turned_and_reported']['count']} = {percent(row['turned_and_reported']['rate'])} "
                     f"(>= {percent(row['turned_and_reported']['lower_95'])}); matched on another face {row['matched_on_another_face']}")
    lines.append("multiple_faces, false alarms on clean pairs:")
    for kind, row in report["multiple_faces_false_alarms"].items():
        lines.append(f"  {kind:40} {row['count']}/{row['total']} = {percent(row['rate'])} (<= {percent(row['upper_95'])})")
    lines += ["", "sweep of SAME_PHOTO_LIKENESS: false alarms on different photos / lowest detection over the kinds:"]
    for value, row in report["sweep_same_photo_likeness"].items():
        lines.append(f"  {value}: {row['false_alarms']['count']}/{row['false_alarms']['total']} "
                     f"(<= {percent(row['false_alarms']['upper_95'])}) / {percent(row['lowest_detection'])}")
    lines.append("sweep of AMBIGUITY_MARGIN: ambiguous among clean same-person / different-people pairs; turned pairs reported by size:")
    for margin, row in report["sweep_ambiguity_margin"].items():
        turned = ", ".join(f"{size}: {percent(row[f'turned_{size}']['rate'])}" for size in SECOND_FACE_SIZES)
        lines.append(f"  {margin}: {percent(row['clean_same_person']['rate'])} / {percent(row['clean_different_people']['rate'])}; {turned}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="script/measure-kyc-checks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, nargs="+", default=[LFW / "pairsDevTrain.txt", LFW / "pairsDevTest.txt"])
    parser.add_argument("--images", type=Path, default=LFW / "images")
    parser.add_argument("--weights", type=Path, default=TEST_PACK if TEST_PACK.exists() else default_pack_path())
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "kyc-checks")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs of each kind (for a quick look)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    pairs = [pair for path in args.pairs for pair in read_pairs(path)]
    if args.limit:
        pairs = [p for p in pairs if p.genuine][:args.limit] + [p for p in pairs if not p.genuine][:args.limit]
    started = time.monotonic()
    results = run_all(make_tasks(pairs, args.images), args.weights, args.workers)
    _load_worker(str(args.weights))
    report = figures(pairs, results, _threshold)
    report.update({"command": " ".join(["script/measure-kyc-checks", *(argv if argv is not None else sys.argv[1:])]),
                   "pairs_files": [shown(path) for path in args.pairs], "weights": shown(args.weights),
                   "seconds": round(time.monotonic() - started)})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(format_report(report))
    print(f"wrote {args.out / 'report.json'} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
