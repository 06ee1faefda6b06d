#!/usr/bin/env python3
"""Soak test: many predictions through the real Cog HTTP server, then the figures that matter.

Starts `python -m cog.server.http` with a model pack (default: the test pack in ../shared), warms it
up, sends `--count` predictions (default 300) cycling through a fixed mix of valid and invalid
inputs built from real images, and reports:

- failures: a wrong answer (match / error code not the declared one, or an output that differs from
  the first answer to the same inputs), an HTTP 5xx, or a failed prediction. Must be zero.
- resident memory of the server's process tree (server + worker, VmRSS from /proc) after warm-up vs
  at the end. Growth must stay under --max-rss-growth-mb (50).
- p95 latency of the first 100 vs the last 100 predictions. The last may be at most
  --max-p95-growth (20%) slower.
- a burst of concurrent requests beyond the server's capacity (two slots, cog.yaml concurrency.max):
  --rounds rounds of --burst simultaneous clients with distinguishable
  expected answers. Each attempt must get Cog's busy answer (409) or the client's own correct
  result, never another request's; clients retry on 409 until served, and all must be served.

Prints a table, writes everything to --json PATH if given, and exits 1 if a criterion fails.

    script/soak                                   # 300 predictions with the test pack
    script/soak --count 1000 --json reports/soak.json --weights weights/buffalo_l

Runs in the project's virtual environment (script/setup). Images come from ../shared/data
(FACEVERIFY_SHARED).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import os
import random
import shlex
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from .cogserver import CogServer
from .inputs import data_uri, png_claiming_size
from .shared import DATA, TEST_PACK, shown

WINDOW = 100
PREDICT_TIMEOUT = 120.0


# --- the Cog server ------------------------------------------------------------------------------

def wait_ready(server: CogServer) -> None:
    """Block until the server reports READY; raise if its setup fails or it takes over 120 s."""
    status = server.wait_until({"READY", "SETUP_FAILED", "DEFUNCT"}, timeout=120.0).get("status")
    if status != "READY":
        raise RuntimeError(f"server status {status}; log: {server.log_path}")


# --- the input mix -------------------------------------------------------------------------------

@dataclass
class Kind:
    """One kind of request in the mix, with the answer it must get (`match` or an error code)."""

    name: str
    inputs: dict[str, Any]
    match: bool
    error_code: str | None = None
    reference: dict[str, Any] | None = field(default=None, repr=False)  # the first output seen

    def problem_with(self, output: dict[str, Any]) -> str | None:
        """Why `output` is not this kind's answer (None when it is)."""
        if output.get("match") is not self.match or output.get("error_code") != self.error_code:
            return f"expected match={self.match} error_code={self.error_code}, got match={output.get('match')} error_code={output.get('error_code')}"
        if (self.error_code is None) != (output.get("similarity") is not None):
            return f"similarity {output.get('similarity')} with error_code {output.get('error_code')}"
        if self.reference is not None:
            for key, expected in self.reference.items():
                got = output.get(key)
                if isinstance(expected, float) and isinstance(got, float):
                    if abs(expected - got) > 2e-4:
                        return f"{key} {got} differs from the first answer {expected}"
                elif isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
                    if any(abs(a - b) > 1.0 for a, b in zip(expected, got)):
                        return f"{key} {got} differs from the first answer {expected}"
                elif got != expected:
                    return f"{key} {got!r} differs from the first answer {expected!r}"
        return None


def build_mix(data_dir: Path) -> list[Kind]:
    """Ten kinds (so every window of 100 has the same mix): six valid pairs, four bad inputs."""
    def read(relative: str) -> bytes:
        path = data_dir / "cases" / relative
        if not path.is_file():
            raise SystemExit(f"soak: missing image {path} (set FACEVERIFY_SHARED to the shared folder)")
        return path.read_bytes()

    obama, obama2, biden = read("single-face/obama.jpg"), read("single-face/obama2.jpg"), read("single-face/biden.jpg")
    phone = io.BytesIO()
    Image.open(io.BytesIO(obama2)).convert("RGB").resize((3000, 5760)).save(phone, "JPEG", quality=85)
    return [
        Kind("same person", {"image1": data_uri(obama), "image2": data_uri(obama2)}, True),
        Kind("different people", {"image1": data_uri(obama), "image2": data_uri(biden)}, False),
        Kind("same person, bare base64", {"image1": data_uri(biden), "image2": base64.b64encode(read("single-face/biden2.jpg")).decode()}, True),
        Kind("RGBA PNG vs JPEG", {"image1": data_uri(read("single-face/alex_lacamoire1.jpg")), "image2": data_uri(read("single-face/alex-lacamoire.png"), "image/png")}, True),
        Kind("passport vs other person", {"image1": data_uri(read("id-documents/100_pass-cze.jpg")), "image2": data_uri(obama)}, False),
        Kind("17 MP phone photo", {"image1": data_uri(obama), "image2": data_uri(phone.getvalue())}, True),
        Kind("no face (dogs)", {"image1": data_uri(obama), "image2": data_uri(read("no-face/dogs.jpg"))}, False, "image2_no_face"),
        Kind("truncated JPEG", {"image1": data_uri(obama), "image2": data_uri(obama2[: len(obama2) // 2])}, False, "image2_invalid"),
        Kind("server path", {"image1": "/etc/passwd", "image2": data_uri(obama2)}, False, "image1_invalid"),
        Kind("PNG claiming 100000x100000", {"image1": data_uri(obama), "image2": data_uri(png_claiming_size(100_000, 100_000), "image/png")}, False, "image2_too_large"),
    ]


# --- running -----------------------------------------------------------------------------------

@dataclass
class Result:
    """One sequential prediction."""

    kind: str
    seconds: float
    busy_retries: int
    problem: str | None


def predict_once(server: CogServer, kind: Kind) -> Result:
    """Send one kind, retrying on Cog's 409 (busy); time the request that got the answer."""
    retries = 0
    while True:
        started = time.monotonic()
        try:
            response = server.post(kind.inputs)
        except requests.RequestException as error:
            return Result(kind.name, time.monotonic() - started, retries, f"request error: {error}")
        seconds = time.monotonic() - started
        if response.status_code == 409 and retries < 50:
            retries += 1
            time.sleep(0.05)
            continue
        break
    if response.status_code != 200:
        return Result(kind.name, seconds, retries, f"HTTP {response.status_code}: {response.text[:200]}")
    body = response.json()
    if body.get("status") != "succeeded":
        return Result(kind.name, seconds, retries, f"prediction {body.get('status')}: {str(body.get('error'))[:200]}")
    output = body.get("output") or {}
    problem = kind.problem_with(output)
    if problem is None and kind.reference is None:
        kind.reference = output
    return Result(kind.name, seconds, retries, problem)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction in (0, 1])."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def burst(server: CogServer, kinds: list[Kind], rounds: int, size: int) -> dict[str, Any]:
    """Rounds of `size` simultaneous clients, each with a different request (kinds whose answers
    cannot be taken for one another). A client that gets Cog's busy answer (409) tries again until
    it is served, so every round interleaves `size` requests on the server's one slot; every answer
    must be the client's own."""
    distinct: dict[tuple, Kind] = {}
    for kind in kinds:
        if kind.reference is not None:
            signature = (kind.reference["match"], kind.reference["error_code"], kind.reference["similarity"])
            distinct.setdefault(signature, kind)
    usable = list(distinct.values())
    served = busy = 0
    wrong: list[str] = []
    lock = threading.Lock()
    for round_number in range(rounds):
        chosen = [usable[(round_number + i) % len(usable)] for i in range(size)]
        start = threading.Barrier(size)

        def client(kind: Kind) -> None:
            nonlocal served, busy
            session = requests.Session()
            start.wait()
            deadline = time.monotonic() + PREDICT_TIMEOUT
            while True:
                try:
                    answer = server.post(kind.inputs, session)
                except requests.RequestException as error:
                    problem: str | None = f"request error {error}"
                    break
                if answer.status_code == 409 and time.monotonic() < deadline:
                    with lock:
                        busy += 1
                    time.sleep(random.uniform(0.01, 0.05))
                    continue
                if answer.status_code != 200 or answer.json().get("status") != "succeeded":
                    problem = f"HTTP {answer.status_code} {answer.text[:200]}"
                else:
                    problem = kind.problem_with(answer.json().get("output") or {})
                break
            with lock:
                if problem:
                    wrong.append(f"{kind.name}: {problem}")
                else:
                    served += 1

        threads = [threading.Thread(target=client, args=(kind,)) for kind in chosen]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return {"rounds": rounds, "size": size, "kinds": [kind.name for kind in usable], "served": served,
            "busy_409": busy, "wrong": wrong}


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole soak; return the report (criteria included)."""
    kinds = build_mix(args.data)
    log_path = args.log or Path(tempfile.mkdtemp(prefix="faceverify-soak-")) / "server.log"
    server = CogServer(args.weights, log_path)
    try:
        started = time.monotonic()
        wait_ready(server)
        setup_seconds = time.monotonic() - started
        warmup = [predict_once(server, kinds[i % len(kinds)]) for i in range(args.warmup)]
        time.sleep(0.5)
        rss_warm = server.rss_by_process()
        results: list[Result] = []
        rss_samples = []
        for i in range(args.count):
            results.append(predict_once(server, kinds[i % len(kinds)]))
            if (i + 1) % 50 == 0:
                rss_samples.append((i + 1, round(sum(server.rss_by_process().values()), 1)))
                if not args.quiet:
                    print(f"soak: {i + 1}/{args.count} predictions", file=sys.stderr, flush=True)
        time.sleep(0.5)
        rss_end = server.rss_by_process()
        burst_report = burst(server, kinds, args.rounds, args.burst) if args.burst > 1 and args.rounds > 0 else None
        rss_after_burst = server.rss_by_process()
        health = server.health().get("status")
    finally:
        server.stop()

    window = min(WINDOW, max(1, args.count // 2))
    seconds = [result.seconds for result in results]
    first_p95, last_p95 = percentile(seconds[:window], 0.95), percentile(seconds[-window:], 0.95)
    failures = [f"#{i} {result.kind}: {result.problem}" for i, result in enumerate(warmup + results) if result.problem]
    warm_mb, end_mb = sum(rss_warm.values()), sum(rss_end.values())
    per_kind = {kind.name: round(percentile([r.seconds for r in results if r.kind == kind.name] or [0.0], 0.5), 4) for kind in kinds}
    criteria = {
        "failures": {"value": len(failures), "limit": 0, "pass": not failures},
        "rss_growth_mb": {"value": round(end_mb - warm_mb, 1), "limit": args.max_rss_growth_mb, "pass": end_mb - warm_mb < args.max_rss_growth_mb},
        "p95_growth": {"value": round(last_p95 / first_p95 - 1, 4), "limit": args.max_p95_growth, "pass": last_p95 <= first_p95 * (1 + args.max_p95_growth)},
        "health_after": {"value": health, "limit": "READY", "pass": health == "READY"},
    }
    if burst_report is not None:
        criteria["burst_wrong"] = {"value": len(burst_report["wrong"]), "limit": 0, "pass": not burst_report["wrong"]}
        total = args.rounds * args.burst
        criteria["burst_served"] = {"value": burst_report["served"], "limit": total, "pass": burst_report["served"] == total}
    return {
        "command": shlex.join(["script/soak", *sys.argv[1:]]),
        "weights": shown(args.weights),
        "count": args.count,
        "warmup": args.warmup,
        "window": window,
        "kinds": [kind.name for kind in kinds],
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
        "setup_seconds": round(setup_seconds, 2),
        "failures": failures[:50],
        "busy_retries": sum(result.busy_retries for result in warmup + results),
        "rss_mb": {"after_warmup": round(warm_mb, 1), "end": round(end_mb, 1), "growth": round(end_mb - warm_mb, 1),
                   "after_burst": round(sum(rss_after_burst.values()), 1),
                   "processes_after_warmup": {k: round(v, 1) for k, v in rss_warm.items()},
                   "processes_end": {k: round(v, 1) for k, v in rss_end.items()}, "every_50": rss_samples},
        "latency_s": {"first_p95": round(first_p95, 4), "last_p95": round(last_p95, 4),
                      "first_p50": round(percentile(seconds[:window], 0.5), 4), "last_p50": round(percentile(seconds[-window:], 0.5), 4),
                      "max": round(max(seconds), 4) if seconds else None, "median_by_kind": per_kind,
                      "all": [round(value, 4) for value in seconds]},
        "burst": burst_report,
        "criteria": criteria,
        "passed": all(item["pass"] for item in criteria.values()),
        "server_log": str(log_path),
    }


def print_table(report: dict[str, Any]) -> None:
    """The human-readable summary."""
    rss, latency, burst_report = report["rss_mb"], report["latency_s"], report["burst"]
    window = report["window"]
    rows = [
        ("failures (wrong answer / 5xx / failed)", f"{len(report['failures'])} of {report['count'] + report['warmup']}", "0", report["criteria"]["failures"]["pass"]),
        ("server RSS after warm-up -> end", f"{rss['after_warmup']:.1f} -> {rss['end']:.1f} MB ({rss['growth']:+.1f})",
         f"< +{report['criteria']['rss_growth_mb']['limit']} MB", report["criteria"]["rss_growth_mb"]["pass"]),
        (f"p95 latency first {window} -> last {window}", f"{latency['first_p95']:.3f} -> {latency['last_p95']:.3f} s ({report['criteria']['p95_growth']['value']:+.1%})",
         f"<= +{report['criteria']['p95_growth']['limit']:.0%}", report["criteria"]["p95_growth"]["pass"]),
        ("health-check after the run", str(report["criteria"]["health_after"]["value"]), "READY", report["criteria"]["health_after"]["pass"]),
    ]
    if burst_report is not None:
        rows.append((f"burst {burst_report['rounds']} rounds x {burst_report['size']} clients",
                     f"served {burst_report['served']}, 409 {burst_report['busy_409']}, wrong {len(burst_report['wrong'])}",
                     "wrong 0, all served", report["criteria"]["burst_wrong"]["pass"] and report["criteria"]["burst_served"]["pass"]))
    print(f"soak: {report['count']} predictions (+{report['warmup']} warm-up), {len(report['kinds'])} input kinds, "
          f"weights {report['weights']}, {report['machine']['cpus']} CPUs, setup {report['setup_seconds']} s")
    width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    print(f"{'criterion':<{width}}  {'value':<{value_width}}  {'limit':<26}  result")
    for name, value, limit, ok in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {limit:<26}  {'PASS' if ok else 'FAIL'}")
    print(f"p50 latency first -> last: {latency['first_p50']:.3f} -> {latency['last_p50']:.3f} s; max {latency['max']} s; "
          f"409 retries while sequential: {report['busy_retries']}")
    print("median latency by kind: " + ", ".join(f"{name} {value:.3f}s" for name, value in latency["median_by_kind"].items()))
    for failure in report["failures"][:10]:
        print(f"  failure: {failure}")
    for wrong in (burst_report or {}).get("wrong", [])[:10]:
        print(f"  burst: {wrong}")
    print("soak: " + ("PASSED" if report["passed"] else "FAILED"))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the soak, print and save the report; 0 when every criterion passes."""
    parser = argparse.ArgumentParser(prog="script/soak", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=Path(os.environ.get("COG_WEIGHTS") or TEST_PACK),
                        help="model pack folder (default: $COG_WEIGHTS, else ../shared/weights/scrfd2.5g-sface)")
    parser.add_argument("--count", type=int, default=300, help="predictions to measure (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="predictions before the first memory reading (default 20)")
    parser.add_argument("--burst", type=int, default=8, help="concurrent requests per burst round (default 8; 0 skips)")
    parser.add_argument("--rounds", type=int, default=5, help="burst rounds (default 5)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=50.0, help="limit on server RSS growth (default 50)")
    parser.add_argument("--max-p95-growth", type=float, default=0.20, help="limit on p95 latency growth, last vs first window (default 0.20)")
    parser.add_argument("--data", type=Path, default=DATA, help="shared data folder (default ../shared/data)")
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument("--log", type=Path, help="keep the server's log here (default: a temporary file, "
                        "deleted when the soak passes)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.count < 2:
        parser.error("--count must be at least 2")
    args.weights = args.weights.resolve()
    report = soak(args)
    if report["passed"] and not args.log:
        shutil.rmtree(Path(report["server_log"]).parent, ignore_errors=True)
        report["server_log"] = None
    print_table(report)
    if report["server_log"]:
        print(f"server log: {report['server_log']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
