"""All-vs-all calibration: every image against every other, counted per threshold, and the
calibration file built from the counts with a one-sided Clopper-Pearson upper bound on the FMR.

Impostor pairs are every image with a face against every image with a face of every other person;
genuine pairs are every two distinct images of one person. Similarities are computed by blocks of a
matrix product and rounded as `faceverify.compare` rounds them; only counts per threshold of
GRID are kept, never the scores. An image where the pipeline found no face takes part in no
impostor pair (it could not be matched, and counting it would shrink the bound) and makes each of
its genuine pairs a non-match (the model's answer). The file format is described in
`faceverify/calibration.py`; how to read and choose it in docs/accuracy.md.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

from faceverify.compare import SIMILARITY_DECIMALS

GRID_STEP = 0.005
GRID = np.round(np.arange(-200, 201) * GRID_STEP, 3)
"""Thresholds of a calibration table: -1.000 to 1.000 in steps of 0.005 (401 rows)."""

CONFIDENCE = 0.95
OPERATING_FMRS = (1e-3, 1e-4, 1e-5)
"""FMR targets whose thresholds a calibration file and report list."""


class UnsupportedTarget(ValueError):
    """The calibration pairs cannot show that the target FMR is met at any grid threshold."""


def fmr_upper_bound(false_matches: int, impostor_pairs: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound on the FMR after `false_matches` of `impostor_pairs`.

    For 0 false matches it is 1 - (1 - confidence) ** (1 / impostor_pairs), about 3 / n at 95%."""
    if false_matches >= impostor_pairs:
        return 1.0
    return float(beta.ppf(confidence, false_matches + 1, impostor_pairs - false_matches))


def pairs_needed(target_fmr: float, confidence: float = CONFIDENCE) -> int:
    """The fewest impostor pairs whose bound can reach `target_fmr` (with zero false matches)."""
    return math.ceil(math.log(1 - confidence) / math.log1p(-target_fmr))


def ceil_significant(value: float, digits: int = 3) -> float:
    """`value` rounded up to `digits` significant digits, so a stored bound never understates."""
    if value <= 0 or value >= 1:
        return float(value)
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    return min(1.0, math.ceil(value * scale) / scale)


@dataclass(frozen=True)
class PairCounts:
    """All-vs-all counts per GRID threshold: impostor pairs at or above it, genuine pairs below it."""

    impostors_at_or_above: np.ndarray
    genuine_below: np.ndarray
    impostor_pairs: int
    genuine_pairs: int
    images: int
    people: int
    failed_images: int


def count_all_vs_all(embeddings: np.ndarray, people: Sequence[str], failed_people: Sequence[str] = (),
                     block: int = 1024) -> PairCounts:
    """Count every pair of the images whose unit `embeddings` (one row each) belong to `people`.

    `failed_people` names the person of each image in which no face was found (see the module
    docstring for how they count)."""
    if len(embeddings) != len(people):
        raise ValueError(f"{len(embeddings)} embeddings for {len(people)} people labels")
    vectors = np.asarray(embeddings, dtype=np.float64).reshape(len(people), -1)
    names = {name: index for index, name in enumerate(sorted(set(people) | set(failed_people)))}
    ids = np.array([names[name] for name in people], dtype=np.int64)
    impostor_bins = np.zeros(len(GRID) + 1, dtype=np.int64)
    genuine_bins = np.zeros(len(GRID) + 1, dtype=np.int64)
    columns = np.arange(len(vectors))
    for start in range(0, len(vectors), block):
        rows = columns[start:start + block]
        similarity = np.round(np.clip(vectors[rows] @ vectors.T, -1.0, 1.0), SIMILARITY_DECIMALS)
        later = columns[None, :] > rows[:, None]
        same = ids[rows][:, None] == ids[None, :]
        for selected, bins in ((later & ~same, impostor_bins), (later & same, genuine_bins)):
            bins += np.bincount(np.searchsorted(GRID, similarity[selected], side="right"), minlength=len(GRID) + 1)
    with_face, failed = Counter(people), Counter(failed_people)
    failed_genuine = sum(math.comb(with_face[name] + failed[name], 2) - math.comb(with_face[name], 2) for name in failed)
    # bin b holds scores s with GRID[b-1] <= s < GRID[b]: s >= GRID[i] exactly when b > i
    return PairCounts(
        impostors_at_or_above=np.cumsum(impostor_bins[::-1])[::-1][1:],
        genuine_below=np.cumsum(genuine_bins)[:-1] + failed_genuine,
        impostor_pairs=int(impostor_bins.sum()),
        genuine_pairs=int(genuine_bins.sum()) + failed_genuine,
        images=len(people) + len(failed_people),
        people=len(names),
        failed_images=len(failed_people),
    )


def rate_rows(counts: PairCounts, confidence: float = CONFIDENCE) -> list[dict]:
    """One table row per GRID threshold: counts, FMR point estimate, FMR upper bound (rounded up), FNMR."""
    rows = []
    for threshold, false_matches, false_non_matches in zip(GRID, counts.impostors_at_or_above, counts.genuine_below):
        k, g = int(false_matches), int(false_non_matches)
        rows.append({
            "threshold": float(threshold), "impostors_at_or_above": k, "genuine_below": g,
            "fmr": float(f"{k / counts.impostor_pairs:.4g}"),
            "fmr_upper": ceil_significant(fmr_upper_bound(k, counts.impostor_pairs, confidence)),
            "fnmr": float(f"{g / counts.genuine_pairs:.4g}") if counts.genuine_pairs else None,
        })
    return rows


def lowest_threshold_meeting(rows: list[dict], target_fmr: float) -> dict | None:
    """The row of the lowest threshold in [0, 1] whose FMR upper bound is at most `target_fmr`."""
    return next((row for row in rows if row["threshold"] >= 0 and row["fmr_upper"] <= target_fmr), None)


def unsupported_reason(counts: PairCounts, rows: list[dict], target_fmr: float, confidence: float = CONFIDENCE) -> str | None:
    """Why no grid threshold's upper bound reaches `target_fmr`, or None when one does."""
    if lowest_threshold_meeting(rows, target_fmr) is not None:
        return None
    needed = pairs_needed(target_fmr, confidence)
    if counts.impostor_pairs < needed:
        return (f"{counts.impostor_pairs} impostor pairs cannot support a target FMR of {target_fmr:g}: even with none "
                f"at or above a threshold, the {confidence:.0%} upper bound is "
                f"{fmr_upper_bound(0, counts.impostor_pairs, confidence):.3g}; it needs at least {needed} impostor pairs")
    return (f"no threshold up to 1.0 has an FMR upper bound <= {target_fmr:g}: "
            f"{rows[-1]['impostors_at_or_above']} impostor pairs score 1.0 (check the labels for duplicates)")


def operating_point(rows: list[dict], target_fmr: float) -> dict:
    """The lowest threshold whose bound meets `target_fmr`, with its counts and rates, or `threshold: None`."""
    row = lowest_threshold_meeting(rows, target_fmr)
    return {"target_fmr": target_fmr, **(row or {"threshold": None})}


def calibration_record(counts: PairCounts, model_id: str, sha256: dict[str, str], target_fmr: float, *,
                       source: str, population: str, date: str, confidence: float = CONFIDENCE,
                       allow_unsupported: bool = False) -> dict:
    """The calibration file's content. The default threshold is the lowest GRID threshold in [0, 1]
    whose FMR upper bound is at most `target_fmr`; raises UnsupportedTarget when none is, unless
    `allow_unsupported`, when it is the lowest threshold with the smallest bound and the record says so."""
    if counts.impostor_pairs == 0:
        raise UnsupportedTarget("there are no impostor pairs: every image with a face shows the same person")
    rows = rate_rows(counts, confidence)
    reason = unsupported_reason(counts, rows, target_fmr, confidence)
    if reason and not allow_unsupported:
        raise UnsupportedTarget(reason)
    if reason:
        in_range = [row for row in rows if row["threshold"] >= 0]
        smallest = min(row["fmr_upper"] for row in in_range)
        default = next(row for row in in_range if row["fmr_upper"] == smallest)
        method = (f"TARGET NOT SUPPORTED (written with --allow-unsupported-target): {reason}. The default is the lowest "
                  f"threshold with the smallest bound the sample gives.")
    else:
        default = lowest_threshold_meeting(rows, target_fmr)
        method = (f"All-vs-all pairs of the images of `source`. The default threshold is the lowest threshold on a "
                  f"{GRID_STEP:g} grid whose one-sided {confidence:.0%} Clopper-Pearson upper bound on the false match "
                  f"rate is at most target_fmr. Pairs reuse images, so they are not independent and the bound is "
                  f"optimistic in that respect; see docs/accuracy.md.")
    return {
        "format": 2,
        "model_id": model_id,
        "sha256": sha256,
        "default_threshold": default["threshold"],
        "target_fmr": target_fmr,
        "target_supported": reason is None,
        "confidence": confidence,
        "at_default": default,
        "method": method,
        "source": source,
        "population": population,
        "date": date,
        "images": counts.images,
        "people": counts.people,
        "failed_images": counts.failed_images,
        "impostor_pairs": counts.impostor_pairs,
        "genuine_pairs": counts.genuine_pairs,
        "grid": {"start": float(GRID[0]), "stop": float(GRID[-1]), "step": GRID_STEP},
        "operating_points": [operating_point(rows, target) for target in OPERATING_FMRS],
        "table": rows,
    }


def calibration_json(record: dict) -> str:
    """A calibration record as JSON text, one table row per line so the file reads as a table."""
    head = json.dumps({k: v for k, v in record.items() if k != "table"}, indent=1)
    rows = ",\n".join("  " + json.dumps(row) for row in record["table"])
    return head[:-2] + ',\n "table": [\n' + rows + "\n ]\n}\n"


def format_calibration(record: dict) -> str:
    """The calibration's figures as a few lines of text."""
    at = record["at_default"]
    lines = [
        (f"== calibration: {record['impostor_pairs']} impostor and {record['genuine_pairs']} genuine pairs "
         f"(all-vs-all, {record['images']} images of {record['people']} people, {record['failed_images']} without a face)"),
        (f"default threshold {at['threshold']:.3f} for target FMR {record['target_fmr']:g}"
         f"{'' if record['target_supported'] else ' (TARGET NOT SUPPORTED)'}: "
         f"FMR {at['impostors_at_or_above']}/{record['impostor_pairs']}, {record['confidence']:.0%} upper bound {at['fmr_upper']:.3g}; "
         f"FNMR {at['genuine_below']}/{record['genuine_pairs']} ({percent(at['fnmr'])})"),
        "FMR bound  threshold  impostors >=  FMR upper  FNMR",
    ]
    for point in record["operating_points"]:
        if point["threshold"] is None:
            lines.append(f"  {point['target_fmr']:<8g} not supported by {record['impostor_pairs']} impostor pairs")
        else:
            lines.append(f"  {point['target_fmr']:<8g} {point['threshold']:.3f}      {point['impostors_at_or_above']:>10}  "
                         f"{point['fmr_upper']:.3g}   {percent(point['fnmr'])}")
    return "\n".join(lines)


def percent(rate: float | None) -> str:
    """A rate as a percentage with two decimals, or `n/a` when there were no pairs to measure it."""
    return "n/a" if rate is None else f"{100 * rate:.2f}%"
