"""Property-based fuzzing of the image loader (hypothesis), with time and memory bounds.

Mutated real image bytes (bit flips, truncation, inserted bytes, overwritten runs, header splices
between formats) given to `decode_image`, and mutated base64 / data-URI text given to
`bytes_from_text`, must either decode to a well-formed image or raise `ImageError` - never any other
exception - and each call must stay within a time and a peak-memory bound.

The run is derandomized (the same examples every time) so CI is stable. For a longer, random run:
`FACEVERIFY_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_image_fuzz.py`.
"""

from __future__ import annotations

import base64
import functools
import os
import struct
import time
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import case, encode
from faceverify.errors import ImageError, ImageProblem
from faceverify.images import (
    MAX_PIXELS,
    MIN_SIDE,
    WORKING_MAX_SIDE,
    bytes_from_text,
    decode_image,
)
from faceverify_tools.inputs import flat_png

SECONDS_PER_CALL = 10.0
PEAK_MEMORY_MB = 700  # the worst image the limits let through (50 MP) needs ~330 MB; see the flood test
EXAMPLES = int(os.environ.get("FACEVERIFY_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=SECONDS_PER_CALL),
    derandomize="FACEVERIFY_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")


# --- measuring one call ------------------------------------------------------------------------

def _status_mb(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    raise AssertionError(f"no {key} in /proc/self/status")


def measured(call: Callable[[], object]) -> tuple[object, float, int]:
    """Run `call`; return (its result or the exception it raised, seconds, peak resident memory in MB
    above the resident memory before the call). The kernel's peak-RSS mark is reset first."""
    before = _status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset VmHWM (peak RSS) to the current RSS
    started = time.monotonic()
    try:
        result: object = call()
    except Exception as error:  # noqa: BLE001 - the caller asserts which exceptions are allowed
        result = error
    return result, time.monotonic() - started, _status_mb("VmHWM") - before


def check_decoded(result: object, elapsed: float, peak_mb: int) -> None:
    """`decode_image`'s contract: a well-formed image or an ImageError, within the bounds."""
    if isinstance(result, Exception):
        assert isinstance(result, ImageError), f"{type(result).__name__}: {result}"
        assert isinstance(result.problem, ImageProblem) and result.message
        assert result.problem in (ImageProblem.INVALID, ImageProblem.TOO_LARGE, ImageProblem.TOO_SMALL)
    else:
        pixels = result.pixels
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.flags.c_contiguous
        assert max(pixels.shape[:2]) <= WORKING_MAX_SIDE
        width, height = result.original_size
        assert min(width, height) >= MIN_SIDE and width * height <= MAX_PIXELS
        assert 0 < result.scale <= 1
    assert elapsed < SECONDS_PER_CALL, f"took {elapsed:.1f}s"
    assert peak_mb < PEAK_MEMORY_MB, f"peak memory +{peak_mb} MB"


def outcome(result: object) -> str:
    """How a decode ended, for hypothesis' statistics (--hypothesis-show-statistics)."""
    return "decode: " + (result.problem.value if isinstance(result, ImageError) else type(result).__name__)


# --- seeds: small real images in every accepted format -------------------------------------------

@functools.cache
def seeds() -> dict[str, bytes]:
    face = Image.open(case("single-face/obama_small.jpg")).convert("RGB").resize((120, 90))
    return {
        "jpeg": case("single-face/obama_small.jpg").read_bytes(),
        "jpeg-exif": case("exif/hopper_orientation_6.jpg").read_bytes(),
        "webp-exif": case("exif/hopper_orientation_6.webp").read_bytes(),
        "png": encode(face, "PNG"),
        "png-rgba": encode(face.convert("RGBA"), "PNG"),
        "png-16": encode(Image.fromarray(np.asarray(face.convert("L")).astype(np.uint16) * 257), "PNG"),
        "webp": encode(face, "WEBP", quality=80),
        "gif": encode(face, "GIF"),
        "bmp": encode(face, "BMP"),
        "tiff": encode(face, "TIFF"),
        "tiff-cmyk": encode(face.convert("CMYK"), "TIFF", compression="tiff_lzw"),
        "heic": encode(face, "HEIF", quality=60),
    }


@st.composite
def mutated_image(draw: st.DrawFn) -> bytes:
    """A real image with 1-4 mutations; positions favour the first 64 bytes, where the headers are."""
    names = sorted(seeds())
    seed = draw(st.sampled_from(names))
    event(f"seed: {seed}")
    data = bytearray(seeds()[seed])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break

        def position() -> int:
            return draw(st.one_of(st.integers(0, min(63, len(data) - 1)), st.integers(0, len(data) - 1)))

        kind = draw(st.sampled_from(["flip", "truncate", "insert", "overwrite", "splice", "number"]))
        if kind == "flip":
            at = position()
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[position():]
        elif kind == "insert":
            at = position()
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "overwrite":
            at = position()
            run = draw(st.sampled_from([b"\x00", b"\xff", b"\x7f"])) * draw(st.integers(1, 32))
            data[at:at + len(run)] = run
        elif kind == "splice":  # another format's header on this body
            other = seeds()[draw(st.sampled_from(names))]
            cut = draw(st.integers(1, min(256, len(other))))
            data[:cut] = other[:cut]
        else:  # a header number (size, length, offset) replaced by an extreme value
            at = position()
            data[at:at + 4] = draw(st.sampled_from([struct.pack(">I", 0xFFFFFFFF), struct.pack("<I", 0x7FFFFFFF),
                                                    struct.pack(">HH", 65535, 65535), bytes(4), struct.pack("<HH", 7000, 7000)]))
    return bytes(data)


@FUZZ
@given(mutated_image())
def test_decode_image_on_mutated_real_images(data):
    result, elapsed, peak_mb = measured(lambda: decode_image(data))
    event(outcome(result))
    check_decoded(result, elapsed, peak_mb)


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """A real image as base64 or a data URI, then mangled as text."""
    encoded = base64.b64encode(seeds()[draw(st.sampled_from(sorted(seeds())))]).decode()
    if draw(st.booleans()):
        encoded = encoded.replace("+", "-").replace("/", "_")
    if draw(st.booleans()):
        encoded = encoded.rstrip("=")
    prefix = draw(st.sampled_from(["", "data:image/jpeg;base64,", "DATA:text/html;BASE64,", "data:;base64,",
                                   "data:image/png,", "data:", "/", "file://", "  \n"]))
    text = list(prefix + encoded)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "truncate"]))
        if kind == "insert":
            text[at:at] = draw(st.text(min_size=1, max_size=8))
        elif kind == "delete":
            del text[at:at + draw(st.integers(1, 8))]
        else:
            del text[at:]
    return "".join(text)


@FUZZ
@given(st.one_of(mutated_text(), st.text(max_size=300)))
def test_bytes_from_text_and_decode_on_mangled_strings(text):
    result, elapsed, peak_mb = measured(lambda: bytes_from_text(text))
    if isinstance(result, Exception):
        assert isinstance(result, ImageError), f"{type(result).__name__}: {result}"
        assert result.problem in (ImageProblem.INVALID, ImageProblem.TOO_LARGE) and result.message
    else:
        assert isinstance(result, bytes) and result
        decoded, elapsed, peak_mb = measured(lambda: decode_image(result))
        event(outcome(decoded))
        check_decoded(decoded, elapsed, peak_mb)
    assert elapsed < SECONDS_PER_CALL and peak_mb < PEAK_MEMORY_MB


# --- the heaviest images the limits let through ----------------------------------------------------

@pytest.mark.parametrize(
    "bit_depth,colour_type", [(8, 2), (16, 0), (16, 2), (8, 6), (16, 4)],
    ids=["rgb-8", "grey-16", "rgb-16", "rgba-8", "grey-alpha-16"],
)
def test_pixel_floods_under_the_limit_stay_within_memory_and_time(bit_depth, colour_type):
    """A 49 MP flat PNG (under the 50 MP limit, a few hundred KB) decodes within the bounds.
    Measured: ~260 MB for RGB, ~450 MB with alpha; before images.py was fixed, grey-16 peaked at
    ~1.2 GB (float64 copies) and RGBA at ~730 MB (three RGBA copies)."""
    data = flat_png(7000, 7000, bit_depth, colour_type)
    assert len(data) < 1_000_000
    result, elapsed, peak_mb = measured(lambda: decode_image(data))
    assert not isinstance(result, Exception), result
    check_decoded(result, elapsed, peak_mb)
    assert peak_mb < 600, f"peak memory +{peak_mb} MB"
