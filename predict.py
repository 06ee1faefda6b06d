"""Cog adapter: `Predictor.setup()` loads a model pack, `predict()` compares two images.

All logic lives in the `faceverify` package; this file only maps Cog's inputs and outputs.
It keeps Cog's `BasePredictor.predict()` interface (cog.yaml: `predict: "predict.py:Predictor"`),
which cog 0.23 still serves but marks deprecated in favour of `BaseRunner.run()`.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path as LocalPath
from typing import Any, Optional

from cog import BaseModel, BasePredictor, Input, Path

from faceverify import FaceVerifier, ModelPackError, Verification
from faceverify.modelpack import default_pack_path
from faceverify.verifier import FaceReport


class Output(BaseModel):
    """One flat record (Cog has no nested outputs). `match` is false whenever `error_code` is set."""

    match: bool
    similarity: Optional[float]
    threshold: float
    false_match_rate: Optional[float]
    error_code: Optional[str]
    error: Optional[str]
    image1_face_count: int
    image1_face_box: Optional[list[float]]
    image1_face_score: Optional[float]
    image2_face_count: int
    image2_face_box: Optional[list[float]]
    image2_face_score: Optional[float]
    model_pack: str


class Predictor(BasePredictor):
    def setup(self, weights: Optional[Any] = None) -> None:
        """Load and check the model pack: `weights` (Cog passes COG_WEIGHTS), else weights/buffalo_l.

        Only a local folder is accepted; a URL is refused because the model never downloads.
        """
        source = str(weights) if weights else str(default_pack_path())
        if "://" in source:
            raise ModelPackError(f"COG_WEIGHTS must be a local model pack folder, not a URL ({source!r}); nothing is downloaded at run time.")
        self.verifier = FaceVerifier.load(source)

    async def predict(
        self,
        image1: Path = Input(description="Reference photo: the identity document, or a crop of its portrait. File, URL, data URI or base64."),
        image2: Path = Input(description="Probe photo: the live selfie. File, URL, data URI or base64."),
        threshold: Optional[float] = Input(
            description="Match when similarity >= threshold. Omit for the model pack's calibrated default.",
            default=None, ge=0.0, le=1.0,
        ),
    ) -> Output:
        """Compare the main face of image1 with the main face of image2.

        Async so that Cog can run two predictions at once (cog.yaml `concurrency.max`): the work
        runs in a thread, and the loaded networks are shared (ONNX Runtime sessions are safe to
        call from several threads). The gain is measured in docs/how-it-decides.md, "Concurrency".
        """
        return await asyncio.to_thread(self.compare, image1, image2, threshold)

    def compare(self, image1: Any, image2: Any, threshold: Optional[float] = None) -> Output:
        """`predict` without the event loop: the same answer, for in-process callers and tests."""
        result = self.verifier.verify(caller_image(image1), caller_image(image2), threshold)
        return to_output(result, self.verifier.pack.model_id)


def caller_image(value: Any) -> Any:
    """What the caller sent, made safe to read.

    Cog turns an upload, URL or data URI into a file it writes in the temporary folder; only
    such a file is read. Any other path (Cog's Path type accepts a plain string such as
    `/etc/passwd` as a local path) is handed on as text, which is decoded as base64 and so
    refused with `image<N>_invalid`: a file on the server is never opened for a caller.
    """
    if isinstance(value, LocalPath) and not written_by_cog(value):
        return str(value)
    return value


def written_by_cog(path: LocalPath) -> bool:
    """True for a regular file (not a link) inside the temporary folder, where Cog stores inputs."""
    temp = LocalPath(tempfile.gettempdir()).resolve()
    try:
        return not path.is_symlink() and path.resolve().parent.is_relative_to(temp) and path.is_file()
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return False


def to_output(result: Verification, model_pack: str) -> Output:
    """Flatten a Verification into Cog's output record."""
    def face(prefix: str, report: FaceReport) -> dict[str, Any]:
        return {f"{prefix}_face_count": report.face_count, f"{prefix}_face_box": report.box, f"{prefix}_face_score": report.score}

    return Output(
        match=result.match, similarity=result.similarity, threshold=result.threshold,
        false_match_rate=result.false_match_rate,
        error_code=result.error_code, error=result.error,
        **face("image1", result.image1), **face("image2", result.image2), model_pack=model_pack,
    )
