"""Stage 2, faces found: detect faces in an image and choose the one to compare.

Detection is InsightFace's SCRFD. Choosing the face matters on identity documents (a main
portrait plus a small "ghost" copy) and on selfies with bystanders; see `choose_main_face`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ImageError, ImageProblem

COARSE_SIZE = (128, 128)
"""The first pass, on every image: finds faces that fill much of the frame (InsightFace's smallest default size)."""

MEDIUM_SIZE = (320, 320)
FULL_SIZE = (640, 640)
DETECTION_SIZES = (COARSE_SIZE, MEDIUM_SIZE, FULL_SIZE)
"""Every detector input size the pipeline uses (all are built at warm-up)."""

DETECTION_SIDE = max(FULL_SIZE)
"""The longest image side detection can use (its largest input). A JPEG at least twice as large can
first be decoded at reduced size for detection: `decode_image(data, min_side=DETECTION_SIDE)`."""

LARGE_FACE = 0.2
"""A face at least this share of the image's longest side needs no second pass: it fills a selfie
or a portrait crop, and any face the coarse pass missed is far smaller. Chosen by
script/measure-detection-sizes; see docs/how-it-decides.md, "Detection sizes"."""

MEDIUM_FACE = 0.1
"""The largest coarse face is at least this share of the longest side but under LARGE_FACE (a
typical arm's-length or 1080p selfie): the second pass runs at MEDIUM_SIZE, where that face is
large enough for precise landmarks and any face it would still miss is far too small to be the
subject. Smaller or no coarse faces get FULL_SIZE."""

SCORE_FLOOR = 0.58
"""Detections scoring below this are not faces: it splits the gap between the highest-scoring
non-face of the cases folder and the lowest-scoring main face of LFW View 1, as measured with the
test pack by script/measure-face-choice (docs/how-it-decides.md, "Score floor")."""


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """One face: box (x1, y1, x2, y2) and 5 landmarks in the detector's image pixels, and its score.
    Two faces are equal only when they are the same object (landmarks are an array)."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def height(self) -> float:
        """The box's height in pixels."""
        return self.box[3] - self.box[1]

    def scaled(self, ratio: float) -> DetectedFace:
        """The same face in an image `ratio` times as large."""
        return DetectedFace(box=tuple(v * ratio for v in self.box), landmarks=self.landmarks * ratio, score=self.score)


Detections = tuple[np.ndarray, np.ndarray]
"""The detector's raw answer: an Nx5 array of boxes with scores, and Nx5x2 landmarks."""


def detect_faces(detector, pixels: np.ndarray) -> list[DetectedFace]:
    """All faces the detector finds in a BGR image with a score at or above SCORE_FLOOR.

    The image is searched at the scale it needs: first at COARSE_SIZE; then, unless that found a
    face of at least LARGE_FACE of the longest side, once more at MEDIUM_SIZE (its largest face
    is at least MEDIUM_FACE) or FULL_SIZE (a document, a group, a distant face, or nothing found).
    The passes are merged by the detector's non-maximum suppression, as InsightFace merges sizes.
    """
    coarse = detect_at(detector, pixels, COARSE_SIZE)
    heights = coarse[0][:, 3] - coarse[0][:, 1]
    largest = float(heights.max()) / max(pixels.shape[:2]) if len(heights) else 0.0
    if largest >= LARGE_FACE:
        return faces_from(coarse)
    second = detect_at(detector, pixels, MEDIUM_SIZE if largest >= MEDIUM_FACE else FULL_SIZE)
    return faces_from(merge_detections(detector, [coarse, second]))


def run_detector(detector, pixels: np.ndarray, sizes: list[tuple[int, int]]) -> list[DetectedFace]:
    """The detector's faces at these input sizes, merged: one fixed search, for measurement and warm-up."""
    return faces_from(merge_detections(detector, [detect_at(detector, pixels, size) for size in sizes]))


def detect_at(detector, pixels: np.ndarray, size: tuple[int, int]) -> Detections:
    """One detector pass with the image letterboxed into `size`; boxes and landmarks in image pixels."""
    boxes, landmarks = detector.detect(pixels, input_size=[size], det_thresh=SCORE_FLOOR)
    if landmarks is None:
        raise RuntimeError("the detector gives no landmarks, so faces cannot be aligned")
    return boxes, landmarks


def merge_detections(detector, passes: list[Detections]) -> Detections:
    """Several passes as one: overlapping boxes of one face are reduced to the best-scoring one."""
    if len(passes) == 1:
        return passes[0]
    boxes = np.vstack([boxes for boxes, _ in passes])
    landmarks = np.vstack([landmarks.reshape(-1, 5, 2) for _, landmarks in passes])
    keep = detector.nms(boxes)
    return boxes[keep], landmarks[keep]


def faces_from(detections: Detections) -> list[DetectedFace]:
    """DetectedFace objects for the detector's arrays, highest score first."""
    boxes, landmarks = detections
    return [
        DetectedFace(box=tuple(float(v) for v in boxes[i, :4]), landmarks=landmarks[i], score=float(boxes[i, 4]))
        for i in range(boxes.shape[0])
    ]


def prominence(face: DetectedFace, width: int, height: int) -> float:
    """How much a face is *the* subject of an image, from size, position and score.

    Its visible area, discounted when the box spills over the image edge (a half-cut
    bystander), weighted by detection score and by closeness to the image centre (a factor
    from 1 at the centre to 0 in a corner). The result is in pixels squared, so only its order
    matters. The rule and its alternatives are compared by script/measure-face-choice
    (docs/how-it-decides.md, "Face choice").
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


OTHER_FACE_SIZE = 0.3
"""Another face in an image counts as someone who could be the person (see `other_faces`) when its
box is at least this share of the chosen face's box in height: a bystander close by, a second
person in the frame. Smaller faces (a crowd far behind, a portrait on a card held up) are not
compared. Chosen with script/measure-kyc-checks (docs/kyc-checks.md)."""

MAX_OTHER_FACES = 3
"""At most this many other faces are compared, the most prominent first."""


def other_faces(faces: list[DetectedFace], face: DetectedFace, width: int, height: int) -> list[DetectedFace]:
    """The faces of `faces` other than the chosen `face` that are at least OTHER_FACE_SIZE of its
    height, the most prominent first, at most MAX_OTHER_FACES of them."""
    sizeable = [other for other in faces if other is not face and other.height >= OTHER_FACE_SIZE * face.height]
    sizeable.sort(key=lambda other: prominence(other, width, height), reverse=True)
    return sizeable[:MAX_OTHER_FACES]


def choose_main_face(faces: list[DetectedFace], width: int, height: int) -> DetectedFace:
    """The face to compare: the most prominent one (see `prominence`). Raises ImageError if none."""
    if not faces:
        raise ImageError(ImageProblem.NO_FACE, "no face was found in the image")
    return max(faces, key=lambda face: prominence(face, width, height))
