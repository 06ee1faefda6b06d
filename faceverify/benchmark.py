"""Speed of one prediction, against the original pipeline and the hardware floor.

    script/benchmark [--weights PACK] [--runs 20] [--json reports/benchmark.json] [--no-http]

On fixed real images (selfies of 1-3 megapixels, a small passport specimen, a 10-megapixel phone
photo made from a real one, a close-up face) it measures, in one run on one machine:

- this model in-process: `Predictor.predict` on files in the temporary folder (as Cog hands them
  over), median and p95 after warm-up, and the split into stages (decode, detection, alignment and
  embedding, comparison);
- the original pipeline: InsightFace `FaceAnalysis` over every model of the pack,
  `prepare(ctx_id=-1)` at the library's default detection sizes, a PIL RGB array in, the first
  face, cosine (what the FastAPI service did);
- the floor: only the ONNX Runtime calls one prediction of this model makes (recorded during a
  real prediction, then replayed on the same sessions with the same inputs);
- the Cog HTTP server (`python -m cog.server.http`, POST /predictions with data URIs), cold start
  to READY, and resident memory.

It prints a table and writes JSON. Timings depend on the machine: compare figures from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cogserver import CogServer

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACEVERIFY_SHARED", REPO.parent / "shared"))
CASES = SHARED / "data" / "cases"


@dataclass(frozen=True)
class Scenario:
    """Two images compared in one prediction, as encoded bytes."""

    name: str
    image1: bytes
    image2: bytes


def phone_photo() -> bytes:
    """A 10-megapixel JPEG (2478x4032, as a phone camera writes) made from a real 3 MP photo."""
    from PIL import Image

    with Image.open(CASES / "single-face" / "obama3.jpg") as photo:
        large = photo.convert("RGB").resize((2478, 4032), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    large.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def scenarios() -> list[Scenario]:
    """The benchmark's fixed image pairs (reference first, selfie second)."""
    def read(relative: str) -> bytes:
        return (CASES / relative).read_bytes()

    return [
        Scenario("selfie 1.0 MP vs selfie 0.75 MP", read("single-face/obama.jpg"), read("single-face/obama2.jpg")),
        Scenario("photo 2.1 MP (1080p) vs selfie 2.1 MP", read("single-face/obama-1080p.jpg"), read("single-face/biden.jpg")),
        Scenario("passport specimen 0.25 MP vs selfie 3.3 MP", read("id-documents/100_pass-cze.jpg"), read("single-face/obama3.jpg")),
        Scenario("phone photo 10 MP vs selfie 0.75 MP", phone_photo(), read("single-face/obama2.jpg")),
        Scenario("close-up face 0.17 MP vs photo 1.6 MP", read("single-face/alex-lacamoire.png"), read("single-face/alex_lacamoire1.jpg")),
    ]


def cog_inputs(scenario: Scenario, folder: Path) -> list:
    """The scenario's two images as files in `folder` (a temporary folder), typed as Cog hands them over."""
    from cog import Path as CogPath

    paths = []
    for index, data in enumerate((scenario.image1, scenario.image2), 1):
        path = folder / f"image{index}"
        path.write_bytes(data)
        paths.append(CogPath(path))
    return paths


def timed(function, runs: int, warmup: int) -> list[float]:
    """Wall times in milliseconds of `runs` calls of `function`, after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> dict:
    """Median and 95th percentile of a list of milliseconds."""
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(float(np.percentile(times, 95)), 1), "runs": len(times)}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- this model, in process ------------------------------------------------------------------------

def measure_predictor(predictor, scenario: Scenario, runs: int, warmup: int, folder: Path) -> dict:
    """End-to-end `Predictor.predict` on two files in the temporary folder, and the stage split."""
    from .compare import cosine_similarity
    from .faces import choose_main_face, detect_faces
    from .images import decode_image
    from .verifier import FoundFace, image_bytes

    paths = cog_inputs(scenario, folder)
    loop = asyncio.new_event_loop()
    try:
        end_to_end = timed(lambda: loop.run_until_complete(predictor.predict(image1=paths[0], image2=paths[1], threshold=None)),
                           runs, warmup)
    finally:
        loop.close()

    verifier = predictor.verifier
    stages: dict[str, list[float]] = {"decode": [], "detection": [], "alignment + embedding": [], "comparison": []}
    for _ in range(runs):
        clock = time.perf_counter()
        images = [decode_image(image_bytes(path)) for path in paths]
        clock = lap(stages["decode"], clock)
        found = []
        for image in images:
            faces = detect_faces(verifier.pack.detector, image.pixels)
            height, width = image.pixels.shape[:2]
            found.append(FoundFace(image, faces, choose_main_face(faces, width, height)))
        clock = lap(stages["detection"], clock)
        embeddings = verifier.embed(found)
        clock = lap(stages["alignment + embedding"], clock)
        cosine_similarity(embeddings[0], embeddings[1])
        lap(stages["comparison"], clock)
    return {**summary(end_to_end), "stages_median_ms": {name: round(statistics.median(t), 1) for name, t in stages.items()}}


def lap(into: list[float], since: float) -> float:
    """Append the milliseconds since `since` to `into`; return the new start."""
    now = time.perf_counter()
    into.append((now - since) * 1000)
    return now


def measure_concurrency(predictor, scenario: Scenario, count: int, folder: Path) -> dict:
    """Predictions per second for `count` predictions one at a time, and two at a time in two
    threads sharing the loaded sessions (what the async `predict` does under Cog's concurrency 2)."""
    paths = cog_inputs(scenario, folder)

    def one(_: int = 0):
        return predictor.compare(image1=paths[0], image2=paths[1], threshold=None).similarity

    expected = one()
    clock = time.perf_counter()
    sequential = [one() for _ in range(count)]
    sequential_s = time.perf_counter() - clock
    with ThreadPoolExecutor(2) as pool:
        clock = time.perf_counter()
        concurrent = list(pool.map(one, range(count)))
        concurrent_s = time.perf_counter() - clock
    if set(sequential) | set(concurrent) != {expected}:
        raise RuntimeError("concurrent predictions gave a different similarity")
    return {"predictions": count, "one_at_a_time_per_s": round(count / sequential_s, 2),
            "two_at_a_time_per_s": round(count / concurrent_s, 2)}


# --- the floor: only the network calls ---------------------------------------------------------------

@contextmanager
def recording_network_calls(calls: list):
    """Record every ONNX Runtime `run` (session, output names, inputs) made inside the block."""
    import onnxruntime

    original = onnxruntime.InferenceSession.run

    def run(session, output_names, input_feed, run_options=None):
        calls.append((session, output_names, {k: np.array(v, copy=True) for k, v in input_feed.items()}))
        return original(session, output_names, input_feed, run_options)

    onnxruntime.InferenceSession.run = run
    try:
        yield calls
    finally:
        onnxruntime.InferenceSession.run = original


def measure_floor(predictor, scenario: Scenario, runs: int, warmup: int, folder: Path) -> dict:
    """Replay exactly the network calls one prediction made, on the same sessions and inputs."""
    paths = cog_inputs(scenario, folder)
    calls: list = []
    with recording_network_calls(calls):
        predictor.compare(image1=paths[0], image2=paths[1], threshold=None)

    def replay() -> None:
        for session, output_names, feed in calls:
            session.run(output_names, feed)

    shapes = [tuple(next(iter(feed.values())).shape) for _, _, feed in calls]
    return {**summary(timed(replay, runs, warmup)), "network_calls": [list(shape) for shape in shapes]}


# --- the original pipeline ---------------------------------------------------------------------------

def original_pipeline(pack_path: Path):
    """The FastAPI service's pipeline as a function of two encoded images -> cosine similarity."""
    from insightface.app import FaceAnalysis
    from PIL import Image

    app = FaceAnalysis(name=str(pack_path), providers=["CPUExecutionProvider"])
    app.prepare(ctx_id=-1)

    def compare(image1: bytes, image2: bytes) -> float:
        embeddings = []
        for data in (image1, image2):
            pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            faces = app.get(pixels)
            embeddings.append(faces[0].normed_embedding)
        return float(np.dot(embeddings[0], embeddings[1]))

    return compare


def fresh_process_start(pack_path: Path) -> dict:
    """In a new Python process: seconds to import predict.py, to run `setup()`, and for the original
    pipeline to import insightface and build `FaceAnalysis` + `prepare()`."""
    snippet = f"""
import json, sys, time
sys.path.insert(0, {str(REPO)!r})
clock = time.perf_counter()
import predict
imported = time.perf_counter() - clock
clock = time.perf_counter()
predict.Predictor().setup(weights={str(pack_path)!r})
setup = time.perf_counter() - clock
from faceverify.benchmark import original_pipeline
clock = time.perf_counter()
original_pipeline({str(pack_path)!r})
print(json.dumps({{"import_s": round(imported, 2), "setup_s": round(setup, 2),
                  "original_setup_s": round(time.perf_counter() - clock, 2)}}))
"""
    completed = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- the Cog HTTP server -----------------------------------------------------------------------------

def output_of(response) -> dict:
    """The output of a succeeded prediction; raises for anything else."""
    body = response.json()
    if body.get("status") != "succeeded":
        raise RuntimeError(f"prediction failed: {body.get('error')}")
    return body["output"]


def data_uri(data: bytes) -> str:
    """Bytes as a data URI, as the web app sends them (the media type is not checked)."""
    return "data:application/octet-stream;base64," + base64.b64encode(data).decode()


def measure_http(pack_path: Path, items: list[Scenario], runs: int, warmup: int, folder: Path) -> dict:
    """Cold start to READY, latency per scenario through the server, its memory, and predictions per
    second for one client and for two clients at once (the server takes two at a time)."""
    server = CogServer(pack_path, folder / "server.log")
    try:
        server.wait_until({"READY"}, timeout=120.0)
        ready = time.perf_counter() - server.started
        latency = {}
        for scenario in items:
            inputs = {"image1": data_uri(scenario.image1), "image2": data_uri(scenario.image2)}
            latency[scenario.name] = summary(timed(lambda: output_of(server.predict(inputs, timeout=120.0)), runs, warmup))
        first = items[0]
        inputs = {"image1": data_uri(first.image1), "image2": data_uri(first.image2)}
        count = max(2 * runs, 4)
        clock = time.perf_counter()
        for _ in range(count):
            output_of(server.predict(inputs, timeout=120.0))
        one_client = count / (time.perf_counter() - clock)
        with ThreadPoolExecutor(2) as pool:
            clock = time.perf_counter()
            answers = list(pool.map(lambda _: output_of(server.predict(inputs, timeout=120.0))["similarity"], range(count)))
            two_clients = count / (time.perf_counter() - clock)
        if len(set(answers)) != 1:
            raise RuntimeError("two clients at once got different answers to the same inputs")
        return {"cold_start_to_ready_s": round(ready, 2), "latency": latency, "server_rss_mb": round(sum(server.rss_by_process().values()), 1),
                "throughput": {"scenario": first.name, "predictions": count, "one_client_per_s": round(one_client, 2),
                               "two_clients_per_s": round(two_clients, 2)}}
    finally:
        server.stop()


# --- the command ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="script/benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=Path(os.environ.get("COG_WEIGHTS") or REPO / "weights" / "buffalo_l"),
                        help="model pack folder (default: $COG_WEIGHTS or weights/buffalo_l)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per measurement (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--json", type=Path, default=Path("reports/benchmark.json"), help="where to write the results")
    parser.add_argument("--no-http", action="store_true", help="skip the Cog server measurements")
    parser.add_argument("--no-original", action="store_true", help="skip the original pipeline")
    args = parser.parse_args(argv)

    cold = fresh_process_start(args.weights)
    sys.path.insert(0, str(REPO))
    import predict  # noqa: E402  (the Cog adapter, imported as Cog imports it)

    predictor = predict.Predictor()
    predictor.setup(weights=str(args.weights))
    items = scenarios()
    results: dict = {
        "date": time.strftime("%Y-%m-%d"), "machine": machine(), "model_pack": predictor.verifier.pack.model_id,
        "runs": args.runs, **cold, "scenarios": {},
    }
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        for scenario in items:
            results["scenarios"][scenario.name] = {
                "this_model": measure_predictor(predictor, scenario, args.runs, args.warmup, folder),
                "floor": measure_floor(predictor, scenario, args.runs, args.warmup, folder),
            }
        results["peak_rss_mb"] = round(peak_rss_mb(), 1)
        results["concurrency"] = measure_concurrency(predictor, items[0], max(args.runs, 4), folder)
        if not args.no_original:
            original = original_pipeline(args.weights)
            for scenario in items:
                results["scenarios"][scenario.name]["original"] = summary(
                    timed(lambda: original(scenario.image1, scenario.image2), args.runs, args.warmup))
        if not args.no_http:
            results["http"] = measure_http(args.weights, items, args.runs, args.warmup, folder)
    print(format_table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


def machine() -> str:
    """The CPU model and core count, for the record."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def format_table(results: dict) -> str:
    """The results as a text table: medians in ms, and each pipeline as a ratio to this model."""
    lines = [f"{results['machine']}; pack {results['model_pack']}; median of {results['runs']} runs (p95)",
             f"{'scenario':44s} {'this model':>16s} {'original':>16s} {'floor':>16s} {'HTTP':>16s}"]
    http = results.get("http", {}).get("latency", {})
    for name, figures in results["scenarios"].items():
        ours = figures["this_model"]["median_ms"]

        def cell(entry: dict | None) -> str:
            if not entry:
                return f"{'-':>16s}"
            return f"{entry['median_ms']:7.1f} ({entry['median_ms'] / ours:4.2f}x)"

        lines.append(f"{name:44s} {ours:7.1f} ({figures['this_model']['p95_ms']:6.1f}) "
                     f"{cell(figures.get('original'))} {cell(figures['floor'])} {cell(http.get(name))}")
        stages = ", ".join(f"{stage} {ms}" for stage, ms in figures["this_model"]["stages_median_ms"].items())
        lines.append(f"{'':44s} stages (ms): {stages}")
    lines.append(f"fresh process: import predict.py {results['import_s']} s, setup() {results['setup_s']} s "
                 f"(original pipeline: FaceAnalysis + prepare {results['original_setup_s']} s); "
                 f"peak RSS in process {results['peak_rss_mb']} MB")
    concurrency = results["concurrency"]
    lines.append(f"throughput ({concurrency['predictions']} predictions, first scenario): one at a time "
                 f"{concurrency['one_at_a_time_per_s']}/s, two at a time {concurrency['two_at_a_time_per_s']}/s")
    if "http" in results:
        throughput = results["http"]["throughput"]
        lines.append(f"Cog server: cold start to READY {results['http']['cold_start_to_ready_s']} s, "
                     f"resident memory {results['http']['server_rss_mb']} MB; first scenario "
                     f"{throughput['one_client_per_s']}/s with one client, {throughput['two_clients_per_s']}/s with two")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
