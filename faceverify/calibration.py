"""A pack's calibration: its default threshold, and what a similarity means in error rates.

A calibration file is JSON, written by `script/evaluate --write-calibration` (or by hand, with an
empty population list, for a pack that cannot be measured here):

    {"format": 3, "model_id": "...", "sha256": {"detection": "...", "recognition": "..."},
     "default_threshold": 0.4, "target_fmr": 0.0001, "target_supported": true, "confidence": 0.95,
     "method": "how the threshold was chosen", "source": "the data, all populations", "date": "...",
     "operating_points": [...], "at_default": {...},
     "populations": [{"name": "...", "source": "the data", "population": "whom it represents",
                      "images": ..., "people": ..., "impostor_pairs": ..., "genuine_pairs": ...,
                      "floor": ..., "operating_points": [...],
                      "table": [{"threshold": -1.0, "impostors_at_or_above": ..., "genuine_below": ...,
                                 "fmr": ..., "fmr_upper": ..., "fnmr": ...}, ...]}, ...]}

Each population is one sample of people, measured apart: a rate pooled over populations would hide
the worst one. Each table row holds, for one threshold of a grid, the population's impostor pairs
scoring at or above it and its genuine pairs below it, the false match rate (FMR) they give, its
one-sided upper confidence bound (`fmr_upper`, never below the population's `floor`, the smallest
rate its sample of people can check) and the false non-match rate (FNMR). The default threshold
meets `target_fmr` in every population (when `target_supported`), and the false match rate at a
similarity is the highest bound over the populations. `populations: []` says the pack's FMR was not
measured. A file applies to a pack when its `sha256` equals the pack's; it is found in the pack
folder (`calibration.json`) or among the files shipped in `faceverify/calibrations/`.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelPackError

SHIPPED = Path(__file__).parent / "calibrations"

REWRITE = "rewrite it with script/evaluate --write-calibration (docs/operations.md)"


@dataclass(frozen=True)
class RatePoint:
    """Error rates measured at one threshold: FMR (point estimate and upper bound) and FNMR."""

    threshold: float
    fmr: float
    fmr_upper: float
    fnmr: float | None


@dataclass(frozen=True)
class Population:
    """One measured sample of people: what it is, how large, and its error-rate table.

    `floor` is the smallest FMR its sample of people can check; no rate read from it is lower."""

    name: str
    source: str
    description: str
    table: tuple[RatePoint, ...]
    impostor_pairs: int
    floor: float

    def false_match_rate(self, similarity: float) -> float:
        """The upper bound on the FMR at `similarity`, at least `floor`.

        Read at the table's largest threshold not above `similarity`, so between grid points the
        answer errs high (the bound falls as the threshold rises); below the table it is 1."""
        position = bisect.bisect_right([point.threshold for point in self.table], similarity) - 1
        return max(self.table[position].fmr_upper, self.floor) if position >= 0 else 1.0


@dataclass(frozen=True)
class Calibration:
    """How the pack's default threshold was chosen, and (when measured) each population's table."""

    default_threshold: float
    method: str
    source: str
    populations: tuple[Population, ...] = ()

    def false_match_rate(self, similarity: float) -> float | None:
        """The highest upper bound on the FMR at `similarity` over the populations, never 0; None
        when no population was measured."""
        if not self.populations:
            return None
        return max(population.false_match_rate(similarity) for population in self.populations)


def find_calibration(folder: Path, sha256: dict[str, str]) -> Calibration | None:
    """The calibration for the pack in `folder` with these sha256s: `calibration.json` in the
    folder, else a shipped one with equal sha256s. None when there is none; raises ModelPackError
    for a matching file that is malformed."""
    for candidate in [folder / "calibration.json", *sorted(SHIPPED.glob("*.json"))]:
        if not candidate.is_file():
            continue
        try:
            record = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ModelPackError(f"Calibration file {candidate} is not valid JSON.") from None
        if isinstance(record, dict) and record.get("sha256") == sha256:
            return parse_calibration(record, candidate)
    return None


def parse_calibration(record: dict, origin: Path) -> Calibration:
    """A Calibration from a file's JSON record; raises ModelPackError naming `origin` if malformed."""
    threshold = record.get("default_threshold")
    if not _is_number(threshold) or not 0.0 <= threshold <= 1.0:
        raise ModelPackError(f"Calibration file {origin} has no default_threshold in [0, 1].")
    entries = record.get("populations")
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ModelPackError(
            f"Calibration file {origin} has no populations field (a list of the populations measured, each with its "
            f"source, whom it represents, its counts and table; [] when none was measured): {REWRITE}."
        )
    populations = tuple(parse_population(entry, origin) for entry in entries)
    names = [population.name for population in populations]
    if len(set(names)) != len(names):
        raise ModelPackError(f"Calibration file {origin} names a population twice: {names}.")
    target = record.get("target_fmr")
    if populations and record.get("target_supported") is True and _is_number(target):
        for population in populations:
            if population.false_match_rate(threshold) > target:
                raise ModelPackError(
                    f"Calibration file {origin}: its default_threshold {threshold} does not meet its target_fmr "
                    f"{target:g} in population {population.name!r} (bound {population.false_match_rate(threshold):.3g}); "
                    f"the default must meet the target in every population: {REWRITE}."
                )
    return Calibration(
        default_threshold=float(threshold),
        method=str(record.get("method", "")),
        source=str(record.get("source", origin.name)),
        populations=populations,
    )


def parse_population(entry: dict, origin: Path) -> Population:
    """One population of a calibration file; raises ModelPackError naming `origin` and the population."""
    name = entry.get("name")
    where = f"Calibration file {origin}, population {name!r},"
    for field in ("name", "source", "population"):
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            raise ModelPackError(f"{where} has no {field} (every population states its name, its source and whom it "
                                 f"represents in `population`): {REWRITE}.")
    rows = entry.get("table")
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise ModelPackError(f"{where} has a malformed table: it must be a non-empty list of rows.")
    table = []
    for row in rows:
        values = [row.get(key) for key in ("threshold", "fmr", "fmr_upper")]
        fnmr = row.get("fnmr")
        if not all(_is_number(value) for value in values) or not (fnmr is None or _is_number(fnmr)):
            raise ModelPackError(
                f"{where} has a malformed table: every row needs the numbers threshold, fmr, fmr_upper and fnmr "
                f"(a file from before the upper bound: {REWRITE})."
            )
        table.append(RatePoint(float(values[0]), float(values[1]), float(values[2]), None if fnmr is None else float(fnmr)))
    if any(not 0.0 <= point.fmr <= point.fmr_upper <= 1.0 or point.fmr_upper == 0.0 for point in table):
        raise ModelPackError(f"{where} every row needs 0 <= fmr <= fmr_upper <= 1 and fmr_upper > 0 "
                             "(a finite sample never shows a false match rate of 0).")
    if any(a.threshold >= b.threshold or a.fmr_upper < b.fmr_upper for a, b in itertools.pairwise(table)):
        raise ModelPackError(f"{where} table thresholds must rise and fmr_upper must not.")
    impostors = entry.get("impostor_pairs")
    if isinstance(impostors, bool) or not isinstance(impostors, int) or impostors <= 0:
        raise ModelPackError(f"{where} has no positive impostor_pairs count.")
    floor = entry.get("floor")
    if not _is_number(floor) or not 0.0 < floor < 1.0 or any(point.fmr_upper < floor for point in table):
        raise ModelPackError(f"{where} needs a floor in (0, 1), the smallest rate its sample of people can check, "
                             f"with no fmr_upper below it: {REWRITE}.")
    return Population(str(name), entry["source"], entry["population"], tuple(table), impostors, float(floor))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
