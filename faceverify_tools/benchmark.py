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

The four are timed in turns, one call of each per round, so that a slow spell of a shared machine
hits them alike and their ratios stay fair. It prints a table and writes JSON. Timings depend on
the machine: compare figures from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from .cogserver import MAX_CONCURRENCY, CogServer
from .inputs import data_uri
from .shared import CASES, REPO


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


def cog_inputs(scenario: Scenario, cleanup: ExitStack) -> list:
    """The scenario's two images as files named and placed as Cog writes its inputs (`tempfile`
    names in the temporary folder), typed as Cog hands them over; `cleanup` deletes them."""
    from cog import Path as CogPath

    paths = []
    for data in (scenario.image1, scenario.image2):
        with tempfile.NamedTemporaryFile(suffix="file", delete=False) as handle:
            handle.write(data)
        path = CogPath(handle.name)
        cleanup.callback(path.unlink, missing_ok=True)
        paths.append(path)
    return paths


SETTLE_S = 0.05
"""Pause between two timed calls, so that threads one pipeline left spinning (the original
pipeline's ONNX Runtime sessions spin by default) are idle before the next is timed."""


def interleaved(functions: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Wall times in milliseconds of each function, called in turns: `warmup` untimed rounds, then
    `runs` timed rounds of one call each, in the order given, SETTLE_S apart."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(runs):
        for name, function in functions.items():
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> dict:
    """Median and 95th percentile of a list of milliseconds."""
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(float(np.percentile(times, 95)), 1), "runs": len(times)}


# --- this model, in process ------------------------------------------------------------------------

def predictor_call(predictor, paths: list, threshold: float | None = None) -> Callable[[], object]:
    """One end-to-end `Predictor.predict` on two files in the temporary folder (as Cog hands them over)."""
    loop = asyncio.new_event_loop()
    return lambda: loop.run_until_complete(predictor.predict(image1=paths[0], image2=paths[1], threshold=threshold))


def stage_split(predictor, paths: list, runs: int) -> dict[str, float]:
    """Median milliseconds of each stage of `FaceVerifier.verify`, run step by step `runs` times."""
    from faceverify.compare import cosine_similarity
    from faceverify.faces import DETECTION_SIDE
    from faceverify.images import decode_image
    from faceverify.quality import Role
    from faceverify.verifier import image_bytes

    verifier = predictor.verifier
    stages: dict[str, list[float]] = {"decode": [], "detection": [], "alignment + embedding": [], "quality": [], "comparison": []}
    for _ in range(runs):
        # FaceVerifier.find_face step by step: a decode for detection, detection, a second decode if needed.
        clock = time.perf_counter()
        data = [image_bytes(path) for path in paths]
        images = [decode_image(item, min_side=DETECTION_SIDE) for item in data]
        clock = lap(stages["decode"], clock)
        located = [verifier.locate_face(image) for image in images]
        clock = lap(stages["detection"], clock)
        found = [verifier.with_detail(item, encoded) for item, encoded in zip(located, data)]
        second_decode: list[float] = []
        clock = lap(second_decode, clock)
        stages["decode"][-1] += second_decode[0]
        aligned = [verifier.align(item) for item in found]
        embeddings = verifier.embed(aligned)
        clock = lap(stages["alignment + embedding"], clock)
        [verifier.assess(item, role) for item, role in zip(aligned, (Role.REFERENCE, Role.PROBE))]
        clock = lap(stages["quality"], clock)
        cosine_similarity(embeddings[0], embeddings[1])
        lap(stages["comparison"], clock)
    return {name: round(statistics.median(times), 1) for name, times in stages.items()}


def lap(into: list[float], since: float) -> float:
    """Append the milliseconds since `since` to `into`; return the new start."""
    now = time.perf_counter()
    into.append((now - since) * 1000)
    return now


def measure_concurrency(predictor, scenario: Scenario, count: int, cleanup: ExitStack, threshold: float | None = None) -> dict:
    """Predictions per second for `count` predictions one at a time, and two at a time in two
    threads sharing the loaded sessions (what the async `predict` does under Cog's concurrency 2)."""
    paths = cog_inputs(scenario, cleanup)

    def one(_: int = 0):
        return predictor.compare(image1=paths[0], image2=paths[1], threshold=threshold).similarity

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
    """Record every ONNX Runtime `run` made inside the block: (thread, session, output names, inputs)."""
    import onnxruntime

    original = onnxruntime.InferenceSession.run

    def run(session, output_names, input_feed, run_options=None):
        inputs = {k: np.array(v, copy=True) for k, v in input_feed.items()}
        calls.append((threading.get_ident(), session, output_names, inputs))
        return original(session, output_names, input_feed, run_options)

    onnxruntime.InferenceSession.run = run
    try:
        yield calls
    finally:
        onnxruntime.InferenceSession.run = original


def floor_call(predictor, paths: list, threshold: float | None = None) -> tuple[Callable[[], object], list[list[int]]]:
    """A replay of exactly the network calls one prediction made, on the same sessions and inputs,
    and the input shape of each call. As in the prediction, the calls made in the caller's thread
    (image2's) run there while those of the helper thread (image1's) run in another thread at once."""
    calls: list = []
    with recording_network_calls(calls):
        predictor.compare(image1=paths[0], image2=paths[1], threshold=threshold)
    caller = threading.get_ident()
    lanes = [[call[1:] for call in calls if call[0] == caller], [call[1:] for call in calls if call[0] != caller]]

    def run_lane(lane: list) -> None:
        for session, output_names, feed in lane:
            session.run(output_names, feed)

    def replay() -> None:
        helper = predictor.verifier.helper.submit(run_lane, lanes[1])
        run_lane(lanes[0])
        helper.result()

    return replay, [list(next(iter(feed.values())).shape) for _, _, _, feed in calls]


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


def fresh_process_start(pack_path: Path, threshold: float | None = None) -> dict:
    """In a new Python process: seconds to import predict.py and to run `setup()`, the peak resident
    memory after one prediction per scenario, and the seconds the original pipeline takes to import
    insightface and build `FaceAnalysis` + `prepare()`."""
    snippet = f"""
import json, resource, sys, time
sys.path.insert(0, {str(REPO)!r})
clock = time.perf_counter()
import predict
imported = time.perf_counter() - clock
clock = time.perf_counter()
predictor = predict.Predictor()
predictor.setup(weights={str(pack_path)!r})
setup = time.perf_counter() - clock
from faceverify_tools.benchmark import original_pipeline, scenarios
for scenario in scenarios():
    predictor.verifier.verify(scenario.image1, scenario.image2, {threshold!r})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
clock = time.perf_counter()
original_pipeline({str(pack_path)!r})
print(json.dumps({{"import_s": round(imported, 2), "setup_s": round(setup, 2), "peak_rss_mb": round(peak, 1),
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


def http_call(server: CogServer, scenario: Scenario, threshold: float | None = None) -> Callable[[], object]:
    """One POST /predictions of the scenario's images as data URIs (encoded once, as a client
    holding them would), waiting for the answer."""
    inputs = {"image1": data_uri(scenario.image1, "application/octet-stream"),
              "image2": data_uri(scenario.image2, "application/octet-stream")}
    if threshold is not None:
        inputs["threshold"] = threshold
    return lambda: output_of(server.predict(inputs, timeout=120.0))


def server_throughput(server: CogServer, scenario: Scenario, count: int, threshold: float | None = None) -> dict:
    """Predictions per second through the server for `count` predictions from one client, and from
    two clients at once (the server takes two at a time); the two clients' answers must agree."""
    call = http_call(server, scenario, threshold)
    clock = time.perf_counter()
    for _ in range(count):
        call()
    one_client = count / (time.perf_counter() - clock)
    with ThreadPoolExecutor(2) as pool:
        clock = time.perf_counter()
        answers = list(pool.map(lambda _: call()["similarity"], range(count)))
        two_clients = count / (time.perf_counter() - clock)
    if len(set(answers)) != 1:
        raise RuntimeError("two clients at once got different answers to the same inputs")
    return {"scenario": scenario.name, "predictions": count, "one_client_per_s": round(one_client, 2),
            "two_clients_per_s": round(two_clients, 2)}


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
    parser.add_argument("--threshold", type=float, help="threshold to send (default: the pack's; required for a pack "
                        "without calibration, such as a stand-in, whose scores mean nothing)")
    args = parser.parse_args(argv)
    threshold = args.threshold
    if threshold is None and pack_default_threshold(args.weights) is None:
        parser.error(f"{args.weights} has no calibrated default threshold: pass --threshold")

    cold = fresh_process_start(args.weights, threshold)
    sys.path.insert(0, str(REPO))
    import predict

    # In process as in the server: the helper threads sized by cog.yaml's concurrency.max.
    os.environ.setdefault("COG_MAX_CONCURRENCY", MAX_CONCURRENCY)

    predictor = predict.Predictor()
    predictor.setup(weights=str(args.weights))
    items = scenarios()
    results: dict = {
        "date": time.strftime("%Y-%m-%d"), "machine": machine(), "model_pack": predictor.verifier.pack.model_id,
        "runs": args.runs, "threshold": threshold, **cold, "scenarios": {},
    }
    original = None if args.no_original else original_pipeline(args.weights)
    with tempfile.TemporaryDirectory() as temp, ExitStack() as cleanup:
        folder = Path(temp)
        server = None
        if not args.no_http:
            server = CogServer(args.weights, folder / "server.log")
            cleanup.callback(server.stop)
            server.wait_until({"READY"}, timeout=120.0)
            results["http"] = {"cold_start_to_ready_s": round(time.perf_counter() - server.started, 2), "latency": {}}
        for scenario in items:
            paths = cog_inputs(scenario, cleanup)
            replay, network_calls = floor_call(predictor, paths, threshold)
            calls = {"this_model": predictor_call(predictor, paths, threshold), "floor": replay}
            if original:
                calls["original"] = partial(original, scenario.image1, scenario.image2)
            if server:
                calls["http"] = http_call(server, scenario, threshold)
            times = interleaved(calls, args.runs, args.warmup)
            figures = {name: summary(times[name]) for name in ("this_model", "floor", "original") if name in times}
            figures["this_model"]["stages_median_ms"] = stage_split(predictor, paths, args.runs)
            figures["floor"]["network_calls"] = network_calls
            results["scenarios"][scenario.name] = figures
            if server:
                results["http"]["latency"][scenario.name] = summary(times["http"])
        results["concurrency"] = measure_concurrency(predictor, items[0], max(args.runs, 4), cleanup, threshold)
        if server:
            # The selfie pair, and the phone photo, whose large upload gives Cog more work per request.
            results["http"]["throughput"] = [server_throughput(server, items[i], max(2 * args.runs, 4), threshold) for i in (0, 3)]
            results["http"]["server_rss_mb"] = round(sum(server.rss_by_process().values()), 1)
    print(format_table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


def pack_default_threshold(pack_path: Path) -> float | None:
    """The pack's calibrated default threshold, None without a calibration; read without loading its networks."""
    from faceverify.calibration import find_calibration

    tasks = json.loads((pack_path / "manifest.json").read_text())["tasks"]
    calibration = find_calibration(pack_path, {task: tasks[task]["sha256"] for task in ("detection", "recognition")})
    return calibration.default_threshold if calibration else None


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

        def cell(entry: dict | None, ours: float = ours) -> str:
            if not entry:
                return f"{'-':>16s}"
            return f"{entry['median_ms']:7.1f} ({entry['median_ms'] / ours:4.2f}x)"

        lines.append(f"{name:44s} {ours:7.1f} ({figures['this_model']['p95_ms']:6.1f}) "
                     f"{cell(figures.get('original'))} {cell(figures['floor'])} {cell(http.get(name))}")
        stages = ", ".join(f"{stage} {ms}" for stage, ms in figures["this_model"]["stages_median_ms"].items())
        lines.append(f"{'':44s} stages, the two images one after the other (ms): {stages}")
    lines.append(f"fresh process: import predict.py {results['import_s']} s, setup() {results['setup_s']} s "
                 f"(original pipeline: FaceAnalysis + prepare {results['original_setup_s']} s); "
                 f"peak RSS in process {results['peak_rss_mb']} MB")
    concurrency = results["concurrency"]
    lines.append(f"throughput ({concurrency['predictions']} predictions, first scenario): one at a time "
                 f"{concurrency['one_at_a_time_per_s']}/s, two at a time {concurrency['two_at_a_time_per_s']}/s")
    if "http" in results:
        lines.append(f"Cog server: cold start to READY {results['http']['cold_start_to_ready_s']} s, "
                     f"resident memory {results['http']['server_rss_mb']} MB")
        for throughput in results["http"]["throughput"]:
            lines.append(f"Cog server, {throughput['scenario']}: {throughput['one_client_per_s']}/s with one client, "
                         f"{throughput['two_clients_per_s']}/s with two")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
