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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .compare import check_threshold, cosine_similarity, is_ambiguous, is_match
from .embeddings import align_face, embed_faces
from .errors import ImageError, ImageProblem, ModelPackError
from .faces import (
    DETECTION_SIDE,
    DETECTION_SIZES,
    DetectedFace,
    choose_main_face,
    detect_faces,
    other_faces,
    run_detector,
)
from .images import (
    DecodedImage,
    bytes_from_text,
    decode_image,
    read_upload,
    return_large_buffers_to_os,
)
from .modelpack import ModelPack, load_model_pack
from .quality import Quality, QualityIssue, Role, assess, measure_quality, with_issue
from .same_photo import SAME_PHOTO_LIKENESS, screened_likeness
from .threads import max_concurrency, set_opencv_threads

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
    `[x1, y1, x2, y2]` in original (upright) image pixels and detection score; `quality` when the
    face was aligned (see faceverify/quality.py)."""

    face_count: int = 0
    box: list[float] | None = None
    score: float | None = None
    quality: Quality | None = None


@dataclass(frozen=True)
class PairMeasures:
    """The numbers behind the two KYC checks, for the measurement commands; never in the model's
    output. `looks_alike` and `photo_likeness` of the two aligned faces (see faceverify/same_photo.py;
    `photo_likeness` None when the screen ruled a copy out), the chosen faces' similarity (None when
    no embeddings were made) and the similarities of the selfie's other faces to the reference."""

    looks_alike: float | None = None
    photo_likeness: float | None = None
    similarity: float | None = None
    other_similarities: tuple[float, ...] = ()


@dataclass(frozen=True)
class Verification:
    """The answer for one pair. `match` is False whenever no comparison was made.

    `false_match_rate` is the upper confidence bound on the false match rate at `similarity` from
    the pack's calibration (see `Calibration.false_match_rate`), never 0; None when no comparison
    was made or the pack's calibration has no measured table."""

    match: bool
    similarity: float | None
    threshold: float
    false_match_rate: float | None = None
    error_code: str | None = None
    error: str | None = None
    image1: FaceReport = field(default_factory=FaceReport)
    image2: FaceReport = field(default_factory=FaceReport)
    measures: PairMeasures = field(default_factory=PairMeasures, repr=False, compare=False)


Examined = tuple["FoundFace | None", "ImageError | None"]
"""What `FaceVerifier.examine` makes of one image: its face, and why it cannot be compared if not."""


@dataclass(frozen=True)
class FoundFace:
    """An image's chosen face and everything found with it; `crop` is the face aligned for the
    recognizer, None until `FaceVerifier.align` has checked and made it; `quality` is its
    measures and issues, None until `FaceVerifier.assess` has made them."""

    image: DecodedImage
    faces: list[DetectedFace]
    face: DetectedFace
    crop: np.ndarray | None = None
    quality: Quality | None = None

    def report(self) -> FaceReport:
        """The chosen face's box mapped back to original pixels, for the caller."""
        width, height = self.image.original_size
        x1, y1, x2, y2 = (v / self.image.scale for v in self.face.box)
        box = [round(min(max(x1, 0.0), width), 1), round(min(max(y1, 0.0), height), 1),
               round(min(max(x2, 0.0), width), 1), round(min(max(y2, 0.0), height), 1)]
        return FaceReport(face_count=len(self.faces), box=box, score=round(self.face.score, 4), quality=self.quality)


def image_bytes(value: ImageInput) -> bytes:
    """The encoded bytes of one input: a file's content, or a data URI / base64 string decoded.
    Raises ImageError for a missing input, an unreadable file or a string that is not base64."""
    if value is None:
        raise ImageError(ImageProblem.MISSING, "no image was sent")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, Path):
        return read_upload(value)
    if isinstance(value, str):
        return bytes_from_text(value)
    raise ImageError(ImageProblem.INVALID, f"an image must be a file, a data URI or base64, not {type(value).__name__}")


class FaceVerifier:
    """A loaded model pack and the pipeline that compares two images with it."""

    def __init__(self, pack: ModelPack, batch_faces: bool | None = None) -> None:
        self.pack = pack
        self.recognizer_size = int(pack.recognizer.input_size[0])
        # Both faces in one recognizer call only where the recognizer takes batches, and by default
        # only on a GPU: on a CPU one call per face, both at once, was as fast alone and faster with
        # two predictions at once (docs/performance.md, "Recognizer on a CPU"). `batch_faces`
        # overrides the default for a recognizer that takes batches.
        self.batch_faces = pack.recognizer_takes_batches and (pack.on_gpu if batch_faces is None else batch_faces)
        # Runs image1's work while the caller runs image2's; one worker per prediction Cog runs at
        # once (COG_MAX_CONCURRENCY, from cog.yaml's concurrency.max). ONNX Runtime sessions may be
        # run from several threads.
        self.helper = ThreadPoolExecutor(max_workers=max_concurrency(), thread_name_prefix="faceverify-image1")

    @classmethod
    def load(cls, pack_path: str | Path, threads: int | None = None) -> FaceVerifier:
        """Load and check the pack in `pack_path` (raises ModelPackError), then warm it up.
        `threads` sets ONNX Runtime's and OpenCV's threads per call (default: half the usable CPUs,
        see faceverify/threads.py)."""
        set_opencv_threads(threads)
        return_large_buffers_to_os()
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
        crop = np.full((self.recognizer_size, self.recognizer_size, 3), 127, dtype=np.uint8)
        embedding = embed_faces(self.pack.recognizer, [crop], batched=False)
        if embedding.shape[1] != self.pack.embedding_dimension:
            raise ModelPackError(f"The recognizer gives {embedding.shape[1]}-dimensional embeddings, but the pack's "
                                 f"manifest states {self.pack.embedding_dimension}.")
        if self.batch_faces:
            embed_faces(self.pack.recognizer, [crop, crop], batched=True)

    def find_face(self, value: ImageInput) -> FoundFace:
        """Decode one input, choose its face and align it. Raises ImageError (invalid, too large or
        small, bad aspect ratio, no face, face unusable).

        A large JPEG is decoded only as large as detection needs, and again with more detail only
        when its chosen face is small there (see FACE_DETAIL)."""
        found, problem = self.examine(value)
        if problem is not None:
            raise problem
        return found

    def examine(self, value: ImageInput, role: Role = Role.PROBE) -> tuple[FoundFace | None, ImageError | None]:
        """`find_face` without raising: the image's face, with its quality under `role`'s rules, and
        why it cannot be compared if it cannot. A face that was found but cannot be aligned comes
        back (unaligned, without quality) with its problem."""
        try:
            data = image_bytes(value)
            found = self.with_detail(self.locate_face(decode_image(data, min_side=DETECTION_SIDE)), data)
        except ImageError as problem:
            return None, problem
        try:
            return self.assess(self.align(found), role), None
        except ImageError as problem:
            return found, problem

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

    def align(self, found: FoundFace) -> FoundFace:
        """`found` with its face aligned into the recognizer's crop. Raises ImageError
        (face_unusable) when the face cannot be aligned (see `embeddings.align_face`)."""
        crop = align_face(found.image.pixels, found.face, self.recognizer_size)
        return FoundFace(image=found.image, faces=found.faces, face=found.face, crop=crop)

    def assess(self, found: FoundFace, role: Role) -> FoundFace:
        """`found` (aligned) with its quality measured and judged by `role`'s rules."""
        if found.crop is None:
            raise ValueError("assess() needs an aligned face: call align() first")
        measures = measure_quality(found.image.pixels, found.image.scale, found.faces, found.face, found.crop)
        return replace(found, quality=assess(measures, role))

    def embed(self, found: list[FoundFace]) -> np.ndarray:
        """Unit embeddings of aligned faces (see `align`), one row each.

        With `batch_faces` (by default: a recognizer that takes batches, on a GPU) all faces go in
        one call. Otherwise each face gets its own call, the first face's in the helper thread while
        the caller runs the rest, each call with half the CPUs (see `__init__`)."""
        crops = [item.crop for item in found]
        if any(crop is None for crop in crops):
            raise ValueError("embed() needs aligned faces: call align() first")
        if self.batch_faces:
            return embed_faces(self.pack.recognizer, crops, batched=True)
        if len(crops) == 1:
            return self._embed_one(crops[0])
        first = self.helper.submit(self._embed_one, crops[0])
        rest = [self._embed_one(crop) for crop in crops[1:]]
        return np.vstack([first.result(), *rest])

    def _embed_one(self, crop: np.ndarray) -> np.ndarray:
        return embed_faces(self.pack.recognizer, [crop], batched=False)

    def other_faces(self, found: FoundFace) -> list[FoundFace]:
        """The sizeable faces of `found`'s image other than its chosen face (see `faces.other_faces`),
        each aligned; a face that cannot be aligned is left out."""
        height, width = found.image.pixels.shape[:2]
        aligned = []
        for face in other_faces(found.faces, found.face, width, height):
            try:
                aligned.append(self.align(FoundFace(image=found.image, faces=found.faces, face=face)))
            except ImageError:
                continue
        return aligned

    def verify(self, image1: ImageInput, image2: ImageInput, threshold: float | None = None,
               require_selfie_quality: bool = False) -> Verification:
        """Compare the main face of `image1` (reference) with that of `image2` (probe).

        `threshold` in [0, 1] overrides the pack's calibrated default; a bad threshold, or no
        threshold for a pack without calibration, raises ValueError (a caller bug). Each face's
        quality issues are reported; with `require_selfie_quality`, any issue on `image2` makes it
        an image problem (`image2_poor_quality`, no comparison). See `judge` for the two KYC checks.
        """
        threshold = self.threshold_or_default(threshold)
        first = self.helper.submit(self.examine, image1, Role.REFERENCE)
        second = self.examine(image2, Role.PROBE)
        return self.judge(first.result(), second, threshold, require_selfie_quality)

    def threshold_or_default(self, threshold: float | None) -> float:
        """A caller's threshold checked, or the pack's default; raises ValueError when it is bad or
        missing for a pack without a default."""
        if threshold is None:
            if self.default_threshold is None:
                raise ValueError(
                    f"model pack {self.pack.model_id} has no calibrated default threshold; pass threshold "
                    "(calibrate one on your own data: docs/operations.md)"
                )
            threshold = self.default_threshold
        return check_threshold(threshold)

    def judge(self, reference: Examined, selfie: Examined, threshold: float,
              require_selfie_quality: bool = False) -> Verification:
        """The answer for two examined images (see `examine`: the reference's under Role.REFERENCE,
        the selfie's under Role.PROBE) at a checked `threshold`.

        In order: an image's own problem (image1's first); with `require_selfie_quality`, a selfie
        quality issue; the selfie being a copy of the reference's photo (`image2_same_photo`, see
        faceverify/same_photo.py); then the comparison, of the chosen faces and of the selfie's other
        sizeable faces with the reference: when another face could be the person about as well
        (`compare.is_ambiguous`), the answer is `image2_multiple_faces` with `multiple_faces` among
        the selfie's issues, because a match must rest on the one face it reports. Every refusal
        has `match` false and no similarity.
        """
        if require_selfie_quality and selfie[1] is None and selfie[0].quality.issues:
            issues = ", ".join(issue.value for issue in selfie[0].quality.issues)
            selfie = (selfie[0], ImageError(ImageProblem.POOR_QUALITY, f"the face is not good enough to compare ({issues})"))
        outcomes = [reference, selfie]
        reports = [found.report() if found is not None else FaceReport() for found, _ in outcomes]
        for name, (_, problem) in zip(IMAGE_NAMES, outcomes):
            if problem is not None:
                return self.refused(name, problem, threshold, reports)
        reference_face, selfie_face = reference[0], selfie[0]

        screen, likeness = screened_likeness(reference_face.crop, selfie_face.crop)
        if likeness is not None and likeness >= SAME_PHOTO_LIKENESS:
            copy = ImageError(ImageProblem.SAME_PHOTO, "it is a copy of image1's photo (the same picture, resized, cropped, "
                                                       "re-encoded or in grey), not a new photo of a face")
            return self.refused("image2", copy, threshold, reports, PairMeasures(screen, likeness))

        others = self.other_faces(selfie_face)
        embeddings = self.embed([reference_face, selfie_face, *others])
        similarity = cosine_similarity(embeddings[0], embeddings[1])
        other_similarities = [cosine_similarity(embeddings[0], row) for row in embeddings[2:]]
        measures = PairMeasures(screen, likeness, similarity, tuple(other_similarities))
        if is_ambiguous(similarity, other_similarities, threshold):
            reports[1] = replace(reports[1], quality=with_issue(selfie_face.quality, QualityIssue.MULTIPLE_FACES))
            ambiguous = ImageError(ImageProblem.MULTIPLE_FACES, "another face in it matches image1 as well as, or nearly "
                                                                "as well as, the main face, so it is not clear who is the person")
            return self.refused("image2", ambiguous, threshold, reports, measures)
        calibration = self.pack.calibration
        return Verification(
            match=is_match(similarity, threshold), similarity=similarity, threshold=threshold,
            false_match_rate=calibration.false_match_rate(similarity) if calibration else None,
            image1=reports[0], image2=reports[1], measures=measures,
        )

    @staticmethod
    def refused(name: str, problem: ImageError, threshold: float, reports: list[FaceReport],
                measures: PairMeasures | None = None) -> Verification:
        """The answer when no comparison can be claimed: `match` false, no similarity, the problem's
        code for the named image and its message."""
        return Verification(
            match=False, similarity=None, threshold=threshold,
            error_code=problem.code_for(name), error=f"{name}: {problem.message}",
            image1=reports[0], image2=reports[1], measures=measures or PairMeasures(),
        )
