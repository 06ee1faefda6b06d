"""Degraded copies of real photos, to measure what the quality issues catch (script/measure-quality)
and to produce each issue in the tests.

Each degradation takes a BGR photo, the geometry of its face as found in the clean photo (`Face`:
box and eye distance in its pixels) and a severity, and returns the degraded BGR photo. Blur is
scaled to the face (in eye distances), so one severity means the same loss of detail on a 250-pixel
LFW photo and on a 12-megapixel selfie. Each degradation names the issue that should catch it.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from faceverify.quality import QualityIssue


@dataclass(frozen=True)
class Face:
    """The clean photo's chosen face: box (x1, y1, x2, y2) and eye distance, in the photo's pixels."""

    box: tuple[float, float, float, float]
    eye_distance: float

    @classmethod
    def of(cls, found) -> Face:
        """The chosen face of a `faceverify.verifier.FoundFace` (aligned and assessed), in the
        original photo's pixels."""
        scale = found.image.scale
        return cls(box=tuple(v / scale for v in found.face.box), eye_distance=found.quality.measures.eye_distance)


def gaussian_blur(photo: np.ndarray, face: Face, sigma: float, seed: int = 0) -> np.ndarray:
    """Out of focus: a Gaussian blur whose sigma is `sigma` eye distances."""
    return cv2.GaussianBlur(photo, (0, 0), sigma * face.eye_distance)


def motion_blur(photo: np.ndarray, face: Face, length: float, seed: int = 0) -> np.ndarray:
    """Camera or subject moving: a straight streak `length` eye distances long, in a direction drawn
    from `seed`."""
    pixels = max(2, round(length * face.eye_distance))
    size = pixels + 2 - pixels % 2 + 1
    angle = math.radians(np.random.default_rng(seed).uniform(0, 180))
    centre = size // 2
    dx, dy = (pixels - 1) / 2 * math.cos(angle), (pixels - 1) / 2 * math.sin(angle)
    kernel = np.zeros((size, size), dtype=np.float32)
    cv2.line(kernel, (round(centre - dx), round(centre - dy)), (round(centre + dx), round(centre + dy)), 1.0, 1, cv2.LINE_AA)
    return cv2.filter2D(photo, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REPLICATE)


def scale_light(photo: np.ndarray, face: Face, factor: float, seed: int = 0) -> np.ndarray:
    """Under- (factor < 1) or overexposed (factor > 1): every pixel value times `factor`, clipped."""
    return np.clip(photo.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def shrink(photo: np.ndarray, face: Face, eye_distance: float, seed: int = 0) -> np.ndarray:
    """A distant face: the whole photo scaled down until the eyes are `eye_distance` pixels apart
    (never scaled up)."""
    ratio = min(eye_distance / face.eye_distance, 1.0)
    height, width = photo.shape[:2]
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    return cv2.resize(photo, size, interpolation=cv2.INTER_AREA)


def rotate(photo: np.ndarray, face: Face, degrees: float, seed: int = 0) -> np.ndarray:
    """A tilted camera or head: the photo turned in its plane by `degrees` about the face's centre,
    clockwise or anticlockwise as `seed` draws; the corners are filled from the nearest edge."""
    x1, y1, x2, y2 = face.box
    sign = 1 if seed % 2 else -1
    matrix = cv2.getRotationMatrix2D(((x1 + x2) / 2, (y1 + y2) / 2), sign * degrees, 1.0)
    height, width = photo.shape[:2]
    return cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def cut_off(photo: np.ndarray, face: Face, kept: float, seed: int = 0) -> np.ndarray:
    """A face cut by the image edge: the photo cropped at the left or right (as `seed` draws) so that
    only `kept` of the face box's width stays in the picture."""
    x1, _, x2, _ = face.box
    width = photo.shape[1]
    cut = (1.0 - kept) * (x2 - x1)
    if seed % 2:
        return photo[:, min(max(round(x1 + cut), 0), width - 1):].copy()
    return photo[:, :max(round(x2 - cut), 1)].copy()


def second_face(photo: np.ndarray, face: Face, size: float, seed: int = 0, other: np.ndarray | None = None,
                other_face: Face | None = None) -> np.ndarray:
    """Two people: another person's photo `other` (its face `other_face`), scaled so that its face is
    `size` times as large as this one (eye distances), set beside this photo (right or left as
    `seed` draws) with the two faces level, on a grey background of this photo's height."""
    if other is None or other_face is None:
        raise ValueError("second_face needs the other person's photo and face")
    height, width = photo.shape[:2]
    scale = size * face.eye_distance / other_face.eye_distance
    beside = cv2.resize(other, (max(1, round(other.shape[1] * scale)), max(1, round(other.shape[0] * scale))),
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    # Shift the other photo up or down so that its face is level with this one, cropped to this height.
    shift = round((face.box[1] + face.box[3]) / 2 - scale * (other_face.box[1] + other_face.box[3]) / 2)
    top, bottom = max(shift, 0), min(shift + beside.shape[0], height)
    canvas = np.full((height, width + beside.shape[1], 3), 128, dtype=np.uint8)
    photo_left, other_left = (0, width) if seed % 2 else (beside.shape[1], 0)
    canvas[:, photo_left:photo_left + width] = photo
    if bottom > top:
        canvas[top:bottom, other_left:other_left + beside.shape[1]] = beside[top - shift:bottom - shift]
    return canvas


@dataclass(frozen=True)
class Degradation:
    """A way to spoil a photo, its severities (mildest first), what a severity means, and the issue
    that should catch it."""

    name: str
    apply: Callable[..., np.ndarray]
    severities: tuple[float, ...]
    unit: str
    issue: QualityIssue


DEGRADATIONS = (
    Degradation("gaussian blur", gaussian_blur, (0.02, 0.03, 0.04, 0.05, 0.06, 0.08), "sigma, eye distances", QualityIssue.BLURRY),
    Degradation("motion blur", motion_blur, (0.1, 0.15, 0.2, 0.25, 0.3, 0.4), "streak length, eye distances", QualityIssue.BLURRY),
    Degradation("darkening", scale_light, (0.5, 0.3, 0.2, 0.15, 0.1, 0.07), "pixel values times", QualityIssue.TOO_DARK),
    Degradation("overexposure", scale_light, (1.25, 1.5, 1.75, 2.0, 2.5, 3.0), "pixel values times", QualityIssue.OVEREXPOSED),
    Degradation("downscaling", shrink, (24, 20, 16, 13, 10, 8), "eye distance, pixels", QualityIssue.FACE_TOO_SMALL),
    Degradation("in-plane rotation", rotate, (15, 25, 35, 45, 60, 75), "degrees", QualityIssue.HEAD_TURNED),
    Degradation("cut off", cut_off, (0.95, 0.9, 0.85, 0.8, 0.7, 0.6), "share of the face box kept", QualityIssue.FACE_CUT_OFF),
    Degradation("second face", second_face, (0.4, 0.6, 0.7, 0.8, 0.9, 1.0), "its size, times this face's", QualityIssue.MULTIPLE_FACES),
)
"""Every degradation script/measure-quality applies, at every severity."""

BY_NAME = {degradation.name: degradation for degradation in DEGRADATIONS}


def seed_for(name: str) -> int:
    """A fixed seed from a file name, so reruns draw the same directions and sides."""
    return zlib.crc32(name.encode())


def encode_jpeg(photo: np.ndarray, quality: int = 95) -> bytes:
    """A BGR photo as JPEG bytes, as a phone or browser would upload it."""
    ok, data = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()
