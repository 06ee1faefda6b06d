"""Detection at the scale each image needs (faces.detect_faces) against InsightFace's full search."""

from __future__ import annotations

import numpy as np
import pytest
from insightface.utils import face_align

from conftest import case
from faceverify.embeddings import align_face, embed_faces
from faceverify.faces import (
    COARSE_SIZE,
    DETECTION_SIDE,
    FULL_SIZE,
    SCORE_FLOOR,
    choose_main_face,
    detect_faces,
    run_detector,
)
from faceverify.images import decode_image

IMAGES = ["single-face/obama.jpg", "single-face/obama-1080p.jpg", "single-face/biden.jpg", "single-face/obama3.jpg",
          "single-face/obama-240p.jpg", "id-documents/100_pass-lux.jpg", "id-documents/passport-td3.jpg",
          "id-documents/100_pass-cze2.jpg", "multi-face/bald_guys.jpg", "multi-face/2008_002470.jpg"]
# Not multi-face/couple.jpg: two faces of the same size side by side, either of which is the subject;
# the two searches score them a little differently and so choose differently.


def iou(a, b) -> float:
    width = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    height = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("name", IMAGES)
def test_scaled_search_chooses_the_face_of_the_full_search(verifier, name):
    pixels = decode_image(case(name).read_bytes(), min_side=DETECTION_SIDE).pixels
    height, width = pixels.shape[:2]
    full = choose_main_face(run_detector(verifier.pack.detector, pixels, [COARSE_SIZE, FULL_SIZE]), width, height)
    shipped = choose_main_face(detect_faces(verifier.pack.detector, pixels), width, height)
    assert iou(shipped.box, full.box) > 0.8
    eye_distance = float(np.linalg.norm(full.landmarks[0] - full.landmarks[1]))
    assert np.abs(shipped.landmarks - full.landmarks).max() < 0.15 * eye_distance
    # What the landmarks are for: the two aligned crops must embed as the same face. The 320 pass
    # moves landmarks by up to about an eighth of the eye distance; the embeddings stay above 0.96.
    size = verifier.recognizer_size
    ours, theirs = embed_faces(verifier.pack.recognizer, [align_face(pixels, shipped, size), align_face(pixels, full, size)], False)
    assert float(ours @ theirs) > 0.95


@pytest.mark.parametrize("name", ["single-face/obama.jpg", "single-face/biden.jpg", "id-documents/100_pass-cze.jpg"])
def test_alignment_is_insightfaces_arcface_crop(verifier, name):
    """The checked alignment warps exactly as InsightFace's own norm_crop does for a real face."""
    found = verifier.find_face(case(name))
    expected = face_align.norm_crop(found.image.pixels, landmark=found.face.landmarks, image_size=verifier.recognizer_size)
    assert found.crop.shape == (verifier.recognizer_size, verifier.recognizer_size, 3)
    assert np.array_equal(found.crop, expected)


@pytest.mark.parametrize("name", ["multi-face/couple.jpg", "multi-face/bald_guys.jpg", "multi-face/2008_002470.jpg",
                                  "id-documents/100_pass-cze.jpg"])
def test_passes_merge_as_insightface_merges_its_sizes(verifier, name):
    pixels = decode_image(case(name).read_bytes()).pixels
    ours = run_detector(verifier.pack.detector, pixels, [COARSE_SIZE, FULL_SIZE])
    boxes, _ = verifier.pack.detector.detect(pixels, input_size=[COARSE_SIZE, FULL_SIZE], det_thresh=SCORE_FLOOR)
    assert len(ours) == len(boxes) >= 2
    assert np.allclose(sorted(face.box for face in ours), sorted(tuple(box[:4]) for box in boxes.tolist()), atol=1e-3)
