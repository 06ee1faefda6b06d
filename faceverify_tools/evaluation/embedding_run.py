"""Every image of an evaluation through the predictor's own pipeline, once, in parallel workers.

Each worker process loads the pack with `FaceVerifier.load` and, per image, calls the same
`find_face` (decoding, detection, face choice) and `embed` (alignment, recognizer) that
`FaceVerifier.verify` calls for a prediction. Photos are read from their files; synthetic ID
cards are made in memory from their source photo and passed as JPEG bytes, as an upload would be.
Embeddings live in memory for the run only and are never written anywhere.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

PHOTO, CARD, PADDED = "photo", "card", "padded"

PAD_GREY = (128, 128, 128)
"""The colour of the border `padded` adds around an image: plain mid-grey, like a studio backdrop."""


@dataclass(frozen=True)
class ImageTask:
    """One image to embed: an image file as it is (`photo`), a synthetic ID card made from it (`card`),
    or the file inside a grey border `pad` times its longer side wide on each side (`padded`), for a
    crop cut so tight around the face that the detector finds none."""

    kind: str
    path: Path
    pad: float = 0.0

    @property
    def card_seed(self) -> int:
        """The card's random seed, fixed by the photo's file name so reruns make the same card."""
        return zlib.crc32(self.path.name.encode())


@dataclass(frozen=True)
class ImageOutcome:
    """The chosen face's unit embedding, or the error code the predictor would answer (e.g. `no_face`).

    `face_offset` is how far the chosen face's centre lies from the image centre, as a share of
    the image's width and height (0 centred, 0.71 in a corner): on a set where the subject is
    centred, as in LFW, a large offset means the wrong face was chosen. `measures` are the face's
    quality measures (faceverify/quality.py), which report.py judges by the image's role in a pair."""

    task: ImageTask
    embedding: np.ndarray | None
    problem: str | None
    face_offset: float | None = None
    measures: object | None = None


_verifier = None


def _load_worker(pack_path: str, threads: int | None) -> None:
    global _verifier
    from faceverify.verifier import FaceVerifier

    _verifier = FaceVerifier.load(pack_path, threads=threads)


def _embed_one(task: ImageTask) -> ImageOutcome:
    from PIL import Image

    from faceverify.errors import ImageError

    from .idcards import make_id_card

    if task.kind == CARD:
        with Image.open(task.path) as photo:
            value: Path | bytes = make_id_card(photo, task.card_seed)
    elif task.kind == PADDED:
        value = padded(task.path, task.pad)
    else:
        value = task.path
    try:
        found = _verifier.find_face(value)
    except ImageError as error:
        return ImageOutcome(task, None, error.problem.value)
    height, width = found.image.pixels.shape[:2]
    x1, y1, x2, y2 = found.face.box
    offset = math.hypot((x1 + x2) / 2 / width - 0.5, (y1 + y2) / 2 / height - 0.5)
    return ImageOutcome(task, _verifier.embed([found])[0], None, round(offset, 3), found.quality.measures)


def padded(path: Path, share: float) -> bytes:
    """The image at `path` inside a PAD_GREY border `share` times its longer side wide, as PNG bytes (lossless)."""
    import io

    from PIL import Image, ImageOps

    with Image.open(path) as image:
        framed = ImageOps.expand(image.convert("RGB"), border=round(share * max(image.size)), fill=PAD_GREY)
    buffer = io.BytesIO()
    framed.save(buffer, "PNG")
    return buffer.getvalue()


def embed_with_padding(tasks: list[ImageTask], pack_path: str | Path, pad: float | None, workers: int | None = None,
                       progress: bool = True) -> dict[ImageTask, ImageOutcome]:
    """`embed_images`, then, with `pad`, each image that yielded `no_face` once more inside a border
    (`padded`); its outcome is the padded one when that finds a face. Outcomes keep the original task."""
    outcomes = embed_images(tasks, pack_path, workers, progress)
    if not pad:
        return outcomes
    retry = {ImageTask(PADDED, task.path, pad): task for task, outcome in outcomes.items()
             if outcome.problem == "no_face" and task.kind == PHOTO}
    if retry:
        for task, outcome in embed_images(list(retry), pack_path, workers, progress).items():
            if outcome.embedding is not None:
                outcomes[retry[task]] = outcome
    return outcomes


def embed_images(tasks: list[ImageTask], pack_path: str | Path, workers: int | None = None,
                 progress: bool = True) -> dict[ImageTask, ImageOutcome]:
    """Embed each task's image once with the pack in `pack_path`; returns an outcome per task.

    `workers` processes (default: one per core) each run ONNX Runtime on one thread, which on
    a small machine gets more images through than one process using every core.
    """
    workers = max(1, workers or os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")
    outcomes: dict[ImageTask, ImageOutcome] = {}
    with context.Pool(workers, initializer=_load_worker, initargs=(str(pack_path), 1 if workers > 1 else None)) as pool:
        results = pool.imap_unordered(_embed_one, tasks, chunksize=8)
        for outcome in tqdm(results, total=len(tasks), unit="image", disable=not progress, desc="embedding"):
            outcomes[outcome.task] = outcome
    return outcomes
