"""Scores of a pairs set -> the figures people read: a JSON-ready summary and text."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from faceverify.compare import cosine_similarity
from faceverify.quality import QualityIssue, Role, assess
from faceverify_tools.pairs import Pair

from . import calibrate, metrics
from .calibrate import fmr_upper_bound
from .embedding_run import PHOTO

TARGET_FMRS = (1e-2, 1e-3, 1e-4)
OFF_CENTRE = 0.15
"""A chosen face whose centre is further than this (share of the image's sides) from the image
centre is reported as off-centre: on LFW, where every subject is centred, a wrong face."""


@dataclass
class ScoredPairs:
    """One evaluation set: a similarity per pair (FAILED_SCORE where no comparison was made)."""

    name: str
    pairs: list[Pair]
    scores: np.ndarray
    genuine: np.ndarray
    failures: Counter = field(default_factory=Counter)
    failed_images: list[str] = field(default_factory=list)
    off_centre_images: list[str] = field(default_factory=list)


def score_pairs(name: str, pairs: list[Pair], first: dict, second: dict) -> ScoredPairs:
    """Cosine similarity for each pair from the outcomes of its two images.

    `first` and `second` map an image key to its ImageOutcome for the pair's first and second
    image (the first may be a synthetic card). A pair whose image failed gets FAILED_SCORE and
    its reason is counted, e.g. `image1_no_face`.
    """
    scores = np.empty(len(pairs))
    failures: Counter = Counter()
    failed_images: set[str] = set()
    for index, pair in enumerate(pairs):
        outcome1, outcome2 = first[pair.first], second[pair.second]
        failed = [(slot, outcome) for slot, outcome in (("image1", outcome1), ("image2", outcome2)) if outcome.problem]
        if failed:
            slot, outcome = failed[0]
            failures[f"{slot}_{outcome.problem}"] += 1
            failed_images.update(f"{o.task.kind}:{o.task.path.name}" for _, o in failed)
            scores[index] = metrics.FAILED_SCORE
        else:
            scores[index] = cosine_similarity(outcome1.embedding, outcome2.embedding)
    genuine = np.array([pair.genuine for pair in pairs])
    off_centre = {f"{o.task.kind}:{o.task.path.name}" for o in [*first.values(), *second.values()]
                  if o.task.kind == PHOTO and o.face_offset is not None and o.face_offset > OFF_CENTRE}
    return ScoredPairs(name, pairs, scores, genuine, failures, sorted(failed_images), sorted(off_centre))


def quality_issue_rates(pairs: list[Pair], first: dict, second: dict) -> dict:
    """How often each quality issue fires: on the distinct first images of the pairs under the
    reference's rules, and on the distinct second images under the probe's, as shares of the images
    with a face (faceverify/quality.py), and each share's one-sided 95% upper bound."""
    def rates(outcomes: list, role: Role) -> dict:
        raised = [assess(o.measures, role).issues for o in outcomes if o.measures is not None]
        counts = {issue.value: sum(issue in r for r in raised) for issue in QualityIssue}
        shares = {issue: count / max(len(raised), 1) for issue, count in counts.items()}
        bounds = {issue: calibrate.fmr_upper_bound(count, len(raised)) if raised else 1.0 for issue, count in counts.items()}
        return {"images": len(raised), "any": sum(bool(r) for r in raised) / max(len(raised), 1), **shares,
                "upper_bounds": bounds}

    return {"references": rates([first[key] for key in dict.fromkeys(p.first for p in pairs)], Role.REFERENCE),
            "probes": rates([second[key] for key in dict.fromkeys(p.second for p in pairs)], Role.PROBE)}


def format_quality(name: str, rates: dict) -> str:
    """One set's quality issue rates as text."""
    lines = [f"quality issues ({name}), share of the images with a face:"]
    for side, row in rates.items():
        issues = ", ".join(f"{issue.value} {100 * row[issue.value]:.2f}% (<= {100 * row['upper_bounds'][issue.value]:.2f}%)"
                           for issue in QualityIssue)
        lines.append(f"  {side} ({row['images']}): any {100 * row['any']:.2f}%; {issues}")
    return "\n".join(lines)


def summarize(scored: ScoredPairs, default_threshold: float | None, folds: int = 10) -> dict:
    """Every figure of the report for one set, as plain JSON-ready values."""
    scores, genuine = scored.scores, scored.genuine
    fold_results = metrics.ten_fold_accuracy(scores, genuine, folds)
    accuracies = [fold.accuracy for fold in fold_results]
    eer, eer_threshold = metrics.equal_error_rate(scores, genuine)
    summary = {
        "pairs": len(scores),
        "genuine_pairs": int(genuine.sum()),
        "impostor_pairs": int((~genuine).sum()),
        "failed_pairs": int(sum(scored.failures.values())),
        "failures": dict(scored.failures),
        "failed_images": scored.failed_images,
        "off_centre_images": scored.off_centre_images,
        "ten_fold_accuracy": {
            "mean": statistics.mean(accuracies),
            "std": statistics.pstdev(accuracies),
            "folds": [{"threshold": round(f.threshold, 4), "accuracy": f.accuracy} for f in fold_results],
        },
        "tar_at_fmr": [
            {"target_fmr": p.target_fmr, "threshold": round(p.threshold, 4), "fmr": p.fmr, "tar": p.tar, "fnmr": 1.0 - p.tar,
             "impostors_allowed": math.floor(p.target_fmr * int((~genuine).sum()) + 1e-9)}
            for p in (metrics.tar_at_fmr(scores, genuine, target) for target in TARGET_FMRS)
        ],
        "eer": eer,
        "eer_threshold": eer_threshold,
        "table": [rates_record(r) for r in metrics.rate_table(scores, genuine)],
    }
    if default_threshold is not None:
        at = metrics.rates_at(scores, genuine, default_threshold)
        summary["at_default_threshold"] = {**rates_record(at), "fmr_upper": fmr_upper_bound(at.false_matches, at.impostor_pairs)}
    return summary


def rates_record(rates: metrics.Rates) -> dict:
    """One threshold's counts and rates as JSON."""
    return {
        "threshold": rates.threshold, "fmr": rates.fmr, "fnmr": rates.fnmr,
        "false_matches": rates.false_matches, "impostor_pairs": rates.impostor_pairs,
        "false_non_matches": rates.false_non_matches, "genuine_pairs": rates.genuine_pairs,
    }


def format_summary(name: str, summary: dict, default_threshold: float | None) -> str:
    """The figures of one set as a few lines of text."""
    ten = summary["ten_fold_accuracy"]
    lines = [
        f"== {name}: {summary['pairs']} pairs ({summary['genuine_pairs']} genuine, {summary['impostor_pairs']} impostor), "
        f"{summary['failed_pairs']} failed {summary['failures'] or ''}",
        f"photos whose chosen face is off-centre (> {OFF_CENTRE} of the sides): {len(summary['off_centre_images'])} "
        f"{summary['off_centre_images'][:5] or ''}",
        f"10-fold accuracy        {100 * ten['mean']:.2f}% +- {100 * ten['std']:.2f}",
        *(f"TAR at FMR {p['target_fmr']:<9g} {100 * p['tar']:.2f}%, FNMR {100 * p['fnmr']:.2f}% (threshold {p['threshold']:.4f}, "
          f"at most {p['impostors_allowed']} of {summary['impostor_pairs']} impostors)" for p in summary["tar_at_fmr"]),
        f"EER                     {100 * summary['eer']:.2f}% (threshold {summary['eer_threshold']:.4f})",
    ]
    if default_threshold is not None:
        at = summary["at_default_threshold"]
        lines.append(
            f"at default {default_threshold:<13.3f} FMR {100 * at['fmr']:.3f}% ({at['false_matches']}/{at['impostor_pairs']}, "
            f"95% upper bound {100 * at['fmr_upper']:.3f}%), "
            f"FNMR {100 * at['fnmr']:.2f}% ({at['false_non_matches']}/{at['genuine_pairs']})"
        )
    lines.append("threshold    FMR       FNMR")
    for row in summary["table"]:
        if 0.2 <= row["threshold"] <= 0.6 and round(row["threshold"] * 100) % 4 == 0:
            lines.append(f"  {row['threshold']:.2f}    {100 * row['fmr']:6.3f}%  {100 * row['fnmr']:6.2f}%")
    return "\n".join(lines)
