"""Measure the quality stage (faceverify/quality.py): false alarms, detection, error against discard.

    script/measure-quality [--pairs PAIRS.txt ...] [--images ROOT] [--weights PACK] [--out DIR]
                           [--norm-threshold N] [--workers N]
    script/measure-quality --cases       the issues on every photo of the cases folder, and nothing else
    script/measure-quality --cost        the quality stage's time per image, and nothing else
    script/measure-quality --second-face-control   whether the second face or the wider picture costs

On the pairs files (default: LFW View 1, pairsDevTrain + pairsDevTest, where the thresholds are
chosen; run it on View 2, pairs.txt, to report), through the pipeline as shipped:

- false alarms: the share of clean photos (as probes, the selfie's rules) and of synthetic ID cards
  made from each pair's first photo (as references, the document's rules) that raise each issue;
- detection: for every same-person pair, the second photo degraded in each way of
  faceverify_tools/degrade.py at each severity and compared with the clean first photo: the FNMR at
  the pack's default threshold, the share of probes refused with an error code, and the share of
  the rest that raise the matching issue; the severity where the FNMR at least doubles;
- error against discard (EDC, ISO/IEC 29794-1): the FNMR at the default threshold of the
  same-person pairs left after discarding a share of them, lowest pair quality (the lower of the
  two images' quality scores) first, or after discarding every pair with an issue; on clean photos,
  on cards vs photos and on the degraded probes;
- the recognizer's raw embedding norm as a quality signal (`low recognizability`): its threshold at
  the 1st percentile of the clean photos (or --norm-threshold, the one View 1 gave), what it flags,
  and its EDC;
- the distribution of each measure, and the threshold each issue could take on these images.

It prints the tables and writes OUT/report.json, OUT/edc.png and OUT/detection.png.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceverify.modelpack import default_pack_path
from faceverify.quality import (
    PROBE_RULES,
    REFERENCE_RULES,
    QualityIssue,
    QualityMeasures,
    Role,
    assess,
)
from faceverify_tools.degrade import BY_NAME, DEGRADATIONS, Face, encode_jpeg, seed_for
from faceverify_tools.evaluation.calibrate import fmr_upper_bound as upper_bound
from faceverify_tools.pairs import Pair, image_path, read_pairs
from faceverify_tools.shared import LFW, REPO, TEST_PACK, shown

PHOTO, CARD, DEGRADED = "photo", "card", "degraded"
PROBE_FALSE_ALARMS, REFERENCE_FALSE_ALARMS = 0.01, 0.02
"""The issue's limits: each issue may fire on at most 1% of clean photos as probes and 2% of cards
as references."""
DOUBLED = 2.0
DETECTED = 0.9
DISCARD_SHARES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
"""The discard shares the EDC tables report (the plots draw every share)."""

MEASURE_FOR = {
    QualityIssue.FACE_TOO_SMALL: ("eye_distance", "min"),
    QualityIssue.FACE_CUT_OFF: ("edge_margin", "min"),
    QualityIssue.BLURRY: ("sharpness", "min"),
    QualityIssue.TOO_DARK: ("underexposure", "max"),
    QualityIssue.OVEREXPOSED: ("overexposure", "max"),
    QualityIssue.MULTIPLE_FACES: ("second_face", "max"),
}
"""The measure behind each issue with one measure, and whether the issue fires below a minimum or
above a maximum (head_turned has two: yaw and roll)."""


@dataclass(frozen=True)
class Task:
    """One image to run: a clean photo, a card made from it, or a photo degraded at every severity of
    one degradation (`reference` is then the clean first photo's embedding to compare with)."""

    kind: str
    path: Path
    degradation: str | None = None
    face: Face | None = None
    other: Path | None = None
    other_face: Face | None = None
    reference: np.ndarray | None = field(default=None, compare=False, hash=False)
    pair: int = -1


@dataclass(frozen=True)
class Outcome:
    """What the pipeline made of one image: the error code, or the embedding's raw norm, the quality
    measures, the clean face's geometry (photos) and the similarity to the reference (degraded)."""

    problem: str | None
    embedding: np.ndarray | None = None
    norm: float | None = None
    measures: QualityMeasures | None = None
    face: Face | None = None
    similarity: float | None = None


_verifier = None


def _load_worker(pack_path: str) -> None:
    global _verifier
    from faceverify.verifier import FaceVerifier

    _verifier = FaceVerifier.load(pack_path, threads=1)


def run_image(data, reference: np.ndarray | None = None) -> Outcome:
    """One image through the pipeline as shipped (decode, detection, face choice, alignment, quality,
    recognizer), keeping the raw embedding norm that `embed` divides away."""
    found, problem = _verifier.examine(data, Role.PROBE)
    if problem is not None:
        return Outcome(problem.problem.value)
    raw = np.asarray(_verifier.pack.recognizer.get_feat(found.crop), dtype=np.float64).ravel()
    norm = float(np.linalg.norm(raw))
    embedding = (raw / norm).astype(np.float32)
    face = Face.of(found)
    similarity = float(np.clip(embedding @ reference, -1, 1)) if reference is not None else None
    return Outcome(None, embedding if reference is None else None, norm, found.quality.measures, face, similarity)


def _run(task: Task) -> tuple[Task, list[Outcome]]:
    import cv2
    from PIL import Image

    from faceverify_tools.evaluation.embedding_run import CARD as EVALUATION_CARD
    from faceverify_tools.evaluation.embedding_run import ImageTask
    from faceverify_tools.evaluation.idcards import make_id_card

    if task.kind == PHOTO:
        return task, [run_image(task.path)]
    if task.kind == CARD:
        with Image.open(task.path) as photo:
            return task, [run_image(make_id_card(photo, ImageTask(EVALUATION_CARD, task.path).card_seed))]
    degradation = BY_NAME[task.degradation]
    photo = cv2.imread(str(task.path), cv2.IMREAD_COLOR)
    other = cv2.imread(str(task.other), cv2.IMREAD_COLOR) if task.other else None
    seed = seed_for(task.path.name)
    outcomes = []
    for severity in degradation.severities:
        extra = {"other": other, "other_face": task.other_face} if task.degradation == "second face" else {}
        degraded = degradation.apply(photo, task.face, severity, seed, **extra)
        outcomes.append(run_image(encode_jpeg(degraded), task.reference))
    return task, outcomes


def run_all(tasks: list[Task], pack_path: Path, workers: int, progress: bool, label: str) -> dict[Task, list[Outcome]]:
    """Every task in `workers` processes, each with one ONNX Runtime thread."""
    context = multiprocessing.get_context("spawn")
    results: dict[Task, list[Outcome]] = {}
    with context.Pool(workers, initializer=_load_worker, initargs=(str(pack_path),)) as pool:
        for task, outcomes in tqdm(pool.imap_unordered(_run, tasks, chunksize=4), total=len(tasks), desc=label,
                                   unit="task", disable=not progress):
            results[task] = outcomes
    return results


# --- the figures ---------------------------------------------------------------------------------------

def issues_of(measures: QualityMeasures | None, role: Role) -> tuple[QualityIssue, ...]:
    return assess(measures, role).issues if measures is not None else ()


def score_of(measures: QualityMeasures | None, role: Role) -> float:
    """The quality score; an image without a face scores -1 (discarded first, as the model refuses it)."""
    return assess(measures, role).score if measures is not None else -1.0


def false_alarms(outcomes: list[Outcome], role: Role) -> dict:
    """The share of images with a face that raise each issue, and any issue, under `role`'s rules,
    with the counts and each share's one-sided 95% upper bound (a rate from a sample is never 0)."""
    measured = [o.measures for o in outcomes if o.measures is not None]
    raised = [issues_of(m, role) for m in measured]
    counts = {issue.value: sum(issue in r for r in raised) for issue in QualityIssue}
    return {"images": len(outcomes), "with_a_face": len(measured),
            "rates": {issue: count / len(raised) for issue, count in counts.items()}, "counts": counts,
            "upper_bounds": {issue: upper_bound(count, len(raised)) for issue, count in counts.items()},
            "any": sum(bool(r) for r in raised) / len(raised)}


def fnmr(similarities: np.ndarray, threshold: float) -> float:
    """The share of same-person pairs under the threshold (refused pairs carry NaN and count as errors)."""
    return float(np.mean(~(similarities >= threshold))) if len(similarities) else float("nan")


def edc(similarities: np.ndarray, qualities: np.ndarray, threshold: float, shares=None) -> list[dict]:
    """FNMR of the pairs left after discarding each share of them, lowest quality first (ties broken
    by order, a stable sort)."""
    order = np.argsort(qualities, kind="stable")
    ranked = similarities[order]
    count = len(ranked)
    shares = DISCARD_SHARES if shares is None else shares
    rows = []
    for share in shares:
        kept = ranked[int(round(share * count)):]
        rows.append({"discarded": share, "pairs": len(kept), "fnmr": fnmr(kept, threshold)})
    return rows


def ideal_edc(similarities: np.ndarray, threshold: float, shares) -> list[float]:
    """The best any quality could do: the false non-matches discarded first."""
    errors = int(np.sum(~(similarities >= threshold)))
    count = len(similarities)
    return [max(errors - round(s * count), 0) / max(count - round(s * count), 1) for s in shares]


def discard_flagged(similarities: np.ndarray, flagged: np.ndarray, threshold: float) -> dict:
    return {"flagged": float(flagged.mean()), "fnmr_all": fnmr(similarities, threshold),
            "fnmr_kept": fnmr(similarities[~flagged], threshold), "pairs_kept": int((~flagged).sum())}


def quantiles(values: list[float]) -> dict:
    points = (0.0, 0.5, 1, 5, 50, 95, 99, 99.5, 100.0)
    array = np.asarray(values, dtype=float)
    return {str(p): round(float(np.percentile(array, p)), 4) for p in points} if len(array) else {}


def suggested(issue: QualityIssue, clean: list[QualityMeasures], at_doubling: list[QualityMeasures], limit: float) -> dict:
    """Where the issue's threshold could go on these images: the value that flags `limit` / 2 of the
    clean images (half the false-alarm limit, for margin) and the value that flags 95% of the
    probes at the severity where FNMR doubles."""
    name, side = MEASURE_FOR[issue]
    values = np.array([getattr(m, name) for m in clean])
    result = {"measure": name, "fires_when": "below" if side == "min" else "above"}
    q = 100 * limit / 2
    result["flags_half_the_false_alarm_limit"] = float(np.percentile(values, q if side == "min" else 100 - q))
    if at_doubling:
        degraded = np.array([getattr(m, name) for m in at_doubling])
        result["flags_95_percent_at_doubling"] = float(np.percentile(degraded, 95 if side == "min" else 5))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="script/measure-quality", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, action="append",
                        help="pairs files (default: LFW View 1, pairsDevTrain.txt and pairsDevTest.txt)")
    parser.add_argument("--images", type=Path, default=LFW / "images", help="image root: ROOT/Name/Name_0001.jpg")
    parser.add_argument("--weights", type=Path, default=TEST_PACK if TEST_PACK.is_dir() else default_pack_path(),
                        help="model pack folder (default: the test pack)")
    parser.add_argument("--out", type=Path, default=Path("reports/quality"), help="folder for report.json and the plots")
    parser.add_argument("--norm-threshold", type=float,
                        help="embedding norm under which a face counts as hard to recognize (default: the 1st "
                             "percentile of these clean photos; pass View 1's when reporting on View 2)")
    parser.add_argument("--limit-pairs", type=int, help="use only the first N same-person and N different-person pairs (a quick check)")
    parser.add_argument("--save-measures", type=Path, metavar="FILE",
                        help="also write every image's measures, norm and similarity (no embeddings) as JSON lines, for analysis")
    parser.add_argument("--cases", action="store_true", help="only list the issues on the cases folder's photos")
    parser.add_argument("--second-face-control", action="store_true",
                        help="only compare the second-face degradation with the same picture left grey beside the probe")
    parser.add_argument("--cost", action="store_true", help="only time the quality stage (per face, and in the benchmark's stage split)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: one per core)")
    parser.add_argument("--degradation", action="append", choices=[d.name for d in DEGRADATIONS], metavar="NAME",
                        help="degrade the probes only this way (repeat; default: every way), a cheaper check of one issue")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.cases:
        print(format_cases(check_cases(args.weights)))
        return 0
    if args.cost:
        print(measure_cost(args.weights))
        return 0
    pairs_files = args.pairs or [LFW / "pairsDevTrain.txt", LFW / "pairsDevTest.txt"]
    pairs = [pair for path in pairs_files for pair in read_pairs(path)]
    if args.limit_pairs:
        pairs = [p for p in pairs if p.genuine][:args.limit_pairs] + [p for p in pairs if not p.genuine][:args.limit_pairs]
    if args.second_face_control:
        print(second_face_control(args.weights, pairs, args.images))
        return 0

    from faceverify.calibration import find_calibration

    manifest = json.loads((args.weights / "manifest.json").read_text())["tasks"]
    calibration = find_calibration(args.weights, {task: manifest[task]["sha256"] for task in ("detection", "recognition")})
    if calibration is None:
        print(f"error: {args.weights} has no calibrated default threshold", file=sys.stderr)
        return 2
    threshold = calibration.default_threshold
    progress = not args.no_progress

    keys = sorted({key for pair in pairs for key in (pair.first, pair.second)})
    photo_tasks = {key: Task(PHOTO, image_path(args.images, key)) for key in keys}
    card_tasks = {key: Task(CARD, image_path(args.images, key)) for key in sorted({pair.first for pair in pairs})}
    print(f"{len(pairs)} pairs, {len(photo_tasks)} photos, {len(card_tasks)} cards; pack {args.weights}, "
          f"default threshold {threshold}", file=sys.stderr)
    clean = run_all(list(photo_tasks.values()) + list(card_tasks.values()), args.weights, args.workers, progress, "clean")
    photos = {key: clean[task][0] for key, task in photo_tasks.items()}
    cards = {key: clean[task][0] for key, task in card_tasks.items()}

    genuine = [pair for pair in pairs if pair.genuine and photos[pair.first].measures and photos[pair.second].measures]
    pick_other = other_person({key: outcome.face for key, outcome in photos.items()})
    degraded_tasks = []
    for index, pair in enumerate(genuine):
        reference = photos[pair.first].embedding
        for degradation in chosen(args):
            other = other_key = None
            if degradation.name == "second face":
                other_key = pick_other(pair.second)
                other = photo_tasks[other_key].path
            degraded_tasks.append(Task(DEGRADED, photo_tasks[pair.second].path, degradation.name, photos[pair.second].face,
                                       other, photos[other_key].face if other_key else None, reference, index))
    degraded = run_all(degraded_tasks, args.weights, args.workers, progress, "degraded")

    if args.save_measures:
        save_measures(args.save_measures, photos, cards, degraded, genuine)
    report = figures(args, pairs, genuine, photos, cards, degraded, threshold, calibration)
    report["seconds"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    written = write_plots(report, args.out)
    print(format_report(report))
    print(f"wrote {args.out / 'report.json'}, {', '.join(str(p) for p in written)} in {report['seconds']} s")
    return 0


def chosen(args: argparse.Namespace | None) -> list:
    """The degradations to run: those named by --degradation, else every one."""
    names = getattr(args, "degradation", None)
    return [degradation for degradation in DEGRADATIONS if not names or degradation.name in names]


def other_person(faces: dict[tuple[str, int], Face | None]):
    """A function giving, for a photo's key, the photo whose face is pasted beside it as its second
    face: the first photo with a face of another person among `faces`, drawn by the file name, so
    that reruns draw the same."""
    people = sorted({name for (name, _), face in faces.items() if face is not None})
    first_image: dict[str, tuple[str, int]] = {}
    for key in sorted(faces):
        if faces[key] is not None:
            first_image.setdefault(key[0], key)

    def pick(key: tuple[str, int]) -> tuple[str, int]:
        names = [name for name in people if name != key[0]]
        return first_image[names[seed_for(image_path(Path(), key).name) % len(names)]]
    return pick


def second_face_control(pack_path: Path, pairs: list[Pair], images: Path, sizes=(0.7, 0.8)) -> str:
    """What costs the comparisons in the second-face degradation: the other person's face, or the
    wider picture it makes. For each same-person pair of `pairs`, the probe degraded as
    `script/measure-quality` degrades it, and the same picture with the other photo's part left
    grey: the FNMR of each, how often the chosen face is not the probe's own, and of the pairs that
    the second face turns into false non-matches (the clean pair matched), how many raise
    multiple_faces."""
    import cv2

    from faceverify.verifier import FaceVerifier

    verifier = FaceVerifier.load(pack_path)
    threshold = verifier.default_threshold
    keys = sorted({key for pair in pairs for key in (pair.first, pair.second)})
    found = {key: verifier.examine(image_path(images, key), Role.PROBE) for key in keys}
    faces = {key: Face.of(f) if problem is None else None for key, (f, problem) in found.items()}
    embeddings = {key: verifier.embed([f])[0] for key, (f, problem) in found.items() if problem is None}
    pick_other = other_person(faces)
    genuine = [pair for pair in pairs if pair.genuine and faces[pair.first] and faces[pair.second]]
    clean = np.array([float(embeddings[p.first] @ embeddings[p.second]) for p in genuine])
    lines = [f"{len(genuine)} same-person pairs, threshold {threshold}: clean FNMR {percent(fnmr(clean, threshold))}"]
    for size in sizes:
        results = {"second face": [], "grey instead": []}
        for pair in genuine:
            photo = cv2.imread(str(image_path(images, pair.second)), cv2.IMREAD_COLOR)
            other_key = pick_other(pair.second)
            other = cv2.imread(str(image_path(images, other_key)), cv2.IMREAD_COLOR)
            seed = seed_for(image_path(images, pair.second).name)
            degraded = BY_NAME["second face"].apply(photo, faces[pair.second], size, seed, other=other, other_face=faces[other_key])
            own = slice(0, photo.shape[1]) if seed % 2 else slice(degraded.shape[1] - photo.shape[1], degraded.shape[1])
            grey = np.full_like(degraded, 128)
            grey[:, own] = degraded[:, own]
            for name, picture in (("second face", degraded), ("grey instead", grey)):
                outcome, problem = verifier.examine(encode_jpeg(picture), Role.PROBE)
                if problem is not None:
                    results[name].append((float("nan"), False, False))
                    continue
                centre = (outcome.face.box[0] + outcome.face.box[2]) / 2 / outcome.image.scale
                results[name].append((float(embeddings[pair.first] @ verifier.embed([outcome])[0]),
                                      not own.start <= centre < own.stop,
                                      QualityIssue.MULTIPLE_FACES in outcome.quality.issues))
        for name, rows in results.items():
            similarities = np.array([row[0] for row in rows])
            lines.append(f"  {size} {name:13s} FNMR {percent(fnmr(similarities, threshold)):>6s}, "
                         f"another face chosen {sum(row[1] for row in rows)}")
        turned = [row for row, before in zip(results["second face"], clean) if before >= threshold and not row[0] >= threshold]
        lines.append(f"  {size} pairs the second face turns into false non-matches: {len(turned)}, another face chosen in "
                     f"{sum(row[1] for row in turned)}, multiple_faces raised on {sum(row[2] for row in turned)}")
    return "\n".join(lines)


CASE_FOLDERS = {"single-face": Role.PROBE, "multi-face": Role.PROBE, "partial-face": Role.PROBE, "exif": Role.PROBE,
                "id-documents": Role.REFERENCE}
"""The cases folder's photos and the role each is checked in: documents as references, the rest as
selfies."""


def check_cases(pack_path: Path) -> list[dict]:
    """Every photo of the cases folder through the pipeline: its error code, or its issues and score."""
    from faceverify.verifier import FaceVerifier
    from faceverify_tools.shared import CASES

    verifier = FaceVerifier.load(pack_path)
    rows = []
    for folder, role in CASE_FOLDERS.items():
        for path in sorted((CASES / folder).iterdir()):
            found, problem = verifier.examine(path, role)
            row = {"file": f"{folder}/{path.name}", "role": role.value}
            if problem is not None:
                row["problem"] = problem.problem.value
            else:
                row.update(issues=[issue.value for issue in found.quality.issues], score=found.quality.score,
                           measures={k: round(v, 3) for k, v in asdict(found.quality.measures).items()})
            rows.append(row)
    return rows


def format_cases(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        if "problem" in row:
            outcome = row["problem"]
        else:
            names = [MEASURE_FOR[QualityIssue(issue)][0] if QualityIssue(issue) in MEASURE_FOR else "yaw, roll" for issue in row["issues"]]
            shown = "; ".join(f"{name} {', '.join(str(row['measures'][n]) for n in name.split(', '))}" for name in names)
            outcome = (", ".join(row["issues"]) or "no issue") + f" (score {row['score']}{'; ' + shown if shown else ''})"
        lines.append(f"{row['file']:48s} {row['role']:9s} {outcome}")
    return "\n".join(lines)


def measure_cost(pack_path: Path, calls: int = 1000) -> str:
    """The quality stage's time: `FaceVerifier.assess` on an aligned face, `calls` times after a warm-up,
    for photos with one face and with 24; then the benchmark's stage split (faceverify_tools.benchmark,
    both images of each of its pairs one after the other, 20 runs), whose `quality` entry is this stage."""
    import statistics
    from contextlib import ExitStack

    sys.path.insert(0, str(REPO))
    import predict
    from faceverify_tools.benchmark import cog_inputs, scenarios, stage_split
    from faceverify_tools.shared import CASES

    predictor = predict.Predictor()
    predictor.setup(weights=str(pack_path))
    verifier = predictor.verifier
    lines = []
    for relative in ("single-face/obama.jpg", "single-face/obama3.jpg", "multi-face/bald_guys.jpg", "id-documents/100_pass-cze.jpg"):
        found = verifier.align(verifier.find_face(CASES / relative))
        for _ in range(50):
            verifier.assess(found, Role.PROBE)
        times = []
        for _ in range(calls):
            clock = time.perf_counter()
            verifier.assess(found, Role.PROBE)
            times.append((time.perf_counter() - clock) * 1000)
        lines.append(f"{relative:34s} {len(found.faces):2d} faces: quality {statistics.median(times):.3f} ms median, "
                     f"{np.percentile(times, 95):.3f} ms p95 per face ({calls} calls)")
    with ExitStack() as cleanup:
        for scenario in scenarios():
            split = stage_split(predictor, cog_inputs(scenario, cleanup), 20)
            lines.append(f"{scenario.name:44s} stage split, both images (ms): " + ", ".join(f"{k} {v}" for k, v in split.items()))
    return "\n".join(lines)


def save_measures(path: Path, photos: dict, cards: dict, degraded: dict, genuine: list[Pair]) -> None:
    """One JSON line per image outcome: what it is, its error code or measures, norm and similarity."""
    def record(outcome: Outcome, **where) -> str:
        return json.dumps({**where, "problem": outcome.problem, "norm": outcome.norm, "similarity": outcome.similarity,
                           "measures": asdict(outcome.measures) if outcome.measures else None})

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lines:
        for kind, outcomes in ((PHOTO, photos), (CARD, cards)):
            for key, outcome in outcomes.items():
                lines.write(record(outcome, kind=kind, key=list(key)) + "\n")
        for pair in genuine:
            for kind, first in ((PHOTO, photos[pair.first]), (CARD, cards[pair.first])):
                second = photos[pair.second]
                score = float(first.embedding @ second.embedding) if first.embedding is not None and second.embedding is not None else None
                lines.write(json.dumps({"kind": f"clean {kind} pair", "reference": list(pair.first), "key": list(pair.second),
                                        "similarity": score}) + "\n")
        for task, outcomes in degraded.items():
            pair = genuine[task.pair]
            for severity, outcome in zip(BY_NAME[task.degradation].severities, outcomes):
                lines.write(record(outcome, kind=DEGRADED, degradation=task.degradation, severity=severity,
                                   reference=list(pair.first), key=list(pair.second)) + "\n")


def figures(args, pairs: list[Pair], genuine: list[Pair], photos: dict, cards: dict, degraded: dict, threshold: float,
            calibration) -> dict:
    """Every figure of the report, as JSON-ready values."""
    clean_photos = list(photos.values())
    norms = np.array([o.norm for o in clean_photos if o.norm is not None])
    norm_threshold = args.norm_threshold if args.norm_threshold is not None else float(np.percentile(norms, 1))

    def similarity(first: Outcome, second: Outcome) -> float:
        if first.embedding is None or second.embedding is None:
            return float("nan")
        return float(np.clip(first.embedding @ second.embedding, -1, 1))

    def pair_quality(first: Outcome, second: Outcome) -> float:
        return min(score_of(first.measures, Role.REFERENCE), score_of(second.measures, Role.PROBE))

    def pair_norm(first: Outcome, second: Outcome) -> float:
        return min(first.norm if first.norm is not None else -1.0, second.norm if second.norm is not None else -1.0)

    def pair_flagged(first: Outcome, second: Outcome) -> bool:
        return bool(issues_of(first.measures, Role.REFERENCE) or issues_of(second.measures, Role.PROBE))

    all_genuine = [pair for pair in pairs if pair.genuine]
    sets = {
        "clean photo vs photo": [(photos[p.first], photos[p.second]) for p in all_genuine],
        "clean card vs photo": [(cards[p.first], photos[p.second]) for p in all_genuine],
    }
    degraded_pairs = []
    by_degradation: dict[str, list[list[tuple[Outcome, Outcome]]]] = {}
    for task, outcomes in degraded.items():
        reference = photos[genuine[task.pair].first]
        rows = by_degradation.setdefault(task.degradation, [[] for _ in outcomes])
        for index, outcome in enumerate(outcomes):
            rows[index].append((reference, outcome))
            degraded_pairs.append((reference, outcome))
    sets["degraded probes"] = degraded_pairs

    def sims(items):
        values = []
        for first, second in items:
            if second.problem is not None or first.problem is not None:
                values.append(float("nan"))
            elif second.similarity is not None:
                values.append(second.similarity)
            else:
                values.append(similarity(first, second))
        return np.array(values, dtype=float)

    edc_report = {}
    shares = np.linspace(0, 0.5, 51)
    for name, items in sets.items():
        values = sims(items)
        quality = np.array([pair_quality(a, b) for a, b in items])
        norm = np.array([pair_norm(a, b) for a, b in items])
        flagged = np.array([pair_flagged(a, b) for a, b in items])
        low_norm = norm < norm_threshold
        edc_report[name] = {
            "pairs": len(items),
            "quality_score": edc(values, quality, threshold),
            "embedding_norm": edc(values, norm, threshold),
            "ideal": [{"discarded": s, "fnmr": f} for s, f in zip(DISCARD_SHARES, ideal_edc(values, threshold, DISCARD_SHARES))],
            "discard_flagged": discard_flagged(values, flagged, threshold),
            "discard_low_norm": discard_flagged(values, low_norm, threshold),
            "discard_flagged_or_low_norm": discard_flagged(values, flagged | low_norm, threshold),
            "curve": {"shares": [round(float(s), 3) for s in shares],
                      "quality_score": [row["fnmr"] for row in edc(values, quality, threshold, shares)],
                      "embedding_norm": [row["fnmr"] for row in edc(values, norm, threshold, shares)],
                      "ideal": ideal_edc(values, threshold, shares)},
        }

    clean_fnmr = fnmr(sims([(photos[p.first], photos[p.second]) for p in genuine]), threshold)
    detection = {}
    for degradation in chosen(args):
        rows = []
        doubling = None
        for severity, items in zip(degradation.severities, by_degradation.get(degradation.name, [])):
            values = sims(items)
            compared = [second for _, second in items if second.measures is not None]
            fires = [degradation.issue in issues_of(m.measures, Role.PROBE) for m in compared]
            anything = [bool(issues_of(m.measures, Role.PROBE)) for m in compared]
            row = {
                "severity": severity, "probes": len(items), "fnmr": fnmr(values, threshold),
                "refused": sum(second.problem is not None for _, second in items) / len(items),
                "issue_fires": sum(fires) / len(compared) if compared else float("nan"),
                "issue_fires_of_all": sum(fires) / len(items),
                "any_issue": sum(anything) / len(compared) if compared else float("nan"),
                "low_norm": sum(m.norm < norm_threshold for m in compared) / len(compared) if compared else float("nan"),
            }
            if doubling is None and row["fnmr"] >= DOUBLED * clean_fnmr:
                doubling = severity
                row["fnmr_doubled_here"] = True
            rows.append(row)
        pooled = [pair for items in by_degradation.get(degradation.name, []) for pair in items]
        values = sims(pooled)
        issue_flags = np.array([degradation.issue in issues_of(b.measures, Role.PROBE) or b.problem is not None for _, b in pooled])
        detection[degradation.name] = {
            "issue": degradation.issue.value, "unit": degradation.unit, "severities": rows, "doubling_severity": doubling,
            "discard_issue": discard_flagged(values, issue_flags, threshold),
            "discard_any_issue": discard_flagged(values, np.array([pair_flagged(a, b) or b.problem is not None for a, b in pooled]), threshold),
        }

    per_issue_clean = {}
    values = sims(sets["clean photo vs photo"])
    for issue in QualityIssue:
        flags = np.array([issue in issues_of(a.measures, Role.REFERENCE) or issue in issues_of(b.measures, Role.PROBE)
                          for a, b in sets["clean photo vs photo"]])
        per_issue_clean[issue.value] = discard_flagged(values, flags, threshold)

    # thresholds these images would suggest
    clean_measures = [o.measures for o in clean_photos if o.measures is not None]
    card_measures = [o.measures for o in cards.values() if o.measures is not None]
    suggestions = {}
    for degradation in chosen(args):
        if degradation.issue not in MEASURE_FOR or degradation.issue.value in suggestions:
            continue
        doubling = detection[degradation.name]["doubling_severity"]
        at_doubling = []
        if doubling is not None:
            index = degradation.severities.index(doubling)
            at_doubling = [b.measures for _, b in by_degradation[degradation.name][index] if b.measures is not None]
        suggestions[degradation.issue.value] = {
            "probe": suggested(degradation.issue, clean_measures, at_doubling, PROBE_FALSE_ALARMS),
            "reference": suggested(degradation.issue, card_measures, [], REFERENCE_FALSE_ALARMS),
        }
    measure_names = list(QualityMeasures.__dataclass_fields__)
    distributions = {
        "clean photos": {n: quantiles([getattr(m, n) for m in clean_measures]) for n in measure_names},
        "cards": {n: quantiles([getattr(m, n) for m in card_measures]) for n in measure_names},
        "embedding norm": {"clean photos": quantiles(list(norms)),
                           "cards": quantiles([o.norm for o in cards.values() if o.norm is not None])},
    }
    for degradation in chosen(args):
        if degradation.issue in MEASURE_FOR:
            name = MEASURE_FOR[degradation.issue][0]
            distributions[degradation.name] = {
                str(s): quantiles([getattr(b.measures, name) for _, b in items if b.measures is not None])
                for s, items in zip(degradation.severities, by_degradation.get(degradation.name, []))}
        elif degradation.issue is QualityIssue.HEAD_TURNED:
            distributions[degradation.name] = {
                str(s): quantiles([abs(b.measures.roll) for _, b in items if b.measures is not None])
                for s, items in zip(degradation.severities, by_degradation.get(degradation.name, []))}

    norm_clean = sims(sets["clean photo vs photo"])
    return {
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["script/measure-quality", *(sys.argv[1:] if args is not None else [])]),
        "pairs_files": [shown(p) for p in (args.pairs or [LFW / "pairsDevTrain.txt", LFW / "pairsDevTest.txt"])],
        "model_pack": shown(args.weights), "default_threshold": threshold,
        "rules": {"probe": asdict(PROBE_RULES), "reference": asdict(REFERENCE_RULES)},
        "false_alarms": {
            "photos as probes": false_alarms(clean_photos, Role.PROBE),
            "photos as references": false_alarms(clean_photos, Role.REFERENCE),
            "cards as references": false_alarms(list(cards.values()), Role.REFERENCE),
        },
        "clean_fnmr": clean_fnmr, "same_person_pairs": len(genuine),
        "detection": detection,
        "edc": edc_report,
        "clean_discard_per_issue": per_issue_clean,
        "embedding_norm": {
            "threshold": norm_threshold, "from": "--norm-threshold" if args.norm_threshold is not None else "1st percentile of these clean photos",
            "false_alarms_photos": float(np.mean(norms < norm_threshold)),
            "false_alarms_cards": float(np.mean([o.norm < norm_threshold for o in cards.values() if o.norm is not None])),
            "correlation_with_same_person_similarity": float(np.corrcoef(
                [min(a.norm, b.norm) for a, b in sets["clean photo vs photo"] if a.norm and b.norm],
                [v for v, (a, b) in zip(norm_clean, sets["clean photo vs photo"]) if a.norm and b.norm])[0, 1]),
        },
        "suggested_thresholds": suggestions,
        "distributions": distributions,
    }


def write_plots(report: dict, out: Path) -> list[Path]:
    """OUT/edc.png: FNMR against the share of pairs discarded, one panel per set (quality score,
    embedding norm, the ideal, and the point where every pair with an issue is discarded);
    OUT/detection.png: for each degradation, FNMR and the share raising its issue by severity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = [out / "edc.png", out / "detection.png"]
    sets = report["edc"]
    figure, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.6), squeeze=False)
    for axis, (name, entry) in zip(axes[0], sets.items()):
        curve = entry["curve"]
        shares = 100 * np.array(curve["shares"])
        axis.plot(shares, 100 * np.array(curve["quality_score"]), label="quality score")
        axis.plot(shares, 100 * np.array(curve["embedding_norm"]), label="embedding norm", linestyle="--")
        axis.plot(shares, 100 * np.array(curve["ideal"]), label="ideal", color="grey", linestyle=":")
        flagged = entry["discard_flagged"]
        axis.plot([100 * flagged["flagged"]], [100 * flagged["fnmr_kept"]], "o", color="black", label="pairs with an issue discarded")
        axis.set_title(f"{name} ({entry['pairs']} pairs)", fontsize=9)
        axis.set_xlabel("pairs discarded, lowest quality first (%)")
        axis.set_ylabel(f"FNMR at {report['default_threshold']} (%)")
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("Error versus discard characteristic (ISO/IEC 29794-1)", fontsize=10)
    figure.tight_layout()
    figure.savefig(written[0], dpi=110)
    plt.close(figure)

    detection = report["detection"]
    columns = 4
    rows = -(-len(detection) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.8 * rows), squeeze=False)
    for axis, (name, entry) in zip(axes.flat, detection.items()):
        severities = [str(row["severity"]) for row in entry["severities"]]
        axis.plot(severities, [100 * row["fnmr"] for row in entry["severities"]], "o-", color="tab:red", label="FNMR")
        axis.axhline(100 * DOUBLED * report["clean_fnmr"], color="tab:red", linestyle=":", linewidth=1, label="2x clean FNMR")
        axis.plot(severities, [100 * row["issue_fires"] for row in entry["severities"]], "s-", color="tab:blue",
                  label=f"{entry['issue']} raised")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel(entry["unit"], fontsize=8)
        axis.set_ylim(0, 102)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=6)
    for axis in list(axes.flat)[len(detection):]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(written[1], dpi=100)
    plt.close(figure)
    return written


def percent(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}%"


def format_report(report: dict) -> str:
    """The report's tables as text."""
    lines = [f"pack {report['model_pack']}, default threshold {report['default_threshold']}, "
             f"{report['same_person_pairs']} same-person pairs, clean FNMR {percent(report['clean_fnmr'])}"]
    lines.append("false alarms (share of images with a face raising the issue):")
    header = f"  {'':22s}" + "".join(f"{issue.value:>16s}" for issue in QualityIssue) + f"{'any':>8s}"
    lines.append(header)
    for name, row in report["false_alarms"].items():
        lines.append(f"  {name:22s}" + "".join(f"{percent(row['rates'][i.value]):>16s}" for i in QualityIssue) + f"{percent(row['any']):>8s}")
        lines.append(f"  {'  95% upper bound':22s}" + "".join(f"{'<= ' + percent(row['upper_bounds'][i.value]):>16s}" for i in QualityIssue))
    lines.append("detection (FNMR at the default threshold; refused: error code; issue: share of the compared probes raising it):")
    for name, entry in report["detection"].items():
        lines.append(f"  {name} -> {entry['issue']} ({entry['unit']}); FNMR doubles at {entry['doubling_severity']}")
        for row in entry["severities"]:
            mark = " <- FNMR doubled" if row.get("fnmr_doubled_here") else ""
            lines.append(f"    {row['severity']:>6}: FNMR {percent(row['fnmr']):>7s}  refused {percent(row['refused']):>6s}  "
                         f"issue {percent(row['issue_fires']):>7s}  any issue {percent(row['any_issue']):>7s}  "
                         f"low norm {percent(row['low_norm']):>7s}{mark}")
        d = entry["discard_issue"]
        lines.append(f"    discarding the pairs it flags (or refuses), all severities: FNMR {percent(d['fnmr_all'])} -> "
                     f"{percent(d['fnmr_kept'])}, {percent(d['flagged'])} discarded")
    lines.append("error against discard (FNMR of the pairs kept, lowest quality first):")
    for name, entry in report["edc"].items():
        lines.append(f"  {name} ({entry['pairs']} pairs)")
        for key in ("quality_score", "embedding_norm"):
            lines.append(f"    {key:15s}" + "  ".join(f"{100 * r['discarded']:.0f}%: {percent(r['fnmr'])}" for r in entry[key]))
        lines.append(f"    {'ideal':15s}" + "  ".join(f"{100 * r['discarded']:.0f}%: {percent(r['fnmr'])}" for r in entry["ideal"]))
        for key in ("discard_flagged", "discard_low_norm", "discard_flagged_or_low_norm"):
            d = entry[key]
            lines.append(f"    {key}: {percent(d['flagged'])} discarded, FNMR {percent(d['fnmr_all'])} -> {percent(d['fnmr_kept'])}")
    lines.append("clean photo pairs, discarding those one issue flags:")
    for issue, d in report["clean_discard_per_issue"].items():
        lines.append(f"  {issue:16s} {percent(d['flagged'])} discarded, FNMR {percent(d['fnmr_all'])} -> {percent(d['fnmr_kept'])}")
    norm = report["embedding_norm"]
    lines.append(f"embedding norm: threshold {norm['threshold']:.3f} ({norm['from']}), flags {percent(norm['false_alarms_photos'])} of "
                 f"photos, {percent(norm['false_alarms_cards'])} of cards; correlation of the pair's lower norm with "
                 f"same-person similarity {norm['correlation_with_same_person_similarity']:.2f}")
    lines.append("where thresholds could go on these images (half the false-alarm limit | 95% at the doubling severity):")
    for issue, entry in report["suggested_thresholds"].items():
        probe, reference = entry["probe"], entry["reference"]
        lines.append(f"  {issue:16s} {probe['measure']} {probe['fires_when']}: probe {probe['flags_half_the_false_alarm_limit']:.4f} | "
                     f"{probe.get('flags_95_percent_at_doubling', float('nan')):.4f}; reference {reference['flags_half_the_false_alarm_limit']:.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
