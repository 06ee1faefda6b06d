"""Build the stand-in for buffalo_l: the production networks' architectures with random weights.

    script/build-standin-packs [--out /tmp/faceverify-standin] [--seed 0]

buffalo_l cannot be downloaded here, but its speed and memory depend on its architecture, not on its
weights. This command writes, under `--out` (never inside the model image's `weights/`):

- `buffalo_l-standin-random/`: a manifest-V2 model pack that loads like buffalo_l.
  - recognizer `w600k_r50_standin.onnx`: IResNet-50 as arcface_torch publishes it, input Nx3x112x112
    with a dynamic batch, a 512-d output, random weights (faceverify_tools/standin_networks.py);
  - detector `det_10g_standin_with_det_2.5g.onnx`: SCRFD-10G rebuilt from its published config with
    random weights, run on the input next to the test pack's real det_2.5g. The outputs are
    det_2.5g's (plus 0 times SCRFD-10G's), so faces are found and the pipeline takes its real path,
    while every call also pays for a SCRFD-10G pass. It so costs SCRFD-10G plus SCRFD-2.5G:
    `script/measure-networks --detectors` times each network alone to say by how much it overstates det_10g.
- `networks/det_10g_standin.onnx`: SCRFD-10G alone (random weights: it finds no real faces).
- `buffalo_l-standin-random/STANDIN.json`: what was built, its parameters, sizes and
  multiply-accumulates, and the check of the SCRFD code (below).

The SCRFD code is checked on every build: the same code built from det_2.5g's published config
must take det_2.5g.onnx's weights one for one and give its outputs on a real photo.

A stand-in's similarity scores mean nothing: never report them as accuracy. Its model_id says so,
and it has no calibration (a threshold must be passed). Needs PyTorch (`.venv/bin/pip install
torch==2.13.0`), a build tool only: not in requirements*.txt and not used by the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .shared import CASES, TEST_PACK

PACK_ID = "buffalo_l-standin-random"
DEFAULT_OUT = Path("/tmp/faceverify-standin")
RECOGNIZER_FILE = "w600k_r50_standin.onnx"
DETECTOR_FILE = "det_10g_standin_with_det_2.5g.onnx"
PURE_DETECTOR_FILE = "det_10g_standin.onnx"
TEST_DETECTOR = TEST_PACK / "det_2.5g.onnx"
PUBLISHED_BYTES = {"w600k_r50.onnx": 174_383_860, "det_10g.onnx": 16_923_827}
"""The real files' sizes (../shared/weights/README.md), to compare the stand-ins' with."""
OPSET = 11  # as InsightFace's own SCRFD and ArcFace exports
LICENSE_TEXT = """STAND-IN model pack buffalo_l-standin-random: NOT a face recognition model.

w600k_r50_standin.onnx and the SCRFD-10G part of det_10g_standin_with_det_2.5g.onnx have the
architectures InsightFace publishes (arcface_torch iresnet50, scrfd_10g_bnkps) and RANDOM weights,
made by faceverify_tools/standin.py; they are for timing and memory measurements only. Their
similarity scores mean nothing and must never be reported as accuracy.

The detector file also contains the test pack's det_2.5g.onnx (InsightFace SCRFD-2.5GF), under
InsightFace's terms: non-commercial research use only (see ../shared/weights/scrfd2.5g-sface/MODEL.LICENSE).
"""


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parameter_count(path: Path) -> int:
    """How many numbers an ONNX file's initializers hold."""
    return int(sum(np.prod(tensor.dims, dtype=np.int64) for tensor in onnx.load(str(path)).graph.initializer))


def export(model, example, path: Path, output_names: list[str], dynamic_axes: dict) -> None:
    """Export with PyTorch's TorchScript-based ONNX exporter (opset 11, BN folded in eval mode)."""
    import torch

    with torch.no_grad():
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=OPSET, input_names=["input.1"],
                          output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)


def detector_blob(size: tuple[int, int]) -> np.ndarray:
    """A real photo as SCRFD's input at `size` (width, height): RGB, (pixel - 127.5) / 128, NCHW."""
    import cv2

    image = cv2.imread(str(CASES / "single-face" / "obama.jpg"))
    return cv2.dnn.blobFromImage(image, 1.0 / 128.0, size, (127.5, 127.5, 127.5), swapRB=True).astype(np.float32)


def check_scrfd_code() -> dict:
    """Build SCRFD-2.5G with this project's code, load det_2.5g.onnx's weights into it in order,
    and compare its outputs with det_2.5g.onnx's in ONNX Runtime on a real photo. Raises unless
    every weight fits and the outputs agree."""
    import onnxruntime
    import torch

    from .standin_networks import SCRFD, SCRFD_CONFIGS, convolutions_in_order, fold_batchnorm, randomize

    example = torch.from_numpy(detector_blob((640, 640)))
    model = fold_batchnorm(randomize(SCRFD(SCRFD_CONFIGS["2.5g"]), example, seed=0))
    ours = convolutions_in_order(model, example)
    graph = onnx.load(str(TEST_DETECTOR)).graph
    weights = {tensor.name: numpy_helper.to_array(tensor).copy() for tensor in graph.initializer}
    theirs = [(weights[node.input[1]], weights[node.input[2]]) for node in graph.node if node.op_type == "Conv"]
    if len(ours) != len(theirs):
        raise RuntimeError(f"SCRFD-2.5G rebuilt has {len(ours)} convolutions, det_2.5g.onnx {len(theirs)}")
    with torch.no_grad():
        for index, (conv, (weight, bias)) in enumerate(zip(ours, theirs)):
            if tuple(conv.weight.shape) != weight.shape or conv.bias is None:
                raise RuntimeError(f"convolution {index}: rebuilt {tuple(conv.weight.shape)}, det_2.5g.onnx {weight.shape}")
            conv.weight.copy_(torch.from_numpy(weight))
            conv.bias.copy_(torch.from_numpy(bias))
        for index, scale in enumerate(model.head.scales):
            scale.copy_(torch.from_numpy(weights[f"bbox_head.scales.{index}.scale"]).reshape(()))
    ours_params = sum(p.numel() for p in model.parameters())
    # Counted per convolution: the exporter stores identical tensors (a zero bias) once for several.
    theirs_params = int(sum(weight.size + bias.size for weight, bias in theirs)) + len(model.head.scales)
    session = onnxruntime.InferenceSession(str(TEST_DETECTOR), providers=["CPUExecutionProvider"])
    differences = []
    for size in ((640, 640), (320, 256)):
        blob = detector_blob(size)
        reference = session.run(None, {session.get_inputs()[0].name: blob})
        with torch.no_grad():
            rebuilt = [output.numpy() for output in model(torch.from_numpy(blob))]
        if [r.shape for r in reference] != [r.shape for r in rebuilt]:
            raise RuntimeError(f"output shapes differ at {size}: {[r.shape for r in rebuilt]} vs {[r.shape for r in reference]}")
        differences.append(max(float(np.abs(a - b).max()) for a, b in zip(reference, rebuilt)))
    if max(differences) > 1e-3 or ours_params != theirs_params:
        raise RuntimeError(f"SCRFD-2.5G rebuilt differs from det_2.5g.onnx: max output difference {max(differences)}, "
                           f"parameters {ours_params} vs {theirs_params}")
    return {"convolutions": len(ours), "parameters": ours_params, "max_output_difference": max(differences),
            "sizes": ["640x640", "320x256"], "photo": "cases/single-face/obama.jpg"}


def build_recognizer(path: Path, seed: int) -> dict:
    """IResNet-50 with random weights, exported with a dynamic batch; returns its figures."""
    import torch

    from .standin_networks import iresnet50, multiply_accumulates, randomize

    generator = torch.Generator().manual_seed(seed)
    calibration = torch.rand((8, 3, 112, 112), generator=generator) * 2 - 1
    model = randomize(iresnet50(), calibration, seed)
    export(model, torch.zeros(1, 3, 112, 112), path, ["embedding"], {"input.1": {0: "None"}, "embedding": {0: "None"}})
    return {"architecture": "arcface_torch iresnet50 (IBasicBlock, layers [3, 4, 14, 3]), 512-d",
            "input": "input.1 [None, 3, 112, 112] (dynamic batch)", "output": "embedding [None, 512]",
            "macs_per_face": multiply_accumulates(model, torch.zeros(1, 3, 112, 112))}


def build_pure_detector(path: Path, seed: int) -> dict:
    """SCRFD-10G with random weights, exported as InsightFace's SCRFD files are; returns its figures."""
    import torch

    from .standin_networks import SCRFD, SCRFD_CONFIGS, fold_batchnorm, multiply_accumulates, randomize

    example = torch.from_numpy(detector_blob((640, 640)))
    model = fold_batchnorm(randomize(SCRFD(SCRFD_CONFIGS["10g"]), example, seed))
    names = [f"{kind}_{stride}" for kind in ("score", "bbox", "kps") for stride in (8, 16, 32)]
    export(model, example, path, names, {"input.1": {2: "height", 3: "width"}, **{name: {0: "anchors"} for name in names}})
    return {"architecture": "SCRFD-10G with keypoints from scrfd_10g_bnkps.py (ResNetV1e, PAFPN, SCRFDHead; BN folded)",
            "input": "input.1 [1, 3, height, width]", "outputs": "9: scores, boxes, keypoints at strides 8, 16, 32, 2 anchors",
            "macs": {f"{w}x{h}": multiply_accumulates(model, torch.zeros(1, 3, h, w)) for w, h in ((640, 480), (640, 640), (320, 320), (128, 128))}}


def combine_detectors(real: Path, standin: Path, path: Path) -> None:
    """One ONNX graph that runs both detectors on its input and gives `real`'s outputs plus 0 times
    `standin`'s: the real detector's answers at the cost of both networks."""
    real_model, extra = onnx.load(str(real)), onnx.load(str(standin))
    graph, added = real_model.graph, extra.graph
    shared_input = graph.input[0].name
    prefix = "standin_10g/"

    def rename(name: str) -> str:
        if name == added.input[0].name:
            return shared_input
        return prefix + name if name else name

    for node in added.node:
        node.input[:] = [rename(name) for name in node.input]
        node.output[:] = [rename(name) for name in node.output]
        node.name = prefix + node.name
        graph.node.append(node)
    for tensor in added.initializer:
        tensor.name = rename(tensor.name)
        graph.initializer.append(tensor)
    graph.initializer.append(numpy_helper.from_array(np.zeros((), dtype=np.float32), "standin_10g/zero"))
    outputs = []
    for index, (own, other) in enumerate(zip(list(graph.output), added.output)):
        zero, final = f"standin_10g/zero_{index}", f"{own.name}_with_standin_10g"
        graph.node.append(helper.make_node("Mul", [rename(other.name), "standin_10g/zero"], [zero], name=f"standin_10g/mul_{index}"))
        graph.node.append(helper.make_node("Add", [own.name, zero], [final], name=f"standin_10g/add_{index}"))
        output = onnx.ValueInfoProto()
        output.CopyFrom(own)
        output.name = final
        outputs.append(output)
    del graph.output[:]
    graph.output.extend(outputs)
    real_model.ir_version = max(real_model.ir_version, extra.ir_version)
    onnx.checker.check_model(real_model)
    onnx.save(real_model, str(path))


def check_combined(real: Path, combined: Path) -> float:
    """Raise unless the combined detector gives exactly the real detector's outputs on a real photo;
    return the largest difference (0)."""
    import onnxruntime

    sessions = [onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]) for path in (real, combined)]
    blob = detector_blob((640, 640))
    outputs = [session.run(None, {session.get_inputs()[0].name: blob}) for session in sessions]
    largest = max(float(np.abs(a - b).max()) for a, b in zip(*outputs))
    if largest != 0.0:
        raise RuntimeError(f"the combined detector's outputs differ from det_2.5g's by {largest}")
    return largest


def manifest(detector_sha: str, recognizer_sha: str) -> dict:
    """The stand-in pack's manifest V2, laid out as script/download-weights writes buffalo_l's."""
    return {
        "manifest_version": 2,
        "model_id": PACK_ID,
        "display_name": "STAND-IN with random weights (timing only, scores mean nothing): SCRFD-10G + det_2.5g detector, IResNet-50 recognizer",
        "license": "MODEL.LICENSE",
        "tasks": {
            "detection": {"file": DETECTOR_FILE, "sha256": detector_sha},
            "recognition": {
                "file": RECOGNIZER_FILE,
                "sha256": recognizer_sha,
                "preprocessing": {"mean": 127.5, "std": 127.5},
                "preprocessing_version": "insightface-arcface-1",
                "embedding_dimension": 512,
            },
        },
    }


def build(out: Path, seed: int) -> Path:
    """Build everything under `out`; return the pack folder."""
    import torch

    pack, networks = out / PACK_ID, out / "networks"
    pack.mkdir(parents=True, exist_ok=True)
    networks.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    report: dict = {"model_id": PACK_ID, "seed": seed, "torch": torch.__version__, "onnx_opset": OPSET,
                    "scrfd_code_check": check_scrfd_code()}
    print(f"SCRFD code checked against det_2.5g.onnx: {report['scrfd_code_check']}", file=sys.stderr)
    recognizer = pack / RECOGNIZER_FILE
    report["recognizer"] = build_recognizer(recognizer, seed)
    pure = networks / PURE_DETECTOR_FILE
    report["detector_10g"] = build_pure_detector(pure, seed + 1)
    detector = pack / DETECTOR_FILE
    combine_detectors(TEST_DETECTOR, pure, detector)
    report["detector_in_pack"] = {"file": DETECTOR_FILE, "outputs_equal_det_2.5g": check_combined(TEST_DETECTOR, detector) == 0.0,
                                  "parameters": parameter_count(detector), "bytes": detector.stat().st_size}
    for key, path, published in (("recognizer", recognizer, "w600k_r50.onnx"), ("detector_10g", pure, "det_10g.onnx")):
        report[key].update(file=str(path.relative_to(out)), parameters=parameter_count(path), bytes=path.stat().st_size,
                           published_file=published, published_bytes=PUBLISHED_BYTES[published])
    (pack / "MODEL.LICENSE").write_text(LICENSE_TEXT)
    (pack / "manifest.json").write_text(json.dumps(manifest(sha256_of(detector), sha256_of(recognizer)), indent=2) + "\n")
    (pack / "STANDIN.json").write_text(json.dumps(report, indent=1) + "\n")
    return pack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="script/build-standin-packs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the packs (default {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the weights (default 0)")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("build-standin-packs: needs PyTorch, a build tool only: .venv/bin/pip install torch==2.13.0", file=sys.stderr)
        return 1
    pack = build(args.out.resolve(), args.seed)
    print(json.dumps(json.loads((pack / "STANDIN.json").read_text()), indent=1))
    print(f"wrote {pack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
