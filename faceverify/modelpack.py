"""Loading a model pack: the face detector and the face recognizer, checked before use.

A model pack is an InsightFace model-package manifest V2 folder: `manifest.json` names the
`detection` and `recognition` ONNX files with their sha256 and the recognizer's input
preprocessing, next to a `MODEL.LICENSE`. InsightFace 2.1 parses the manifest and verifies each
file's sha256 before it builds a session. Two of its behaviours are dangerous here, so this module
checks the folder itself first: a name that is not an existing folder would be downloaded from
the internet, and a folder without a manifest would load with guessed (wrong) preprocessing.
Only the two files verification needs are ever loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime
from insightface.model_zoo import model_zoo
from insightface.model_zoo.package_manifest import load_model_package

from .calibration import Calibration, find_calibration
from .errors import FETCH_COMMAND, ModelPackError
from .threads import threads_per_call

REQUIRED_TASKS = ("detection", "recognition")
DEFAULT_PACK = Path(__file__).resolve().parent.parent / "weights" / "buffalo_l"
"""Where `script/download-weights` installs buffalo_l, and where the predictor looks by default."""


def default_pack_path() -> Path:
    """The pack to load when none is named: $COG_WEIGHTS if set, else weights/buffalo_l."""
    return Path(os.environ.get("COG_WEIGHTS") or DEFAULT_PACK)


@dataclass
class ModelPack:
    """A loaded, verified pack: InsightFace's SCRFD detector and ArcFace-style recognizer objects."""

    path: Path
    model_id: str
    detector: Any  # insightface.model_zoo.scrfd.SCRFD
    recognizer: Any  # insightface.model_zoo.arcface_onnx.ArcFaceONNX
    sha256: dict[str, str]
    calibration: Calibration | None
    embedding_dimension: int

    @property
    def recognizer_takes_batches(self) -> bool:
        """True when the recognizer accepts several faces in one call (w600k_r50 does, SFace does not)."""
        batch = self.recognizer.input_shape[0]
        return not (isinstance(batch, int) and batch == 1)

    @property
    def on_gpu(self) -> bool:
        """True when the recognizer runs on CUDA (onnxruntime-gpu with a visible GPU)."""
        return "CUDAExecutionProvider" in self.recognizer.session.get_providers()


def execution_providers() -> list[str]:
    """ONNX Runtime providers to use: CUDA when onnxruntime-gpu sees a GPU, else the CPU."""
    available = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    """Session settings for the predictor's two networks.

    Each network call runs on `threads` intra-op threads, by default half the CPUs the process may
    really use (its affinity and cgroup CPU quota, not `os.cpu_count()`; see faceverify/threads.py),
    at least one: a prediction works on its two images at once, one per thread (see FaceVerifier),
    so the two together use every usable CPU. Spinning idle threads is turned off: it made the
    network calls of one comparison slower. Both choices are measured in docs/how-it-decides.md,
    "Threads".
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or threads_per_call()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def load_model_pack(path: str | Path, threads: int | None = None) -> ModelPack:
    """Check and load the pack in `path`; raise ModelPackError naming the missing or bad file.
    `threads` sets each session's intra-op threads (default: half the usable CPUs, see `session_options`).

    Nothing is downloaded: `path` must be an existing folder with a manifest V2 that lists a
    detection and a recognition file, each with its sha256.
    """
    folder = Path(path).expanduser()
    fetch_hint = f"Run `{FETCH_COMMAND}` to fetch buffalo_l, or set COG_WEIGHTS to a model pack folder."
    if not folder.is_dir():
        raise ModelPackError(f"Model pack folder {folder} does not exist. {fetch_hint}")
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise ModelPackError(
            f"Model pack folder {folder} has no manifest.json, so its preprocessing is unknown. {fetch_hint}"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        descriptor = load_model_package(folder)
    except Exception as error:
        raise ModelPackError(f"Model pack manifest {manifest_path} is not a valid manifest V2: {error}. {fetch_hint}") from None

    stated = stated_recognizer_preprocessing(manifest, manifest_path)

    sha256: dict[str, str] = {}
    for task in REQUIRED_TASKS:
        if task not in descriptor.tasks:
            raise ModelPackError(f"Model pack manifest {manifest_path} lists no {task} model. {fetch_hint}")
        task_descriptor = descriptor.tasks[task]
        if task_descriptor.sha256 is None:
            raise ModelPackError(f"Model pack manifest {manifest_path} gives no sha256 for {task_descriptor.file}.")
        if not task_descriptor.path.is_file():
            raise ModelPackError(f"Model file {task_descriptor.path} is missing. {fetch_hint}")
        sha256[task] = task_descriptor.sha256

    models = {}
    for task in REQUIRED_TASKS:
        task_descriptor = descriptor.tasks[task]
        try:
            models[task] = model_zoo.get_model(
                str(folder),
                model_task=task,
                model_descriptor=task_descriptor,
                providers=execution_providers(),
                sess_options=session_options(threads),
            )
        except RuntimeError as error:
            if "SHA-256 mismatch" in str(error):
                raise ModelPackError(
                    f"Model file {task_descriptor.path} is corrupt or not the file its manifest names "
                    f"(sha256 mismatch). {fetch_hint}"
                ) from None
            raise ModelPackError(f"Model file {task_descriptor.path} cannot be loaded: {error}. {fetch_hint}") from None
        except Exception as error:
            raise ModelPackError(f"Model file {task_descriptor.path} cannot be loaded: {error}. {fetch_hint}") from None

    check_recognizer(models["recognition"], stated, manifest_path)
    return ModelPack(
        path=folder,
        model_id=str(manifest.get("model_id", folder.name)),
        detector=models["detection"],
        recognizer=models["recognition"],
        sha256=sha256,
        calibration=find_calibration(folder, sha256),
        embedding_dimension=stated.embedding_dimension,
    )


@dataclass(frozen=True)
class RecognizerPreprocessing:
    """What the manifest states about the recognizer: input normalisation and embedding size."""

    mean: float
    std: float
    embedding_dimension: int


ARCFACE_PREPROCESSING = "insightface-arcface-1"
"""The one recognizer preprocessing this code knows: InsightFace's ArcFace input, a BGR crop turned
to RGB (`swapRB`) and normalised as (pixel - mean) / std."""


def stated_recognizer_preprocessing(manifest: dict, manifest_path: Path) -> RecognizerPreprocessing:
    """The recognizer's mean, std and embedding size as the manifest states them; raises ModelPackError
    when any is missing or the manifest names a preprocessing (and so a colour order) this code does not know.

    InsightFace fills a missing `preprocessing` with (127.5, 127.5) and a missing `embedding_dimension`
    with 512. Neither can be read from an ONNX file, and a recognizer given the wrong normalisation
    still returns embeddings, only wrong ones, so a pack must state both.
    """
    task = manifest.get("tasks", {}).get("recognition", {})
    preprocessing = task.get("preprocessing")
    if not isinstance(preprocessing, dict) or not {"mean", "std"} <= set(preprocessing):
        raise ModelPackError(
            f"Model pack manifest {manifest_path} does not state the recognizer's preprocessing "
            '(tasks.recognition.preprocessing: {"mean": ..., "std": ...}); it is not guessed.'
        )
    dimension = task.get("embedding_dimension")
    if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension <= 0:
        raise ModelPackError(
            f"Model pack manifest {manifest_path} does not state the recognizer's embedding size "
            "(tasks.recognition.embedding_dimension)."
        )
    version = task.get("preprocessing_version", ARCFACE_PREPROCESSING)
    if version != ARCFACE_PREPROCESSING:
        raise ModelPackError(
            f"Model pack manifest {manifest_path} names recognizer preprocessing {version!r}; only "
            f"{ARCFACE_PREPROCESSING!r} (RGB input, (pixel - mean) / std) is supported."
        )
    return RecognizerPreprocessing(float(preprocessing["mean"]), float(preprocessing["std"]), dimension)


def check_recognizer(recognizer: Any, stated: RecognizerPreprocessing, manifest_path: Path) -> None:
    """Raise ModelPackError unless the loaded recognizer uses the stated normalisation and its
    output has the stated embedding size."""
    if (float(recognizer.input_mean), float(recognizer.input_std)) != (stated.mean, stated.std):
        raise ModelPackError(
            f"The recognizer was loaded with mean {recognizer.input_mean} and std {recognizer.input_std}, "
            f"not the {stated.mean} and {stated.std} that {manifest_path} states."
        )
    output = recognizer.output_shape[-1] if recognizer.output_shape else None
    if isinstance(output, int) and output != stated.embedding_dimension:
        raise ModelPackError(
            f"The recognizer gives {output}-dimensional embeddings, but {manifest_path} states "
            f"{stated.embedding_dimension}."
        )
