"""The answer as callers receive it: one flat record, the same from Cog, the Python API's command
line and every client (Cog has no nested outputs).

`output_record(verification, model_pack)` flattens a `Verification`: the verdict, then each image's
face (`image<N>_face_count`, `_face_box`, `_face_score`) and quality (`image<N>_quality_issues`,
`_quality_score` and the measures of QUALITY_DECIMALS, rounded), then the pack's id. predict.py's
`Output` declares the same fields for Cog's schema.
"""

from __future__ import annotations

from typing import Any

from .verifier import FaceReport, Verification

QUALITY_DECIMALS = {"eye_distance": 1, "edge_margin": 3, "yaw": 1, "roll": 1, "sharpness": 3, "underexposure": 3,
                    "overexposure": 3, "second_face": 3}
"""The QualityMeasures each image's record carries, as `image<N>_<measure>`, and their decimals."""


def face_fields(prefix: str, report: FaceReport) -> dict[str, Any]:
    """One image's face: count, box and detection score, named `<prefix>_face_*`."""
    return {f"{prefix}_face_count": report.face_count, f"{prefix}_face_box": report.box, f"{prefix}_face_score": report.score}


def quality_fields(prefix: str, report: FaceReport) -> dict[str, Any]:
    """One image's quality: issue codes, score and rounded measures; empty and null without an aligned face."""
    quality = report.quality
    fields: dict[str, Any] = {f"{prefix}_quality_issues": [issue.value for issue in quality.issues] if quality else [],
                              f"{prefix}_quality_score": quality.score if quality else None}
    for name, decimals in QUALITY_DECIMALS.items():
        fields[f"{prefix}_{name}"] = round(getattr(quality.measures, name), decimals) if quality else None
    return fields


def output_record(result: Verification, model_pack: str) -> dict[str, Any]:
    """A Verification as the flat record a prediction returns (field order as in predict.Output)."""
    return {
        "match": result.match, "similarity": result.similarity, "threshold": result.threshold,
        "false_match_rate": result.false_match_rate, "error_code": result.error_code, "error": result.error,
        **face_fields("image1", result.image1), **face_fields("image2", result.image2),
        **quality_fields("image1", result.image1), **quality_fields("image2", result.image2), "model_pack": model_pack,
    }
