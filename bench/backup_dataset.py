#!/usr/bin/env python3
"""Generates the bench/backup.sh dataset in DIR: TOTAL_MB of many small
files, some large files, and duplicated regions; `--change PCT` rewrites
about PCT percent of it in place (new bytes in some files, a few new files).
Deterministic for a seed."""
import os
import random
import sys

d = sys.argv[1]
total = int(os.environ.get("TOTAL_MB", "1024")) << 20
change = None
if len(sys.argv) > 3 and sys.argv[2] == "--change":
    change = float(sys.argv[3])
rng = random.Random(42)


def blob(n, seed):
    r = random.Random(seed)
    # Half compressible text-like, half random.
    if seed % 2:
        return r.randbytes(n)
    words = [r.randbytes(r.randint(3, 9)).hex() for _ in range(200)]
    out = bytearray()
    while len(out) < n:
        out += (" ".join(r.choice(words) for _ in range(20)) + "\n").encode()
    return bytes(out[:n])


if change is None:
    os.makedirs(d, exist_ok=True)
    written, i = 0, 0
    shared = blob(8 << 20, 999)
    while written < total:
        kind = rng.random()
        sub = os.path.join(d, f"dir{i % 64:02d}", f"sub{(i // 64) % 16:02d}")
        os.makedirs(sub, exist_ok=True)
        if kind < 0.90:
            n = rng.randint(1 << 10, 64 << 10)
            data = blob(n, i)
        elif kind < 0.97:
            n = rng.randint(4 << 20, 24 << 20)
            data = blob(n, i)
        else:
            # Duplicated regions: a shared 8 MiB block inside new data.
            data = blob(1 << 20, i) + shared + blob(1 << 20, i + 1)
        with open(os.path.join(sub, f"f{i:06d}.bin"), "wb") as f:
            f.write(data)
        written += len(data)
        i += 1
else:
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs)
    sizes = {f: os.path.getsize(f) for f in files}
    budget = sum(sizes.values()) * change / 100
    rng.shuffle(files)
    done = 0
    for f in files:
        if done >= budget:
            break
        n = sizes[f]
        with open(f, "r+b") as fh:
            at = rng.randint(0, max(0, n - 4096))
            fh.seek(at)
            k = min(n, max(4096, n // 10))
            fh.write(blob(k, rng.randint(0, 1 << 30))[: n - at])
            done += k
    extra = os.path.join(d, "new")
    os.makedirs(extra, exist_ok=True)
    for j in range(20):
        with open(os.path.join(extra, f"n{j}.bin"), "wb") as fh:
            fh.write(blob(64 << 10, 7000 + j))
