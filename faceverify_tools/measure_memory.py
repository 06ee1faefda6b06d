"""Peak memory of the Cog server under the heaviest images its limits accept, one image format at a time.

For each format it starts a fresh Cog server (two predictions at once, as cog.yaml sets), sends
`--rounds` rounds of two concurrent predictions, each comparing two worst-case images of that format
(as many pixels as the limits allow, in the colour mode that costs most to decode), and reports the
peak resident memory (VmHWM) of the server's predictor worker and of the whole server tree (the sum
of each process's peak, an upper bound). It exits 1 when a tree peak reaches `--limit-mb`.

    script/measure-memory [--formats PNG,WEBP] [--side 7000] [--rounds 2] [--via url|data-uri] [--limit-mb 1536] [--json FILE]
"""

from __future__ import annotations

import argparse
import http.server
import io
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from faceverify.images import MAX_BYTES

from .cogserver import CogServer, process_tree_rss
from .inputs import data_uri, flat_png
from .shared import TEST_PACK


def gradient(side: int, mode: str) -> Image.Image:
    """A smooth colour gradient, side x side: compresses well, decodes at full cost."""
    ramp = (np.add.outer(np.arange(side), np.arange(side)) * 255 // (2 * side)).astype(np.uint8)
    rgb = Image.fromarray(np.stack([ramp, ramp[::-1], ramp.T], axis=2))
    return rgb if mode == "RGB" else rgb.convert(mode)


def encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def heif(side: int) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encoded(gradient(side, "RGB"), "HEIF", quality=50)


WORST_CASES: dict[str, Callable[[int], bytes]] = {
    "JPEG": lambda side: encoded(gradient(side, "RGB"), "JPEG", quality=85),
    "PNG": lambda side: flat_png(side, side, bit_depth=16, colour_type=6),  # 16-bit RGBA: the dearest conversion
    "WEBP": lambda side: encoded(gradient(side, "RGBA"), "WEBP", lossless=True),
    "TIFF": lambda side: encoded(gradient(side, "RGBA"), "TIFF", compression="tiff_deflate"),
    "GIF": lambda side: encoded(gradient(side, "RGB"), "GIF"),
    "BMP": lambda side: encoded(gradient(min(side, 2880), "RGB"), "BMP"),  # uncompressed: 25 MB holds ~8 MP
    "HEIF": heif,
    "PNG-25MB": lambda side: largest_file(),
}
"""The heaviest image of each format (the most pixels the limits allow, in the costliest colour mode),
and the largest file the byte limit allows. BMP, TIFF and GIF are refused, but still sent."""


def largest_file() -> bytes:
    """A PNG of random pixels just under MAX_BYTES: what costs most to receive, whatever the pixels."""
    side = int((MAX_BYTES * 0.95 / 3) ** 0.5)
    noise = np.random.default_rng(0).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    return encoded(Image.fromarray(noise), "PNG", compress_level=1)


@contextmanager
def served(files: dict[str, bytes]):
    """A local HTTP server for `files` (name -> bytes); yields its base URL."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            body = files.get(self.path.lstrip("/"))
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def peak_mb(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM), in MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure_format(fmt: str, data: bytes, rounds: int, weights: Path, folder: Path, via: str) -> dict:
    """Peaks of a fresh server after `rounds` rounds of two concurrent predictions on `data` twice,
    sent as data URIs or as URLs of a local HTTP server (`via`: "data-uri" or "url")."""
    server = CogServer(weights, folder / f"server-{fmt}.log")
    with ExitStack() as stack:
        stack.callback(server.stop)
        server.wait_until({"READY"}, timeout=120.0)
        ready = {f"{pid} {name}": round(peak_mb(pid), 1) for pid, name, _ in process_tree_rss(server.process.pid)}
        if via == "url":
            base = stack.enter_context(served({"image1": data, "image2": data}))
            inputs = {"image1": f"{base}/image1", "image2": f"{base}/image2"}
        else:
            inputs = {"image1": data_uri(data, "application/octet-stream"), "image2": data_uri(data, "application/octet-stream")}
        answers: list[dict] = []
        started = time.perf_counter()
        for _ in range(rounds):
            def one() -> None:
                response = server.predict(inputs, timeout=300.0)
                answers.append(response.json())
            threads = [threading.Thread(target=one) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        seconds = time.perf_counter() - started
        peaks = {f"{pid} {name}": round(peak_mb(pid), 1) for pid, name, _ in process_tree_rss(server.process.pid)}
    outcomes = sorted({str((answer.get("output") or {}).get("error_code") or answer.get("status")) for answer in answers})
    return {"format": fmt, "via": via, "bytes": len(data), "rounds": rounds, "seconds": round(seconds, 1), "answers": outcomes,
            "peak_mb_at_ready": ready, "peak_mb": peaks, "worker_peak_mb": max(peaks.values()),
            "tree_peak_mb": round(sum(peaks.values()), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="script/measure-memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", default=",".join(WORST_CASES), help=f"comma-separated, from {','.join(WORST_CASES)}")
    parser.add_argument("--side", type=int, default=7000, help="longest side of the test images (default 7000: 49 MP)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of two concurrent predictions (default 2)")
    parser.add_argument("--weights", type=Path, default=TEST_PACK)
    parser.add_argument("--limit-mb", type=float, default=1536.0, help="fail when a tree peak reaches this (default 1536)")
    parser.add_argument("--via", choices=["url", "data-uri"], default="url",
                        help="how the images reach the server: URLs it downloads (as on Replicate, where clients upload "
                             "files and send their URL; the default) or data URIs in the request body")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as temp:
        for fmt in args.formats.upper().split(","):
            data = WORST_CASES[fmt](args.side)
            if len(data) > MAX_BYTES:
                raise SystemExit(f"measure-memory: the {fmt} test image is {len(data)} bytes, over the limit")
            result = measure_format(fmt, data, args.rounds, args.weights, Path(temp), args.via)
            results.append(result)
            print(f"{fmt:5s} {len(data) / 2**20:6.1f} MB on the wire  worker peak {result['worker_peak_mb']:7.1f} MB  "
                  f"server tree peak {result['tree_peak_mb']:7.1f} MB  answers {result['answers']}  {result['seconds']} s",
                  flush=True)
    report = {"side": args.side, "rounds": args.rounds, "via": args.via, "limit_mb": args.limit_mb, "results": results,
              "passed": all(result["tree_peak_mb"] < args.limit_mb for result in results)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
