"""Face verification for identity checks: is the person on the ID photo the person in the selfie?

The pipeline, one module per stage:
    images      bytes / data URI / base64 -> upright BGR pixels (limits enforced)
    faces       pixels -> detected faces -> the main face
    embeddings  main face -> aligned crop -> unit embedding
    quality     pixels, faces, aligned crop -> quality measures -> issue codes and a score
    compare     two embeddings -> cosine similarity -> match; other faces' similarities -> ambiguous
    same_photo  two aligned crops -> photo likeness -> is the selfie a copy of the reference's photo
    verifier    the whole pipeline: FaceVerifier.verify(image1, image2) -> Verification
    output      Verification -> the flat record a prediction returns
    modelpack   the detector and recognizer, loaded from a checked manifest-V2 folder
    calibration a pack's default threshold and its measured FMR/FNMR table

This package is what the model image runs. The development tooling built on it (evaluation,
benchmark, soak, the Cog server harness, the measure-* commands) lives in `faceverify_tools`,
which this package never imports; see docs/ for the design and the measurements.
"""

from .errors import ImageError, ImageProblem, ModelPackError
from .verifier import FaceReport, FaceVerifier, Verification

__all__ = ["FaceVerifier", "Verification", "FaceReport", "ImageError", "ImageProblem", "ModelPackError"]
