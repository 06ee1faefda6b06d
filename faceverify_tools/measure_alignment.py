"""Measure the alignment limits behind faceverify/embeddings.py on real faces and on broken landmarks.

For the chosen face of every image that LFW View 1's pairs use, and of every image in the cases
folder, it fits the similarity transform onto the recognizer's template and prints the
distribution of its misfit and scale, the worst images, and the same figures for landmark sets
that do not form a face (mirrored, collinear, one point, scattered, a real face's eyes swapped
with its mouth). The limits (MAX_MISFIT, MIN_FACE_HEIGHT, MAX_SCALE) must accept every real face and
refuse every broken set.

    script/measure-alignment [--pairs ../shared/data/lfw/pairsDevTrain.txt --pairs ...] [--weights PACK]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from faceverify import FaceVerifier
from faceverify.embeddings import MAX_MISFIT, MAX_SCALE, MIN_FACE_HEIGHT, fit_alignment, is_plausible
from faceverify.errors import ImageError
from faceverify.faces import DETECTION_SIDE
from faceverify.images import decode_image
from faceverify.verifier import FoundFace
from faceverify_tools.pairs import image_path, read_pairs
from faceverify_tools.shared import CASES, LFW, TEST_PACK

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic"}


def broken_landmarks(real: np.ndarray) -> dict[str, np.ndarray]:
    """Landmark sets that are not a face, built from one real face's five points."""
    centre = real.mean(axis=0)
    rng = np.random.default_rng(0)
    return {
        "mirrored (left and right swapped)": real[[1, 0, 2, 4, 3]],
        "upside down (eyes swapped with mouth)": real[[3, 4, 2, 0, 1]],
        "collinear": np.stack([centre + [dx, 0.0] for dx in (-20, -10, 0, 10, 20)]),
        "one point": np.repeat(centre[None], 5, axis=0),
        "scattered at random": centre + rng.uniform(-40, 40, size=(5, 2)),
        "a 1-pixel face": centre + (real - centre) / np.ptp(real[:, 0]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="script/measure-alignment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, action="append",
                        help="pairs files whose images to measure (default: both LFW View 1 files)")
    parser.add_argument("--images", type=Path, default=LFW / "images")
    parser.add_argument("--weights", type=Path, default=TEST_PACK)
    args = parser.parse_args()
    verifier = FaceVerifier.load(args.weights)
    size = verifier.recognizer_size
    pairs_files = args.pairs or [LFW / "pairsDevTrain.txt", LFW / "pairsDevTest.txt"]
    keys = sorted({key for path in pairs_files for pair in read_pairs(path) for key in (pair.first, pair.second)})
    paths = [image_path(args.images, key) for key in keys]
    paths += sorted(p for p in CASES.rglob("*") if p.suffix.lower() in SUFFIXES)

    rows, refused = [], []
    for path in paths:
        try:
            found = located(verifier, path)
        except ImageError:
            continue  # no face: nothing to align
        alignment = fit_alignment(found.face.landmarks, size)
        rows.append((alignment.misfit, alignment.scale, alignment.face_height, str(path.relative_to(path.parents[2]))))
        if not is_plausible(alignment):
            refused.append(path.name)
    misfits = np.array([row[0] for row in rows])
    scales = np.array([row[1] for row in rows])
    print(f"{len(rows)} real faces ({len(keys)} LFW View 1 images and the cases folder), recognizer crop {size}px")
    print(f"misfit: median {np.median(misfits):.3f}, 99th percentile {np.percentile(misfits, 99):.3f}, "
          f"99.9th {np.percentile(misfits, 99.9):.3f}, max {misfits.max():.3f}   (limit MAX_MISFIT {MAX_MISFIT})")
    print(f"scale: min {scales.min():.2f}, max {scales.max():.2f} crop pixels per image pixel   (limit MAX_SCALE {MAX_SCALE})")
    heights = np.array([row[2] for row in rows])
    print(f"face height: min {heights.min():.2f}, 1st percentile {np.percentile(heights, 1):.2f} eye distances   "
          f"(limit MIN_FACE_HEIGHT {MIN_FACE_HEIGHT})")
    for misfit, scale, height, name in sorted(rows)[-5:]:
        print(f"  worst misfit {misfit:.3f} (scale {scale:.2f}, face height {height:.2f}): {name}")
    print(f"real faces the limits refuse: {len(refused)} {refused[:10]}")
    print("landmark sets that are not a face:")
    real = located(verifier, paths[0]).face.landmarks
    for name, points in broken_landmarks(np.asarray(real, dtype=np.float64)).items():
        try:
            alignment = fit_alignment(points, size)
            verdict = "ACCEPTED" if is_plausible(alignment) else "refused"
            print(f"  {name:40s} misfit {alignment.misfit:6.3f}  face height {alignment.face_height:6.2f}  "
                  f"scale {alignment.scale:8.2f}  {verdict}")
        except ImageError:
            print(f"  {name:40s} no finite transform                            refused")
    return 0 if not refused else 1


def located(verifier: FaceVerifier, path: Path) -> FoundFace:
    """The image's chosen face, found and decoded as the model does before alignment."""
    data = path.read_bytes()
    return verifier.with_detail(verifier.locate_face(decode_image(data, min_side=DETECTION_SIDE)), data)


if __name__ == "__main__":
    raise SystemExit(main())
