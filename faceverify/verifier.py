"""Stage 5, result out: compare the faces in two images and say whether they are one person.

    verifier = FaceVerifier.load("weights/buffalo_l")
    result = verifier.verify(Path("id_card.jpg"), Path("selfie.jpg"))
    result.match, result.similarity, result.error_code

`image1` is the reference (the ID document or its portrait), `image2` the probe (the selfie).
Each can be `bytes`, a `pathlib.Path` to a file, or a `str` holding a data URI or base64.
A `str` is never opened as a path or fetched as a URL. A problem with an image is not an
exception: it comes back as a `Verification` with `match=False` and an `error_code`. Both images
are examined at once, `image1` in a helper thread and `image2` in the caller's (see
`modelpack.session_options` and docs/how-it-decides.md); when both have a problem, `image1`'s is
reported.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .compare import check_threshold, cosine_similarity, is_match
from .embeddings import align_face, embed_faces
from .errors import ImageError, ImageProblem
from .faces import (
    DETECTION_SIDE,
    DETECTION_SIZES,
    DetectedFace,
    choose_main_face,
    detect_faces,
    run_detector,
)
from .images import (
    DecodedImage,
    bytes_from_text,
    decode_image,
    read_upload,
)
from .modelpack import ModelPack, load_model_pack

ImageInput = bytes | str | Path | None
IMAGE_NAMES = ("image1", "image2")

FACE_DETAIL = 1.25
"""A face found in an image decoded at reduced size for detection must be at least this many times
the recognizer's input size tall (140 pixels for 112), or the image is decoded again with more
detail before alignment: at least the detail of the LFW photos the accuracy was measured on
(docs/how-it-decides.md, "Reduced decoding"). `script/measure-decode-sizes` compares the answers
with decoding every image whole."""


@dataclass(frozen=True)
class FaceReport:
    """What was found in one image: how many faces, and the chosen face's box
    `[x1, y1, x2, y2]` in original (upright) image pixels and detection score."""

    face_count: int = 0
    box: list[float] | None = None
    score: float | None = None


@dataclass(frozen=True)
class Verification:
    """The answer for one pair. `match` is False whenever no comparison was made.

    `false_match_rate` is the share of the pack calibration's impostor pairs that scored at least
    `similarity` (see `Calibration.false_match_rate`); None when no comparison was made or the
    pack's calibration has no measured table."""

    match: bool
    similarity: float | None
    threshold: float
    false_match_rate: float | None = None
    error_code: str | None = None
    error: str | None = None
    image1: FaceReport = field(default_factory=FaceReport)
    image2: FaceReport = field(default_factory=FaceReport)


@dataclass(frozen=True)
class FoundFace:
    """An image's chosen face, ready for embedding, and everything found with it."""

    image: DecodedImage
    faces: list[DetectedFace]
    face: DetectedFace

    def report(self) -> FaceReport:
        """The chosen face's box mapped back to original pixels, for the caller."""
        width, height = self.image.original_size
        x1, y1, x2, y2 = (v / self.image.scale for v in self.face.box)
        box = [round(min(max(x1, 0.0), width), 1), round(min(max(y1, 0.0), height), 1),
               round(min(max(x2, 0.0), width), 1), round(min(max(y2, 0.0), height), 1)]
        return FaceReport(face_count=len(self.faces), box=box, score=round(self.face.score, 4))


def image_bytes(value: ImageInput) -> bytes:
    """The encoded bytes of one input: a file's content, or a data URI / base64 string decoded.
    Raises ImageError for a missing input, an unreadable file or a string that is not base64."""
    if value is None:
        raise ImageError(ImageProblem.MISSING, "no image was sent")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, Path):
        try:
            return read_upload(value)
        except OSError:
            raise ImageError(ImageProblem.INVALID, "the uploaded file cannot be read") from None
    if isinstance(value, str):
        return bytes_from_text(value)
    raise ImageError(ImageProblem.INVALID, f"an image must be a file, a data URI or base64, not {type(value).__name__}")


class FaceVerifier:
    """A loaded model pack and the pipeline that compares two images with it."""

    def __init__(self, pack: ModelPack) -> None:
        self.pack = pack
        self.recognizer_size = int(pack.recognizer.input_size[0])
        # Runs image1's work while the caller runs image2's; two workers, one per prediction Cog
        # runs at once (cog.yaml concurrency.max). ONNX Runtime sessions may be run from several threads.
        self.helper = ThreadPoolExecutor(max_workers=2, thread_name_prefix="faceverify-image1")

    @classmethod
    def load(cls, pack_path: str | Path, threads: int | None = None) -> FaceVerifier:
        """Load and check the pack in `pack_path` (raises ModelPackError), then warm it up.
        `threads` sets ONNX Runtime's threads per network call (default: half the cores)."""
        verifier = cls(load_model_pack(pack_path, threads))
        verifier.warm_up()
        return verifier

    @property
    def default_threshold(self) -> float | None:
        """The pack's calibrated threshold, or None for a pack without a calibration."""
        return self.pack.calibration.default_threshold if self.pack.calibration else None

    def warm_up(self) -> None:
        """Run every network once at every input size so the first real request is not slow
        (ONNX Runtime and InsightFace build per-size sessions and plans on first use)."""
        blank = np.full((480, 640, 3), 127, dtype=np.uint8)
        run_detector(self.pack.detector, blank, list(DETECTION_SIZES))
        crop = np.zeros((self.recognizer_size, self.recognizer_size, 3), dtype=np.uint8)
        embed_faces(self.pack.recognizer, [crop], batched=False)
        if self.pack.recognizer_takes_batches:
            embed_faces(self.pack.recognizer, [crop, crop], batched=True)

    def find_face(self, value: ImageInput) -> FoundFace:
        """Decode one input and choose its face. Raises ImageError (invalid, too large/small, no face).

        A large JPEG is decoded only as large as detection needs, and again with more detail only
        when its chosen face is small there (see FACE_DETAIL)."""
        data = image_bytes(value)
        found = self.locate_face(decode_image(data, min_side=DETECTION_SIDE))
        return self.with_detail(found, data)

    def locate_face(self, image: DecodedImage) -> FoundFace:
        """Detect the faces of a decoded image and choose one. Raises ImageError when there is none."""
        faces = detect_faces(self.pack.detector, image.pixels)
        height, width = image.pixels.shape[:2]
        return FoundFace(image=image, faces=faces, face=choose_main_face(faces, width, height))

    def with_detail(self, found: FoundFace, data: bytes) -> FoundFace:
        """`found`, decoded again from `data` with more pixels when its image was reduced and its face
        is under FACE_DETAIL times the recognizer's size; its faces are mapped to the new pixels."""
        needed = FACE_DETAIL * self.recognizer_size
        if not found.image.reduced or found.face.height >= needed:
            return found
        longest = max(found.image.pixels.shape[:2])
        image = decode_image(data, min_side=math.ceil(longest * needed / max(found.face.height, 1.0)))
        ratio = image.scale / found.image.scale
        faces = [face.scaled(ratio) for face in found.faces]
        return FoundFace(image=image, faces=faces, face=faces[found.faces.index(found.face)])

    def embed(self, found: list[FoundFace]) -> np.ndarray:
        """Unit embeddings of the chosen faces, one row each.

        On a GPU, a recognizer that takes batches embeds all faces in one call. Otherwise each face
        gets its own call, the first face's in the helper thread while the caller runs the rest: on
        a CPU, where each call has half the cores, two calls at once finish sooner than one batch."""
        if self.pack.on_gpu and self.pack.recognizer_takes_batches:
            crops = [align_face(item.image.pixels, item.face, self.recognizer_size) for item in found]
            return embed_faces(self.pack.recognizer, crops, batched=True)
        if len(found) == 1:
            return self._embed_one(found[0])
        first = self.helper.submit(self._embed_one, found[0])
        rest = [self._embed_one(item) for item in found[1:]]
        return np.vstack([first.result(), *rest])

    def _embed_one(self, found: FoundFace) -> np.ndarray:
        crop = align_face(found.image.pixels, found.face, self.recognizer_size)
        return embed_faces(self.pack.recognizer, [crop], batched=False)

    def _find_or_problem(self, value: ImageInput) -> FoundFace | ImageError:
        try:
            return self.find_face(value)
        except ImageError as problem:
            return problem

    def verify(self, image1: ImageInput, image2: ImageInput, threshold: float | None = None) -> Verification:
        """Compare the main face of `image1` (reference) with that of `image2` (probe).

        `threshold` in [0, 1] overrides the pack's calibrated default; a bad threshold, or no
        threshold for a pack without calibration, raises ValueError (a caller bug).
        """
        if threshold is None:
            if self.default_threshold is None:
                raise ValueError(
                    f"model pack {self.pack.model_id} has no calibrated default threshold; pass threshold "
                    "(calibrate one on your own data: docs/operations.md)"
                )
            threshold = self.default_threshold
        threshold = check_threshold(threshold)

        first = self.helper.submit(self._find_or_problem, image1)
        second = self._find_or_problem(image2)
        found = [first.result(), second]
        for name, outcome in zip(IMAGE_NAMES, found):
            if isinstance(outcome, ImageError):
                reports = [item.report() if isinstance(item, FoundFace) else FaceReport() for item in found]
                return Verification(
                    match=False, similarity=None, threshold=threshold,
                    error_code=outcome.code_for(name), error=f"{name}: {outcome.message}",
                    image1=reports[0], image2=reports[1],
                )
        embeddings = self.embed(found)
        similarity = cosine_similarity(embeddings[0], embeddings[1])
        calibration = self.pack.calibration
        return Verification(
            match=is_match(similarity, threshold), similarity=similarity, threshold=threshold,
            false_match_rate=calibration.false_match_rate(similarity) if calibration else None,
            image1=found[0].report(), image2=found[1].report(),
        )
