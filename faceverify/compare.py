"""Stage 4, comparison: one number for two embeddings, and the match decision."""

from __future__ import annotations

import math

import numpy as np

SIMILARITY_DECIMALS = 4


def cosine_similarity(embedding1: np.ndarray, embedding2: np.ndarray) -> float:
    """Cosine similarity of two unit vectors, in [-1, 1], rounded to SIMILARITY_DECIMALS places."""
    value = float(np.clip(np.dot(embedding1, embedding2), -1.0, 1.0))
    if not math.isfinite(value):
        raise RuntimeError("the similarity is not a finite number")
    return round(value, SIMILARITY_DECIMALS)


def is_match(similarity: float, threshold: float) -> bool:
    """Same person when the (rounded, as returned) similarity is at least the threshold."""
    return similarity >= threshold


AMBIGUITY_MARGIN = 0.1
"""How close another face's similarity may come before the answer is ambiguous (see `is_ambiguous`).
Chosen on LFW View 1 with script/measure-kyc-checks (docs/kyc-checks.md)."""


def is_ambiguous(similarity: float, others: list[float], threshold: float) -> bool:
    """True when another face of the selfie, with these similarities to the reference, could be the
    person as well as or nearly as well as the chosen face (similarity `similarity`): one of them
    reaches within AMBIGUITY_MARGIN of the higher of `similarity` and `threshold`. So a stranger
    beside a matching face is not ambiguous, nor a bystander when neither face comes near a match;
    a second face that matches, or nearly matches, is."""
    return bool(others) and max(others) >= max(similarity, threshold) - AMBIGUITY_MARGIN


def check_threshold(value: object) -> float:
    """A caller's threshold as a float in [0, 1]; raise ValueError with a clear message otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"threshold must be a number between 0 and 1, got {type(value).__name__} {value!r:.40}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"threshold must be a number between 0 and 1, got {value!r}")
    return float(value)
