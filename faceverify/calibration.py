"""A pack's calibration: its default threshold, and what a similarity means in error rates.

A calibration file is JSON, written by `script/evaluate --write-calibration` (or by hand, without a
table, for a pack that cannot be measured here):

    {"format": 2, "model_id": "...", "sha256": {"detection": "...", "recognition": "..."},
     "default_threshold": 0.4, "target_fmr": 0.0001, "target_supported": true, "confidence": 0.95,
     "method": "how the threshold was chosen", "source": "the data", "population": "whom it represents",
     "date": "...", "images": ..., "people": ..., "impostor_pairs": ..., "genuine_pairs": ...,
     "operating_points": [...], "at_default": {...},
     "table": [{"threshold": -1.0, "impostors_at_or_above": ..., "genuine_below": ...,
                "fmr": ..., "fmr_upper": ..., "fnmr": ...}, ...]}

Each table row holds, for one threshold of a grid, the calibration impostor pairs scoring at or
above it and the genuine pairs below it, the false match rate (FMR) they give, its one-sided upper
confidence bound (`fmr_upper`, computed when the file was written, never 0) and the false non-match
rate (FNMR). A file applies to a pack when its `sha256` equals the pack's; it is found in the pack
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


@dataclass(frozen=True)
class RatePoint:
    """Error rates measured at one threshold: FMR (point estimate and upper bound) and FNMR."""

    threshold: float
    fmr: float
    fmr_upper: float
    fnmr: float | None


@dataclass(frozen=True)
class Calibration:
    """How the pack's default threshold was chosen, and (when measured) its error-rate table."""

    default_threshold: float
    method: str
    source: str
    table: tuple[RatePoint, ...] = ()
    impostor_pairs: int | None = None

    def false_match_rate(self, similarity: float) -> float | None:
        """The upper confidence bound on the FMR at `similarity`, never 0; None without a table.

        Read at the table's largest threshold not above `similarity`, so between grid points the
        answer errs high (the bound falls as the threshold rises); below the table it is 1."""
        if not self.table:
            return None
        position = bisect.bisect_right([point.threshold for point in self.table], similarity) - 1
        return self.table[position].fmr_upper if position >= 0 else 1.0


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
    rows = record.get("table", [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ModelPackError(f"Calibration file {origin} has a malformed table: it must be a list of rows.")
    table = []
    for row in rows:
        values = [row.get(key) for key in ("threshold", "fmr", "fmr_upper")]
        fnmr = row.get("fnmr")
        if not all(_is_number(value) for value in values) or not (fnmr is None or _is_number(fnmr)):
            raise ModelPackError(
                f"Calibration file {origin} has a malformed table: every row needs the numbers threshold, fmr, "
                "fmr_upper and fnmr (rewrite a file from before the upper bound with script/evaluate --write-calibration)."
            )
        table.append(RatePoint(float(values[0]), float(values[1]), float(values[2]), None if fnmr is None else float(fnmr)))
    if any(not 0.0 <= point.fmr <= point.fmr_upper <= 1.0 or point.fmr_upper == 0.0 for point in table):
        raise ModelPackError(f"Calibration file {origin}: every row needs 0 <= fmr <= fmr_upper <= 1 and fmr_upper > 0 "
                             "(a finite sample never shows a false match rate of 0).")
    if any(a.threshold >= b.threshold or a.fmr_upper < b.fmr_upper for a, b in itertools.pairwise(table)):
        raise ModelPackError(f"Calibration file {origin}: table thresholds must rise and fmr_upper must not.")
    impostors = record.get("impostor_pairs")
    if table and (isinstance(impostors, bool) or not isinstance(impostors, int) or impostors <= 0):
        raise ModelPackError(f"Calibration file {origin} has a table but no positive impostor_pairs count.")
    return Calibration(
        default_threshold=float(threshold),
        method=str(record.get("method", "")),
        source=str(record.get("source", origin.name)),
        table=tuple(table),
        impostor_pairs=impostors if isinstance(impostors, int) and not isinstance(impostors, bool) else None,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
