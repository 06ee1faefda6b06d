"""How to run the recognizer on a CPU for two faces, and what each detector costs, timed alone.

    script/measure-networks --weights PACK [--runs 20] [--warmup 3] [--detectors | --only-detectors] [--json FILE]

**Recognizer.** The two faces of a real pair (found and aligned by the pipeline) are embedded with
the pack's recognizer in every way a prediction could, each with ONNX Runtime sessions of 1 and of
2 intra-op threads (the pipeline's session settings otherwise, `modelpack.session_options`):

- `batch of 2`: one call with both faces (only for a recognizer that takes batches);
- `two at once`: one call per face, both at the same time in two threads (the test pack's way);
- `one after the other`: one call per face, in turn.

Each is timed alone (the latency of one prediction's embedding step) and as two pairs at once (two
predictions overlapping, as under the Cog server's `concurrency.max: 2`; the time until both are
done). The ways take turns, one call each per round with a pause before each, so that a slow spell
of a shared machine hits them alike; medians and 95th percentiles in milliseconds.

**Detectors** (`--detectors`): with 1 and 2 threads, one call at a time at 128x128, 320x320 and
640x640 on a real photo for the pack's detector and for the other SCRFD files given with `--detector NAME=FILE` (the
stand-in build's SCRFD-10G alone, the test pack's det_2.5g): what the stand-in's combined detector
costs above SCRFD-10G.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from faceverify.embeddings import embed_faces
from faceverify.modelpack import ModelPack, load_model_pack, session_options

from .benchmark import SETTLE_S, machine
from .shared import CASES

PAIR = (CASES / "single-face" / "obama.jpg", CASES / "single-face" / "obama2.jpg")
THREADS = (1, 2)
DETECTION_SIZES = (128, 320, 640)


def aligned_faces(pack_path: Path) -> list[np.ndarray]:
    """The two aligned face crops of PAIR, made by the pipeline with the pack."""
    from faceverify import FaceVerifier

    verifier = FaceVerifier(load_model_pack(pack_path, threads=1))
    return [verifier.find_face(path.read_bytes()).crop for path in PAIR]


def ways(pack: ModelPack, faces: list[np.ndarray], helper: ThreadPoolExecutor) -> dict[str, Callable[[], np.ndarray]]:
    """The ways to embed `faces` with the pack's recognizer, each a call returning the embeddings."""
    recognizer = pack.recognizer

    def two_at_once() -> np.ndarray:
        first = helper.submit(embed_faces, recognizer, faces[:1], False)
        rest = embed_faces(recognizer, faces[1:], False)
        return np.vstack([first.result(), rest])

    found = {"two at once": two_at_once, "one after the other": lambda: embed_faces(recognizer, faces, False)}
    if pack.recognizer_takes_batches:
        found = {"batch of 2": lambda: embed_faces(recognizer, faces, True), **found}
    return found


def two_predictions(call: Callable[[], np.ndarray], outer: ThreadPoolExecutor) -> Callable[[], object]:
    """`call` made by two predictions at the same time: returns when both are done."""
    def both() -> object:
        other = outer.submit(call)
        call()
        return other.result()
    return both


def timed_in_turns(calls: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, dict]:
    """Median and 95th percentile milliseconds of each call, the calls taking turns with a pause before each."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            time.sleep(SETTLE_S)
            clock = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - clock) * 1000)
    return {name: {"median_ms": round(statistics.median(values), 1), "p95_ms": round(float(np.percentile(values, 95)), 1)}
            for name, values in times.items()}


def measure_recognizer(pack_path: Path, runs: int, warmup: int) -> dict:
    """Every way at 1 and 2 threads, alone and two pairs at once; checks that all give the same embeddings."""
    faces = aligned_faces(pack_path)
    packs = {threads: load_model_pack(pack_path, threads=threads) for threads in THREADS}
    # Three workers: a second prediction's thread plus each prediction's helper thread.
    with ThreadPoolExecutor(4) as helper, ThreadPoolExecutor(1) as outer:
        calls: dict[str, Callable[[], object]] = {}
        reference = None
        for threads, pack in packs.items():
            for name, call in ways(pack, faces, helper).items():
                embeddings = call()
                reference = embeddings if reference is None else reference
                if not np.allclose(embeddings, reference, atol=1e-5):
                    raise RuntimeError(f"{name} at {threads} threads gives other embeddings than the first way")
                calls[f"{name}|{threads}|alone"] = call
                calls[f"{name}|{threads}|two pairs at once"] = two_predictions(call, outer)
        timings = timed_in_turns(calls, runs, warmup)
    rows = []
    for key, figures in timings.items():
        name, threads, load = key.split("|")
        rows.append({"way": name, "threads": int(threads), "load": load, **figures})
    return {"pair": [str(path.relative_to(CASES)) for path in PAIR], "takes_batches": packs[1].recognizer_takes_batches,
            "rows": rows}


def measure_detectors(pack_path: Path, extra: dict[str, Path], runs: int, warmup: int) -> dict:
    """One detector call per size at 1 and 2 threads, for the pack's detector and each of `extra`."""
    import onnxruntime

    pack = load_model_pack(pack_path, threads=1)
    files = {"pack detector": Path(pack.detector.model_file), **extra}
    image = cv2.imread(str(PAIR[0]))
    calls: dict[str, Callable[[], object]] = {}
    for name, path in files.items():
        for threads in THREADS:
            session = onnxruntime.InferenceSession(str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"])
            input_name = session.get_inputs()[0].name
            for side in DETECTION_SIZES:
                blob = cv2.dnn.blobFromImage(image, 1.0 / 128.0, (side, side), (127.5, 127.5, 127.5), swapRB=True)
                calls[f"{name}|{side}|{threads}"] = (lambda session=session, feed={input_name: blob}: session.run(None, feed))
    timings = timed_in_turns(calls, runs, warmup)
    rows = []
    for key, figures in timings.items():
        name, side, threads = key.split("|")
        rows.append({"detector": name, "size": int(side), "threads": int(threads), **figures})
    return {"files": {name: str(path) for name, path in files.items()}, "rows": rows}


def format_report(report: dict) -> str:
    """The figures as text tables."""
    lines = [(f"{report['machine']}; pack {report['model_pack']}; {report['date']}; load before {report['loadavg_before']}, "
              f"after {report['loadavg_after']}; median of {report['runs']} (p95) ms")]
    rows = report["recognizer"]["rows"] if "recognizer" in report else []
    if rows:
        fastest = min(row["median_ms"] for row in rows if row["load"] == "alone")
        lines.append(f"recognizer, two faces ({', '.join(report['recognizer']['pair'])}); ratio to the fastest way alone")
        lines.append(f"{'way':22s} {'threads':>7s} {'alone':>22s} {'two pairs at once':>26s}")
    for row in rows:
        if row["load"] != "alone":
            continue
        both = next(r for r in rows if r["way"] == row["way"] and r["threads"] == row["threads"] and r["load"] != "alone")
        lines.append(f"{row['way']:22s} {row['threads']:7d} {row['median_ms']:8.1f} ({row['p95_ms']:6.1f}) {row['median_ms'] / fastest:4.2f}x "
                     f"{both['median_ms']:8.1f} ({both['p95_ms']:6.1f}) {both['median_ms'] / fastest:4.2f}x")
    if "detectors" in report:
        lines.append("detectors, one call at a time (ms)")
        for row in report["detectors"]["rows"]:
            lines.append(f"  {row['detector']:28s} {row['size']:4d}x{row['size']:<4d} {row['threads']} thread(s) "
                         f"{row['median_ms']:8.1f} ({row['p95_ms']:6.1f})")
    return "\n".join(lines)


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="script/measure-networks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="model pack folder")
    parser.add_argument("--runs", type=int, default=20, help="timed rounds (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--detectors", action="store_true", help="also time the detectors at each size")
    parser.add_argument("--detector", action="append", default=[], metavar="NAME=FILE", help="another SCRFD ONNX file to time")
    parser.add_argument("--only-detectors", action="store_true", help="time the detectors only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    report: dict = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "runs": args.runs, "loadavg_before": loadavg()}
    report["model_pack"] = json.loads((args.weights / "manifest.json").read_text()).get("model_id", args.weights.name)
    if not args.only_detectors:
        report["recognizer"] = measure_recognizer(args.weights, args.runs, args.warmup)
    if args.detectors or args.detector or args.only_detectors:
        extra = {item.split("=", 1)[0]: Path(item.split("=", 1)[1]) for item in args.detector}
        report["detectors"] = measure_detectors(args.weights, extra, args.runs, args.warmup)
    report["loadavg_after"] = loadavg()
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
