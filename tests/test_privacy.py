"""Privacy and security: nothing about a face leaves the prediction.

- The server's log (and each prediction's `logs`) carries no image bytes, base64, embeddings or
  input paths, and no error message echoes what the caller sent.
- The temporary files Cog writes for inputs are gone after each prediction.
- The model opens no network connection, at import, in setup or in predict.
- Input strings are never opened as server paths nor fetched by the model's own code (Cog itself
  downloads http(s) URLs sent to a file input; that is the only fetching, and it is Cog's).
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import predict
from conftest import CASES, REPO, TEST_PACK, CogServer, case, encode
from faceverify_tools.inputs import data_uri

CANARY = f"FVCANARY{uuid.uuid4().hex[:12]}"


@functools.cache
def canary_selfie() -> bytes:
    """obama2.jpg re-encoded with the canary in a JPEG comment and in the EXIF description."""
    exif = Image.Exif()
    exif[0x010E] = f"{CANARY} /private/selfies/{CANARY}.jpg"
    image = Image.open(case("single-face/obama2.jpg")).convert("RGB")
    return encode(image, "JPEG", quality=90, exif=exif.tobytes(), comment=CANARY.encode())


def distinctive_requests() -> list[dict]:
    """Inputs that carry the canary in every shape a caller can send, valid and invalid."""
    reference, selfie = data_uri(case("single-face/obama.jpg").read_bytes()), data_uri(canary_selfie())
    bare = base64.b64encode(canary_selfie()).decode()
    return [
        {"image1": reference, "image2": selfie},
        {"image1": selfie, "image2": reference, "threshold": 0.5},
        {"image1": reference, "image2": bare},
        {"image1": reference, "image2": f"{CANARY}!!! not base64"},
        {"image1": reference, "image2": f"/srv/uploads/{CANARY}/selfie.jpg"},
        {"image1": reference, "image2": f"file:///srv/uploads/{CANARY}.jpg"},
        {"image1": reference, "image2": data_uri(canary_selfie()[: len(canary_selfie()) // 2])},  # truncated
        {"image1": reference, "image2": data_uri(CANARY.encode() * 50, "text/plain")},
        {"image1": reference, "image2": selfie, "threshold": "0.5 please"},  # refused by the schema: 422
    ]


def leaks(text: str, sent: list[dict], embeddings: np.ndarray) -> list[str]:
    """Everything in `text` that betrays an input or an embedding."""
    found = []
    if CANARY in text:
        found.append("the canary (image content, path or input text)")
    for pattern, what in [(r"data:[\w/+.-]*;base64", "a data URI"), (r"/9j/4AAQ", "base64 of a JPEG"),
                          (r"\btmp[a-z0-9_]{8}\w*", "a temporary input file name"),
                          (r"(-?\d+\.\d+(e-?\d+)?\s*,\s*){16,}", "a vector of numbers")]:
        if re.search(pattern, text):
            found.append(f"{what}: {re.search(pattern, text).group(0)[:60]!r}")
    payloads = [value.split(",", 1)[-1] for inputs in sent for value in inputs.values()
                if isinstance(value, str) and len(value) > 200]
    for run in set(re.findall(r"[A-Za-z0-9+/=_-]{20,}", text)):  # anything base64-like in the text
        if any(run[start:start + 20] in payload for payload in payloads for start in range(0, len(run) - 19)):
            found.append(f"base64 of an input: {run[:40]!r}")
    for vector in embeddings:
        for digits in (4, 6):
            formatted = [f"{value:.{digits}f}" for value in vector[:32]]
            if sum(value in text for value in formatted if len(value.lstrip("-0.")) >= 3) >= 8:
                found.append(f"embedding values at {digits} decimals")
    return found


@pytest.fixture(scope="module")
def canary_embeddings(verifier) -> np.ndarray:
    """The embeddings the server computes for the two photos: none of them may appear anywhere."""
    found = [verifier.find_face(case("single-face/obama.jpg")), verifier.find_face(canary_selfie())]
    return verifier.embed(found)


def test_server_logs_and_answers_carry_no_image_base64_embedding_or_path(server, canary_embeddings):
    before = server.log_path.stat().st_size
    sent, answers = distinctive_requests(), []
    for inputs in sent:
        response = server.predict(inputs)
        assert response.status_code == (422 if inputs.get("threshold") == "0.5 please" else 200), response.text[:300]
        answers.append(response.json())
    statuses = [answer.get("status", "422") for answer in answers]
    assert statuses == ["succeeded"] * (len(sent) - 1) + ["422"], statuses
    assert answers[0]["output"]["match"] is True, "the canary selfie is a real photo of the reference person"
    server.health()  # let the server flush what it logged for the last prediction
    time.sleep(0.5)
    logged = server.logs()[before:]
    assert "Starting prediction" in logged, "the log capture must cover these predictions"
    assert not leaks(logged, sent, canary_embeddings), leaks(logged, sent, canary_embeddings)
    for answer in answers:
        answer = {key: value for key, value in answer.items() if key != "input"}  # Cog echoes the input field itself
        assert not leaks(json.dumps(answer), sent, canary_embeddings), answer


def test_predict_writes_nothing_to_logs_stdout_or_stderr(capfd, caplog, canary_embeddings):
    """In-process, at DEBUG level for every logger: predict() itself says nothing about its inputs."""
    instance = predict.Predictor()
    instance.setup(weights=str(TEST_PACK))
    capfd.readouterr()
    upload = Path(tempfile.gettempdir()) / f"tmp{uuid.uuid4().hex[:8]}.jpg"
    upload.write_bytes(canary_selfie())
    try:
        with caplog.at_level(logging.DEBUG):
            outputs = [
                instance.compare(image1=predict.Path(upload), image2=data_uri(case("single-face/obama.jpg").read_bytes()),
                                 threshold=None),
                instance.compare(image1=predict.Path(upload), image2=f"/srv/{CANARY}.jpg", threshold=None),
                instance.compare(image1=predict.Path(upload), image2=f"{CANARY}###", threshold=None),
            ]
    finally:
        upload.unlink()
    assert outputs[0].match is True and outputs[1].error_code == outputs[2].error_code == "image2_invalid"
    captured = capfd.readouterr()
    said = captured.out + captured.err + "\n".join(record.getMessage() for record in caplog.records)
    assert not leaks(said, [], canary_embeddings), leaks(said, [], canary_embeddings)
    assert upload.name not in said
    assert not any(CANARY in (output.error or "") for output in outputs)


def test_an_image_sent_as_the_threshold_is_not_logged(server, verifier):
    """A caller who puts a photo in the wrong field gets 422 from the schema check. coglet's answer
    quotes the value it refused, photo included, to that caller only (as in a built image; docs/
    operations.md, "Privacy"); nothing of it reaches the server log."""
    before = server.log_path.stat().st_size
    payload = base64.b64encode(canary_selfie()).decode()
    response = server.predict({"image1": data_uri(case("single-face/obama.jpg").read_bytes()),
                               "image2": data_uri(canary_selfie()), "threshold": data_uri(canary_selfie())})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "input", "threshold"]
    server.health()
    time.sleep(0.5)
    logged = server.logs()[before:]
    assert not any(payload[start:start + 12] in logged for start in range(0, 4000, 4)), logged[-2000:]
    assert CANARY not in logged

    # predict() itself, called in process with the same mistake, quotes at most the JPEG header.
    with pytest.raises(ValueError) as raised:
        verifier.verify(case("single-face/obama.jpg").read_bytes(), canary_selfie(), data_uri(canary_selfie()))
    said = str(raised.value)
    assert "threshold" in said and not any(payload[start:start + 12] in said for start in range(16, 4000, 4)), said[:300]


# --- temporary files -------------------------------------------------------------------------------

def test_temporary_input_files_are_gone_after_each_prediction(tmp_path, monkeypatch):
    """A server whose temporary folder is private: Cog writes each data-URI input there (seen while the
    prediction runs; predict.py also reads only files in that folder), and deletes it afterwards.
    Coglet's per-prediction folders under /tmp/coglet/predictions/<id> (not TMPDIR) stay empty."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    cog = CogServer(TEST_PACK, tmp_path / "server.log")
    try:
        cog.wait_until({"READY"})
        assert not list(private_tmp.iterdir()), "setup leaves nothing in the temporary folder"
        big = encode(Image.open(case("single-face/obama2.jpg")).convert("RGB").resize((4000, 7680)), "JPEG", quality=90)
        requests_to_send = [
            ({"image1": data_uri(case("single-face/obama.jpg").read_bytes()), "image2": data_uri(big)}, True),
            ({"image1": data_uri(case("single-face/obama.jpg").read_bytes()), "image2": data_uri(b"broken")}, None),
            ({"image1": data_uri(case("no-face/dogs.jpg").read_bytes()), "image2": data_uri(big)}, None),
            ({"image1": data_uri(case("single-face/obama.jpg").read_bytes()), "image2": data_uri(big), "threshold": 7}, None),
        ]
        seen_during: set[str] = set()
        for inputs, expect_match in requests_to_send:
            stop = threading.Event()

            def watch() -> None:
                while not stop.is_set():
                    seen_during.update(path.name for path in private_tmp.iterdir())
                    time.sleep(0.002)

            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                response = cog.predict(inputs)
            finally:
                stop.set()
                watcher.join()
            body = response.json()
            left = sorted(path.name for path in private_tmp.rglob("*"))
            if "threshold" in inputs:  # refused by the schema (422) before anything is written
                assert response.status_code == 422 and left == [], (response.text[:200], left)
                continue
            if expect_match is not None:
                assert body["status"] == "succeeded" and body["output"]["match"] is expect_match, body
            assert left == [], f"temporary files left after prediction {body['id']}: {left}"
            kept = Path("/tmp/coglet/predictions") / body["id"]
            assert not [path for path in kept.rglob("*") if path.is_file()], f"coglet kept input data in {kept}"
        assert seen_during, "the inputs were never written to the private temporary folder"
    finally:
        cog.stop()


def test_in_process_predict_creates_no_temporary_files(tmp_path, monkeypatch, verifier):
    """The model's own code writes nothing to disk: only Cog's upload is in the temporary folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    instance = predict.Predictor()
    instance.verifier = verifier
    upload = tmp_path / "tmpab12cd_efile.jpg"  # named as Cog names its inputs
    upload.write_bytes(case("single-face/obama.jpg").read_bytes())
    output = instance.compare(image1=predict.Path(upload), image2=data_uri(canary_selfie()), threshold=None)
    assert output.match is True
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["tmpab12cd_efile.jpg"]


# --- no network ---------------------------------------------------------------------------------

def test_setup_and_predict_open_no_network_connection(monkeypatch):
    """Every way to open a connection raises; the pack still loads and a pair is still verified."""
    attempts: list[str] = []

    def refuse(name):
        def blocked(*args, **kwargs):
            attempts.append(f"{name}{args[1:] if name.startswith('socket.') else args}")
            raise OSError(f"network blocked by test: {name}")
        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket.socket, "sendto", refuse("socket.sendto"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    instance = predict.Predictor()
    instance.setup(weights=str(TEST_PACK))
    output = instance.compare(image1=data_uri(case("single-face/obama.jpg").read_bytes()),
                              image2=base64.b64encode(case("single-face/obama2.jpg").read_bytes()).decode(), threshold=None)
    url_output = instance.compare(image1=data_uri(case("single-face/obama.jpg").read_bytes()),
                                  image2="https://example.com/selfie.jpg", threshold=None)
    assert output.match is True and url_output.error_code == "image2_invalid"
    assert attempts == []


NO_NETWORK_PROBE = r"""
import json, sys
NETWORK = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
           "socket.gethostbyaddr", "socket.getnameinfo", "urllib.Request", "http.client.connect", "http.client.send",
           "ftplib.connect", "smtplib.connect", "webbrowser.open"}
events = []
def hook(event, args):
    if event in NETWORK:
        events.append(event)
        raise OSError("network blocked by audit hook: " + event)
sys.addaudithook(hook)
import base64, pathlib, predict
instance = predict.Predictor()
instance.setup(weights=sys.argv[1])
photo = lambda name: base64.b64encode(pathlib.Path(sys.argv[2], name).read_bytes()).decode()
output = instance.compare(image1=photo("obama.jpg"), image2=photo("obama2.jpg"), threshold=None)
print(json.dumps({"match": output.match, "events": events}))
"""


def test_import_setup_and_predict_make_no_network_call_in_a_fresh_process():
    """A fresh interpreter with an audit hook that refuses every connect, send, name lookup and urllib /
    http request from the start: importing the model (InsightFace, ONNX Runtime, Cog), setup() and
    predict() still work, and nothing tried. (urllib3 binds a socket to ::1 at import to detect IPv6;
    a bind opens no connection and is allowed.)"""
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK_PROBE, str(TEST_PACK), str(CASES / "single-face")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"match": True, "events": []}, report


# --- strings are never paths or URLs for the model ------------------------------------------------

@pytest.fixture(scope="module")
def counting_image_host():
    """A local web server with the cases folder that counts every request it gets."""
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(CASES), **kwargs)

        def log_message(self, *args):
            pass

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()


def test_the_model_never_fetches_a_url_itself(verifier, counting_image_host):
    """An http URL that reaches predict() as a string is refused with image2_invalid; the web server
    never sees a request from the model. (Over HTTP, Cog downloads URLs sent to a file input itself.)"""
    host, hits = counting_image_host
    instance = predict.Predictor()
    instance.verifier = verifier
    url = f"{host}/single-face/obama2.jpg"
    reference = data_uri(case("single-face/obama.jpg").read_bytes())
    for value in (url, f"{url}?x=1", f" {url}", url.replace("http", "HTTP", 1), f"//{url.split('//', 1)[1]}"):
        output = instance.compare(image1=reference, image2=value, threshold=None)
        assert output.error_code == "image2_invalid", (value, output)
    assert hits == [], f"the model fetched {hits}"


def test_server_paths_are_never_opened(verifier):
    """A path to a real photo of the reference person, in every spelling, is refused: had it been
    opened it would have matched. (The corpus in test_bad_inputs.py sends these over HTTP too.)"""
    photo = CASES / "single-face" / "obama2.jpg"
    instance = predict.Predictor()
    instance.verifier = verifier
    reference = data_uri(case("single-face/obama.jpg").read_bytes())
    relative = os.path.relpath(photo, REPO)
    for value in (str(photo), f"file://{photo}", f"file://localhost{photo}", relative, f"./{relative}",
                  str(photo).replace("/", "//"), f"{photo}\n", f" {photo}"):
        output = instance.compare(image1=reference, image2=value, threshold=None)
        assert (output.error_code, output.match) == ("image2_invalid", False), value
