#!/usr/bin/env python3
"""Compare the shipped detection (128 first, then 320 or 640 as needed) with fixed searches.

For every image of a pairs file (and, with --cards, a synthetic ID card made from each pair's
first image) it runs the shipped decoding, face choice and embedding with each detection setting
and prints, per setting: images without a face, best-threshold accuracy, TAR at FMR 1e-3, FMR and
FNMR at the pack's default threshold, and the detector's time per image (one thread).

    script/measure-detection-sizes [--pairs ../shared/data/lfw/pairsDevTest.txt] [--cards]
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from faceverify import FaceVerifier
from faceverify.errors import ImageError
from faceverify.faces import (
    COARSE_SIZE,
    FULL_SIZE,
    LARGE_FACE,
    choose_main_face,
    detect_at,
    detect_faces,
    faces_from,
    merge_detections,
    run_detector,
)
from faceverify.images import decode_image
from faceverify.verifier import FoundFace
from faceverify_tools.evaluation import metrics
from faceverify_tools.evaluation.idcards import make_id_card
from faceverify_tools.pairs import image_path, read_pairs
from faceverify_tools.shared import LFW, TEST_PACK


def coarse_or_full(detector, pixels):
    """The rule before the 320 pass: 128, and 640 as well unless a face is LARGE_FACE."""
    coarse = detect_at(detector, pixels, COARSE_SIZE)
    if len(coarse[0]) and (coarse[0][:, 3] - coarse[0][:, 1]).max() >= LARGE_FACE * max(pixels.shape[:2]):
        return faces_from(coarse)
    return faces_from(merge_detections(detector, [coarse, detect_at(detector, pixels, FULL_SIZE)]))


SETTINGS = {
    "always 128 + 640": lambda detector, pixels: run_detector(detector, pixels, [COARSE_SIZE, FULL_SIZE]),
    "128, else + 640": coarse_or_full,
    "128, + 320/640 (shipped)": detect_faces,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="script/measure-detection-sizes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=LFW / "pairsDevTest.txt")
    parser.add_argument("--images", type=Path, default=LFW / "images")
    parser.add_argument("--weights", type=Path, default=TEST_PACK)
    parser.add_argument("--cards", action="store_true", help="compare card (first image) vs photo pairs instead")
    args = parser.parse_args()
    verifier = FaceVerifier.load(args.weights, threads=1)
    pairs = read_pairs(args.pairs)
    images = [(key, False) for key in sorted({k for p in pairs for k in (p.first, p.second)})]
    if args.cards:
        images += [(key, True) for key in sorted({p.first for p in pairs})]
    embeddings: dict[str, dict] = {name: {} for name in SETTINGS}
    seconds = dict.fromkeys(SETTINGS, 0.0)
    for done, (key, is_card) in enumerate(images, 1):
        path = image_path(args.images, key)
        data = make_id_card(Image.open(path), zlib.crc32(path.name.encode())) if is_card else path.read_bytes()
        image = decode_image(data)
        height, width = image.pixels.shape[:2]
        for name, detect in SETTINGS.items():
            clock = time.perf_counter()
            faces = detect(verifier.pack.detector, image.pixels)
            seconds[name] += time.perf_counter() - clock
            if faces:
                found = FoundFace(image, faces, choose_main_face(faces, width, height))
                try:
                    embeddings[name][(key, is_card)] = verifier.embed([verifier.align(found)])[0]
                except ImageError:  # the face cannot be aligned: the pair fails, as in the model
                    pass
        if done % 500 == 0:
            print(f"{done}/{len(images)} images", file=sys.stderr)

    genuine = np.array([pair.genuine for pair in pairs])
    threshold = verifier.default_threshold
    kind = "card vs photo" if args.cards else "photo vs photo"
    print(f"{args.pairs.name}, {kind}: {len(pairs)} pairs, {len(images)} images")
    for name in SETTINGS:
        found = embeddings[name]
        scores = np.array([
            round(float(found[(p.first, args.cards)] @ found[(p.second, False)]), 4)
            if (p.first, args.cards) in found and (p.second, False) in found else metrics.FAILED_SCORE
            for p in pairs
        ])
        best = metrics.best_threshold(scores, genuine)
        accuracy = ((scores >= best) == genuine).mean()
        point = metrics.tar_at_fmr(scores, genuine, 1e-3)
        rates = metrics.rates_at(scores, genuine, threshold)
        print(f"{name:24s} no face {len(images) - len(found):3d}  best accuracy {100 * accuracy:.2f}%  "
              f"TAR@FMR1e-3 {100 * point.tar:.2f}%  at {threshold}: FMR {rates.false_matches}/{rates.impostor_pairs} "
              f"FNMR {rates.false_non_matches}/{rates.genuine_pairs}  detection {1000 * seconds[name] / len(images):.1f} ms/image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
