"""Stage 1, image in: turn what a caller sent into a BGR pixel array the models can read.

Callers send an uploaded file (Cog hands us a path it wrote itself), a `data:` URI or a bare
base64 string. A plain string is only ever decoded as base64: it is never opened as a path on
this server and never fetched as a URL.

Decoding uses Pillow (with pillow-heif for HEIC/HEIF phone photos) and accepts only the
formats listed in `ACCEPTED_FORMATS`, so Pillow never hands an upload to an exotic decoder.
EXIF orientation is applied, every colour mode is brought to 8-bit RGB (transparency is laid
over white), and the result is returned in BGR order, which InsightFace's models expect.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import io
import math
import os
import re
import stat
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from .errors import ImageError, ImageProblem

try:  # HEIC/HEIF support is optional at import time, required by requirements.txt
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - the pinned requirements always install it
    pillow_heif = None

MAX_BYTES = 25 * 1024 * 1024
"""Largest accepted encoded image (25 MiB), before or after base64 decoding."""

MAX_PIXELS = 50_000_000
"""Largest accepted image, in pixels (50 megapixels), read from the header before decoding."""

MIN_SIDE = 32
"""Shortest accepted side in pixels; a face in a smaller image cannot be recognised."""

MAX_ASPECT_RATIO = 10
"""Longest accepted side as a multiple of the shortest. A narrower strip holds no face worth
comparing, and scaled to the detector's square input its short side would shrink to nothing."""

WORKING_MAX_SIDE = 2048
"""Larger images are scaled down to at most this longest side before detection (boxes are mapped
back); large JPEGs are decoded at reduced size, ending between half this and this."""

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
"""What phone cameras and browsers produce. BMP, TIFF and GIF are refused: no KYC photo needs them,
and each is a decoder (and, for TIFF, a family of codecs) that an attacker could aim at."""

DECODE_BUDGET_BYTES = 640 * 2**20
"""Memory that the image decodes running at once in this process may reserve together. A decode
waits while its reservation would exceed it; one larger than the whole budget runs alone. Two
predictions at once decode up to four images at once, and a 50-megapixel PNG or WebP takes
hundreds of MB to decode, so without a bound four of them could take several GB."""

DECODE_BYTES_PER_PIXEL = {"JPEG": 10, "MPO": 10, "PNG": 10, "WEBP": 16, "HEIF": 8}
"""A decode's peak memory per decoded pixel, from compressed bytes to the working-size BGR array, in
the costliest colour mode of each format, rounded up from script/measure-memory's figures
(docs/operations.md, "Memory"). A JPEG is counted at the size its decoder reduces it to."""

# Pillow's own bomb check would stop at 2x its limit; ours runs first, from the header.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_WHITESPACE = re.compile(r"\s+")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:/")


@dataclass(frozen=True)
class DecodedImage:
    """An image ready for detection.

    `pixels` is an HxWx3 uint8 BGR array, possibly scaled down from the original;
    `original_size` is (width, height) of the upright original; `scale` maps original
    coordinates to `pixels` coordinates (pixels = original * scale, scale <= 1).
    `reduced` is True when a `min_side` made the JPEG decoder skip detail that a plain
    `decode_image(data)` keeps, so decoding again can give a face more pixels.
    """

    pixels: np.ndarray
    original_size: tuple[int, int]
    scale: float
    reduced: bool = False


def read_upload(path: Path) -> bytes:
    """Read an uploaded file that Cog wrote to disk.

    The file is opened without following a link, and read only when the opened file is a regular
    file with a single name (not a device, pipe, folder or hard link to another file). Raises
    ImageError: INVALID when it cannot be read so, TOO_LARGE when it is over MAX_BYTES.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except (OSError, ValueError):  # a link, a missing file, a NUL byte in the name
        raise ImageError(ImageProblem.INVALID, "the uploaded file cannot be read") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        os.close(descriptor)
        raise ImageError(ImageProblem.INVALID, "the uploaded file is not a regular file")
    with os.fdopen(descriptor, "rb") as stream:
        data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ImageError(ImageProblem.TOO_LARGE, f"the file is over the {MAX_BYTES // 2**20} MB limit")
    return data


def bytes_from_text(text: str) -> bytes:
    """Decode a `data:` URI or a bare base64 string into image bytes.

    Whitespace and newlines inside base64 are ignored, URL-safe base64 and missing padding
    are accepted. The media type a data URI declares is not trusted: the bytes decide.
    Anything else (a file path, a `file://` or `http://` URL, random text) raises ImageError.
    """
    if not text or not text.strip():
        raise ImageError(ImageProblem.INVALID, "the image is an empty string")
    if len(text) > MAX_BYTES * 4 // 3 + 4096:
        raise ImageError(ImageProblem.TOO_LARGE, f"the encoded image is over the {MAX_BYTES // 2**20} MB limit")
    stripped = text.strip()
    if stripped[:5].lower() == "data:":
        header, comma, _ = stripped[:256].partition(",")
        if not comma:
            raise ImageError(ImageProblem.INVALID, "the data URI has no ',' before its data")
        payload = stripped[len(header) + 1:]
        if ";base64" not in header.lower():
            data = urllib.parse.unquote_to_bytes(payload)
            if not data:
                raise ImageError(ImageProblem.INVALID, "the data URI carries no data")
            return data
        return _decode_base64(payload)
    # Base64 of a JPEG starts with "/9j/", so only a short string is taken for a path.
    looks_like_path = len(stripped) < 256 and stripped.startswith(("/", "./", "../", "~"))
    if _URL.match(stripped) or looks_like_path:
        raise ImageError(
            ImageProblem.INVALID,
            "the image is a URL or a file path that the model cannot use: send an uploaded file, "
            "an http(s) URL as a file input, a data URI or base64 (paths on the server are never opened)",
        )
    return _decode_base64(stripped)


def _decode_base64(payload: str) -> bytes:
    compact = _WHITESPACE.sub("", payload).replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(ImageProblem.INVALID, "the image is neither an uploaded file nor valid base64 or a data URI") from None
    if not data:
        raise ImageError(ImageProblem.INVALID, "the image is empty")
    return data


def decode_image(data: bytes, min_side: int | None = None) -> DecodedImage:
    """Decode image bytes into an upright BGR array, enforcing the size limits.

    A JPEG over WORKING_MAX_SIDE is decoded at reduced size (DCT scaling by 1/2, 1/4 or 1/8) to a
    longest side between half that and that. `min_side` lets it be reduced further, as long as its
    longest side stays at least `min_side` pixels (docs/how-it-decides.md, "Reduced decoding").
    Other formats are always decoded whole.

    Raises ImageError: INVALID (empty, not an accepted image format, corrupt), TOO_LARGE
    (over MAX_BYTES or MAX_PIXELS), TOO_SMALL (a side under MIN_SIDE), BAD_ASPECT_RATIO (one side
    over MAX_ASPECT_RATIO times the other).
    """
    if not data:
        raise ImageError(ImageProblem.INVALID, "the image file is empty")
    if len(data) > MAX_BYTES:
        raise ImageError(ImageProblem.TOO_LARGE, f"the image is {len(data) / 2**20:.1f} MB; the limit is {MAX_BYTES // 2**20} MB")
    with _decoding_errors():
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        _check_size(image.size)
        header_width, header_height = image.size
        plain_side = WORKING_MAX_SIDE // 2 if max(image.size) > WORKING_MAX_SIDE else max(image.size)
        _draft(image, plain_side if min_side is None else min(min_side, plain_side))
        cost = image.size[0] * image.size[1] * DECODE_BYTES_PER_PIXEL.get(str(image.format), max(DECODE_BYTES_PER_PIXEL.values()))
        with _DECODE_BUDGET.reserve(cost):
            orientation = _orientation(image)  # a PNG's EXIF may follow its pixels: reading it decodes them
            image.load()
            rgb = _to_rgb(_apply_exif_orientation(image, orientation))
            del image
            # Draft mode may already have reduced a JPEG; the scale is measured on the result.
            if max(rgb.size) > WORKING_MAX_SIDE:
                rgb.thumbnail((WORKING_MAX_SIDE, WORKING_MAX_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
            bgr = cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)  # faster than a reversed numpy copy

    turned = orientation in (5, 6, 7, 8)
    original_width, original_height = (header_height, header_width) if turned else (header_width, header_height)
    return DecodedImage(pixels=bgr, original_size=(original_width, original_height), scale=rgb.size[0] / original_width,
                        reduced=max(rgb.size) < plain_side)


class DecodeBudget:
    """A pool of bytes that concurrent decodes reserve from, so that together they stay within it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.reserved = 0
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, amount: int) -> Iterator[None]:
        """Hold `amount` bytes (at most the whole pool) for the block, waiting until they are free."""
        amount = min(max(amount, 0), self.capacity)
        with self._changed:
            self._changed.wait_for(lambda: self.reserved + amount <= self.capacity)
            self.reserved += amount
        try:
            yield
        finally:
            with self._changed:
                self.reserved -= amount
                self._changed.notify_all()


_DECODE_BUDGET = DecodeBudget(DECODE_BUDGET_BYTES)

LARGE_ALLOCATION = 4 * 2**20
"""Allocations at least this large get their own memory mapping (see `return_large_buffers_to_os`)."""


def return_large_buffers_to_os() -> None:
    """Make glibc give large freed buffers back to the OS at once.

    Decoded images are large and short-lived. By default glibc serves buffers of a few MB from
    per-thread heaps that keep the memory after it is freed, so each decoding thread's peak stays
    resident. A fixed mmap threshold (`mallopt(M_MMAP_THRESHOLD)`) maps each large buffer on its own
    and unmaps it when freed. Does nothing where the C library has no `mallopt` (not glibc).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(LARGE_ALLOCATION))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


@contextmanager
def _decoding_errors() -> Iterator[None]:
    """Turn whatever Pillow raises on bad data into the matching ImageError."""
    try:
        yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(ImageProblem.TOO_LARGE, f"the image has more than {MAX_PIXELS // 1_000_000} megapixels") from None
    except Image.UnidentifiedImageError:
        raise ImageError(
            ImageProblem.INVALID,
            "the file is not an image in an accepted format (JPEG, PNG, WebP or HEIC)",
        ) from None
    except MemoryError:
        raise ImageError(ImageProblem.TOO_LARGE, "the image is too large to decode") from None
    except Exception:  # Pillow's decoders and converters raise many types for corrupt or odd data
        raise ImageError(ImageProblem.INVALID, "the image data is corrupt, truncated or in an unsupported colour mode") from None


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(
            ImageProblem.TOO_LARGE,
            f"the image is {width}x{height} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels",
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            ImageProblem.TOO_SMALL,
            f"the image is {width}x{height} pixels; each side must be at least {MIN_SIDE} pixels",
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageError(
            ImageProblem.BAD_ASPECT_RATIO,
            f"the image is {width}x{height} pixels, a narrow strip; its longer side may be at most "
            f"{MAX_ASPECT_RATIO} times its shorter side",
        )


def _draft(image: Image.Image, min_side: int) -> None:
    """Let the JPEG decoder skip detail we would throw away (DCT scaling by 1/2, 1/4 or 1/8).

    The decoder picks the strongest reduction that keeps the longest side at least `min_side`,
    so nothing needs resampling afterwards. Other formats ignore it.
    """
    if image.format not in ("JPEG", "MPO") or max(image.size) < 2 * min_side:
        return
    ratio = min_side / max(image.size)
    image.draft("RGB", (math.ceil(image.size[0] * ratio), math.ceil(image.size[1] * ratio)))


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # a corrupt EXIF block must not reject an otherwise good photo
        return 1


def _apply_exif_orientation(image: Image.Image, orientation: int) -> Image.Image:
    if orientation == 1:
        return image
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Bring any Pillow mode to 8-bit RGB: 16/32-bit greyscale is rescaled, alpha is laid over white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_grey_8bit(image), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        # Pasted through its own alpha onto white: one RGB canvas instead of three RGBA copies.
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, (0, 0), rgba)
        return background
    return image.convert("RGB")


def _grey_8bit(image: Image.Image) -> np.ndarray:
    """A 16/32-bit or float greyscale image as 8-bit values: 16-bit is rescaled, 0..1 floats stretched.

    Works in the image's own dtype (uint16 / int32 / float32) and frees its copies on return: a
    float64 copy of a 16-bit image at the pixel limit is large, and a tiny PNG can claim one.
    """
    values = np.asarray(image)
    peak = float(values.max()) if values.size else 0.0
    if peak > 255 and image.mode != "F":
        grey = np.floor_divide(values, 257)  # = truncating values / 257 for every value the clip keeps
    elif 0 < peak <= 1.0:
        grey = values * 255
    else:
        grey = values.copy()
    del values
    np.clip(grey, 0, 255, out=grey)
    return grey.astype(np.uint8)
