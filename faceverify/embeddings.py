"""Stage 3, embeddings: align each chosen face and turn it into a unit-length vector.

Alignment fails closed. The similarity transform that carries the face's five landmarks onto the
recognizer's template is checked before it is used: a transform that is not finite, that would
blow up a face only a few pixels across, or whose landmarks do not fit the template's shape is
refused with `face_unusable`. Without the check, degenerate landmarks give an all-black crop, and
two black crops embed identically: a match on faces nobody could see. The limits are set by
script/measure-alignment (docs/how-it-decides.md, "Alignment").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from insightface.utils import face_align

from .errors import ImageError, ImageProblem
from .faces import DetectedFace

# scikit-image 0.26 warns on every alignment that insightface's call is deprecated.
warnings.filterwarnings("ignore", message=".*`estimate` is deprecated.*", category=FutureWarning)

MAX_MISFIT = 0.5
"""Largest accepted misfit (see `Alignment.misfit`). The worst real face measured sits well below it;
five points that do not form a face (collinear, mirrored, scattered) lie above it."""

MIN_FACE_HEIGHT = 0.35
"""Smallest accepted `Alignment.face_height`: the mouth must lie below the line through the eyes by
at least this share of the eye distance. Collinear points fit the template's shape too well for
the misfit alone to refuse them; every real face measured lies far above this."""

MAX_SCALE = 5.0
"""Largest accepted scale, in crop pixels per image pixel: the eyes at least about 7 image pixels
apart for a 112-pixel crop. A smaller face would be mostly interpolation in the crop, too little
to compare; real faces measured stay far below it."""


UNALIGNABLE = "the face's landmarks do not form a face that can be aligned (it may be turned away, cut off or distorted)"


@dataclass(frozen=True)
class Alignment:
    """How a face maps onto the recognizer's crop.

    `matrix` is the 2x3 similarity transform from image pixels to crop pixels; `scale` its scale
    factor; `misfit` the root-mean-square distance between the transformed landmarks and the
    template's, in units of the template's eye distance (0 for a face exactly the template's shape);
    `face_height` the signed distance of the mouth's centre below the line through the eyes, in eye
    distances (negative for a mirrored set of points).
    """

    matrix: np.ndarray
    scale: float
    misfit: float
    face_height: float


def fit_alignment(landmarks: np.ndarray, size: int) -> Alignment:
    """The similarity transform taking five landmarks (image pixels) onto the `size` x `size`
    recognizer template (InsightFace's ArcFace template). Raises ImageError (face_unusable) when
    no finite transform exists."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    unusable = ImageError(ImageProblem.FACE_UNUSABLE, UNALIGNABLE)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise unusable
    try:
        matrix = face_align.estimate_norm(points.astype(np.float32), size)
    except (np.linalg.LinAlgError, ValueError):
        raise unusable from None
    if not np.all(np.isfinite(matrix)):
        raise unusable
    template = face_align.arcface_dst.astype(np.float64) * (size / 112)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    eye_distance = float(np.linalg.norm(template[1] - template[0]))
    misfit = float(np.sqrt(((mapped - template) ** 2).sum(axis=1).mean()) / eye_distance)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    eyes, mouth = points[1] - points[0], (points[3] + points[4]) / 2 - points[0]
    eye_span = float(np.dot(eyes, eyes))
    face_height = float(eyes[0] * mouth[1] - eyes[1] * mouth[0]) / eye_span if eye_span > 0 else 0.0
    return Alignment(matrix=matrix, scale=scale, misfit=misfit, face_height=face_height)


def is_plausible(alignment: Alignment) -> bool:
    """True when an alignment is one of a real face: small misfit, mouth below the eyes, not tiny."""
    return (alignment.misfit <= MAX_MISFIT and alignment.face_height >= MIN_FACE_HEIGHT
            and alignment.scale <= MAX_SCALE)


def align_face(pixels: np.ndarray, face: DetectedFace, size: int) -> np.ndarray:
    """The face cut out of a BGR image and warped so its five landmarks sit where the recognizer
    expects, as a `size` x `size` crop. Raises ImageError (face_unusable) when the alignment is not
    finite, the face is too small to carry detail, or the landmarks do not form a face."""
    alignment = fit_alignment(face.landmarks, size)
    if is_plausible(alignment):
        return cv2.warpAffine(pixels, alignment.matrix, (size, size), borderValue=0.0)
    if alignment.scale > MAX_SCALE:
        raise ImageError(ImageProblem.FACE_UNUSABLE, "the face is only a few pixels across, too small to compare")
    raise ImageError(ImageProblem.FACE_UNUSABLE, UNALIGNABLE)


def embed_faces(recognizer, aligned: list[np.ndarray], batched: bool) -> np.ndarray:
    """Unit-length embeddings, one row per aligned face; one recognizer call when `batched`."""
    if batched:
        raw = recognizer.get_feat(aligned)
    else:
        raw = np.vstack([recognizer.get_feat(crop) for crop in aligned])
    raw = np.asarray(raw, dtype=np.float64).reshape(len(aligned), -1)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    if not np.all(np.isfinite(raw)) or np.any(norms == 0):
        raise RuntimeError("the recognizer returned an unusable embedding")
    return raw / norms
