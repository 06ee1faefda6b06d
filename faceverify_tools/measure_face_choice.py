#!/usr/bin/env python3
"""Measure the detection settings behind faceverify/faces.py on LFW View 1 and the cases folder.

For every image of a pairs file it runs the shipped decoding and detection (score floor lowered
to 0.3 so that other floors can be tried), embeds every face, and then reports, for each face-choice
rule and score floor: images left without a face, pairs that fail, and best-threshold accuracy.
It also prints the lowest main-face score on the pairs' images, the highest detection score on the
cases folder's non-faces, and FMR/FNMR around the shipped default threshold.

    script/measure-face-choice [--pairs ../shared/data/lfw/pairsDevTest.txt]
        [--weights ../shared/weights/scrfd2.5g-sface]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from faceverify import FaceVerifier
from faceverify.embeddings import align_face, embed_faces
from faceverify.errors import ImageError
from faceverify.faces import COARSE_SIZE, FULL_SIZE, SCORE_FLOOR, DetectedFace, prominence
from faceverify.images import decode_image
from faceverify_tools.pairs import image_path, read_pairs
from faceverify_tools.shared import CASES, LFW, TEST_PACK

NON_FACES = ["no-face/dogs.jpg", "no-face/pacman.png", "no-face/tesseract-test1.jpg", "id-documents/27_pass-gbr.jpg",
             "id-documents/0_id-esp.png", "id-documents/53_id-d.jpg", "id-documents/77_card-cmw.png",
             "id-documents/100_id-che.jpg", "id-documents/100_id-mac.jpg", "id-documents/100_id-si.jpg",
             "id-documents/100_id-usa.jpg"]


def area(face: DetectedFace) -> float:
    return (face.box[2] - face.box[0]) * (face.box[3] - face.box[1])


def without_centre(face: DetectedFace, width: int, height: int) -> float:
    x1, y1, x2, y2 = face.box
    # undo the centre factor of `prominence` to measure its contribution
    offset = math.hypot((x1 + x2) / 2 / width - 0.5, (y1 + y2) / 2 / height - 0.5) / math.hypot(0.5, 0.5)
    return prominence(face, width, height) / max(1.0 - offset, 1e-9)


RULES = {
    "highest score": lambda face, w, h: face.score,
    "largest box": lambda face, w, h: area(face),
    "prominence without centre": without_centre,
    "prominence (shipped)": prominence,
}


def aligned_crop(pixels: np.ndarray, face: DetectedFace, size: int) -> np.ndarray | None:
    """The face's recognizer crop, or None for a face the model would refuse to align."""
    try:
        return align_face(pixels, face, size)
    except ImageError:
        return None


def detect_all(verifier: FaceVerifier, data: bytes):
    image = decode_image(data)
    boxes, landmarks = verifier.pack.detector.detect(image.pixels, input_size=[COARSE_SIZE, FULL_SIZE], det_thresh=0.3)
    faces = [DetectedFace(tuple(map(float, boxes[i, :4])), landmarks[i], float(boxes[i, 4])) for i in range(len(boxes))]
    return image, faces


def main() -> int:
    parser = argparse.ArgumentParser(prog="script/measure-face-choice", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=LFW / "pairsDevTest.txt")
    parser.add_argument("--images", type=Path, default=LFW / "images")
    parser.add_argument("--weights", type=Path, default=TEST_PACK)
    args = parser.parse_args()
    verifier = FaceVerifier.load(args.weights)
    pairs = read_pairs(args.pairs)
    keys = sorted({key for pair in pairs for key in (pair.first, pair.second)})
    found = {}
    for done, key in enumerate(keys, 1):
        image, faces = detect_all(verifier, image_path(args.images, key).read_bytes())
        faces = [face for face in faces if face.score >= 0.45]
        size = verifier.recognizer_size
        aligned = [(face, crop) for face in faces if (crop := aligned_crop(image.pixels, face, size)) is not None]
        faces, crops = [face for face, _ in aligned], [crop for _, crop in aligned]
        embeddings = embed_faces(verifier.pack.recognizer, crops, False) if crops else np.zeros((0, 1))
        found[key] = (image.pixels.shape[1], image.pixels.shape[0], faces, embeddings)
        if done % 100 == 0 or done == len(keys):
            print(f"{done}/{len(keys)} images", file=sys.stderr)
    print(file=sys.stderr)
    labels = np.array([pair.genuine for pair in pairs])

    print(f"{args.pairs.name}: {len(pairs)} pairs, {len(keys)} images")
    print(f"{'rule':28s} {'floor':>5s} {'no-face images':>14s} {'failed pairs':>12s} {'best accuracy':>13s}")
    for floor in (0.5, SCORE_FLOOR, 0.65):
        for name, rule in RULES.items():
            chosen = {}
            for key, (width, height, faces, embeddings) in found.items():
                candidates = [i for i, face in enumerate(faces) if face.score >= floor]
                if candidates:
                    chosen[key] = embeddings[max(candidates, key=lambda i: rule(faces[i], width, height))]
            scores = np.array([float(chosen[p.first] @ chosen[p.second]) if p.first in chosen and p.second in chosen else -1.0
                               for p in pairs])
            failed = sum(1 for p in pairs if p.first not in chosen or p.second not in chosen)
            best = max(((scores >= t) == labels).mean() for t in np.unique(scores))
            print(f"{name:28s} {floor:5.2f} {len(found) - len(chosen):14d} {failed:12d} {100 * best:12.2f}%")
            if name == "prominence (shipped)" and floor == SCORE_FLOOR:
                shipped = scores
    threshold = verifier.default_threshold
    impostors, genuine = np.sort(shipped[~labels])[::-1], shipped[labels]
    print(f"shipped settings: highest impostor scores {np.round(impostors[:3], 4).tolist()}; at the default threshold "
          f"{threshold}: FMR {int((impostors >= threshold).sum())}/{len(impostors)}, "
          f"FNMR {int((genuine < threshold).sum())}/{len(genuine)}")

    lowest = min(max(face.score for face in faces) for _, _, faces, _ in found.values() if faces)
    print(f"lowest main-face score on these images: {lowest:.3f}")
    for relative in NON_FACES:
        _, faces = detect_all(verifier, (CASES / relative).read_bytes())
        print(f"non-face {relative}: highest detection score {max((f.score for f in faces), default=0):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
