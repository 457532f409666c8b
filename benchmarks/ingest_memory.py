"""Peak memory of ingesting a synthetic 1,000,000-image store: scratch memory map vs in memory.

A uint8 (N, 3, 32, 32) `.npy` of random images (2.9 GiB at N = 1,000,000) is
written in chunks, then ingested twice by the ingestion node and saved through
the catalog's `NpyDataset`, each in a fresh process: with `ingestion.scratch_dir`
(decode into a memory-mapped file, rename it into place) and without (decode
into memory, then write). Each process samples its anonymous resident memory
(`RssAnon`: what the process itself holds; the page cache of mapped files is
the kernel's and is given back under pressure) every 20 ms and reports the
peak, with the kernel's peak RSS (`VmHWM`, file pages included) beside it.

    python benchmarks/ingest_memory.py                # 1,000,000 images, ~4 minutes, 9 GiB of disk
    python benchmarks/ingest_memory.py --images 100000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit

SHAPE = (3, 32, 32)
CHUNK = 50_000

CHILD = """
import json, sys, threading, time
from pathlib import Path

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0

peak = [0]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], status("RssAnon"))
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()

from selfsup.datasets import NpyDataset
from selfsup.pipelines.ingestion.nodes import ingest

source, target, scratch = sys.argv[1], sys.argv[2], sys.argv[3] or None
baseline = status("RssAnon")
started = time.perf_counter()
images, index, summary = ingest({"dataset": "array", "path": source, "scratch_dir": scratch})
NpyDataset(filepath=target).save(images)
seconds = time.perf_counter() - started
done.set()
peak[0] = max(peak[0], status("RssAnon"))
print(json.dumps({"peak_anon_bytes": peak[0] - baseline, "vm_hwm_bytes": status("VmHWM"),
                  "seconds": seconds, "images": summary["images"]}))
"""


def write_source(path: Path, n: int) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, *SHAPE))
    rng = np.random.default_rng(0)
    for start in range(0, n, CHUNK):
        out[start : start + CHUNK] = rng.integers(0, 256, (min(CHUNK, n - start), *SHAPE), dtype=np.uint8)
    out.flush()
    del out


def ingest_in_child(source: Path, target: Path, scratch: Path | None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(target), str(scratch or "")],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="where the temporary files go (a disk, not tmpfs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="selfsup-ingest-", dir=args.dir))
    try:
        source = work / "source.npy"
        write_source(source, args.images)
        scratch = ingest_in_child(source, work / "images_scratch.npy", work / "scratch")
        (work / "images_scratch.npy").unlink()
        in_memory = ingest_in_child(source, work / "images_memory.npy", None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    store_bytes = args.images * int(np.prod(SHAPE))
    emit(
        {
            "benchmark": "ingest_memory",
            "images": args.images,
            "store_bytes": store_bytes,
            "scratch": scratch,
            "in_memory": in_memory,
            "scratch_peak_over_store": scratch["peak_anon_bytes"] / store_bytes,
            "ratio": in_memory["peak_anon_bytes"] / max(1, scratch["peak_anon_bytes"]),
            "target": "peak memory bounded, independent of the store size",
        }
    )


if __name__ == "__main__":
    main()
