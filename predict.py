"""Cog adapter: `Predictor.setup()` loads a model pack, `predict()` compares two images.

All logic lives in the `faceverify` package; this file only maps Cog's inputs and outputs.
It keeps Cog's `BasePredictor.predict()` interface (cog.yaml: `predict: "predict.py:Predictor"`),
which cog 0.23 still serves but marks deprecated in favour of `BaseRunner.run()`.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path as LocalPath
from typing import Any, Optional

from cog import BaseModel, BasePredictor, Input, Path

from faceverify import FaceVerifier, ModelPackError, Verification
from faceverify.modelpack import default_pack_path
from faceverify.output import output_record

class Output(BaseModel):
    """One flat record (Cog has no nested outputs). `match` is false whenever `error_code` is set.

    `false_match_rate` is the upper 95% confidence bound on the false match rate at `similarity`,
    the highest over the populations the pack's calibration holds (each with its data and whom it
    represents; the test pack: LFW View 1 and South Asian film actors): never 0, never below what
    their people can check, and null when no comparison was made or the pack's rate is unknown
    (buffalo_l as shipped). Other populations may differ: docs/accuracy.md says for whom it holds.

    `image<N>_quality_issues` lists the compared face's quality issue codes (empty when there are
    none or no face was aligned); `image<N>_quality_score` (0-100, under 50 with an issue) and the
    measures after it explain them, null when no face was aligned (docs/quality.md).
    """

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
    image1_quality_issues: list[str]
    image1_quality_score: Optional[float]
    image1_eye_distance: Optional[float]
    image1_edge_margin: Optional[float]
    image1_yaw: Optional[float]
    image1_roll: Optional[float]
    image1_sharpness: Optional[float]
    image1_underexposure: Optional[float]
    image1_overexposure: Optional[float]
    image1_second_face: Optional[float]
    image2_quality_issues: list[str]
    image2_quality_score: Optional[float]
    image2_eye_distance: Optional[float]
    image2_edge_margin: Optional[float]
    image2_yaw: Optional[float]
    image2_roll: Optional[float]
    image2_sharpness: Optional[float]
    image2_underexposure: Optional[float]
    image2_overexposure: Optional[float]
    image2_second_face: Optional[float]
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
        # Literal strings: cog build reads these descriptions from the source without running it.
        # They state what Replicate accepts (README, "Inputs"); bare base64 works only locally.
        image1: Path = Input(description="Reference photo: the identity document, or a crop of its portrait. An http(s) URL, or a data URI of at most 256 KB. Replicate's clients upload a larger file and send its URL."),
        image2: Path = Input(description="Probe photo: the live selfie. An http(s) URL, or a data URI of at most 256 KB. Replicate's clients upload a larger file and send its URL."),
        threshold: Optional[float] = Input(
            description="Match when similarity >= threshold, a number from 0 to 1. Leave it out for the model pack's calibrated default.",
            default=None, ge=0.0, le=1.0,
        ),
        require_selfie_quality: bool = Input(
            description="When true, a selfie with any quality issue (image2_quality_issues) is not compared: the answer is error_code image2_poor_quality and match false. Default false: issues are only reported.",
            default=False,
        ),
    ) -> Output:
        """Compare the main face of image1 with the main face of image2.

        Async so that Cog can run two predictions at once (cog.yaml `concurrency.max`): the work
        runs in a thread, and the loaded networks are shared (ONNX Runtime sessions are safe to
        call from several threads). The gain is measured in docs/how-it-decides.md, "Concurrency".
        """
        return await asyncio.to_thread(self.compare, image1, image2, threshold, require_selfie_quality)

    def compare(self, image1: Any, image2: Any, threshold: Optional[float] = None, require_selfie_quality: bool = False) -> Output:
        """`predict` without the event loop: the same answer, for in-process callers and tests."""
        result = self.verifier.verify(caller_image(image1), caller_image(image2), threshold, require_selfie_quality)
        return to_output(result, self.verifier.pack.model_id)


COG_INPUT_NAME = re.compile(r"tmp[a-z0-9_]{8}[^/]*")
"""How Cog names an input file it writes: `tempfile.NamedTemporaryFile(suffix=<name from the URL or
data URI>)` in the temporary folder, so "tmp", eight random characters, then the suffix."""


def caller_image(value: Any) -> Any:
    """What the caller sent, made safe to read.

    coglet turns a string for a Path input into a file only when it starts with `http://`,
    `https://` or `data:` (`coerce_typed_inputs` in its Rust source): it writes the download or the
    decoded data URI to a new file in the temporary folder (`cog.types.URLPath.convert`) before
    predict() runs. Any other string, such as `/etc/passwd`, reaches predict() as a `str` and is
    decoded as base64, so refused with `image<N>_invalid` (tests/test_bad_inputs.py shows it over HTTP).
    A Path is read only when it has the shape of Cog's input files, and then opened without following
    links and read only if it is a regular file with one link (`faceverify.images.read_upload`).
    Any other Path (from an in-process caller, or a Cog that made every string a path, as the SDK's
    `cog.Path.validate` does) is handed on as text, refused the same way: no other file on the server
    is opened for a caller. Another request's input file is protected by its random name, which a
    caller cannot learn from this model's answers or logs.
    """
    if isinstance(value, LocalPath) and not written_by_cog(value):
        return str(value)
    return value


def written_by_cog(path: LocalPath) -> bool:
    """True for a path where Cog writes an input: directly in the temporary folder (no link or
    `..` resolved), with the name `tempfile` gives it."""
    literal = os.path.normpath(os.fspath(path))
    folder, name = os.path.split(literal)
    return folder == os.path.normpath(tempfile.gettempdir()) and COG_INPUT_NAME.fullmatch(name) is not None


def to_output(result: Verification, model_pack: str) -> Output:
    """Flatten a Verification into Cog's output record (faceverify/output.py)."""
    return Output(**output_record(result, model_pack))
