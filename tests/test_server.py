"""The model through the real Cog HTTP server (coglet), as Replicate and `cog predict` call it."""

from __future__ import annotations

import base64
import math
import shutil

import pytest

from conftest import TEST_PACK, CogServer, case
from faceverify_tools.inputs import data_uri, png_claiming_size

OUTPUT_FIELDS = {
    "match", "similarity", "threshold", "false_match_rate", "error_code", "error", "model_pack",
    "image1_face_count", "image1_face_box", "image1_face_score",
    "image2_face_count", "image2_face_box", "image2_face_score",
}


def photo(name: str) -> str:
    return data_uri(case(f"single-face/{name}").read_bytes())


def succeeded(response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded", body
    assert set(body["output"]) == OUTPUT_FIELDS
    return body["output"]


def test_same_person_matches_over_http(server):
    output = succeeded(server.predict({"image1": photo("obama.jpg"), "image2": photo("obama2.jpg")}))
    assert output["match"] is True and output["error_code"] is None
    assert output["threshold"] == 0.38 and output["similarity"] >= 0.38
    assert output["false_match_rate"] == 0.0  # no View 1 impostor pair scored this high
    assert output["image1_face_count"] == 1 and len(output["image1_face_box"]) == 4
    assert output["model_pack"] == "scrfd2.5g-sface"


def test_different_people_do_not_match_over_http(server):
    output = succeeded(server.predict({"image1": photo("obama.jpg"), "image2": photo("biden.jpg")}))
    assert output["match"] is False and output["error_code"] is None
    assert output["similarity"] < output["threshold"]
    assert 0.0 < output["false_match_rate"] <= 1.0


def test_bare_base64_and_explicit_threshold(server):
    bare = base64.b64encode(case("single-face/obama2.jpg").read_bytes()).decode()
    output = succeeded(server.predict({"image1": photo("obama.jpg"), "image2": bare, "threshold": 0.99}))
    assert output["threshold"] == 0.99 and output["match"] is False and output["similarity"] is not None


@pytest.mark.parametrize(
    "inputs,code",
    [
        ({"image1": data_uri(b"not an image", "text/plain"), "image2": "PHOTO"}, "image1_invalid"),
        ({"image1": "PHOTO", "image2": data_uri(b"\xff\xd8\xff\xe0 broken")}, "image2_invalid"),
        ({"image1": "/etc/passwd", "image2": "PHOTO"}, "image1_invalid"),
        ({"image1": "PHOTO", "image2": "file:///etc/passwd"}, "image2_invalid"),
        ({"image1": "not base64 ###", "image2": "PHOTO"}, "image1_invalid"),
        ({"image1": data_uri(png_claiming_size(100_000, 100_000), "image/png"), "image2": "PHOTO"}, "image1_too_large"),
        ({"image1": "PHOTO", "image2": data_uri(case("no-face/dogs.jpg").read_bytes())}, "image2_no_face"),
        ({"image2": "PHOTO"}, "image1_missing"),
    ],
    ids=["text-data-uri", "corrupt-jpeg", "server-path", "file-url", "garbage", "png-bomb", "dogs", "missing"],
)
def test_bad_images_succeed_with_an_error_code_and_no_match(server, inputs, code):
    inputs = {key: photo("obama.jpg") if value == "PHOTO" else value for key, value in inputs.items()}
    output = succeeded(server.predict(inputs))
    assert (output["error_code"], output["match"], output["similarity"]) == (code, False, None)
    assert output["error"]


@pytest.mark.parametrize("threshold", [1.5, -1, "abc"])
def test_bad_threshold_fails_the_prediction_with_a_message(server, threshold):
    response = server.predict({"image1": photo("obama.jpg"), "image2": photo("obama2.jpg"), "threshold": threshold})
    body = response.json()
    assert body.get("status") == "failed" or response.status_code == 422, body
    assert "threshold" in str(body)


def test_outputs_are_finite_json_numbers(server):
    output = succeeded(server.predict({"image1": photo("obama3.jpg"), "image2": photo("obama-240p.jpg")}))
    numbers = [output["similarity"], output["threshold"], output["image1_face_score"], *output["image1_face_box"]]
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers)


def test_server_is_still_ready_after_bad_inputs(server):
    server.predict({"image1": "/etc/passwd", "image2": data_uri(b"\0" * 10)})
    server.predict({"image1": photo("obama.jpg"), "image2": photo("obama2.jpg"), "threshold": "abc"})
    assert server.wait_until({"READY"}, timeout=10)["status"] == "READY"


def test_missing_weights_fail_setup_with_the_file_named(tmp_path):
    broken = CogServer(tmp_path / "no-such-pack", tmp_path / "server.log")
    try:
        health = broken.wait_until({"SETUP_FAILED"})
        assert "no-such-pack" in str(health) + broken.logs()
    finally:
        broken.stop()


def test_tampered_weights_fail_setup_with_the_file_named(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(TEST_PACK, pack)
    detector = pack / "det_2.5g.onnx"
    detector.chmod(0o644)
    detector.write_bytes(detector.read_bytes()[:-1000])
    broken = CogServer(pack, tmp_path / "server.log")
    try:
        health = broken.wait_until({"SETUP_FAILED"})
        assert "det_2.5g.onnx" in str(health) + broken.logs()
    finally:
        broken.stop()


@pytest.fixture(scope="module")
def image_host():
    """A local HTTP server serving the cases folder, standing in for a caller's image URLs."""
    import functools
    import http.server
    import threading

    from conftest import CASES

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(CASES))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_http_url_inputs_are_downloaded_by_cog_and_compared(server, image_host):
    output = succeeded(server.predict({"image1": f"{image_host}/single-face/obama.jpg",
                                       "image2": f"{image_host}/single-face/obama2.jpg"}))
    assert output["match"] is True and output["error_code"] is None


def test_two_predictions_at_once_each_get_their_own_answer(server):
    """cog.yaml allows two predictions at once; answers must never be swapped between them."""
    from concurrent.futures import ThreadPoolExecutor

    same = {"image1": photo("obama.jpg"), "image2": photo("obama2.jpg")}
    different = {"image1": photo("obama.jpg"), "image2": photo("biden.jpg")}
    expected = {True: succeeded(server.predict(same))["similarity"], False: succeeded(server.predict(different))["similarity"]}
    with ThreadPoolExecutor(2) as pool:
        for _ in range(4):
            outputs = list(pool.map(lambda inputs: succeeded(server.predict(inputs)), [same, different]))
            assert [output["match"] for output in outputs] == [True, False]
            assert [output["similarity"] for output in outputs] == [expected[True], expected[False]]
