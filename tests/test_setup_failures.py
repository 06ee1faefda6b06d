"""A damaged model pack stops setup fast, with a message naming the file; the server reports
SETUP_FAILED and never answers a prediction with a model it could not check.

tests/test_modelpack.py covers a missing folder, manifest or weight file, a truncated or bit-flipped
weight file and a manifest without sha256 in-process; tests/test_server.py a missing pack and a
truncated detector through the server. This file adds the damaged manifest cases, empty and
redirected weight files, and the other damages through the server.
"""

from __future__ import annotations

import json
import time

import pytest

import predict
from conftest import CogServer, case
from faceverify import ModelPackError
from faceverify_tools.inputs import data_uri

SETUP_SECONDS = 60.0


def manifest_of(pack) -> dict:
    return json.loads((pack / "manifest.json").read_text())


def truncate_manifest(pack) -> str:
    text = (pack / "manifest.json").read_text()
    (pack / "manifest.json").write_text(text[: len(text) // 2])
    return "manifest.json"


def empty_manifest(pack) -> str:
    (pack / "manifest.json").write_bytes(b"")
    return "manifest.json"


def delete_manifest(pack) -> str:
    (pack / "manifest.json").unlink()
    return "manifest.json"


def empty_recognizer(pack) -> str:
    (pack / "sface_int8bq.onnx").write_bytes(b"")
    return "sface_int8bq.onnx"


def truncate_recognizer(pack) -> str:
    path = pack / "sface_int8bq.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    return "sface_int8bq.onnx"


def flip_detector_bit(pack) -> str:
    """Same size, one bit different: only the sha256 can tell."""
    path = pack / "det_2.5g.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) * 2 // 3] ^= 0x10
    path.write_bytes(bytes(data))
    return "det_2.5g.onnx"


def swap_weight_files(pack) -> str:
    """Each file under the other's name: both exist, both are real ONNX models, neither is what the
    manifest names, so the first one checked fails."""
    detector, recognizer = pack / "det_2.5g.onnx", pack / "sface_int8bq.onnx"
    detector_bytes = detector.read_bytes()
    detector.write_bytes(recognizer.read_bytes())
    recognizer.write_bytes(detector_bytes)
    return "det_2.5g.onnx"


def manifest_points_outside_the_pack(pack) -> str:
    """A manifest naming a weight file outside its folder (a path-traversal attempt): the manifest
    is refused before any file it names is opened."""
    manifest = manifest_of(pack)
    manifest["tasks"]["recognition"]["file"] = "../../../../etc/passwd"
    (pack / "manifest.json").write_text(json.dumps(manifest))
    return "manifest.json"


def edit_recognizer_entry(pack, change) -> None:
    manifest = manifest_of(pack)
    change(manifest["tasks"]["recognition"])
    (pack / "manifest.json").write_text(json.dumps(manifest))


# The recognizer's preprocessing and embedding size cannot be read from the ONNX file, and InsightFace
# would fill in (127.5, 127.5) and 512 silently (SFace then scores about 60% on LFW): each must be stated.
MANIFEST_STATEMENTS = {
    "no-preprocessing": (lambda task: task.pop("preprocessing"), "does not state the recognizer's preprocessing"),
    "no-embedding-size": (lambda task: task.pop("embedding_dimension"), "does not state the recognizer's embedding size"),
    "wrong-embedding-size": (lambda task: task.update(embedding_dimension=512), "gives 128-dimensional embeddings"),
    "unknown-preprocessing": (lambda task: task.update(preprocessing_version="bgr-raw-1"), "only 'insightface-arcface-1'"),
}


@pytest.mark.parametrize("name", list(MANIFEST_STATEMENTS))
def test_setup_fails_when_the_manifest_does_not_state_the_recognizers_input_and_output(pack_copy, name):
    change, message = MANIFEST_STATEMENTS[name]
    edit_recognizer_entry(pack_copy, change)
    with pytest.raises(ModelPackError) as raised:
        predict.Predictor().setup(weights=str(pack_copy))
    assert message in str(raised.value) and "manifest.json" in str(raised.value), str(raised.value)


def test_a_manifest_that_states_everything_loads(pack_copy):
    edit_recognizer_entry(pack_copy, lambda task: task.update(preprocessing_version="insightface-arcface-1"))
    instance = predict.Predictor()
    instance.setup(weights=str(pack_copy))
    assert instance.verifier.pack.embedding_dimension == 128


DAMAGES = [truncate_manifest, empty_manifest, empty_recognizer, truncate_recognizer, swap_weight_files,
           manifest_points_outside_the_pack]


@pytest.mark.parametrize("damage", DAMAGES, ids=[damage.__name__ for damage in DAMAGES])
def test_setup_fails_fast_naming_the_file(pack_copy, damage):
    named = damage(pack_copy)
    started = time.monotonic()
    with pytest.raises(ModelPackError) as raised:
        predict.Predictor().setup(weights=str(pack_copy))
    assert time.monotonic() - started < SETUP_SECONDS
    assert named in str(raised.value), str(raised.value)


@pytest.mark.parametrize(
    "damage", [truncate_manifest, delete_manifest, truncate_recognizer, flip_detector_bit],
    ids=["truncated-manifest", "missing-manifest", "truncated-recognizer", "bit-flipped-detector"],
)
def test_server_reports_setup_failed_naming_the_file_and_serves_nothing(pack_copy, tmp_path, damage):
    named = damage(pack_copy)
    server = CogServer(pack_copy, tmp_path / "server.log")
    try:
        started = time.monotonic()
        health = server.wait_until({"SETUP_FAILED", "READY"}, timeout=SETUP_SECONDS)
        assert health["status"] == "SETUP_FAILED", health
        assert time.monotonic() - started < SETUP_SECONDS
        assert named in json.dumps(health) + server.logs()
        photo = data_uri(case("single-face/obama.jpg").read_bytes())
        response = server.predict({"image1": photo, "image2": photo}, timeout=10)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        assert response.status_code != 200 or body.get("status") != "succeeded", body
        assert "output" not in body or body["output"] is None, body
    finally:
        server.stop()
