#!/usr/bin/env python3
"""Summarises bench/waf.sh: medians per scenario and target, and ratios.

    report.py RESULTS_TSV   (round scenario target rps p50 p99 non2xx)
"""
import sys
from collections import defaultdict
from statistics import median

TITLES = {
    "get_args": "GET with 3 query arguments",
    "form_1k": "POST, 1 KiB form (35 fields)",
    "form_16k": "POST, 16 KiB form (35 fields)",
    "args_500": "POST, form of 500 fields",
    "json_4k": "POST, 4 KiB JSON",
    "attack": "GET, SQL injection (403)",
}


def ms(v):
    """wrk latency text (`812.00us`, `3.20ms`, `1.01s`) in milliseconds."""
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    return None


runs = defaultdict(list)
order = []
for line in open(sys.argv[1]):
    r, s, t, rps, p50, p99, non2xx = line.rstrip("\n").split("\t")
    if s not in order:
        order.append(s)
    runs[(s, t)].append((float(rps), ms(p50), ms(p99), int(non2xx or 0)))


def med(s, t, i):
    vals = [x[i] for x in runs.get((s, t), []) if x[i] is not None]
    return median(vals) if vals else None


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"


print("| scenario | nginx req/s | ModSecurity req/s | Rampart WAF req/s | Rampart no WAF req/s "
      "| Rampart/ModSecurity | p99 ModSecurity | p99 Rampart | WAF cost vs Rampart off |")
print("|---|---|---|---|---|---|---|---|---|")
for s in order:
    n, m, r, o = (med(s, t, 0) for t in ("nginx", "modsecurity", "rampart", "rampart_nowaf"))
    pm, pr = med(s, "modsecurity", 2), med(s, "rampart", 2)
    cost = f"{(1 - r / o) * 100:.0f}%" if r and o else "n/a"
    fmt = lambda v: "n/a" if v is None else f"{v:,.0f}"
    fp = lambda v: "n/a" if v is None else f"{v:.2f} ms"
    print(f"| {TITLES.get(s, s)} | {fmt(n)} | {fmt(m)} | {fmt(r)} | {fmt(o)} | {ratio(r, m)} | {fp(pm)} | {fp(pr)} | {cost} |")
print()
for s in order:
    print(f"RATIO {s} {ratio(med(s, 'rampart', 0), med(s, 'modsecurity', 0))}")


# The WAF's CPU per request (both cores busy: 2 s of CPU per second), less
# the same request without the WAF; per byte from the two forms of 35
# fields (1 KiB and 16 KiB), per argument from 35 and 500 fields.
def waf_us(s, t):
    w, o = med(s, t, 0), med(s, "rampart_nowaf" if t == "rampart" else "nginx", 0)
    return 2e6 / w - 2e6 / o if w and o else None


FORM_BYTES = {"form_1k": 1024, "form_16k": 16384}
for t in ("rampart", "modsecurity"):
    a, b, c = waf_us("form_1k", t), waf_us("form_16k", t), waf_us("args_500", t)
    if a is not None and b is not None:
        print(f"COST {t} per_byte_us {(b - a) / (16384 - 1024):.4f}")
    if a is not None and c is not None:
        print(f"COST {t} per_argument_us {(c - a) / (500 - 35):.2f}")
