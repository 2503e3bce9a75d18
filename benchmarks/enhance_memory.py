"""Peak memory (RSS) of `gefu enhance` on a 16000×16000 PNG with `--tile 1024`: the bound is 3 GiB.

The PNG is mostly dark and flat with a few shapes, so it is small on disk (a few hundred KB) and 768 MB once
decoded (uint8 RGB). Each run is a fresh process; its peak is VmHWM from /proc (the high-water mark of that
process alone: ru_maxrss would also count the parent it was forked from). A bare process that imports gefu and
builds the enhancer is measured too: that part is the fixed cost of torch and does not grow with the image.

Usage:  .venv/bin/python benchmarks/enhance_memory.py [--size 16000] [--tile 1024] [--methods gamma,lime]
(Linux; about 3 GB of RAM; a few minutes per method on 2 cores.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT = 3 * 2**30

_MAKE = """
import sys
from PIL import Image, ImageDraw
n = int(sys.argv[2])
img = Image.new("RGB", (n, n), (12, 10, 8))
draw = ImageDraw.Draw(img)
for i in range(0, n, n // 16):
    draw.rectangle([i, i // 2, i + n // 40, i // 2 + n // 30], fill=(40, 25 + i % 30, 20))
    draw.line([0, i, n, n - i], fill=(30, 30, 35), width=9)
img.save(sys.argv[1], compress_level=9)
"""

_PEAK = """
import re, sys, time
t0 = time.perf_counter()
if sys.argv[1] == "--bare":
    from gefu import create_enhancer
    create_enhancer(sys.argv[2])
    code = 0
else:
    from gefu.cli import main
    code = main(sys.argv[1:])
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024
print(peak, code, time.perf_counter() - t0)
"""


def _peak(argv: list[str]) -> tuple[int, float]:
    proc = subprocess.run([sys.executable, "-c", _PEAK, *argv], capture_output=True, text=True)
    try:
        peak, code, seconds = proc.stdout.split()[-3:]
    except ValueError:
        raise SystemExit(f"run failed: {proc.stderr[-2000:]}") from None
    if code != "0":
        raise SystemExit(f"gefu enhance exited {code}: {proc.stderr[-2000:]}")
    return int(peak), float(seconds)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=16000, help="side of the square test image")
    ap.add_argument("--tile", type=int, default=1024, help="--tile of gefu enhance")
    ap.add_argument("--methods", default="gamma,lime", help="comma-separated enhancers")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / f"dark-{args.size}.png"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", _MAKE, str(png), str(args.size)], check=True)
        print(f"{png.name}: {args.size}×{args.size}, {png.stat().st_size / 1e3:.0f} kB on disk, "
              f"{3 * args.size**2 / 2**20:.0f} MiB decoded (made in {time.perf_counter() - t0:.0f} s)\n")
        print(f"| method | run | peak RSS | limit {LIMIT / 2**30:.0f} GiB | s |")
        print("|---|---|---:|---|---:|")
        for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
            bare, _ = _peak(["--bare", method])
            print(f"| {method} | import gefu + build the enhancer | {bare / 2**30:.2f} GiB | | |")
            out = Path(tmp) / f"out-{method}"
            peak, seconds = _peak(["enhance", str(png), "-o", str(out), "-m", method, "--tile", str(args.tile)])
            verdict = "below" if peak < LIMIT else "ABOVE"
            print(f"| {method} | gefu enhance --tile {args.tile} | {peak / 2**30:.2f} GiB | {verdict} | "
                  f"{seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
