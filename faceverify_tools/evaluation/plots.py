"""The evaluation as pictures: ROC curves and genuine/impostor score histograms (PNG, matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import metrics
from .report import ScoredPairs


def write_plots(sets: list[ScoredPairs], default_threshold: float | None, out_dir: Path) -> list[Path]:
    """Write `roc.png` (TAR against FMR, log scale, one curve per set) and `scores.png` (one
    panel per set: genuine and impostor similarity histograms, the default threshold marked).
    Pairs that failed are left out of the histograms. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    roc_path, scores_path = out_dir / "roc.png", out_dir / "scores.png"

    figure, axis = plt.subplots(figsize=(6, 4.5))
    for scored in sets:
        table = metrics.rate_table(scored.scores, scored.genuine, np.unique(scored.scores))
        fmr = np.array([r.fmr for r in table])
        tar = 1 - np.array([r.fnmr for r in table])
        axis.plot(np.maximum(fmr, 1e-5), tar, label=scored.name)
    axis.set_xscale("log")
    axis.set_xlim(1e-4, 1)
    lowest = min(metrics.tar_at_fmr(s.scores, s.genuine, 1e-4).tar for s in sets)
    axis.set_ylim(max(0.0, math.floor((lowest - 0.005) * 100) / 100), 1.001)
    axis.set_xlabel("false match rate (impostors accepted)")
    axis.set_ylabel("true accept rate (genuine pairs accepted)")
    axis.set_title("ROC")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(roc_path, dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(len(sets), 1, figsize=(7, 3 * len(sets)), squeeze=False)
    bins = np.linspace(-0.4, 1.0, 71)
    for axis, scored in zip(axes[:, 0], sets):
        compared = scored.scores > metrics.FAILED_SCORE
        axis.hist(scored.scores[compared & ~scored.genuine], bins=bins, alpha=0.6, label="impostor pairs", color="tab:red")
        axis.hist(scored.scores[compared & scored.genuine], bins=bins, alpha=0.6, label="genuine pairs", color="tab:green")
        if default_threshold is not None:
            axis.axvline(default_threshold, color="black", linestyle="--", label=f"default threshold {default_threshold:g}")
        axis.set_title(scored.name)
        axis.set_xlabel("cosine similarity")
        axis.set_ylabel("pairs")
        axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(scores_path, dpi=110)
    plt.close(figure)
    return [roc_path, scores_path]
