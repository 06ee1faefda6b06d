"""A corpus of bad, odd and hostile inputs, run in-process through Predictor.compare() (what the async
predict() runs) and through the real Cog HTTP server.

Every case is built here, at test time, from real images in ../shared/data (nothing binary is
committed). Each case is sent as `image2` next to a good reference photo (`obama.jpg`) and declares
what it must get back: a documented error code (`image2_invalid`, `image2_too_large`, ...) with
`match: false`, or, where the image is valid, a correct comparison (`match` true for Obama, false for
Biden). Nothing may crash, hang, fail the prediction or answer with a server error, and the server
must still be READY afterwards.
"""

from __future__ import annotations

import base64
import functools
import gzip
import io
import math
import random
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import predict
from conftest import CASES, TEST_PACK, case, encode
from faceverify_tools.inputs import data_uri, flat_png, png_claiming_size

REFERENCE = "single-face/obama.jpg"
SAME_PERSON = "single-face/obama2.jpg"
OTHER_PERSON = "single-face/biden.jpg"
SECONDS_PER_REQUEST = 30.0
MATCH, NO_MATCH = "match", "no_match"
OUTCOMES = {MATCH, NO_MATCH, "missing", "invalid", "too_large", "too_small", "bad_aspect_ratio", "no_face", "face_unusable"}

pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")


@dataclass(frozen=True)
class Case:
    """One corpus entry: `make()` builds the input (bytes are sent as an upload / data URI, anything
    else as the JSON value itself), `expect` is `match`, `no_match` or the problem in `image2_<problem>`."""

    id: str
    make: Callable[[], object]
    expect: str
    media: str = "image/jpeg"  # the media type declared when bytes travel as a data URI

    def __post_init__(self) -> None:
        assert self.expect in OUTCOMES, self.expect


# --- building blocks, all from real images -------------------------------------------------------

def raw(relative: str) -> bytes:
    return case(relative).read_bytes()


@functools.cache
def same_person() -> Image.Image:
    return Image.open(case(SAME_PERSON)).convert("RGB")


@functools.cache
def same_person_png() -> bytes:
    return encode(same_person(), "PNG")


@functools.cache
def same_person_webp() -> bytes:
    return encode(same_person(), "WEBP", quality=90)


def strip(width: int, height: int, fmt: str, **params) -> bytes:
    """The same-person photo squeezed into a width x height strip."""
    return encode(same_person().resize((width, height)), fmt, **params)


def tiny_face(side: int = 12) -> bytes:
    """A 64x64 PNG holding the same person's face `side` pixels across: found, too small to align."""
    photo = same_person()
    canvas = Image.new("RGB", (64, 64), (200, 200, 200))
    canvas.paste(photo.crop((190, 220, 490, 620)).resize((side, side)), (20, 20))
    return encode(canvas, "PNG")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def flip_bits(data: bytes, count: int, seed: int, start: int = 0) -> bytes:
    """`count` single-bit flips at seeded positions from `start` on."""
    rng, out = random.Random(seed), bytearray(data)
    for _ in range(count):
        position = rng.randrange(start, len(out))
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def with_exif(orientation: object, image: Image.Image | None = None) -> bytes:
    """A JPEG of `image` (default: the same-person photo) whose EXIF orientation tag is `orientation`."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image or same_person(), "JPEG", quality=92, exif=exif.tobytes())


def with_app1(payload: bytes, jpeg: bytes | None = None) -> bytes:
    """A JPEG (default: the same-person photo) with an extra APP1 (EXIF) segment right after SOI."""
    jpeg = jpeg or raw(SAME_PERSON)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def exif_orientation_entry(kind: int, count: int, value: bytes, next_ifd: int = 0, jpeg: bytes | None = None) -> bytes:
    """A JPEG with a hand-written EXIF block: one orientation entry of TIFF type `kind`
    (2 = text, 3 = short) and a 'next IFD' pointer (8 points the IFD back at itself)."""
    tiff = b"II*\x00" + struct.pack("<I", 8)
    ifd = struct.pack("<H", 1) + struct.pack("<HHI", 0x0112, kind, count) + value.ljust(4, b"\x00")[:4]
    return with_app1(b"Exif\x00\x00" + tiff + ifd + struct.pack("<I", next_ifd), jpeg)


def jpeg_with_size(width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF, found by walking the segments) is rewritten to claim
    width x height; the scan data stays that of the real, smaller photo."""
    jpeg, at = bytearray(raw(SAME_PERSON)), 2
    while jpeg[at] == 0xFF and jpeg[at + 1] != 0xDA:
        length = struct.unpack(">H", jpeg[at + 2:at + 4])[0]
        if jpeg[at + 1] in (0xC0, 0xC1, 0xC2):
            jpeg[at + 5:at + 9] = struct.pack(">HH", height, width)
            return bytes(jpeg)
        at += 2 + length
    raise AssertionError("no SOF segment in the test JPEG")


def gif_with_size(width: int, height: int) -> bytes:
    gif = bytearray(encode(same_person().resize((100, 120)), "GIF"))
    gif[6:10] = struct.pack("<HH", width, height)
    return bytes(gif)


def webp_with_canvas(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP header claiming a width x height canvas, with a real small frame after it."""
    simple = same_person_webp()
    assert simple[12:16] == b"VP8 "
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + simple[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


@functools.cache
def phone_photo_48mp() -> bytes:
    """The same-person photo scaled up to 5000x9600 (48 MP), as a modern phone would send it."""
    return encode(same_person().resize((5000, 9600), Image.Resampling.BILINEAR), "JPEG", quality=80)


def animated_gif() -> bytes:
    first = same_person()
    other = Image.open(case(OTHER_PERSON)).convert("RGB").resize(first.size)
    return encode(first, "GIF", save_all=True, append_images=[other, Image.new("RGB", first.size, (255, 0, 0))], duration=80, loop=0)


def tiff_16bit() -> bytes:
    import cv2

    bgr = np.asarray(same_person())[:, :, ::-1].astype(np.uint16) * 257
    ok, data = cv2.imencode(".tiff", bgr)
    assert ok
    return data.tobytes()


def zipped(relative: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("selfie.jpg", raw(relative))
    return buffer.getvalue()


def pdf_with_image() -> bytes:
    """A real one-page PDF (Pillow's writer) that embeds the same-person photo."""
    return encode(same_person(), "PDF")


HTML = b"""<!DOCTYPE html><html><head><title>Upload</title></head>
<body><img src="https://example.com/selfie.jpg"><script>alert(1)</script></body></html>"""
SVG_BOMB = b"""<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><text>&b;</text>
<image href="file:///etc/passwd" width="10" height="10"/></svg>"""


def corpus() -> list[Case]:
    """The whole corpus, in a fixed order."""
    jpeg, png, webp = raw(SAME_PERSON), same_person_png(), same_person_webp()
    sideways = same_person().transpose(Image.Transpose.ROTATE_90)  # EXIF 6 turns it back upright
    weights = str(next(TEST_PACK.glob("*.onnx")))
    return [
        # Valid images of the reference person in every accepted shape: a correct comparison.
        Case("jpeg", lambda: jpeg, MATCH),
        Case("png", lambda: png, MATCH, "image/png"),
        Case("webp", lambda: webp, MATCH, "image/webp"),
        Case("heic-photo", lambda: encode(same_person(), "HEIF", quality=90), MATCH, "image/heic"),
        Case("cmyk-jpeg", lambda: encode(same_person().convert("CMYK"), "JPEG", quality=92), MATCH),
        Case("greyscale-jpeg", lambda: encode(same_person().convert("L"), "JPEG"), MATCH),
        Case("exif-orientation-6-sideways", lambda: with_exif(6, sideways), MATCH),
        Case("exif-orientation-0", lambda: with_exif(0), MATCH),
        Case("exif-orientation-9", lambda: with_exif(9), MATCH),
        Case("exif-orientation-65535", lambda: with_exif(65535), MATCH),
        Case("exif-orientation-text", lambda: exif_orientation_entry(2, 4, b"six"), MATCH),
        Case("exif-corrupt-block", lambda: with_app1(b"Exif\x00\x00" + bytes(random.Random(3).randbytes(300))), MATCH),
        Case("exif-offset-past-end", lambda: with_app1(b"Exif\x00\x00II*\x00\xf0\xff\xff\xff"), MATCH),
        Case("exif-ifd-loop-sideways", lambda: exif_orientation_entry(3, 1, struct.pack("<H", 6), 8, encode(sideways, "JPEG")), MATCH),
        Case("jpeg-trailing-garbage", lambda: jpeg + bytes(random.Random(4).randbytes(50_000)), MATCH),
        Case("jpeg-20-bit-flips-in-scan", lambda: flip_bits(jpeg, 20, seed=3, start=len(jpeg) // 3), MATCH),
        Case("phone-photo-48mp", phone_photo_48mp, MATCH),
        Case("base64-with-newlines", lambda: "\n".join(b64(jpeg)[i:i + 76] for i in range(0, len(b64(jpeg)), 76)) + "\n", MATCH),
        Case("base64-with-spaces-tabs-crlf", lambda: " \t" + "\r\n ".join(b64(jpeg)[i:i + 64] for i in range(0, len(b64(jpeg)), 64)) + "\t\n", MATCH),
        Case("base64-url-safe-unpadded", lambda: base64.urlsafe_b64encode(raw("single-face/obama3.jpg")).decode().rstrip("="), MATCH),
        Case("data-uri-wrong-media-type", lambda: "data:text/plain;base64," + b64(jpeg), MATCH),
        Case("data-uri-png-type-for-jpeg", lambda: "data:image/png;base64," + b64(jpeg), MATCH),
        Case("data-uri-with-newlines", lambda: "data:image/jpeg;base64," + "\n".join(b64(jpeg)[i:i + 76] for i in range(0, len(b64(jpeg)), 76)), MATCH),
        # A valid image of someone else: a correct comparison that does not match.
        Case("other-person", lambda: raw(OTHER_PERSON), NO_MATCH),
        # Not an image, or not one of the accepted formats (no exotic decoder may see them).
        Case("zero-bytes", lambda: b"", "invalid"),
        Case("random-bytes", lambda: random.Random(5).randbytes(64 * 1024), "invalid", "application/octet-stream"),
        Case("html-page", lambda: HTML, "invalid", "text/html"),
        Case("pdf-with-photo", pdf_with_image, "invalid", "application/pdf"),
        Case("svg-entity-bomb", lambda: SVG_BOMB, "invalid", "image/svg+xml"),
        Case("zip-of-photo", lambda: zipped(SAME_PERSON), "invalid", "application/zip"),
        Case("gzip-of-photo", lambda: gzip.compress(jpeg), "invalid", "application/gzip"),
        Case("eps-never-reaches-ghostscript", lambda: encode(same_person(), "EPS"), "invalid", "application/postscript"),
        Case("ico", lambda: encode(same_person().resize((128, 128)), "ICO"), "invalid", "image/x-icon"),
        Case("tga", lambda: encode(same_person(), "TGA"), "invalid", "image/x-tga"),
        Case("jpeg-2000", lambda: encode(same_person(), "JPEG2000"), "invalid", "image/jp2"),
        # Formats no KYC photo needs, refused as decoder attack surface (docs/operations.md, "Memory").
        Case("bmp", lambda: encode(same_person(), "BMP"), "invalid", "image/bmp"),
        Case("tiff-16-bit", tiff_16bit, "invalid", "image/tiff"),
        Case("animated-gif", animated_gif, "invalid", "image/gif"),
        Case("gif-claims-65535x65535", lambda: gif_with_size(65535, 65535), "invalid", "image/gif"),
        Case("elf-executable", lambda: b"\x7fELF\x02\x01\x01" + bytes(57) + random.Random(6).randbytes(4096), "invalid", "application/octet-stream"),
        # Broken images: truncated and bit-flipped.
        Case("jpeg-truncated-half", lambda: jpeg[: len(jpeg) // 2], "invalid"),
        Case("jpeg-truncated-header", lambda: jpeg[:200], "invalid"),
        Case("jpeg-soi-bit-flipped", lambda: bytes([jpeg[0] ^ 0x01]) + jpeg[1:], "invalid"),
        Case("jpeg-200-bit-flips", lambda: flip_bits(jpeg, 200, seed=0, start=1000), "invalid"),
        Case("png-truncated", lambda: png[: len(png) * 9 // 10], "invalid", "image/png"),
        Case("png-header-bit-flipped", lambda: png[:16] + bytes([png[16] ^ 0x01]) + png[17:], "invalid", "image/png"),
        Case("png-data-bit-flipped", lambda: flip_bits(png, 1, seed=1, start=png.index(b"IDAT") + 100), "no_face", "image/png"),
        Case("webp-truncated", lambda: webp[: len(webp) // 2], "invalid", "image/webp"),
        Case("webp-riff-bit-flipped", lambda: bytes([webp[0] ^ 0x04]) + webp[1:], "invalid", "image/webp"),
        Case("webp-10-bit-flips", lambda: flip_bits(webp, 10, seed=0, start=40), "no_face", "image/webp"),
        # Too large: on the wire, or in what the header claims (checked before decoding).
        Case("png-claims-100000x100000", lambda: png_claiming_size(100_000, 100_000), "too_large", "image/png"),
        Case("jpeg-claims-65535x65535", lambda: jpeg_with_size(65535, 65535), "too_large"),
        Case("jpeg-claims-51-megapixels", lambda: jpeg_with_size(7200, 7100), "too_large"),
        Case("webp-claims-16384x16384", lambda: webp_with_canvas(16384, 16384), "too_large", "image/webp"),
        Case("jpeg-padded-to-26mb", lambda: jpeg + bytes(26 * 2**20), "too_large"),
        Case("string-of-40mb", lambda: "A" * (40 * 2**20), "too_large"),
        # Too small.
        Case("1x1", lambda: encode(Image.new("RGB", (1, 1), (200, 150, 120)), "PNG"), "too_small", "image/png"),
        Case("2x20000", lambda: encode(same_person().resize((2, 20000)), "PNG"), "too_small", "image/png"),
        Case("jpeg-claims-20x3000", lambda: jpeg_with_size(20, 3000), "too_small"),
        Case("jpeg-claims-zero-height", lambda: jpeg_with_size(626, 0), "invalid"),
        # Narrow strips (longer side over 10 times the shorter): refused before decoding. Scaled to the
        # detector's square input, their short side would shrink to nothing.
        Case("png-strip-16383x40", lambda: strip(16383, 40, "PNG"), "bad_aspect_ratio", "image/png"),
        Case("jpeg-strip-40x4000", lambda: strip(40, 4000, "JPEG"), "bad_aspect_ratio"),
        Case("webp-strip-11-to-1", lambda: strip(704, 64, "WEBP"), "bad_aspect_ratio", "image/webp"),
        Case("jpeg-strip-exif-6", lambda: with_exif(6, same_person().resize((4000, 40))), "bad_aspect_ratio"),
        Case("png-10-to-1-accepted", lambda: strip(640, 64, "PNG"), "no_face", "image/png"),
        # Decodes, but shows no face.
        Case("dogs", lambda: raw("no-face/dogs.jpg"), "no_face"),
        Case("card-back", lambda: raw("id-documents/100_id-usa.jpg"), "no_face"),
        Case("pixelated-passport", lambda: raw("id-documents/27_pass-gbr.jpg"), "no_face"),
        Case("flat-49mp-png", lambda: flat_png(7000, 7000, value=0x80), "no_face", "image/png"),
        # A face is found but cannot be aligned for comparison.
        Case("face-12-pixels-across", tiny_face, "face_unusable", "image/png"),
        # Strings that are not images, or that try to reach the server's files or the network.
        Case("invalid-base64", lambda: "%%% this is not base64 %%%", "invalid"),
        Case("base64-of-text", lambda: b64(b"just some text, no image here\n" * 20), "invalid"),
        Case("string-of-30mb", lambda: "A" * (30 * 2**20), "invalid"),
        Case("empty-string", lambda: "", "invalid"),
        Case("whitespace-string", lambda: " \n\t ", "invalid"),
        Case("nul-byte-string", lambda: "abc\x00def", "invalid"),
        Case("etc-passwd", lambda: "/etc/passwd", "invalid"),
        Case("proc-self-environ", lambda: "/proc/self/environ", "invalid"),
        Case("weights-file-path", lambda: weights, "invalid"),
        Case("weights-file-relative", lambda: "../shared/weights/scrfd2.5g-sface/det_2.5g.onnx", "invalid"),
        Case("real-photo-path-on-server", lambda: str(CASES / SAME_PERSON), "invalid"),
        Case("home-ssh-key", lambda: "~/.ssh/id_rsa", "invalid"),
        Case("file-url", lambda: "file:///etc/passwd", "invalid"),
        Case("file-url-to-photo", lambda: f"file://localhost{CASES / SAME_PERSON}", "invalid"),
        Case("ftp-url", lambda: "ftp://127.0.0.1/selfie.jpg", "invalid"),
        Case("json-number", lambda: 12345, "invalid"),
        Case("json-list", lambda: ["data:image/jpeg;base64," + b64(jpeg)], "invalid"),
        Case("json-object", lambda: {"url": "file:///etc/passwd"}, "invalid"),
        Case("not-sent", lambda: None, "missing"),
    ]


CORPUS = corpus()
assert len({item.id for item in CORPUS}) == len(CORPUS) >= 40


def check_outcome(item: Case, output: dict, threshold: float) -> None:
    """The answer `item` declares, on Cog's output record (a dict); `threshold` is the pack's default."""
    assert output["threshold"] == threshold and output["model_pack"] == "scrfd2.5g-sface", output
    assert output["image1_face_count"] >= 1, "the reference photo is always examined"
    if item.expect in (MATCH, NO_MATCH):
        assert output["error_code"] is None and output["error"] is None, output
        similarity = output["similarity"]
        assert isinstance(similarity, float) and math.isfinite(similarity), output
        assert output["match"] is (item.expect == MATCH), output
        assert output["match"] is (similarity >= output["threshold"]), output
        assert output["image2_face_count"] >= 1 and len(output["image2_face_box"]) == 4, output
    else:
        assert output["error_code"] == f"image2_{item.expect}", output
        assert (output["match"], output["similarity"]) == (False, None), output
        assert output["error"].startswith("image2: "), output


# --- in-process: Predictor.compare() given what Cog hands it -----------------------------------

@pytest.fixture(scope="module")
def predictor() -> predict.Predictor:
    instance = predict.Predictor()
    instance.setup(weights=str(TEST_PACK))
    return instance


def written_file(data: bytes, suffix: str = ".jpg") -> Path:
    """A file in the temporary folder, where Cog writes an upload or a downloaded data URI."""
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as handle:
        handle.write(data)
    return Path(handle.name)


def cog_hands_over(value: object, cleanup: list[Path]) -> object:
    """What the Cog server passes to predict() for one JSON value of a `Path` input.

    Bytes stand for an upload, which Cog writes to a temporary file. A `data:` or `http(s):` string
    goes through Cog's `Path.validate` and becomes a URLPath that coglet writes to a temporary file
    (`convert()`) before predict() runs; coglet hands any other string, and any other JSON value,
    to predict() unchanged (`coerce_typed_inputs` in coglet's Rust source; shown over HTTP by
    test_a_plain_string_for_an_image_reaches_predict_as_text_over_http).
    """
    import cog

    if isinstance(value, bytes):
        path = written_file(value)
        cleanup.append(path)
        return cog.Path(path)
    if isinstance(value, str) and value.split(":", 1)[0].lower() in ("data", "http", "https"):
        converted = cog.Path.validate(value)
        assert isinstance(converted, cog.types.URLPath)
        path = converted.convert()
        cleanup.append(Path(path))
        return path
    return value


def as_dict(output) -> dict:
    return {name: getattr(output, name) for name in predict.Output.__annotations__}


def predict_in_process(predictor: predict.Predictor, value: object) -> tuple[dict, float]:
    cleanup: list[Path] = []
    image1 = cog_hands_over(raw(REFERENCE), cleanup)
    try:
        started = time.monotonic()
        output = predictor.compare(image1=image1, image2=cog_hands_over(value, cleanup), threshold=None)
        return as_dict(output), time.monotonic() - started
    finally:
        for path in cleanup:
            path.unlink(missing_ok=True)


@pytest.mark.parametrize("item", CORPUS, ids=[item.id for item in CORPUS])
def test_corpus_in_process(predictor, item):
    output, elapsed = predict_in_process(predictor, item.make())
    check_outcome(item, output, predictor.verifier.default_threshold)
    assert elapsed < SECONDS_PER_REQUEST, f"{item.id} took {elapsed:.1f}s"


# --- through the real Cog HTTP server ------------------------------------------------------------

def json_value(item: Case) -> object:
    """The case as a caller sends it over HTTP: bytes as a data URI, anything else unchanged."""
    value = item.make()
    if isinstance(value, bytes):
        return data_uri(value, item.media)
    return value


def test_corpus_over_http(server, predictor):
    """Every case through the server, one after the other: a 200 with a succeeded prediction and the
    declared answer, within the time bound; valid images give the similarity predict() computes in-process.
    An input the schema refuses (no image, or a JSON value that is not a string) gets 422 instead,
    naming `image2`, as on Replicate."""
    reference = f"data:image/jpeg;base64,{b64(raw(REFERENCE))}"
    problems = []
    for item in CORPUS:
        inputs = {"image1": reference}
        value = json_value(item)
        if value is not None:
            inputs["image2"] = value
        started = time.monotonic()
        response = server.predict(inputs, timeout=SECONDS_PER_REQUEST * 2)
        elapsed = time.monotonic() - started
        try:
            if not isinstance(value, str):
                assert response.status_code == 422 and "image2" in response.text, response.text[:500]
                continue
            assert response.status_code == 200, response.text[:500]
            body = response.json()
            assert body["status"] == "succeeded", {key: body.get(key) for key in ("status", "error")}
            check_outcome(item, body["output"], predictor.verifier.default_threshold)
            assert elapsed < SECONDS_PER_REQUEST, f"took {elapsed:.1f}s"
            if item.expect in (MATCH, NO_MATCH):
                local, _ = predict_in_process(predictor, item.make())
                assert body["output"]["similarity"] == pytest.approx(local["similarity"], abs=2e-4)
                assert body["output"]["image2_face_box"] == pytest.approx(local["image2_face_box"], abs=1.0)
        except AssertionError as error:
            problems.append(f"{item.id}: {error}")
    assert not problems, "\n".join(problems)
    assert server.wait_until({"READY"}, timeout=10)["status"] == "READY"


# Cog, not the model, decodes a data URI sent to a `Path` input (urllib's data: handler). It needs
# standard, padded base64 and a comma, so these fail the prediction ("Input validation error") or
# garble the bytes before predict() runs, although bare base64 in the same forms is accepted.
COG_DECODED_DATA_URIS = [
    Case("data-uri-url-safe-base64", lambda: "data:image/jpeg;base64," + base64.urlsafe_b64encode(raw(SAME_PERSON)).decode(), MATCH),
    Case("data-uri-unpadded-base64", lambda: "data:image/jpeg;base64," + b64(raw(OTHER_PERSON)).rstrip("="), NO_MATCH),
    Case("data-uri-bad-padding", lambda: "data:image/jpeg;base64,abc", "invalid"),
    Case("data-uri-without-comma", lambda: "data:image/jpeg;base64", "invalid"),
]


@pytest.mark.parametrize("item", COG_DECODED_DATA_URIS, ids=[item.id for item in COG_DECODED_DATA_URIS])
def test_data_uri_forms_cog_cannot_decode_never_match_and_leave_the_server_up(server, item):
    """The documented answer (README, Inputs): Cog fails the prediction with a validation message, or
    hands over garbled bytes that come back `image2_invalid`. Never a match, never a server error."""
    reference = f"data:image/jpeg;base64,{b64(raw(REFERENCE))}"
    response = server.predict({"image1": reference, "image2": item.make()})
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    if body["status"] == "failed":
        assert "validation" in body["error"].lower() or "padding" in body["error"].lower(), body["error"]
    else:
        assert body["status"] == "succeeded", body
        assert body["output"]["error_code"] == "image2_invalid" and body["output"]["match"] is False, body["output"]
    assert server.wait_until({"READY"}, timeout=10)["status"] == "READY"


def test_a_plain_string_for_an_image_reaches_predict_as_text_over_http(server):
    """coglet turns a string sent for a `Path` input into a file only when it starts with `http://`,
    `https://` or `data:` (`coerce_typed_inputs` in its Rust source); the schema's `format: uri` is
    not enforced (no 422). Any other string reaches predict() as a `str`, decoded as base64 and so
    refused with `image1_invalid`. Shown with the name of a real photo in the server's temporary
    folder, named as Cog names its input files: made a path, it would be read and match."""
    photo = written_file(raw(SAME_PERSON))
    try:
        assert predict.written_by_cog(photo), "a path of this shape is read"
        for text in ("/etc/passwd", str(photo)):
            response = server.predict({"image1": text, "image2": f"data:image/jpeg;base64,{b64(raw(REFERENCE))}"})
            assert response.status_code == 200, response.text[:500]
            body = response.json()
            assert body["status"] == "succeeded", body
            output = body["output"]
            assert (output["error_code"], output["match"], output["similarity"]) == ("image1_invalid", False, None), output
            assert output["error"].startswith("image1: the image is a URL or a file path that the model cannot use"), output
    finally:
        photo.unlink()


# A caller in the same process (or a Cog whose server converted every string, as the SDK's own
# `cog.Path.validate` does) can hand predict() a Path for any string: the form tests/test_predict.py
# uses for server paths. coglet 0.23 does not (the test above); these are what the guard answers.
SDK_PATH_STRINGS = [
    pytest.param("/etc/passwd", "invalid", id="etc-passwd"),
    pytest.param(str(CASES / SAME_PERSON), "invalid", id="real-photo-path-on-server"),
    pytest.param("../shared/weights/scrfd2.5g-sface/det_2.5g.onnx", "invalid", id="weights-file-relative"),
    pytest.param("~/.ssh/id_rsa", "invalid", id="home-ssh-key"),
    pytest.param(base64.urlsafe_b64encode(b"\xff" * 300).decode(), "invalid", id="long-base64-of-junk"),
    pytest.param("abc\x00def", "invalid", id="nul-byte"),
    pytest.param(lambda: b64(raw(SAME_PERSON)), MATCH, id="bare-base64-with-double-slash", marks=pytest.mark.xfail(
        strict=True, reason="str(pathlib.Path(text)) collapses '//' in base64, so the bytes change and the image is invalid")),
]


@pytest.mark.parametrize("text,expect", SDK_PATH_STRINGS)
def test_strings_the_cog_sdk_turns_into_paths(predictor, text, expect):
    import cog

    text = text() if callable(text) else text
    cleanup: list[Path] = []
    image1 = cog_hands_over(raw(REFERENCE), cleanup)
    try:
        output = as_dict(predictor.compare(image1=image1, image2=cog.Path.validate(text), threshold=None))
    finally:
        for path in cleanup:
            path.unlink(missing_ok=True)
    check_outcome(Case("sdk-path", lambda: text, expect), output, predictor.verifier.default_threshold)
