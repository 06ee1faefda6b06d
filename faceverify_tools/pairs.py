"""LFW-style pairs files, for evaluation and calibration.

Format: a header line, then `Name i j` (a genuine pair: two images of Name) or
`Name1 i Name2 j` (an impostor pair). Images live at `<root>/<Name>/<Name>_<iiii>.jpg`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    """Two image keys (name, number) and whether they show the same person."""

    first: tuple[str, int]
    second: tuple[str, int]
    genuine: bool


def read_pairs(path: Path) -> list[Pair]:
    """The pairs of a pairs file, in file order; raises ValueError on a malformed line."""
    pairs = []
    for number, line in enumerate(path.read_text().splitlines()[1:], start=2):
        fields = line.split()
        if len(fields) == 3:
            pairs.append(Pair((fields[0], int(fields[1])), (fields[0], int(fields[2])), True))
        elif len(fields) == 4:
            pairs.append(Pair((fields[0], int(fields[1])), (fields[2], int(fields[3])), False))
        elif fields:
            raise ValueError(f"{path}:{number}: expected 'Name i j' or 'Name1 i Name2 j', got {line!r}")
    return pairs


def image_path(root: Path, key: tuple[str, int]) -> Path:
    """Where an LFW-style image lives under `root`."""
    name, number = key
    return root / name / f"{name}_{number:04d}.jpg"
