#!/usr/bin/env bash
# Audit log benchmark: sustained durable appends of ~500-byte events (group
# commit, fsync before acknowledgement), the p50/p99 latency of a durable
# acknowledgement under that load, and verification throughput compared in
# the same run with this machine's single-core SHA-256 speed (ring's, and
# openssl's for reference).
#
#   bench/audit.sh                 # 3 rounds of 10 s, 4 producers x 512 in flight
#   SECONDS_PER_ROUND=5 ROUNDS=1 PRODUCERS=8 WINDOW=256 bench/audit.sh
#
# The established tools' figures (cited in ../shared/ANCHORS.md): Trillian
# Tessera about 2,900 durable writes/s on local disk; immudb 1.2-1.8 million
# entries/s in large batches.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_ROUND:-10}
PRODUCERS=${PRODUCERS:-4}
WINDOW=${WINDOW:-512}
TMPDIR=${TMPDIR:-/tmp}

echo "building: cargo build --release -p rampart-audit --example audit_bench" >&2
cargo build --release -q -p rampart-audit --example audit_bench
BIN=target/release/examples/audit_bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for r in $(seq "$ROUNDS"); do
  echo "round $r/$ROUNDS" >&2
  "$BIN" "$SECS" "$PRODUCERS" "$WINDOW" | tee "$out/round$r.txt" >&2
done

openssl_sha=""
if command -v openssl >/dev/null 2>&1; then
  # Single core: one process, 16 KiB blocks.
  openssl_sha=$(openssl speed -seconds 3 -bytes 16384 -evp sha256 2>/dev/null | awk '/^sha256/ {print $NF}' | sed 's/k$//')
fi

python3 - "$out" "$openssl_sha" <<'PY'
import glob, statistics, sys
out, openssl = sys.argv[1], sys.argv[2]
rows = []
for f in sorted(glob.glob(out + "/round*.txt")):
    d = {}
    for line in open(f):
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        kv = dict(zip(parts[1::2], parts[2::2]))
        if key == "APPEND": d["eps"] = float(kv["events_per_s"])
        if key == "ACK_LATENCY": d["p50"], d["p99"] = float(kv["p50_ms"]), float(kv["p99_ms"])
        if key == "VERIFY": d["verify"] = float(kv["MiB_per_s"])
        if key == "SHA256": d["sha"] = float(kv["single_core_MiB_per_s"])
        if line.startswith("event size"): d["size"] = line.split(":")[1].split()[0]
    rows.append(d)
med = lambda k: statistics.median(r[k] for r in rows)
print(f"Audit log, medians of {len(rows)} round(s); canonical event size {rows[0]['size']} bytes")
print(f"  durable appends        {med('eps'):>12,.0f} events/s   (target >= 100,000)")
print(f"  ack latency under load p50 {med('p50'):.2f} ms, p99 {med('p99'):.2f} ms")
print(f"  verification           {med('verify'):>12,.0f} MiB/s")
print(f"  SHA-256, one core      {med('sha'):>12,.0f} MiB/s (best of ring, sha2)", end="")
if openssl:
    print(f"; openssl speed: {float(openssl)/1024:,.0f} MiB/s")
else:
    print()
print(f"RATIO verify_vs_sha256 {med('verify')/med('sha'):.2f}")
print(f"RATIO appends_vs_100k {med('eps')/100000:.2f}")
print(f"RATIO appends_vs_tessera_2900 {med('eps')/2900:.0f}")
PY
