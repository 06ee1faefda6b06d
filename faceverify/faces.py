"""Stage 2, faces found: detect faces in an image and choose the one to compare.

Detection is InsightFace's SCRFD. Choosing the face matters on identity documents (a main
portrait plus a small "ghost" copy) and on selfies with bystanders; see `choose_main_face`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ImageError, ImageProblem

DETECTION_SIZES = ((128, 128), (640, 640))
"""Detector input sizes, each run on the whole image and merged: InsightFace 2.1's default.
The 128 pass finds faces that fill the frame, the 640 pass small ones (see README, "How it decides")."""

COARSE_SIZE = DETECTION_SIZES[0]
LARGE_FACE = 0.2
"""A face at least this share of the image's longest side (26 pixels or more at the 128 pass), found
by the 128 pass alone, makes the 640 pass unnecessary: it fills a selfie or a portrait crop, is
large enough for precise landmarks, and any face only the 640 pass would find is far smaller.
Measured by script/measure-detection-sizes; see README, "How it decides"."""

SCORE_FLOOR = 0.58
"""Detections scoring below this are not faces. Measured with the test pack: the highest non-face
(no-face/dogs.jpg) scores 0.53, the lowest main face of any LFW View 1 image 0.64; 0.58 splits the gap."""


@dataclass(frozen=True)
class DetectedFace:
    """One face: box (x1, y1, x2, y2) and 5 landmarks in the detector's image pixels, and its score."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float


def detect_faces(detector, pixels: np.ndarray) -> list[DetectedFace]:
    """All faces the detector finds in a BGR image with a score at or above SCORE_FLOOR.

    The image is searched at the scale it needs: first at 128x128, and when that finds no face
    of at least LARGE_FACE of the image's longest side (a document, a group, a distant face), at
    128x128 and 640x640 merged, as InsightFace does by default.
    """
    faces = run_detector(detector, pixels, [COARSE_SIZE])
    longest = max(pixels.shape[:2])
    if any(face.box[3] - face.box[1] >= LARGE_FACE * longest for face in faces):
        return faces
    return run_detector(detector, pixels, list(DETECTION_SIZES))


def run_detector(detector, pixels: np.ndarray, sizes: list[tuple[int, int]]) -> list[DetectedFace]:
    """The detector's faces at these input sizes (merged by its non-maximum suppression)."""
    boxes, landmarks = detector.detect(pixels, input_size=sizes, det_thresh=SCORE_FLOOR)
    if landmarks is None:
        raise RuntimeError("the detector gives no landmarks, so faces cannot be aligned")
    return [
        DetectedFace(box=tuple(float(v) for v in boxes[i, :4]), landmarks=landmarks[i], score=float(boxes[i, 4]))
        for i in range(boxes.shape[0])
    ]


def prominence(face: DetectedFace, width: int, height: int) -> float:
    """How much a face is *the* subject of an image, from size, position and score.

    Its visible area, discounted when the box spills over the image edge (a half-cut
    bystander), weighted by detection score and by closeness to the image centre (a factor
    from 1 at the centre to 0 in a corner). The result is in pixels squared, so only its order
    matters. Measured on LFW View 1 pairsDevTest (best-threshold accuracy, test pack):
    highest score 98.7%, largest box 97.5%, this rule without the centre factor 99.1%, with it 99.3%.
    """
    x1, y1, x2, y2 = face.box
    box_area = max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
    if box_area <= 0:
        return 0.0
    visible = max(min(x2, width) - max(x1, 0.0), 0.0) * max(min(y2, height) - max(y1, 0.0), 0.0)
    inside = visible / box_area
    offset_x = (x1 + x2) / 2 / width - 0.5
    offset_y = (y1 + y2) / 2 / height - 0.5
    centrality = 1.0 - math.hypot(offset_x, offset_y) / math.hypot(0.5, 0.5)
    return visible * inside * inside * face.score * max(centrality, 0.0)


def choose_main_face(faces: list[DetectedFace], width: int, height: int) -> DetectedFace:
    """The face to compare: the most prominent one (see `prominence`). Raises ImageError if none."""
    if not faces:
        raise ImageError(ImageProblem.NO_FACE, "no face was found in the image")
    return max(faces, key=lambda face: prominence(face, width, height))
