"""How small the Next.js page may make its two images before sending them, measured.

The page (integrations/nextjs/app/verify-page.tsx) scales each image down in the browser with a
canvas and sends it as a JPEG, so that both usually fit Replicate's 256 KB data-URI limit. This
command does the same to the genuine pairs of an LFW pairs file (View 1: pairsDevTrain.txt) and
compares the false non-match rate (FNMR) at the pack's default threshold with the originals':

- photo vs photo: the second photo (the selfie) scaled by each --photo-scales factor (an LFW face
  is about 110 pixels wide at 1.0) and JPEG-encoded at --quality;
- card vs photo: the first photo printed on a synthetic ID card (evaluation/idcards.py, 640 to
  1100 pixels wide as made), the card then scaled down to each --card-widths width (never up) and
  JPEG-encoded at --quality; the portrait is about a fifth of the card's width.

It also prints the JPEG size of real photos from ../shared/data/cases at each longest side the
page might use. One worker process; run it under `nice` on a shared machine.
"""

from __future__ import annotations

import argparse
import io
import json
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from faceverify.errors import ImageError
from faceverify.verifier import FaceVerifier

from .evaluation.idcards import make_id_card
from .shared import CASES, TEST_PACK


def page_jpeg(image: Image.Image, longest: int | None, scale: float | None = None, quality: int = 85) -> bytes:
    """`image` as the page sends it: scaled down (never up) to `longest` pixels on its longest side,
    or by `scale`, with a smoothing resample as a canvas does, then JPEG at `quality`."""
    image = image.convert("RGB")
    factor = scale if scale is not None else min(1.0, (longest or max(image.size)) / max(image.size))
    if factor < 1.0:
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def genuine_pairs(pairs_file: Path, images: Path) -> list[tuple[Path, Path]]:
    """The same-person pairs of an LFW pairs file (`Name i j` lines)."""
    found = []
    for line in pairs_file.read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) == 3:
            name, i, j = parts
            found.append((images / name / f"{name}_{int(i):04d}.jpg", images / name / f"{name}_{int(j):04d}.jpg"))
    return found


def main() -> None:
    """Measure and print the FNMR by variant, and real photos' JPEG sizes by longest side."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=TEST_PACK)
    parser.add_argument("--photo-scales", type=float, nargs="+", default=[1.0, 0.5, 0.35])
    parser.add_argument("--card-widths", type=int, nargs="+", default=[640, 480, 360, 280])
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument("--limit", type=int, default=0, help="first N genuine pairs only (0: all)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    started = time.perf_counter()
    verifier = FaceVerifier.load(args.weights, threads=1)
    threshold = verifier.default_threshold

    def embedding(value: Path | bytes) -> np.ndarray | None:
        try:
            found = verifier.find_face(value)
        except ImageError:
            return None
        return verifier.embed([found])[0]

    pairs = genuine_pairs(args.pairs, args.images)
    if args.limit:
        pairs = pairs[: args.limit]
    variants = ["photo original", *[f"photo x{s:g} q{args.quality}" for s in args.photo_scales],
                "card original", *[f"card {w} px q{args.quality}" for w in args.card_widths]]
    failures = {name: 0 for name in variants}
    card_widths: list[int] = []
    for first, second in pairs:
        reference = embedding(first)
        with Image.open(first) as photo:
            card = make_id_card(photo, zlib.crc32(first.name.encode()))
        with Image.open(io.BytesIO(card)) as card_image:
            card_image.load()
        card_widths.append(card_image.width)
        with Image.open(second) as selfie:
            selfie.load()
        probes: dict[str, bytes | Path] = {"photo original": second}
        for scale in args.photo_scales:
            probes[f"photo x{scale:g} q{args.quality}"] = page_jpeg(selfie, None, scale=scale, quality=args.quality)
        card_probes: dict[str, bytes] = {"card original": card}
        for width in args.card_widths:
            card_probes[f"card {width} px q{args.quality}"] = page_jpeg(card_image, None, scale=min(1.0, width / card_image.width),
                                                                       quality=args.quality)
        original_selfie = embedding(second)
        for name, value in probes.items():
            probe = original_selfie if name == "photo original" else embedding(value)
            if reference is None or probe is None or float(reference @ probe) < threshold:
                failures[name] += 1
        for name, value in card_probes.items():
            document = embedding(value)
            if document is None or original_selfie is None or float(document @ original_selfie) < threshold:
                failures[name] += 1

    sizes: dict[str, dict[int, int]] = {}
    samples = {"selfie (single-face/obama-1080p.jpg)": CASES / "single-face" / "obama-1080p.jpg",
               "selfie (single-face/obama3.jpg)": CASES / "single-face" / "obama3.jpg",
               "document (id-documents/100_pass-bdr.jpg)": CASES / "id-documents" / "100_pass-bdr.jpg",
               "document (id-documents/0_pass-lva.jpg)": CASES / "id-documents" / "0_pass-lva.jpg"}
    for label, path in samples.items():
        with Image.open(path) as image:
            image.load()
            sizes[f"{label} {image.width}x{image.height}"] = {side: len(page_jpeg(image, side, quality=args.quality))
                                                             for side in (640, 800, 1024, 1280, 1600)}

    report = {
        "pairs": len(pairs), "threshold": threshold, "quality": args.quality,
        "card_width_as_made": [min(card_widths), max(card_widths)],
        "fnmr": {name: {"failures": count, "rate": round(count / len(pairs), 4)} for name, count in failures.items()},
        "jpeg_bytes_by_longest_side": sizes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
