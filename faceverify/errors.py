"""Errors the pipeline raises on purpose, each with a stable machine code.

An `ImageError` means one input image cannot be compared (it is broken, too
large, too small, oddly shaped, shows no face, or its face cannot be aligned; or,
when the caller asks for it, the selfie has quality issues), or the pair cannot be judged (the
selfie is a copy of the reference's photo, or holds more than one face that could be the person).
The verifier turns it into a result with `match=False` and the code below; it
never fails the prediction.
A `ModelPackError` means the weights are missing or damaged; setup fails.
"""

from __future__ import annotations

from enum import Enum


class ImageProblem(str, Enum):
    """What is wrong with one image. The public code is `image<N>_<value>`."""

    MISSING = "missing"      # no image was sent
    INVALID = "invalid"      # empty, not an image, cannot be decoded, or a server path
    TOO_LARGE = "too_large"  # over the byte or pixel limit
    TOO_SMALL = "too_small"  # a side shorter than the minimum
    BAD_ASPECT_RATIO = "bad_aspect_ratio"  # one side far longer than the other (a strip, not a photo)
    NO_FACE = "no_face"      # decoded fine, but no face above the score floor
    FACE_UNUSABLE = "face_unusable"  # a face was found but cannot be aligned for comparison
    POOR_QUALITY = "poor_quality"    # the selfie has quality issues and the caller asked to refuse them
    SAME_PHOTO = "same_photo"        # the selfie is a copy of the reference's own photo, not a new picture
    MULTIPLE_FACES = "multiple_faces"  # another face in the selfie matches the reference about as well


class ImageError(Exception):
    """One image cannot be compared. `problem` says why, `message` says it to a person."""

    def __init__(self, problem: ImageProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message

    def code_for(self, image_name: str) -> str:
        """The stable error code for this problem on the named input, e.g. `image2_no_face`."""
        return f"{image_name}_{self.problem.value}"


class ModelPackError(Exception):
    """The model pack cannot be used: a folder, manifest or weight file is missing or corrupt."""


FETCH_COMMAND = "script/download-weights"
