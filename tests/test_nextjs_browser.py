"""The Next.js app in a real browser: `next build`, `next start` on a free port with its route pointed
at this session's real Cog server (the test pack), and headless Chromium (Debian's `chromium`,
installed by script/setup) driven by playwright-core through integrations/nextjs/test/browser.ts.

Chromium's fake camera plays a .y4m written here with Pillow from a real photo in ../shared, so
each selfie is taken through getUserMedia and the page's canvas, as a person's would be. Each case
checks the answer the page shows; a screenshot of each result page is saved under
integrations/nextjs/test-results/ (gitignored) to be looked at.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from conftest import CASES, REPO

NEXTJS = REPO / "integrations" / "nextjs"
RESULTS = NEXTJS / "test-results"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
MESSAGES = {
    "no_face": "Please retake your selfie: no face was found.",
    "multiple_faces": "Only you should be in the selfie. Please retake it alone.",
    "same_photo": "Take a new selfie with the camera: a copy of the document's photo cannot be used.",
    "no_match": "The selfie does not match the photo on your ID document.",
    "unavailable": "We could not check your photos right now. Please try again in a few minutes.",
}


def write_y4m(photo: Path, target: Path, size: tuple[int, int] = (640, 480), frames: int = 2) -> Path:
    """A YUV4MPEG2 video for Chromium's fake camera: `photo` fitted whole into a `size` frame on grey,
    4:2:0 with chroma at half size, studio range (Y 16-235, Cb/Cr 16-240), repeated `frames` times."""
    with Image.open(photo) as image:
        image = image.convert("RGB")
        image.thumbnail(size, Image.Resampling.LANCZOS)
        frame = Image.new("RGB", size, (128, 128, 128))
        frame.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    y, cb, cr = (np.asarray(plane, dtype=np.float32) for plane in frame.convert("YCbCr").split())
    half = (size[0] // 2, size[1] // 2)
    planes = [16 + y * 219 / 255]
    for chroma in (cb, cr):
        small = np.asarray(Image.fromarray(chroma.astype(np.uint8)).resize(half, Image.Resampling.BOX), dtype=np.float32)
        planes.append(16 + small * 224 / 255)
    data = b"".join(np.clip(np.round(plane), 0, 255).astype(np.uint8).tobytes() for plane in planes)
    with target.open("wb") as out:
        out.write(f"YUV4MPEG2 W{size[0]} H{size[1]} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + data)
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node(command: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=NEXTJS, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "NEXT_TELEMETRY_DISABLED": "1", **env})


class NextServer:
    """`next start` of the built app on a free port, its route calling `replicate_url`."""

    def __init__(self, replicate_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1", "REPLICATE_BASE_URL": replicate_url, "REPLICATE_API_TOKEN": "local",
               "FACE_MODEL_VERSION": "local/faceverify:test", "VERIFY_FACE_RATE_LIMIT": "0", "FACE_VERIFY_TIMEOUT_MS": "30000"}
        self.process = subprocess.Popen([str(NEXTJS / "node_modules" / ".bin" / "next"), "start", "-H", "127.0.0.1", "-p", str(self.port)],
                                        cwd=NEXTJS, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"next start exited: {log.read_text(errors='replace')}"
            try:
                if requests.get(self.url, timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError(f"next start did not answer: {log.read_text(errors='replace')}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def browser_run(server, tmp_path_factory):
    """Build the app, start it twice (on the Cog server, and on a closed port: the service down),
    and run every case in Chromium once; the results by case name."""
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: run script/setup (it installs Debian's chromium)"
    assert (NEXTJS / "node_modules" / "playwright-core").is_dir(), "run script/setup (npm ci)"
    work = tmp_path_factory.mktemp("browser")
    started = time.perf_counter()
    built = node(["npm", "run", "build"], timeout=600)
    assert built.returncode == 0, built.stdout[-6000:] + built.stderr[-6000:]
    compiled = node(["npm", "run", "build:tests"], timeout=300)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    build_seconds = time.perf_counter() - started

    shutil.rmtree(RESULTS, ignore_errors=True)
    RESULTS.mkdir(parents=True)
    up = NextServer(server.url, work / "next.log")
    down = NextServer(f"http://127.0.0.1:{free_port()}", work / "next-down.log")  # nothing listens there
    document = CASES / "single-face" / "obama.jpg"

    def case(name: str, app: str, selfie: Path | None, selfie_file: Path | None = None, id_photo: Path = document) -> dict:
        camera = str(write_y4m(selfie, work / f"{name}.y4m")) if selfie else None
        return {"name": name, "app": app, "document": str(id_photo), "camera": camera,
                "selfieFile": str(selfie_file) if selfie_file else None, "screenshot": str(RESULTS / f"{name}.png")}

    cases = [
        case("same-person", up.url, CASES / "single-face" / "obama2.jpg"),
        case("different-people", up.url, CASES / "single-face" / "biden.jpg"),
        case("no-face", up.url, CASES / "no-face" / "tesseract-test1.jpg"),  # dogs.jpg at 640x480 yields a dog "face" (score 0.64)
        case("second-person", up.url, CASES / "multi-face" / "obama_and_biden.jpg"),
        case("same-photo", up.url, document),
        case("service-down", down.url, CASES / "single-face" / "obama2.jpg"),
        case("no-camera-file-fallback", up.url, None, CASES / "single-face" / "obama3.jpg", CASES / "single-face" / "obama-1080p.jpg"),
    ]
    (work / "cases.json").write_text(json.dumps(cases))
    try:
        ran = node(["node", "build/test/browser.js", str(work / "cases.json"), str(work / "results.json")], timeout=600)
    finally:
        up.stop()
        down.stop()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    shutil.copy(work / "results.json", RESULTS / "results.json")
    results = {item["name"]: item for item in json.loads((work / "results.json").read_text())}
    print(f"browser test: build {build_seconds:.0f} s, all {time.perf_counter() - started:.0f} s\n{ran.stderr}")
    return results


def answer(results: dict, name: str) -> dict:
    result = results[name]
    assert not result.get("error"), result.get("error")
    assert Path(RESULTS / f"{name}.png").stat().st_size > 10_000, "a screenshot of the result page"
    if result["selfieFrom"] == "camera":
        assert result["cameraSize"] == [640, 480], f"the fake camera did not start: {result['cameraSize']}"
    return result


def test_same_person_is_verified(browser_run):
    result = answer(browser_run, "same-person")
    assert (result["verified"], result["reason"], result["heading"]) == ("true", "", "Verified"), result
    assert result["status"] == 200


def test_different_people_do_not_match(browser_run):
    result = answer(browser_run, "different-people")
    assert (result["verified"], result["reason"], result["message"]) == ("false", "no_match", MESSAGES["no_match"]), result


def test_a_selfie_with_no_face_gets_its_sentence(browser_run):
    result = answer(browser_run, "no-face")
    assert (result["verified"], result["reason"], result["message"]) == ("false", "image2_no_face", MESSAGES["no_face"]), result


def test_a_second_person_in_the_selfie_is_refused(browser_run):
    """The document's person beside another (obama_and_biden.jpg): never verified, and told why."""
    result = answer(browser_run, "second-person")
    assert (result["verified"], result["reason"], result["message"]) == ("false", "image2_multiple_faces", MESSAGES["multiple_faces"]), result


def test_the_documents_own_photo_as_the_selfie_is_refused(browser_run):
    """The camera films the document's own photo: refused as a copy, with its sentence."""
    result = answer(browser_run, "same-photo")
    assert (result["verified"], result["reason"], result["message"]) == ("false", "image2_same_photo", MESSAGES["same_photo"]), result


def test_the_service_down_gives_the_unavailable_message(browser_run):
    result = answer(browser_run, "service-down")
    assert (result["verified"], result["reason"], result["message"]) == ("false", "service_unavailable", MESSAGES["unavailable"]), result
    assert result["status"] == 503


def test_without_a_camera_the_selfie_comes_from_a_file(browser_run):
    result = answer(browser_run, "no-camera-file-fallback")
    assert result["cameraUnavailableShown"] and result["selfieFrom"] == "file"
    assert (result["verified"], result["reason"]) == ("true", ""), result


def test_the_page_sends_both_images_inline_and_smaller(browser_run):
    """Each image goes as a JPEG data URI under the inline limit, at most the page's longest side."""
    for name in ("same-person", "no-camera-file-fallback"):
        sent = answer(browser_run, name)["sent"]
        assert sent["idImage"] <= 256_000 and sent["selfieImage"] <= 256_000, sent
        assert max(sent["idSize"]) <= 1600 and max(sent["selfieSize"]) <= 800, sent
    fallback = browser_run["no-camera-file-fallback"]["sent"]
    assert fallback["selfieSize"] == [492, 800], "obama3.jpg (1434x2333) is made smaller"
    assert fallback["idSize"] == [1600, 900], "obama-1080p.jpg (1920x1080) is made smaller"
