"""Stage 3b, quality: how fit each chosen face is for comparison, and what to tell the user if not.

From what the pipeline already has (the decoded pixels, every face found, the chosen face's box and
landmarks, and its aligned crop) it measures the face (`measure_quality`), then names what is wrong
with stable codes (`assess`): too small, cut off by the image edge, head turned, blurry, too dark,
overexposed, or a second person. The rules differ for the reference (an ID document's printed
portrait is small and soft, and documents carry a ghost copy of the portrait) and for the probe (a
live selfie). Issues are reported only; the verdict changes only when the caller asks for it
(`FaceVerifier.verify(..., require_selfie_quality=True)`).

The thresholds were chosen on LFW View 1 with `script/measure-quality`, and their false-alarm and
detection rates are reported on LFW View 2 in docs/quality.md, with the commands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from .faces import DetectedFace, prominence


class Role(str, Enum):
    """Which image of the pair a face is in: the ID document (`reference`) or the selfie (`probe`)."""

    REFERENCE = "reference"
    PROBE = "probe"


class QualityIssue(str, Enum):
    """A named reason why a face is poor for comparison; the value is the public code."""

    FACE_TOO_SMALL = "face_too_small"  # too few pixels between the eyes
    FACE_CUT_OFF = "face_cut_off"      # the face runs past the image edge
    HEAD_TURNED = "head_turned"        # turned sideways or tilted, from the five landmarks
    BLURRY = "blurry"                  # out of focus or moving, measured on the aligned face
    TOO_DARK = "too_dark"              # much of the face is near black
    OVEREXPOSED = "overexposed"        # much of the face is burnt out to white
    MULTIPLE_FACES = "multiple_faces"  # a second face about as prominent as the chosen one, or one that
                                       # matches the reference about as well (probe only)


EXPOSURE_REGION = (24 / 112, 32 / 112, 88 / 112, 104 / 112)
"""The part of the aligned crop measured for exposure, as shares of its side (x1, y1, x2, y2): from
the eyebrows to the chin and between the outer eye corners, where the crop shows skin rather than
background."""

SHARPNESS_REGION = (16 / 112, 24 / 112, 96 / 112, 108 / 112)
"""The part of the aligned crop measured for sharpness: the face with its outline (forehead to chin,
ear to ear), whose edges against the background show blur best."""

DARK_LEVEL = 40
"""A face pixel whose luma (0-255) is at or below this counts as underexposed."""

BRIGHT_LEVEL = 250
"""A face pixel with a colour channel at or above this is clipped; it counts as overexposed when it
is also bright overall (BRIGHT_LUMA)."""

BRIGHT_LUMA = 180
"""The luma (0-255) a clipped face pixel must reach to count as overexposed (burnt out). On brown
skin in warm light the red channel alone clips on pixels of middling luma while the face keeps its
detail: that is the skin's colour, not overexposure. Chosen on LFW View 1 and the South Asian set
(docs/quality.md, "South Asian faces")."""

NOSE_DEPTH = 0.4
"""How far the nose tip stands in front of the eyes and mouth, in eye distances (a generic adult
head): it turns the nose's sideways offset into a yaw angle. An average, so yaw is an estimate."""

SHARPNESS_TAPS = 4
"""Length of the line blur that `sharpness` compares the face with (Crete et al.'s no-reference
blur measure, here in four directions so that motion blur in any direction lowers it)."""


@dataclass(frozen=True)
class QualityMeasures:
    """The numbers behind the issues, for one face.

    `eye_distance`: pixels between the eye centres in the original image. `edge_margin`: the
    smallest gap between the face box and an image edge, as a share of the box's width (left,
    right) or height (top, bottom); negative when the box runs past the edge. `yaw`, `roll`:
    degrees, estimated from the five landmarks (roll: the eye line's tilt; yaw: turned sideways).
    `sharpness`: 0 (no detail) to 1, on the aligned face. `underexposure`, `overexposure`: shares of
    the face's pixels whose luma is at or below DARK_LEVEL, and that are clipped (a channel at or
    above BRIGHT_LEVEL) with a luma of at least BRIGHT_LUMA. `second_face`: how
    prominent the next most prominent face is beside the chosen one (square root of the ratio of
    `faces.prominence`, so about the ratio of their sizes), 0 when there is none."""

    eye_distance: float
    edge_margin: float
    yaw: float
    roll: float
    sharpness: float
    underexposure: float
    overexposure: float
    second_face: float


@dataclass(frozen=True)
class QualityRules:
    """Where each issue starts, for one role; `max_second_face` None means the check is off."""

    min_eye_distance: float
    min_edge_margin: float
    max_yaw: float
    max_roll: float
    min_sharpness: float
    max_underexposure: float
    max_overexposure: float
    max_second_face: float | None


PROBE_RULES = QualityRules(
    min_eye_distance=16.0, min_edge_margin=0.05, max_yaw=60.0, max_roll=25.0, min_sharpness=0.225,
    max_underexposure=0.5, max_overexposure=0.25, max_second_face=0.64,
)
"""The selfie's rules (chosen on LFW View 1: docs/quality.md)."""

REFERENCE_RULES = QualityRules(
    min_eye_distance=12.0, min_edge_margin=0.05, max_yaw=60.0, max_roll=25.0, min_sharpness=0.18,
    max_underexposure=0.5, max_overexposure=0.25, max_second_face=None,
)
"""The ID document's rules: its printed portrait is smaller and softer than a selfie, and a ghost
copy of the portrait is not a second person (chosen on LFW View 1 synthetic cards: docs/quality.md)."""

RULES = {Role.PROBE: PROBE_RULES, Role.REFERENCE: REFERENCE_RULES}

GOOD = QualityMeasures(eye_distance=43.0, edge_margin=0.45, yaw=0.0, roll=0.0, sharpness=0.32,
                       underexposure=0.0, overexposure=0.0, second_face=0.0)
"""Where a measure's part of the quality score reaches 100 (see `quality_score`): a frontal, upright
face alone in the picture with nothing clipped, and otherwise the median clean LFW View 1 photo."""


@dataclass(frozen=True)
class Quality:
    """One face's measures, the issues they raise under its role's rules (in QualityIssue order),
    and a score from 0 to 100: under 50 exactly when there is an issue (see `quality_score`)."""

    measures: QualityMeasures
    issues: tuple[QualityIssue, ...]
    score: float


def measure_quality(pixels: np.ndarray, scale: float, faces: list[DetectedFace], face: DetectedFace,
                    crop: np.ndarray) -> QualityMeasures:
    """The measures of `face`, chosen among `faces` in a BGR image `pixels` (`scale` times the
    original's size), whose aligned crop for the recognizer is `crop` (BGR, square)."""
    height, width = pixels.shape[:2]
    landmarks = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
    yaw, roll = head_pose(landmarks)
    skin = region(crop, EXPOSURE_REGION)
    luma = cv2.cvtColor(skin, cv2.COLOR_BGR2GRAY)
    others = [prominence(other, width, height) for other in faces if other is not face]
    main = prominence(face, width, height)
    second = math.sqrt(max(others) / main) if others and main > 0 else 0.0
    return QualityMeasures(
        eye_distance=float(np.linalg.norm(landmarks[1] - landmarks[0])) / scale,
        edge_margin=edge_margin(face.box, width, height),
        yaw=yaw, roll=roll,
        sharpness=sharpness(cv2.cvtColor(region(crop, SHARPNESS_REGION), cv2.COLOR_BGR2GRAY).astype(np.float32)),
        underexposure=float(np.count_nonzero(luma <= DARK_LEVEL)) / luma.size,
        overexposure=float(np.count_nonzero((skin.max(axis=2) >= BRIGHT_LEVEL) & (luma >= BRIGHT_LUMA))) / luma.size,
        second_face=second,
    )


def region(crop: np.ndarray, shares: tuple[float, float, float, float]) -> np.ndarray:
    """The part of a square crop given as shares of its side (x1, y1, x2, y2)."""
    size = crop.shape[0]
    x1, y1, x2, y2 = (round(share * size) for share in shares)
    return crop[y1:y2, x1:x2]


def edge_margin(box: tuple[float, float, float, float], width: int, height: int) -> float:
    """The smallest gap between the box and the image's edges, in box widths (sideways) or heights
    (up and down); negative when the box runs past an edge."""
    x1, y1, x2, y2 = box
    box_width, box_height = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    return float(min(x1 / box_width, (width - x2) / box_width, y1 / box_height, (height - y2) / box_height))


def head_pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, roll) in degrees from five landmarks (eyes, nose tip, mouth corners).

    Roll is the eye line's angle to the horizontal. For yaw the points are turned so that the eyes
    lie level; the nose tip's offset from the midline between the eyes' and the mouth's centres, in
    eye distances, is then NOSE_DEPTH * tan(yaw)."""
    eyes = landmarks[1] - landmarks[0]
    roll = math.atan2(eyes[1], eyes[0])
    eye_distance = float(np.hypot(*eyes))
    if eye_distance == 0:
        return 90.0, 0.0
    cos, sin = math.cos(-roll), math.sin(-roll)
    level_x = landmarks[:, 0] * cos - landmarks[:, 1] * sin
    midline = ((level_x[0] + level_x[1]) / 2 + (level_x[3] + level_x[4]) / 2) / 2
    offset = (level_x[2] - midline) / eye_distance
    return math.degrees(math.atan2(offset, NOSE_DEPTH)), math.degrees(roll)


_LINE = np.full((1, SHARPNESS_TAPS), 1.0 / SHARPNESS_TAPS, dtype=np.float32)
_DIAGONAL = np.eye(SHARPNESS_TAPS, dtype=np.float32) / SHARPNESS_TAPS
DIRECTIONS = (
    # (line blur kernel, neighbour step (rows, columns)) for 0, 90, 45 and 135 degrees
    (_LINE, (0, 1)),
    (_LINE.T.copy(), (1, 0)),
    (np.fliplr(_DIAGONAL).copy(), (1, -1)),
    (_DIAGONAL, (1, 1)),
)


def _differences(image: np.ndarray, step: tuple[int, int]) -> np.ndarray:
    """|image(p + step) - image(p)| over the pixels where both exist."""
    dy, dx = step
    height, width = image.shape
    ahead = image[dy:, max(dx, 0):width + min(dx, 0)]
    here = image[:height - dy, max(-dx, 0):width - max(dx, 0)]
    return np.abs(ahead - here)


def sharpness(grey: np.ndarray) -> float:
    """0 (no detail) to 1: the share of the face's pixel-to-pixel variation that a short line blur
    removes, in the direction where it removes least (Crete et al., "The blur effect", 2007, in four
    directions). A blurred face has little variation left to remove; measured on the aligned crop,
    so it does not depend on the image's size, only on the detail the face carries."""
    least = 1.0
    for kernel, step in DIRECTIONS:
        blurred = cv2.filter2D(grey, -1, kernel, borderType=cv2.BORDER_REFLECT)
        original = _differences(grey, step)
        total = float(original.sum())
        if total <= 0:
            return 0.0
        removed = float(np.maximum(original - _differences(blurred, step), 0.0).sum())
        least = min(least, removed / total)
    return least


def find_issues(measures: QualityMeasures, rules: QualityRules) -> tuple[QualityIssue, ...]:
    """The issues `measures` raise under `rules`, in QualityIssue order."""
    found = {
        QualityIssue.FACE_TOO_SMALL: measures.eye_distance < rules.min_eye_distance,
        QualityIssue.FACE_CUT_OFF: measures.edge_margin < rules.min_edge_margin,
        QualityIssue.HEAD_TURNED: abs(measures.yaw) > rules.max_yaw or abs(measures.roll) > rules.max_roll,
        QualityIssue.BLURRY: measures.sharpness < rules.min_sharpness,
        QualityIssue.TOO_DARK: measures.underexposure > rules.max_underexposure,
        QualityIssue.OVEREXPOSED: measures.overexposure > rules.max_overexposure,
        QualityIssue.MULTIPLE_FACES: rules.max_second_face is not None and measures.second_face > rules.max_second_face,
    }
    return tuple(issue for issue, raised in found.items() if raised)


def _part(value: float, threshold: float, good: float) -> float:
    """50 at the threshold, 100 at the good value, linear, clipped to [0, 100]."""
    if good == threshold:
        return 100.0 if value == good else 0.0
    return min(max(50.0 + 50.0 * (value - threshold) / (good - threshold), 0.0), 100.0)


def quality_parts(measures: QualityMeasures, rules: QualityRules) -> dict[str, float]:
    """Each measure's part of the quality score, 0-100: 50 at its rule's threshold, 100 at GOOD."""
    parts = {
        "eye_distance": _part(measures.eye_distance, rules.min_eye_distance, GOOD.eye_distance),
        "edge_margin": _part(measures.edge_margin, rules.min_edge_margin, GOOD.edge_margin),
        "yaw": _part(abs(measures.yaw), rules.max_yaw, GOOD.yaw),
        "roll": _part(abs(measures.roll), rules.max_roll, GOOD.roll),
        "sharpness": _part(measures.sharpness, rules.min_sharpness, GOOD.sharpness),
        "underexposure": _part(measures.underexposure, rules.max_underexposure, GOOD.underexposure),
        "overexposure": _part(measures.overexposure, rules.max_overexposure, GOOD.overexposure),
    }
    if rules.max_second_face is not None:
        parts["second_face"] = _part(measures.second_face, rules.max_second_face, GOOD.second_face)
    return parts


def quality_score(measures: QualityMeasures, rules: QualityRules) -> float:
    """0-100: the lowest of `quality_parts`. Under 50 exactly when some issue is raised, and lower
    the further the worst measure lies past its threshold; 100 when every measure is at least as
    good as GOOD."""
    return min(quality_parts(measures, rules).values())


def with_issue(quality: Quality, issue: QualityIssue) -> Quality:
    """`quality` with `issue` raised by a later stage than the measures (another face in the selfie
    that matches the reference about as well: `multiple_faces`); the score is capped just under 50,
    so that it stays under 50 exactly when there is an issue."""
    issues = tuple(known for known in QualityIssue if known in quality.issues or known is issue)
    return Quality(measures=quality.measures, issues=issues, score=min(quality.score, 49.9))


def assess(measures: QualityMeasures, role: Role) -> Quality:
    """The issues and score of a measured face, under its role's rules."""
    rules = RULES[Role(role)]
    # Rounded down, so that a score under 50 still means an issue once rounded.
    return Quality(measures=measures, issues=find_issues(measures, rules), score=math.floor(quality_score(measures, rules) * 10) / 10)
