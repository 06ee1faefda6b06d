"""The code paths of the production pack (buffalo_l: a 512-d recognizer that takes batches, shipped
without a calibration of ours), on a tiny recognizer of that shape built here with onnx.helper.

The recognizer is random and tiny (a strided convolution and an FC layer): its scores mean nothing.
It stands in for w600k_r50's signature only: input Nx3x112x112 with a dynamic batch, 512-d output,
ArcFace preprocessing. The detector is the test pack's.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import REPO, SHARED, TEST_PACK, case
from faceverify import FaceVerifier
from faceverify.embeddings import embed_faces


def tiny_recognizer(path, dimension: int = 512, seed: int = 0) -> None:
    """An ONNX recognizer input.1 [None, 3, 112, 112] -> [None, dimension]: Conv 16x16 stride 16, ReLU, FC."""
    rng = np.random.default_rng(seed)
    conv = numpy_helper.from_array(rng.normal(0, 0.05, (8, 3, 16, 16)).astype(np.float32), "conv.weight")
    fc = numpy_helper.from_array(rng.normal(0, 0.05, (dimension, 8 * 7 * 7)).astype(np.float32), "fc.weight")
    bias = numpy_helper.from_array(rng.normal(0, 0.01, (dimension,)).astype(np.float32), "fc.bias")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input.1", "conv.weight"], ["features"], kernel_shape=[16, 16], strides=[16, 16]),
         helper.make_node("Relu", ["features"], ["active"]),
         helper.make_node("Flatten", ["active"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["embedding"], transB=1)],
        "tiny-recognizer",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["None", dimension])],
        [conv, fc, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pack_512(tmp_path_factory):
    """A manifest-V2 pack: the test pack's detector and the tiny 512-d recognizer, no calibration."""
    pack = tmp_path_factory.mktemp("pack512")
    (pack / "det_2.5g.onnx").write_bytes((TEST_PACK / "det_2.5g.onnx").read_bytes())
    tiny_recognizer(pack / "tiny_r512.onnx")
    (pack / "MODEL.LICENSE").write_text((TEST_PACK / "MODEL.LICENSE").read_text())
    manifest = {
        "manifest_version": 2, "model_id": "tiny-r512-test", "license": "MODEL.LICENSE",
        "tasks": {
            "detection": {"file": "det_2.5g.onnx", "sha256": sha256_of(pack / "det_2.5g.onnx")},
            "recognition": {"file": "tiny_r512.onnx", "sha256": sha256_of(pack / "tiny_r512.onnx"),
                            "preprocessing": {"mean": 127.5, "std": 127.5}, "preprocessing_version": "insightface-arcface-1",
                            "embedding_dimension": 512},
        },
    }
    (pack / "manifest.json").write_text(json.dumps(manifest))
    return pack


@pytest.fixture(scope="module")
def verifier_512(pack_512):
    return FaceVerifier.load(pack_512)


def test_a_512_d_pack_that_takes_batches_loads_and_compares(verifier_512):
    pack = verifier_512.pack
    assert pack.model_id == "tiny-r512-test" and pack.embedding_dimension == 512
    assert pack.recognizer_takes_batches and pack.recognizer.output_shape[-1] == 512
    same = verifier_512.embed(aligned(verifier_512, "single-face/obama.jpg", "single-face/obama.jpg"))
    assert float(same[0] @ same[1]) == pytest.approx(1.0)
    pair = verifier_512.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg"), threshold=0.5)
    assert pair.error_code is None and -1.0 <= pair.similarity <= 1.0
    other = verifier_512.verify(case("single-face/obama.jpg"), case("single-face/biden.jpg"), threshold=0.5)
    assert other.error_code is None and -1.0 <= other.similarity < 1.0
    assert other.image1.face_count == 1 and other.image2.face_count == 1


def aligned(verifier, *names: str) -> list:
    return [verifier.find_face(case(name).read_bytes()) for name in names]


def test_batched_and_single_calls_give_the_same_embeddings(verifier_512):
    faces = aligned(verifier_512, "single-face/obama.jpg", "single-face/biden.jpg", "single-face/obama2.jpg")
    crops = [face.crop for face in faces]
    batched = embed_faces(verifier_512.pack.recognizer, crops, batched=True)
    single = np.vstack([embed_faces(verifier_512.pack.recognizer, [crop], batched=False) for crop in crops])
    assert batched.shape == (3, 512)
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-6)
    assert np.all(np.abs(np.linalg.norm(batched, axis=1) - 1) < 1e-9)
    assert float(batched[0] @ batched[1]) < 0.9999, "different faces, different rows: the order is kept"


def test_the_batched_path_and_the_cpu_path_give_the_same_answer(verifier_512):
    """One recognizer call for both faces (a GPU's path) against one call per face at once (a CPU's)."""
    batching = FaceVerifier(verifier_512.pack, batch_faces=True)
    per_face = FaceVerifier(verifier_512.pack, batch_faces=False)
    assert batching.batch_faces and not per_face.batch_faces
    faces = aligned(verifier_512, "single-face/obama.jpg", "single-face/biden.jpg")
    np.testing.assert_allclose(batching.embed(faces), per_face.embed(faces), rtol=0, atol=1e-6)
    for first, second in [("single-face/obama.jpg", "single-face/obama2.jpg"), ("single-face/obama.jpg", "single-face/biden.jpg")]:
        answers = [v.verify(case(first), case(second), threshold=0.5) for v in (batching, per_face)]
        assert answers[0] == answers[1]


def test_on_a_cpu_faces_get_one_call_each_and_the_test_pack_never_batches(verifier_512, verifier):
    assert not verifier_512.pack.on_gpu and not verifier_512.batch_faces
    assert not verifier.pack.recognizer_takes_batches
    assert not FaceVerifier(verifier.pack, batch_faces=True).batch_faces, "SFace is fixed at batch 1"


def test_a_pack_without_calibration_needs_a_threshold(verifier_512):
    assert verifier_512.pack.calibration is None and verifier_512.default_threshold is None
    with pytest.raises(ValueError, match="no calibrated default threshold"):
        verifier_512.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg"))
    result = verifier_512.verify(case("single-face/obama.jpg"), case("single-face/obama2.jpg"), threshold=0.3)
    assert result.threshold == 0.3 and result.similarity is not None and result.false_match_rate is None


def test_the_manifest_must_state_the_512_d_size(pack_512, tmp_path):
    from faceverify import ModelPackError

    copy = tmp_path / "pack"
    copy.mkdir()
    for path in pack_512.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["tasks"]["recognition"]["embedding_dimension"] = 128
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelPackError, match="gives 512-dimensional embeddings"):
        FaceVerifier.load(copy)


def test_benchmark_asks_for_a_threshold_for_a_pack_without_calibration(pack_512, tmp_path):
    completed = subprocess.run(
        [str(REPO / "script" / "benchmark"), "--weights", str(pack_512), "--runs", "1", "--json", str(tmp_path / "b.json")],
        check=False, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, FACEVERIFY_PYTHON=sys.executable, FACEVERIFY_SHARED=str(SHARED)),
    )
    assert completed.returncode == 2 and "pass --threshold" in completed.stderr, completed.stderr
    assert not (tmp_path / "b.json").exists()


def test_measure_networks_compares_every_way_to_embed_two_faces(pack_512, tmp_path):
    report_path = tmp_path / "networks.json"
    completed = subprocess.run(
        [str(REPO / "script" / "measure-networks"), "--weights", str(pack_512), "--runs", "1", "--warmup", "0",
         "--json", str(report_path)],
        check=False, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, FACEVERIFY_PYTHON=sys.executable, FACEVERIFY_SHARED=str(SHARED)),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rows = json.loads(report_path.read_text())["recognizer"]["rows"]
    ways = {(row["way"], row["threads"], row["load"]) for row in rows}
    assert ways == {(way, threads, load) for way in ("batch of 2", "two at once", "one after the other")
                    for threads in (1, 2) for load in ("alone", "two pairs at once")}
    assert all(row["median_ms"] > 0 for row in rows)
    assert "batch of 2" in completed.stdout
