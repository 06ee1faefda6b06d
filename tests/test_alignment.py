"""Alignment fails closed: landmarks that do not form a face are refused, never warped into a crop.

insightface's `norm_crop` does not check its similarity transform: with degenerate landmarks the
transform is NaN, `warpAffine` returns an all-black crop, and two black crops embed identically.
"""

from __future__ import annotations

import numpy as np
import pytest
from insightface.utils import face_align
from PIL import Image

from conftest import case, encode
from faceverify.embeddings import MAX_SCALE, embed_faces, fit_alignment, is_plausible
from faceverify.errors import ImageError, ImageProblem
from faceverify.faces import DetectedFace
from faceverify.images import decode_image
from faceverify.verifier import FoundFace
from faceverify_tools.measure_alignment import broken_landmarks


@pytest.fixture(scope="module")
def obama(verifier) -> FoundFace:
    return verifier.find_face(case("single-face/obama.jpg"))


def with_landmarks(found: FoundFace, landmarks: np.ndarray) -> FoundFace:
    """The same image and box, with other landmarks (what a confused detector could report)."""
    face = DetectedFace(box=found.face.box, landmarks=np.asarray(landmarks, dtype=np.float32), score=found.face.score)
    return FoundFace(image=found.image, faces=[face], face=face)


def test_degenerate_landmarks_made_insightfaces_crop_black_and_match_anything(verifier, obama):
    # Why the check exists: the unchecked path gives black crops whose embeddings are identical.
    point = np.repeat(obama.face.landmarks.mean(axis=0, keepdims=True), 5, axis=0)
    crop = face_align.norm_crop(obama.image.pixels, landmark=point, image_size=verifier.recognizer_size)
    assert not crop.any(), "a NaN transform warps to an all-black crop"
    first, second = embed_faces(verifier.pack.recognizer, [crop, crop.copy()], batched=False)
    assert float(first @ second) > 0.999, "two black crops are 'the same person'"
    with pytest.raises(ImageError) as raised:
        verifier.align(with_landmarks(obama, point))
    assert raised.value.problem is ImageProblem.FACE_UNUSABLE


BROKEN = ["mirrored (left and right swapped)", "upside down (eyes swapped with mouth)", "collinear", "one point",
          "scattered at random", "a 1-pixel face"]


@pytest.mark.parametrize("kind", BROKEN)
def test_landmarks_that_are_not_a_face_are_refused(verifier, obama, kind):
    broken = broken_landmarks(obama.face.landmarks.astype(np.float64))[kind]
    with pytest.raises(ImageError) as raised:
        verifier.align(with_landmarks(obama, broken))
    assert raised.value.problem is ImageProblem.FACE_UNUSABLE and raised.value.message


@pytest.mark.parametrize("landmarks", [np.full((5, 2), np.nan), np.full((5, 2), np.inf), np.zeros((5, 2))],
                         ids=["nan", "inf", "all-zero"])
def test_non_finite_or_collapsed_landmarks_are_refused(verifier, obama, landmarks):
    with pytest.raises(ImageError) as raised:
        verifier.align(with_landmarks(obama, landmarks))
    assert raised.value.problem is ImageProblem.FACE_UNUSABLE


def test_real_faces_align_within_the_limits(verifier):
    names = ["single-face/obama.jpg", "single-face/biden.jpg", "single-face/obama-240p.jpg", "id-documents/100_pass-cze.jpg",
             "exif/hopper_orientation_6.webp", "multi-face/bald_guys.jpg"]
    for name in names:
        found = verifier.find_face(case(name))
        alignment = fit_alignment(found.face.landmarks, verifier.recognizer_size)
        assert is_plausible(alignment) and found.crop is not None and found.crop.any(), name


def test_a_face_a_few_pixels_across_is_unusable_and_never_matches(verifier):
    # A real face, 12 pixels wide, in a 64x64 photo: the detector finds it, but its eyes are about
    # 4 pixels apart, so the crop would be almost all interpolation.
    found = verifier.find_face(case("single-face/obama.jpg"))
    x1, y1, x2, y2 = (int(v) for v in found.report().box)
    portrait = Image.open(case("single-face/obama.jpg")).convert("RGB").crop((x1 - 20, y1 - 20, x2 + 20, y2 + 20))
    canvas = Image.new("RGB", (64, 64), (200, 200, 200))
    canvas.paste(portrait.resize((12, 12)), (20, 20))
    tiny = encode(canvas, "PNG")
    located = verifier.locate_face(decode_image(tiny))
    assert fit_alignment(located.face.landmarks, verifier.recognizer_size).scale > MAX_SCALE
    result = verifier.verify(case("single-face/obama.jpg"), tiny)
    assert (result.error_code, result.match, result.similarity) == ("image2_face_unusable", False, None)
    assert result.error.startswith("image2: ") and result.image2.face_count == 1, result
    swapped = verifier.verify(tiny, case("single-face/obama.jpg"))
    assert (swapped.error_code, swapped.match) == ("image1_face_unusable", False)
