"""Error rates from similarity scores: FMR/FNMR, the 10-fold protocol, TAR at a fixed FMR, EER.

Every function takes `scores` (one similarity per pair) and `genuine` (True for a same-person
pair). A pair is called a match when its score is at least the threshold. Pairs the model could
not compare carry FAILED_SCORE, which no threshold reaches: they count as non-matches, which is
what the model answers for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FAILED_SCORE = -2.0
"""The score given to a pair where an image yielded no face: below every possible cosine."""

GRID = np.round(np.arange(-100, 101) / 100, 2)
"""Thresholds of the FMR/FNMR table: -1.00 to 1.00 in steps of 0.01."""


@dataclass(frozen=True)
class Rates:
    """Error counts and rates at one threshold."""

    threshold: float
    false_matches: int
    impostor_pairs: int
    false_non_matches: int
    genuine_pairs: int

    @property
    def fmr(self) -> float:
        return self.false_matches / self.impostor_pairs if self.impostor_pairs else math.nan

    @property
    def fnmr(self) -> float:
        return self.false_non_matches / self.genuine_pairs if self.genuine_pairs else math.nan


def rates_at(scores: np.ndarray, genuine: np.ndarray, threshold: float) -> Rates:
    """False matches among impostor pairs and false non-matches among genuine pairs at `threshold`."""
    matched = scores >= threshold
    return Rates(
        threshold=float(threshold),
        false_matches=int((matched & ~genuine).sum()), impostor_pairs=int((~genuine).sum()),
        false_non_matches=int((~matched & genuine).sum()), genuine_pairs=int(genuine.sum()),
    )


def rate_table(scores: np.ndarray, genuine: np.ndarray, thresholds: np.ndarray = GRID) -> list[Rates]:
    """`rates_at` for every threshold of `thresholds` (by default the 0.01 grid from -1 to 1)."""
    return [rates_at(scores, genuine, float(t)) for t in thresholds]


def best_threshold(scores: np.ndarray, genuine: np.ndarray) -> float:
    """The threshold with the highest accuracy on these pairs: a midpoint between two adjacent
    distinct scores (or just outside their range), the lowest one on ties."""
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1e-3], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-3]])
    genuine_sorted = np.sort(scores[genuine])
    impostor_sorted = np.sort(scores[~genuine])
    genuine_accepted = len(genuine_sorted) - np.searchsorted(genuine_sorted, candidates, side="left")
    impostors_rejected = np.searchsorted(impostor_sorted, candidates, side="left")
    return float(candidates[int(np.argmax(genuine_accepted + impostors_rejected))])


@dataclass(frozen=True)
class FoldResult:
    """One fold of the 10-fold protocol: the threshold chosen on the other folds, and accuracy on this one."""

    threshold: float
    accuracy: float


def ten_fold_accuracy(scores: np.ndarray, genuine: np.ndarray, folds: int = 10) -> list[FoldResult]:
    """The standard LFW protocol: pairs split in file order into `folds` equal consecutive blocks
    (LFW's pairs.txt is 10 blocks of 300 genuine + 300 impostor pairs); for each block, the
    threshold with the best accuracy on the others is applied to it."""
    if len(scores) < folds:
        raise ValueError(f"{len(scores)} pairs cannot be split into {folds} folds")
    blocks = np.array_split(np.arange(len(scores)), folds)
    results = []
    for block in blocks:
        train = np.ones(len(scores), dtype=bool)
        train[block] = False
        threshold = best_threshold(scores[train], genuine[train])
        accuracy = float(((scores[block] >= threshold) == genuine[block]).mean())
        results.append(FoldResult(threshold, accuracy))
    return results


@dataclass(frozen=True)
class OperatingPoint:
    """The lowest threshold whose FMR is at most `target_fmr`, and the TAR (1 - FNMR) there."""

    target_fmr: float
    threshold: float
    fmr: float
    tar: float


def tar_at_fmr(scores: np.ndarray, genuine: np.ndarray, target_fmr: float) -> OperatingPoint:
    """True accept rate at the lowest threshold that lets at most `target_fmr` of impostors through.
    With N impostor pairs, only floor(target_fmr * N) of them may score at or above it."""
    impostors = np.sort(scores[~genuine])[::-1]
    allowed = int(math.floor(target_fmr * len(impostors) + 1e-9))
    if allowed >= len(impostors):
        threshold = float(scores.min())
    else:
        threshold = float(np.nextafter(impostors[allowed], np.inf))
    rates = rates_at(scores, genuine, threshold)
    return OperatingPoint(target_fmr, threshold, rates.fmr, 1.0 - rates.fnmr)


def equal_error_rate(scores: np.ndarray, genuine: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): where FMR and FNMR cross, as the mean of the two at the closest threshold."""
    candidates = np.unique(scores)
    impostors = np.sort(scores[~genuine])
    genuines = np.sort(scores[genuine])
    fmr = (len(impostors) - np.searchsorted(impostors, candidates, side="left")) / len(impostors)
    fnmr = np.searchsorted(genuines, candidates, side="left") / len(genuines)
    best = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[best] + fnmr[best]) / 2), float(candidates[best])
