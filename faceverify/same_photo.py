"""Stage 4b, the same picture twice: is the selfie a copy of the reference's own photo?

Someone holding an image of a stolen ID card needs no face of their own: they send the card, and
the card's portrait (or the same photo twice) as the "selfie". Their embeddings match, as two
photos of one person do, so the check looks at the pictures instead. Both faces are already
aligned onto the recognizer's template by their landmarks, which undoes scale, crop and in-plane
rotation; what is left of a copy is the same pixels up to re-encoding, resampling, colour and a
small misfit of the landmarks. Two different photos of one person differ in expression, light,
pose and hair, even when the person looks alike in both.

`photo_likeness` compares the two aligned faces in grey (colour and greyscale copies alike),
slightly blurred (compression and resampling noise), after registering one onto the other with an
affine transform (the landmarks' small misfit), over the inner face (the card's portrait frame
and the photo's background lie outside it). It is the correlation coefficient left after that
registration (OpenCV's enhanced correlation coefficient, Evangelidis and Psarakis 2008): near 1
for a copy. `screened_likeness` runs it only for faces that pass a cheap screen (`looks_alike`); the
verifier refuses a selfie whose likeness reaches SAME_PHOTO_LIKENESS.

This is not liveness: a new photo of a printed card or of a screen is a new picture and passes.
The thresholds were chosen on LFW View 1 with `script/measure-kyc-checks` (docs/kyc-checks.md).
"""

from __future__ import annotations

import cv2
import numpy as np

SAME_PHOTO_LIKENESS = 0.975
"""`photo_likeness` at or above this: the same photo (chosen on LFW View 1: docs/kyc-checks.md)."""

SCREEN_LIKENESS = 0.5
"""`looks_alike` below this: not a copy, without registering the faces (chosen on LFW View 1: no
copy measured there falls below it; about half of the same-person pairs do)."""

INNER_FACE = (24 / 112, 92 / 112)
"""The square of the aligned crop compared, as shares of its side (from, to): from the eyebrows to
the chin, between the outer eye corners."""

BLUR = 1.0 / 112
"""The Gaussian blur applied before comparing, as a share of the crop's side."""

SCREEN_SIDE = 28
"""The side, in pixels, to which `looks_alike` shrinks each crop."""

MAX_WARP = 0.15
"""The registration may move the second crop by at most this share of its side and scale or shear
it by at most this share: the landmarks already aligned both faces, so a larger warp is not the
misfit of one picture's landmarks but a fit of two different pictures, and is not used."""

ECC_ITERATIONS, ECC_STEP = 10, 1e-2
"""The registration stops after this many iterations or once a step changes the transform by less
than this: the landmarks already aligned the two faces, so a copy needs only a small correction
(faster than a longer search, with the same separation on LFW View 1)."""

_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, ECC_STEP)


def _grey(crop: np.ndarray) -> np.ndarray:
    """A BGR crop as float32 grey."""
    return cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)


def _correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson correlation of two equal-sized arrays; 0 when either is flat."""
    x, y = first - first.mean(), second - second.mean()
    norm = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / norm if norm > 0 else 0.0


def looks_alike(crop1: np.ndarray, crop2: np.ndarray) -> float:
    """A cheap screen, -1 to 1: the correlation of the two aligned crops' inner faces, shrunk to
    SCREEN_SIDE pixels, without registration."""
    def small(crop: np.ndarray) -> np.ndarray:
        grey = cv2.resize(_grey(crop), (SCREEN_SIDE, SCREEN_SIDE), interpolation=cv2.INTER_AREA)
        start, stop = (round(share * SCREEN_SIDE) for share in INNER_FACE)
        return grey[start:stop, start:stop]
    return _correlation(small(crop1), small(crop2))


def photo_likeness(crop1: np.ndarray, crop2: np.ndarray) -> float:
    """-1 to 1: how far two aligned face crops (BGR, square, the same size) are one picture: the
    correlation of their blurred grey inner faces once `crop2` is registered onto `crop1` by an
    affine transform. Without a registration (OpenCV finds none, or only one past MAX_WARP) the
    unregistered correlation."""
    size = crop1.shape[0]
    first = cv2.GaussianBlur(_grey(crop1), (0, 0), BLUR * size)
    second = cv2.GaussianBlur(_grey(crop2), (0, 0), BLUR * size)
    start, stop = (round(share * size) for share in INNER_FACE)
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[start:stop, start:stop] = 1
    unregistered = _correlation(first[start:stop, start:stop], second[start:stop, start:stop])
    try:
        likeness, warp = cv2.findTransformECC(first, second, np.eye(2, 3, dtype=np.float32), cv2.MOTION_AFFINE,
                                              _ECC_CRITERIA, mask, 1)
    except cv2.error:
        return unregistered
    moved = np.abs(warp[:, 2]).max() / size
    bent = np.abs(warp[:, :2] - np.eye(2)).max()
    return float(likeness) if moved <= MAX_WARP and bent <= MAX_WARP and np.isfinite(likeness) else unregistered


def screened_likeness(crop1: np.ndarray, crop2: np.ndarray) -> tuple[float, float | None]:
    """(`looks_alike`, `photo_likeness`) of two aligned face crops; the likeness is None, and the
    registration never run, when the screen is under SCREEN_LIKENESS. The crops are one photo (a
    copy, crop, rescale, re-encode, greyscale or slight rotation of it) when the likeness is at least
    SAME_PHOTO_LIKENESS."""
    screen = looks_alike(crop1, crop2)
    return screen, photo_likeness(crop1, crop2) if screen >= SCREEN_LIKENESS else None
