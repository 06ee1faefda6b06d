#!/usr/bin/env python3
"""Compare the shipped decoding (large JPEGs decoded for detection at reduced size, and again with
more detail when the face is small) with decoding every image at working size, on real photos.

For every image in the cases folder's single-face and id-documents folders (or the folders given)
it finds and embeds the face both ways and prints the images whose pixels differ: decoded sizes,
the face's height, decode + detection time, and the cosine between the two embeddings. Then, for
every pair of single-face photos of one person (the name's leading letters: obama-1080p.jpg and
obama.jpg) or of two people, with at least one image decoded differently (names without leading
letters, such as 32bit.png, are left out), the similarity both ways
and whether the verdict at the pack's default threshold changes.

    script/measure-decode-sizes [--weights ../shared/weights/scrfd2.5g-sface] [FOLDER ...]
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import sys
import time
from pathlib import Path

from faceverify import FaceVerifier
from faceverify.errors import ImageError
from faceverify.images import decode_image
from faceverify_tools.shared import CASES, TEST_PACK

RUNS = 7


def median_ms(function) -> float:
    """Median wall time of `function` over RUNS calls, in milliseconds."""
    times = []
    for _ in range(RUNS):
        clock = time.perf_counter()
        function()
        times.append((time.perf_counter() - clock) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(prog="script/measure-decode-sizes", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="*", default=[CASES / "single-face", CASES / "id-documents"])
    parser.add_argument("--weights", type=Path, default=TEST_PACK)
    args = parser.parse_args()
    verifier = FaceVerifier.load(args.weights, threads=1)
    shipped, plain, changed = {}, {}, set()
    print(f"{'image':24s} {'working size':>13s} {'shipped':>13s} {'face px':>8s} {'ms working':>10s} {'ms shipped':>10s} {'cosine':>7s}")
    for path in sorted(p for folder in args.folders for p in folder.iterdir() if p.is_file()):
        data = path.read_bytes()
        try:
            found = verifier.find_face(data)
            reference = verifier.locate_face(decode_image(data))
        except ImageError:
            continue
        shipped[path], plain[path] = verifier.embed([found])[0], verifier.embed([reference])[0]
        if found.image.pixels.shape == reference.image.pixels.shape:
            continue
        changed.add(path)
        ms_plain = median_ms(lambda: verifier.locate_face(decode_image(data)))
        ms_shipped = median_ms(lambda: verifier.find_face(data))
        print(f"{path.name:24s} {size(reference.image.pixels):>13s} {size(found.image.pixels):>13s} {found.face.height:8.0f} "
              f"{ms_plain:10.1f} {ms_shipped:10.1f} {float(shipped[path] @ plain[path]):7.4f}")

    threshold = verifier.default_threshold
    photos = [p for p in shipped if p.parent.name == "single-face" and person(p)]
    print(f"\nPairs of single-face photos with an image decoded differently (threshold {threshold}):")
    flips = 0
    for first, second in itertools.combinations(photos, 2):
        if first not in changed and second not in changed:
            continue
        same = person(first) == person(second)
        before, after = float(plain[first] @ plain[second]), float(shipped[first] @ shipped[second])
        flip = (before >= threshold) != (after >= threshold)
        flips += flip
        print(f"  {'same person' if same else 'two people ':11s} {first.name:22s} {second.name:22s} "
              f"working {before:.4f}  shipped {after:.4f}{'  VERDICT CHANGES' if flip else ''}")
    print(f"verdicts changed: {flips}")
    return 0


def size(pixels) -> str:
    return f"{pixels.shape[1]}x{pixels.shape[0]}"


def person(path: Path) -> str:
    return re.match(r"[a-z]*", path.stem.lower()).group(0)


if __name__ == "__main__":
    sys.exit(main())
