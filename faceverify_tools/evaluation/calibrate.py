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

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import beta

from faceverify.compare import SIMILARITY_DECIMALS

GRID_STEP = 0.005
GRID = np.round(np.arange(-200, 201) * GRID_STEP, 3)
"""Thresholds of a calibration table: -1.000 to 1.000 in steps of 0.005 (401 rows)."""

CONFIDENCE = 0.95
PEOPLE_LEVEL = 0.995
"""The quantile of the FMR over resamples of the people that a bound is at least (see `people_bound`):
the lowest of 0.95, 0.99 and 0.995 whose bound, found on half the people, covered the other half's
FMR in at least 95% of 40 splits at each operating point on the calibration sets (docs/accuracy.md)."""
RESAMPLES = 1000
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


def sample_needed(target_fmr: float, confidence: float = CONFIDENCE) -> int:
    """The fewest impostor pairs whose floor (`sample_floor`) can reach `target_fmr`: four times `pairs_needed`."""
    return 4 * pairs_needed(target_fmr, confidence)


def ceil_significant(value: float, digits: int = 3) -> float:
    """`value` rounded up to `digits` significant digits, so a stored bound never understates."""
    if value <= 0 or value >= 1:
        return float(value)
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    return min(1.0, math.ceil(value * scale) / scale)


def sample_floor(impostor_pairs: int, confidence: float = CONFIDENCE) -> float:
    """The smallest FMR a sample of people can check: the bound for no false match among the impostor
    pairs of half its people (about a quarter of its pairs).

    Pairs share images and people, so a bound from n pairs is only as good as a person split can
    confirm: below this rate the other half of the people shows no false match whatever the rate is
    (docs/accuracy.md, "Person-split coverage"). A rate read from the population is never lower."""
    return ceil_significant(fmr_upper_bound(0, max(1, impostor_pairs // 4), confidence))


@dataclass(frozen=True)
class GroupCounts:
    """All-vs-all counts within a group of people (`F`), or between two (`F-M`): impostor pairs at or above
    each GRID threshold, and (for a group) genuine pairs below it."""

    impostors_at_or_above: np.ndarray
    impostor_pairs: int
    genuine_below: np.ndarray | None = None
    genuine_pairs: int = 0


@dataclass(frozen=True)
class PairCounts:
    """All-vs-all counts per GRID threshold: impostor pairs at or above it, genuine pairs below it.

    `tail` holds the impostor pairs scoring at least `tail_from` as (first image, second image, score)
    arrays, indices into the embeddings counted; `labels` is each of those images' person."""

    impostors_at_or_above: np.ndarray
    genuine_below: np.ndarray
    impostor_pairs: int
    genuine_pairs: int
    images: int
    people: int
    failed_images: int
    excluded_pairs: int = 0
    groups: dict[str, GroupCounts] = field(default_factory=dict)
    tail_from: float | None = None
    tail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    labels: tuple[str, ...] = ()


def count_all_vs_all(embeddings: np.ndarray, people: Sequence[str], failed_people: Sequence[str] = (),
                     block: int = 1024, *, groups: Mapping[str, str] | None = None,
                     excluded: Iterable[tuple[int, int]] = (), tail_from: float | None = None) -> PairCounts:
    """Count every pair of the images whose unit `embeddings` (one row each) belong to `people`.

    `failed_people` names the person of each image in which no face was found (see the module
    docstring for how they count). `groups` maps each person to a group (e.g. gender) to count
    within and between groups too; `excluded` lists impostor pairs (indices of two embeddings) left
    out of every count; impostor pairs scoring at least `tail_from` are kept in `tail`."""
    if len(embeddings) != len(people):
        raise ValueError(f"{len(embeddings)} embeddings for {len(people)} people labels")
    vectors = np.asarray(embeddings, dtype=np.float64).reshape(len(people), -1)
    names = {name: index for index, name in enumerate(sorted(set(people) | set(failed_people)))}
    ids = np.array([names[name] for name in people], dtype=np.int64)
    group_names = sorted(set(groups.values())) if groups else []
    group_of = np.array([group_names.index(groups[name]) for name in people], dtype=np.int64) if groups else None
    categories = len(group_names) ** 2 or 1
    bins_count = len(GRID) + 1
    impostor_bins = np.zeros((categories, bins_count), dtype=np.int64)
    genuine_bins = np.zeros((categories, bins_count), dtype=np.int64)
    dropped: dict[int, list[int]] = {}
    for a, b in {(min(a, b), max(a, b)) for a, b in excluded if a != b}:
        if ids[a] != ids[b]:
            dropped.setdefault(a, []).append(b)
    tails: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    columns = np.arange(len(vectors))
    for start in range(0, len(vectors), block):
        rows = columns[start:start + block]
        similarity = np.round(np.clip(vectors[rows] @ vectors.T, -1.0, 1.0), SIMILARITY_DECIMALS)
        later = columns[None, :] > rows[:, None]
        same = ids[rows][:, None] == ids[None, :]
        impostor = later & ~same
        for row in rows:
            if row in dropped:
                impostor[row - start, dropped[row]] = False
        category = (np.maximum.outer(group_of[rows], group_of) * len(group_names) + np.minimum.outer(group_of[rows], group_of)
                    if group_of is not None else np.zeros(similarity.shape, dtype=np.int64))
        for selected, bins in ((impostor, impostor_bins), (later & same, genuine_bins)):
            index = category[selected] * bins_count + np.searchsorted(GRID, similarity[selected], side="right")
            bins += np.bincount(index, minlength=categories * bins_count).reshape(categories, bins_count)
        if tail_from is not None:
            first, second = np.nonzero(impostor & (similarity >= tail_from))
            tails.append((rows[first], second, similarity[first, second]))
    with_face, failed = Counter(people), Counter(failed_people)
    failed_genuine = {name: math.comb(with_face[name] + failed[name], 2) - math.comb(with_face[name], 2) for name in failed}
    group_counts = {}
    for high, low in itertools.product(range(len(group_names)), repeat=2):
        if low > high:
            continue
        row = high * len(group_names) + low
        label = group_names[high] if high == low else f"{group_names[low]}-{group_names[high]}"
        genuine = None
        extra = 0
        if high == low:
            extra = sum(count for name, count in failed_genuine.items() if groups[name] == group_names[high])
            genuine = np.cumsum(genuine_bins[row])[:-1] + extra
        group_counts[label] = GroupCounts(np.cumsum(impostor_bins[row][::-1])[::-1][1:], int(impostor_bins[row].sum()),
                                          genuine, int(genuine_bins[row].sum()) + extra if high == low else 0)
    impostor_total, genuine_total = impostor_bins.sum(axis=0), genuine_bins.sum(axis=0)
    all_failed = sum(failed_genuine.values())
    tail = None
    if tail_from is not None:
        tail = tuple(np.concatenate([part[i] for part in tails]) if tails else np.zeros(0) for i in range(3))
    # bin b holds scores s with GRID[b-1] <= s < GRID[b]: s >= GRID[i] exactly when b > i
    return PairCounts(
        impostors_at_or_above=np.cumsum(impostor_total[::-1])[::-1][1:],
        genuine_below=np.cumsum(genuine_total)[:-1] + all_failed,
        impostor_pairs=int(impostor_total.sum()),
        genuine_pairs=int(genuine_total.sum()) + all_failed,
        images=len(people) + len(failed_people),
        people=len(names),
        failed_images=len(failed_people),
        excluded_pairs=sum(len(values) for values in dropped.values()),
        groups=group_counts,
        tail_from=tail_from,
        tail=tail,
        labels=tuple(people),
    )


def people_bound(sizes: np.ndarray, first: np.ndarray, second: np.ndarray, scores: np.ndarray, tail_from: float,
                 level: float = PEOPLE_LEVEL, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Per GRID threshold, the `level` quantile of the FMR when the people are drawn again with
    replacement (`resamples` times); NaN below `tail_from`. A bound over people, not pairs: one
    person who looks like many others, or one mislabelled photo, moves it as much as it moves the
    FMR of a new sample of people.

    `sizes[p]` is person p's images with a face; `first`, `second` the two people of each impostor
    pair scoring at least `tail_from`, and `scores` their similarities."""
    rng = np.random.default_rng(seed)
    bins = np.searchsorted(GRID, scores, side="right") - 1  # the highest threshold each pair reaches
    weights = np.zeros((resamples, len(GRID)))
    denominators = np.zeros(resamples)
    sizes = np.asarray(sizes, dtype=np.float64)
    for start in range(0, resamples, 50):
        draws = rng.multinomial(len(sizes), np.full(len(sizes), 1 / len(sizes)), size=min(50, resamples - start)).astype(np.float64)
        denominators[start:start + len(draws)] = ((draws @ sizes) ** 2 - (draws ** 2) @ (sizes ** 2)) / 2
        pair_weights = draws[:, first] * draws[:, second]
        for row, values in enumerate(pair_weights):
            weights[start + row] = np.bincount(bins, weights=values, minlength=len(GRID))
    at_or_above = np.cumsum(weights[:, ::-1], axis=1)[:, ::-1]
    fmr = at_or_above / np.maximum(denominators, 1.0)[:, None]
    bound = np.quantile(fmr, level, axis=0)
    bound[GRID < tail_from] = np.nan
    return bound


def counts_people_bound(counts: PairCounts, level: float = PEOPLE_LEVEL, resamples: int = RESAMPLES) -> np.ndarray | None:
    """`people_bound` for all-vs-all counts that kept their tail; None when they did not."""
    if counts.tail is None:
        return None
    people = sorted(set(counts.labels))
    index = {name: number for number, name in enumerate(people)}
    person = np.array([index[name] for name in counts.labels])
    sizes = np.bincount(person, minlength=len(people))
    first, second, scores = counts.tail
    return people_bound(sizes, person[first.astype(int)], person[second.astype(int)], scores, counts.tail_from, level, resamples)


def rate_rows(counts: PairCounts, confidence: float = CONFIDENCE, people: np.ndarray | None = None) -> list[dict]:
    """One table row per GRID threshold: counts, FMR point estimate, FMR upper bound, FNMR.

    The bound is the largest of the Clopper-Pearson bound over pairs, the bound over people (`people`,
    from `counts_people_bound`, where given) and the sample's floor, rounded up, and never lower
    than at a higher threshold."""
    floor = sample_floor(counts.impostor_pairs, confidence)
    rows = []
    for index, (threshold, false_matches, false_non_matches) in enumerate(
            zip(GRID, counts.impostors_at_or_above, counts.genuine_below)):
        k, g = int(false_matches), int(false_non_matches)
        bound = fmr_upper_bound(k, counts.impostor_pairs, confidence)
        if people is not None and not np.isnan(people[index]):
            bound = max(bound, float(people[index]))
        rows.append({
            "threshold": float(threshold), "impostors_at_or_above": k, "genuine_below": g,
            "fmr": float(f"{k / counts.impostor_pairs:.4g}"),
            "fmr_upper": max(floor, ceil_significant(min(bound, 1.0))),
            "fnmr": float(f"{g / counts.genuine_pairs:.4g}") if counts.genuine_pairs else None,
        })
    for lower, higher in itertools.pairwise(reversed(rows)):
        higher["fmr_upper"] = max(higher["fmr_upper"], lower["fmr_upper"])
    return rows


def lowest_threshold_meeting(rows: list[dict], target_fmr: float) -> dict | None:
    """The row of the lowest threshold in [0, 1] whose FMR upper bound is at most `target_fmr`."""
    return next((row for row in rows if row["threshold"] >= 0 and row["fmr_upper"] <= target_fmr), None)


def unsupported_reason(population: dict, target_fmr: float, confidence: float = CONFIDENCE) -> str | None:
    """Why no grid threshold's upper bound reaches `target_fmr` in this population record, or None when one does."""
    rows = population["table"]
    if lowest_threshold_meeting(rows, target_fmr) is not None:
        return None
    impostors, name = population["impostor_pairs"], population["name"]
    if population["floor"] > target_fmr:
        return (f"population {name!r}: {impostors} impostor pairs cannot support a target FMR of {target_fmr:g}: even with none "
                f"at or above a threshold, the {confidence:.0%} upper bound is at least {population['floor']:.3g} (the floor: "
                f"no false match among a quarter of the pairs); it needs at least {sample_needed(target_fmr, confidence)} impostor pairs")
    return (f"population {name!r}: no threshold up to 1.0 has an FMR upper bound <= {target_fmr:g}: "
            f"{rows[-1]['impostors_at_or_above']} impostor pairs score 1.0 (check the labels for duplicates)")


def operating_point(rows: list[dict], target_fmr: float) -> dict:
    """The lowest threshold whose bound meets `target_fmr`, with its counts and rates, or `threshold: None`."""
    row = lowest_threshold_meeting(rows, target_fmr)
    return {"target_fmr": target_fmr, **(row or {"threshold": None})}


def population_record(counts: PairCounts, name: str, *, source: str, population: str, date: str,
                      confidence: float = CONFIDENCE, **details: object) -> dict:
    """One population of a calibration file: its sample, floor, operating points and table.
    `details` (padding, exclusions, groups, coverage) are recorded before the table."""
    if counts.impostor_pairs == 0:
        raise UnsupportedTarget(f"population {name!r} has no impostor pairs: every image with a face shows the same person")
    rows = rate_rows(counts, confidence, counts_people_bound(counts))
    return {
        "name": name, "source": source, "population": population, "date": date,
        "images": counts.images, "people": counts.people, "failed_images": counts.failed_images,
        "impostor_pairs": counts.impostor_pairs, "genuine_pairs": counts.genuine_pairs,
        "excluded_impostor_pairs": counts.excluded_pairs,
        "floor": sample_floor(counts.impostor_pairs, confidence),
        "operating_points": [operating_point(rows, target) for target in OPERATING_FMRS],
        **details,
        "table": rows,
    }


def worst_rows(populations: Sequence[dict]) -> list[dict]:
    """Per GRID threshold, the highest FMR upper bound over the populations (their tables share the grid)."""
    tables = [population["table"] for population in populations]
    if any([row["threshold"] for row in table] != [row["threshold"] for row in tables[0]] for table in tables):
        raise ValueError("the populations' tables do not share one threshold grid")
    return [{"threshold": rows[0]["threshold"], "fmr_upper": max(row["fmr_upper"] for row in rows)} for rows in zip(*tables)]


def at_threshold(populations: Sequence[dict], threshold: float | None, target_fmr: float | None = None) -> dict:
    """Each population's counts and rates at `threshold` (None: no threshold meets the target)."""
    point = {} if target_fmr is None else {"target_fmr": target_fmr}
    point["threshold"] = threshold
    if threshold is not None:
        point["populations"] = {population["name"]: next(row for row in population["table"] if row["threshold"] == threshold)
                                for population in populations}
    return point


def calibration_record(populations: Sequence[dict], model_id: str, sha256: dict[str, str], target_fmr: float, *,
                       date: str, confidence: float = CONFIDENCE, allow_unsupported: bool = False) -> dict:
    """The calibration file's content. The default threshold is the lowest GRID threshold in [0, 1]
    whose FMR upper bound is at most `target_fmr` in every population; raises UnsupportedTarget when
    none is, unless `allow_unsupported`, when it is the lowest threshold with the smallest highest
    bound and the record says so."""
    if not populations:
        raise UnsupportedTarget("there is no population to calibrate on")
    worst = worst_rows(populations)
    reasons = [reason for population in populations if (reason := unsupported_reason(population, target_fmr, confidence))]
    if reasons and not allow_unsupported:
        raise UnsupportedTarget("; ".join(reasons))
    if reasons:
        in_range = [row for row in worst if row["threshold"] >= 0]
        smallest = min(row["fmr_upper"] for row in in_range)
        default = next(row for row in in_range if row["fmr_upper"] == smallest)["threshold"]
        method = (f"TARGET NOT SUPPORTED (written with --allow-unsupported-target): {'; '.join(reasons)}. The default is "
                  f"the lowest threshold with the smallest bound the samples give.")
    else:
        default = lowest_threshold_meeting(worst, target_fmr)["threshold"]
        method = (f"All-vs-all pairs of each population's images, counted apart. The default threshold is the lowest "
                  f"threshold on a {GRID_STEP:g} grid whose one-sided {confidence:.0%} Clopper-Pearson upper bound on the "
                  f"false match rate is at most target_fmr in every population; a bound is never below its population's "
                  f"floor, the smallest rate its sample of people can check (docs/accuracy.md).")
    return {
        "format": 3,
        "model_id": model_id,
        "sha256": sha256,
        "default_threshold": default,
        "target_fmr": target_fmr,
        "target_supported": not reasons,
        "confidence": confidence,
        "at_default": at_threshold(populations, default),
        "method": method,
        "source": "; ".join(f"{population['name']}: {population['source']}" for population in populations),
        "date": date,
        "grid": {"start": float(GRID[0]), "stop": float(GRID[-1]), "step": GRID_STEP},
        "operating_points": [at_threshold(populations, (lowest_threshold_meeting(worst, target) or {}).get("threshold"), target)
                             for target in OPERATING_FMRS],
        "populations": list(populations),
    }


def add_population(existing: dict, population: dict) -> list[dict]:
    """The populations of an existing calibration record with `population` added (replacing one of the same name)."""
    kept = [entry for entry in existing.get("populations", []) if entry.get("name") != population["name"]]
    return [*kept, population]


def group_figures(counts: PairCounts, thresholds: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """FMR (with its bound) within and between groups, and FNMR within each group, at `thresholds`."""
    figures: dict[str, dict] = {}
    for label, group in counts.groups.items():
        points = []
        for threshold in thresholds:
            index = int(np.searchsorted(GRID, threshold))
            k = int(group.impostors_at_or_above[index])
            point = {"threshold": float(threshold), "impostors_at_or_above": k,
                     "fmr": float(f"{k / group.impostor_pairs:.4g}") if group.impostor_pairs else None,
                     "fmr_upper": ceil_significant(fmr_upper_bound(k, group.impostor_pairs, confidence)) if group.impostor_pairs else None}
            if group.genuine_below is not None:
                g = int(group.genuine_below[index])
                point |= {"genuine_below": g, "fnmr": float(f"{g / group.genuine_pairs:.4g}") if group.genuine_pairs else None}
            points.append(point)
        figures[label] = {"impostor_pairs": group.impostor_pairs, "genuine_pairs": group.genuine_pairs, "at": points}
    return figures


def highest_impostors(counts: PairCounts, number: int) -> list[tuple[int, int, float]]:
    """The `number` highest-scoring impostor pairs of the tail, highest first, as (image, image, score)."""
    if counts.tail is None:
        raise ValueError("the counts kept no tail (pass tail_from)")
    first, second, score = counts.tail
    order = np.argsort(-score, kind="stable")[:number]
    return [(int(first[i]), int(second[i]), float(score[i])) for i in order]


def person_split_coverage(counts: PairCounts, splits: int = 40, seed: int = 0, targets: Sequence[float] = OPERATING_FMRS,
                          confidence: float = CONFIDENCE, people_level: float | None = PEOPLE_LEVEL,
                          resamples: int = 500) -> dict:
    """Does a bound found on half the people hold for the other half? For each of `splits` random
    halvings of the people: the lowest threshold whose bound meets each target on one half (the bound
    a calibration file holds: over pairs, over people at `people_level` (None: over pairs only, the
    bound before people were counted) and the floor), and the FMR the other half's impostor pairs show
    there. `covered` counts the splits where that FMR is at most the bound; a split where no threshold
    meets the target on the first half is `unsupported`. Needs the counts' tail to reach below every
    threshold found."""
    if counts.tail is None:
        raise ValueError("person_split_coverage needs counts with a tail (pass tail_from)")
    first, second, score = counts.tail
    people = sorted(set(counts.labels))
    index = {name: number for number, name in enumerate(people)}
    person = np.array([index[name] for name in counts.labels])
    first_person, second_person = person[first.astype(int)], person[second.astype(int)]
    sizes = np.bincount(person, minlength=len(people))
    rng = np.random.default_rng(seed)
    grid = GRID >= max(0.0, counts.tail_from)
    results = {target: {"covered": 0, "unsupported": 0, "thresholds": [], "bounds": [], "other_half_fmr": []} for target in targets}
    for _ in range(splits):
        in_a = np.zeros(len(people), dtype=bool)
        in_a[rng.permutation(len(people))[: len(people) // 2]] = True
        halves = {}
        for side, members in (("a", in_a), ("b", ~in_a)):
            chosen = members[first_person] & members[second_person]
            total = int((sizes[members].sum() ** 2 - (sizes[members] ** 2).sum()) // 2)
            halves[side] = (total, chosen)
        (n_a, chosen_a), (n_b, chosen_b) = halves["a"], halves["b"]
        scores_a, scores_b = np.sort(score[chosen_a]), np.sort(score[chosen_b])
        over_people = None
        if people_level is not None:
            renumber = np.cumsum(in_a) - 1
            over_people = people_bound(sizes[in_a], renumber[first_person[chosen_a]], renumber[second_person[chosen_a]],
                                       score[chosen_a], counts.tail_from, people_level, resamples, seed=int(rng.integers(1 << 30)))
        floor = sample_floor(n_a, confidence)
        bounds = []
        for position in np.flatnonzero(grid):
            k = len(scores_a) - int(np.searchsorted(scores_a, GRID[position], side="left"))
            bound = fmr_upper_bound(k, n_a, confidence)
            if over_people is not None:
                bound = max(bound, float(over_people[position]))
            bounds.append(max(floor, ceil_significant(min(bound, 1.0))))
        bounds = np.maximum.accumulate(np.array(bounds)[::-1])[::-1]
        for target in targets:
            meeting = np.flatnonzero(bounds <= target)
            if not len(meeting):
                results[target]["unsupported"] += 1
                continue
            if meeting[0] == 0:
                raise ValueError(f"the tail from {counts.tail_from} is too short for target {target:g}: count it from lower")
            threshold, bound = float(GRID[grid][meeting[0]]), float(bounds[meeting[0]])
            other = (len(scores_b) - int(np.searchsorted(scores_b, threshold, side="left"))) / n_b
            results[target]["covered"] += int(other <= bound)
            results[target]["thresholds"].append(threshold)
            results[target]["bounds"].append(bound)
            results[target]["other_half_fmr"].append(float(f"{other:.4g}"))
    summary = []
    for target, result in results.items():
        checked = splits - result["unsupported"]
        ratios = [fmr / bound for fmr, bound in zip(result["other_half_fmr"], result["bounds"])]
        summary.append({
            "target_fmr": target, "splits": splits, "checked": checked, "covered": result["covered"],
            "unsupported": result["unsupported"],
            "threshold_range": [min(result["thresholds"]), max(result["thresholds"])] if checked else None,
            "median_bound": float(f"{np.median(result['bounds']):.3g}") if checked else None,
            "median_other_half_fmr": float(f"{np.median(result['other_half_fmr']):.3g}") if checked else None,
            "largest_ratio": float(f"{max(ratios):.3g}") if ratios else None,
        })
    return {"splits": splits, "seed": seed, "bound": "pairs only" if people_level is None else
            f"pairs, people at {people_level:g}, floor", "points": summary}


def calibration_json(record: dict) -> str:
    """A calibration record as JSON text, one table row per line so each population's table reads as a table."""
    tables = {}
    shown = dict(record, populations=[])
    for index, population in enumerate(record.get("populations", [])):
        marker = f"@@table{index}@@"
        tables[f'"{marker}"'] = "[\n" + ",\n".join("    " + json.dumps(row) for row in population["table"]) + "\n   ]"
        shown["populations"].append(dict(population, table=marker))
    text = json.dumps(shown, indent=1)
    for marker, rows in tables.items():
        text = text.replace(marker, rows)
    return text + "\n"


def format_calibration(record: dict) -> str:
    """The calibration's figures as a few lines of text: the default, and each population at each FMR bound."""
    names = [population["name"] for population in record["populations"]]
    lines = [f"== calibration: default threshold {record['default_threshold']:.3f} for target FMR {record['target_fmr']:g} "
             f"in every population{'' if record['target_supported'] else ' (TARGET NOT SUPPORTED)'}: {', '.join(names)}"]
    for population in record["populations"]:
        lines.append(f"  {population['name']}: {population['impostor_pairs']} impostor and {population['genuine_pairs']} genuine "
                     f"pairs (all-vs-all, {population['images']} images of {population['people']} people, "
                     f"{population['failed_images']} without a face, {population['excluded_impostor_pairs']} impostor pairs "
                     f"excluded); floor {population['floor']:.3g}")
    lines.append("FMR bound  threshold  population: impostors >= / FMR upper / FNMR")
    for point in [*record["operating_points"], {"target_fmr": "default", **record["at_default"]}]:
        if point["threshold"] is None:
            lines.append(f"  {point['target_fmr']:<8g} not supported in every population")
            continue
        label = point["target_fmr"] if isinstance(point["target_fmr"], str) else f"{point['target_fmr']:g}"
        parts = [f"{name}: {row['impostors_at_or_above']} / {row['fmr_upper']:.3g} / {percent(row['fnmr'])}"
                 for name, row in point["populations"].items()]
        lines.append(f"  {label:<8} {point['threshold']:.3f}      {';  '.join(parts)}")
    return "\n".join(lines)


def format_population(population: dict) -> str:
    """A population's own operating points, group figures and person-split coverage, as text."""
    lines = [f"== population {population['name']}: floor {population['floor']:.3g}"]
    for point in population["operating_points"]:
        if point["threshold"] is None:
            lines.append(f"  FMR bound {point['target_fmr']:g}: not supported")
        else:
            lines.append(f"  FMR bound {point['target_fmr']:g}: threshold {point['threshold']:.3f}, "
                         f"{point['impostors_at_or_above']}/{population['impostor_pairs']} impostors (bound {point['fmr_upper']:.3g}), "
                         f"FNMR {point['genuine_below']}/{population['genuine_pairs']} ({percent(point['fnmr'])})")
    for label, figures in population.get("groups", {}).items():
        for point in figures["at"]:
            text = (f"  {label:<4} at {point['threshold']:.3f}: FMR {point['impostors_at_or_above']}/{figures['impostor_pairs']}"
                    f" (bound {point['fmr_upper']:.3g})")
            if "fnmr" in point:
                text += f", FNMR {point['genuine_below']}/{figures['genuine_pairs']} ({percent(point['fnmr'])})"
            lines.append(text)
    for check in population.get("coverage", []):
        for point in check["points"]:
            lines.append(f"  person-split coverage ({check['bound']}) at {point['target_fmr']:g}: {point['covered']} of "
                         f"{point['checked']} splits covered ({point['unsupported']} unsupported), thresholds "
                         f"{point['threshold_range']}, median bound {point['median_bound']}, median other-half FMR "
                         f"{point['median_other_half_fmr']}, largest FMR/bound {point['largest_ratio']}")
    return "\n".join(lines)


def percent(rate: float | None) -> str:
    """A rate as a percentage with two decimals, or `n/a` when there were no pairs to measure it."""
    return "n/a" if rate is None else f"{100 * rate:.2f}%"
