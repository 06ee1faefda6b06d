"""A pack's calibration: its default threshold, and what a similarity means in error rates.

A calibration file is JSON, written by `script/evaluate --write-calibration` (or by hand for a pack
that cannot be measured here, without a table):

    {"model_id": "...", "sha256": {"detection": "...", "recognition": "..."},
     "default_threshold": 0.38, "method": "how the threshold was chosen", "source": "the data",
     "date": "2026-11-25", "impostor_pairs": 1600, "genuine_pairs": 1600,
     "table": [{"threshold": -1.0, "fmr": 1.0, "fnmr": 0.0}, ..., {"threshold": 1.0, "fmr": 0.0, "fnmr": 1.0}]}

`table` holds, for thresholds on a 0.01 grid, the share of calibration impostor pairs scoring at
or above it (false match rate) and of genuine pairs scoring below it (false non-match rate).
A file applies to a pack when its `sha256` equals the pack's; it is found in the pack folder
(`calibration.json`) or among the files shipped in `faceverify/calibrations/`.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelPackError

SHIPPED = Path(__file__).parent / "calibrations"


@dataclass(frozen=True)
class RatePoint:
    """Error rates measured at one threshold: impostors at or above it, genuine pairs below it."""

    threshold: float
    fmr: float
    fnmr: float


@dataclass(frozen=True)
class Calibration:
    """How the pack's default threshold was chosen, and (when measured) its error-rate table."""

    default_threshold: float
    method: str
    source: str
    table: tuple[RatePoint, ...] = ()
    impostor_pairs: int | None = None

    def false_match_rate(self, similarity: float) -> float | None:
        """The share of calibration impostor pairs that scored at least `similarity`; None without a table.

        Read at the table's largest threshold not above `similarity`, so between grid points the
        answer errs high (the rate falls as the threshold rises). 0 means no calibration impostor
        scored that high: with N impostor pairs the true rate is below about 3/N (95% confidence).
        """
        if not self.table:
            return None
        position = bisect.bisect_right([point.threshold for point in self.table], similarity) - 1
        return self.table[max(position, 0)].fmr


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
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ModelPackError(f"Calibration file {origin} has no default_threshold in [0, 1].")
    try:
        table = tuple(
            RatePoint(float(row["threshold"]), float(row["fmr"]), float(row["fnmr"])) for row in record.get("table", [])
        )
    except (KeyError, TypeError, ValueError):
        raise ModelPackError(f"Calibration file {origin} has a malformed table.") from None
    if any(a.threshold >= b.threshold or a.fmr < b.fmr for a, b in zip(table, table[1:])):
        raise ModelPackError(f"Calibration file {origin}: table thresholds must rise and its FMR must not.")
    impostors = record.get("impostor_pairs")
    return Calibration(
        default_threshold=float(threshold),
        method=str(record.get("method", "")),
        source=str(record.get("source", origin.name)),
        table=table,
        impostor_pairs=int(impostors) if isinstance(impostors, int) else None,
    )
