"""Stage 1: decoding what callers send. Real images from ../shared, re-encoded with Pillow."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from PIL import Image

from conftest import case, encode
from faceverify.errors import ImageError, ImageProblem
from faceverify.faces import DETECTION_SIDE
from faceverify.images import (
    MAX_BYTES,
    MIN_SIDE,
    WORKING_MAX_SIDE,
    bytes_from_text,
    decode_image,
)
from faceverify_tools.inputs import png_claiming_size


def problem_of(call, *args) -> ImageProblem:
    with pytest.raises(ImageError) as raised:
        call(*args)
    assert raised.value.message, "every problem carries a sentence for people"
    return raised.value.problem


@pytest.fixture(scope="module")
def obama() -> Image.Image:
    return Image.open(case("single-face/obama.jpg")).convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_every_accepted_format_decodes_to_upright_bgr(obama, fmt):
    decoded = decode_image(encode(obama, fmt))
    assert decoded.original_size == obama.size
    assert decoded.pixels.shape == (obama.height, obama.width, 3)
    assert decoded.pixels.dtype == np.uint8
    if fmt == "PNG":  # lossless: channels must come back reversed exactly
        assert np.array_equal(decoded.pixels, np.asarray(obama)[:, :, ::-1])


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "GIF", "ICO", "TGA", "PCX"])
def test_formats_a_kyc_photo_does_not_need_are_refused(obama, fmt):
    assert problem_of(decode_image, encode(obama.resize((256, 256)), fmt)) == ImageProblem.INVALID


@pytest.mark.parametrize("orientation", range(2, 9))
@pytest.mark.parametrize("ext", ["jpg", "webp"])
def test_exif_orientation_is_applied(orientation, ext):
    upright = decode_image(case("exif/hopper.png").read_bytes()).pixels.astype(int)
    rotated = decode_image(case(f"exif/hopper_orientation_{orientation}.{ext}").read_bytes()).pixels.astype(int)
    assert rotated.shape == upright.shape
    assert np.abs(rotated - upright).mean() < 12, "the EXIF-rotated copy must come back upright"


@pytest.mark.parametrize("mode", ["L", "P", "1", "CMYK", "LA", "I;16"])
def test_colour_modes_become_8bit_rgb(obama, mode):
    grey = obama.convert("L")
    if mode == "I;16":
        source = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
        assert source.mode.startswith("I;16")
    else:
        source = obama.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    pixels = decode_image(encode(source, fmt)).pixels
    assert pixels.shape == (obama.height, obama.width, 3) and pixels.dtype == np.uint8
    if mode in ("I;16", "L"):
        assert np.abs(pixels[..., 0].astype(int) - np.asarray(grey, dtype=int)).max() <= 1, "16-bit is rescaled, not clipped"


def test_transparency_is_laid_over_white(obama):
    rgba = obama.convert("RGBA")
    rgba.putalpha(0)
    pixels = decode_image(encode(rgba, "PNG")).pixels
    assert pixels.min() == 255


def test_rgba_photo_keeps_its_face_pixels():
    decoded = decode_image(case("single-face/alex-lacamoire.png").read_bytes())
    assert decoded.pixels.shape[2] == 3 and decoded.pixels.std() > 20


def test_large_photos_are_scaled_down_and_sizes_reported_in_original_pixels(obama):
    big = obama.resize((obama.width * 4, obama.height * 4))
    decoded = decode_image(encode(big, "JPEG", quality=80))
    assert max(decoded.pixels.shape[:2]) <= WORKING_MAX_SIDE
    assert decoded.original_size == big.size
    assert decoded.scale == pytest.approx(decoded.pixels.shape[1] / big.width)


def test_png_claiming_100000_pixels_square_is_too_large_without_decoding():
    assert problem_of(decode_image, png_claiming_size(100_000, 100_000)) == ImageProblem.TOO_LARGE


def test_over_the_byte_limit_is_too_large():
    assert problem_of(decode_image, b"\xff\xd8" + b"\0" * MAX_BYTES) == ImageProblem.TOO_LARGE


@pytest.mark.parametrize("size", [(1, 1), (MIN_SIDE - 1, 400), (2, 20000)])
def test_tiny_images_are_too_small(size):
    assert problem_of(decode_image, encode(Image.new("RGB", size, (90, 90, 90)), "PNG")) == ImageProblem.TOO_SMALL


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is a text file\n",
        bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)),
        b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n",
        b"<svg xmlns='http://www.w3.org/2000/svg' width='100' height='100'/>",
    ],
    ids=["empty", "text", "random", "pdf", "svg"],
)
def test_non_images_are_invalid(data):
    assert problem_of(decode_image, data) == ImageProblem.INVALID


def test_truncated_jpeg_is_invalid():
    data = case("single-face/obama.jpg").read_bytes()
    assert problem_of(decode_image, data[: len(data) // 2]) == ImageProblem.INVALID


def test_base64_forms_the_existing_app_sends():
    data = case("single-face/obama_small.jpg").read_bytes()
    text = base64.b64encode(data).decode()
    assert bytes_from_text(text) == data
    assert bytes_from_text(f"data:image/jpeg;base64,{text}") == data
    assert bytes_from_text("\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + "\n") == data
    assert bytes_from_text(base64.urlsafe_b64encode(data).decode().rstrip("=")) == data
    assert bytes_from_text(f"data:text/plain;base64,{text}") == data, "the bytes decide, not the declared type"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", ImageProblem.INVALID),
        ("   ", ImageProblem.INVALID),
        ("not base64 at all!", ImageProblem.INVALID),
        ("/etc/passwd", ImageProblem.INVALID),
        ("file:///etc/passwd", ImageProblem.INVALID),
        ("http://example.com/face.jpg", ImageProblem.INVALID),
        ("../weights/buffalo_l/w600k_r50.onnx", ImageProblem.INVALID),
        ("A" * (MAX_BYTES * 2), ImageProblem.TOO_LARGE),
    ],
    ids=["empty", "blank", "garbage", "server-path", "file-url", "http-url", "relative-path", "30MB-string"],
)
def test_strings_that_are_not_images(text, expected):
    assert problem_of(bytes_from_text, text) == expected


def test_16_bit_colour_is_rescaled_not_clipped(obama):
    import cv2

    bgr = np.asarray(obama)[:, :, ::-1]
    ok, data = cv2.imencode(".png", bgr.astype(np.uint16) * 257)
    assert ok
    assert np.array_equal(decode_image(data.tobytes()).pixels, bgr)


def test_cmyk_jpeg_keeps_its_colours(obama):
    pixels = decode_image(encode(obama.convert("CMYK"), "JPEG", quality=95)).pixels.astype(int)
    assert np.abs(pixels - np.asarray(obama)[:, :, ::-1]).mean() < 6


def test_large_jpeg_can_be_decoded_at_reduced_size_for_detection():
    data = case("single-face/obama-1080p.jpg").read_bytes()
    plain = decode_image(data)
    assert plain.pixels.shape[:2] == (1080, 1920) and not plain.reduced
    reduced = decode_image(data, min_side=DETECTION_SIDE)
    assert reduced.pixels.shape[:2] == (540, 960) and reduced.reduced
    assert reduced.scale == 0.5 and reduced.original_size == (1920, 1080)
    # The reduction never goes under min_side: 1/4 would be 480 pixels wide.
    assert decode_image(data, min_side=500).pixels.shape[:2] == (540, 960)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_only_jpeg_is_decoded_at_reduced_size(obama, fmt):
    big = obama.resize((obama.width * 8 // 5, obama.height * 8 // 5))  # 1456x1819, under WORKING_MAX_SIDE
    decoded = decode_image(encode(big, fmt), min_side=DETECTION_SIDE)
    assert decoded.pixels.shape[:2] == (big.height, big.width) and not decoded.reduced


def test_small_jpeg_is_never_reduced():
    decoded = decode_image(case("single-face/obama.jpg").read_bytes(), min_side=DETECTION_SIDE)
    assert decoded.pixels.shape[:2] == (1137, 910) and not decoded.reduced
