"""Stage 3, embeddings: align each chosen face and turn it into a unit-length vector."""

from __future__ import annotations

import warnings

import numpy as np
from insightface.utils import face_align

from .faces import DetectedFace

# scikit-image 0.26 warns on every alignment that insightface's call is deprecated.
warnings.filterwarnings("ignore", message=".*`estimate` is deprecated.*", category=FutureWarning)


def align_face(pixels: np.ndarray, face: DetectedFace, size: int) -> np.ndarray:
    """The face cut out of a BGR image and warped so its five landmarks sit where the recognizer expects."""
    return face_align.norm_crop(pixels, landmark=face.landmarks, image_size=size)


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
