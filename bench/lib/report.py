#!/usr/bin/env python3
"""Summarises bench/gateway.sh results.

    report.py RESULTS_TSV [MEMORY_ENV]

RESULTS_TSV: one wrk run a line, tab-separated:
    round scenario target rps p99_ms non2xx socket_errors
MEMORY_ENV: key=value lines written by the idle-connection phase.

Prints the raw per-round numbers, a table of medians per scenario, the
idle-connection memory, and ends with one `RATIO <scenario> <ratio>` line
per scenario (throughput: rampart req/s / nginx req/s, higher is better for
rampart; idle_memory: rampart MiB / nginx MiB, lower is better for rampart).
"""

import sys
from collections import OrderedDict
from statistics import median

SCENARIO_TITLES = {
    "http_get": "GET via HTTP",
    "http_post_1k": "1 KiB POST via HTTP",
    "https_get": "GET via TLS (HTTP/1.1)",
    "protected_get": "GET, Rampart protected vs nginx plain",
    "default_get": "GET, Rampart as installed (WAF on) vs nginx plain",
}


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def load_results(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            rnd, scen, target, rps, p99, non2xx, errs = line.split("\t")[:7]
            rows.append({
                "round": int(rnd), "scenario": scen, "target": target,
                "rps": float(rps) if rps != "NA" else None,
                "p99": float(p99) if p99 != "NA" else None,
                "non2xx": int(non2xx), "errors": int(errs),
            })
    return rows


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def mib(kib):
    return None if kib in (None, "", "NA") else int(kib) / 1024


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = load_results(sys.argv[1])
    mem = load_env(sys.argv[2]) if len(sys.argv) > 2 else {}

    print("== Raw numbers, one wrk run a line ==")
    print(f"{'round':>5}  {'scenario':<14} {'target':<8} {'req/s':>10} "
          f"{'p99 ms':>8} {'non-2xx':>8} {'sock-err':>8}")
    for r in rows:
        print(f"{r['round']:>5}  {r['scenario']:<14} {r['target']:<8} "
              f"{fmt(r['rps'], '10.0f')} {fmt(r['p99'], '8.2f')} "
              f"{r['non2xx']:>8} {r['errors']:>8}")
    print()

    scenarios = OrderedDict()
    for r in rows:
        scenarios.setdefault(r["scenario"], {"nginx": [], "rampart": []})
        scenarios[r["scenario"]][r["target"]].append(r)

    rounds = max((r["round"] for r in rows), default=0)
    print(f"== Medians over {rounds} round(s) ==")
    header = (f"{'scenario':<14} {'nginx req/s':>12} {'rampart req/s':>14} "
              f"{'ratio':>6} {'nginx p99 ms':>13} {'rampart p99 ms':>15} "
              f"{'p99 ratio':>10}")
    print(header)
    print("-" * len(header))
    ratios = OrderedDict()
    warnings = []
    for scen, by in scenarios.items():
        med = {}
        for target in ("nginx", "rampart"):
            rps = [r["rps"] for r in by[target] if r["rps"] is not None]
            p99 = [r["p99"] for r in by[target] if r["p99"] is not None]
            med[target] = (median(rps) if rps else None,
                           median(p99) if p99 else None)
            bad = sum(r["non2xx"] + r["errors"] for r in by[target])
            if bad:
                warnings.append(f"{scen}/{target}: {bad} non-2xx responses or "
                                "socket errors over all rounds (see raw numbers)")
            if len(rps) < len(by[target]):
                warnings.append(f"{scen}/{target}: {len(by[target]) - len(rps)} "
                                "run(s) produced no result")
        (n_rps, n_p99), (r_rps, r_p99) = med["nginx"], med["rampart"]
        ratio = fmt_ratio(r_rps, n_rps)
        ratios[scen] = ratio
        print(f"{scen:<14} {fmt(n_rps, '12.0f')} {fmt(r_rps, '14.0f')} "
              f"{ratio:>6} {fmt(n_p99, '13.2f')} {fmt(r_p99, '15.2f')} "
              f"{fmt_ratio(r_p99, n_p99):>10}")
    for scen in scenarios:
        print(f"  {scen}: {SCENARIO_TITLES.get(scen, scen)}")
    for w in warnings:
        print(f"WARNING: {w}")
    print()

    if mem:
        n = mem.get("connections", "?")
        print(f"== Idle keep-alive connections: {n} ==")
        ng_base, ng_rss = mib(mem.get("nginx_base_rss_kib")), mib(mem.get("nginx_rss_kib"))
        ng_hwm, ng_pss = mib(mem.get("nginx_hwm_kib")), mib(mem.get("nginx_pss_kib"))
        ra_base, ra_rss = mib(mem.get("rampart_base_rss_kib")), mib(mem.get("rampart_rss_kib"))
        ra_hwm, ra_pss = mib(mem.get("rampart_hwm_kib")), mib(mem.get("rampart_pss_kib"))
        print(f"{'':<8} {'open':>6} {'alive':>6} {'before MiB':>11} {'RSS MiB':>8} "
              f"{'peak MiB':>9} {'PSS MiB':>8} {'KiB/conn':>9}")
        for name, base, rss, hwm, pss in (("nginx", ng_base, ng_rss, ng_hwm, ng_pss),
                                          ("rampart", ra_base, ra_rss, ra_hwm, ra_pss)):
            opened = mem.get(f"{name}_open", "NA")
            alive = mem.get(f"{name}_alive", "NA")
            per = None
            if base is not None and rss is not None and opened not in ("NA", "0"):
                per = (rss - base) * 1024 / int(opened)
            print(f"{name:<8} {opened:>6} {alive:>6} {fmt(base, '11.1f')} "
                  f"{fmt(rss, '8.1f')} {fmt(hwm, '9.1f')} {fmt(pss, '8.1f')} "
                  f"{fmt(per, '9.2f')}")
        print("  nginx: sums over master + workers (RSS counts shared pages once "
              "per process; PSS splits them). 'peak' = sum of VmHWM.")
        print("  rampart: one process; 'peak' = VmHWM of a process started fresh "
              "for this phase. KiB/conn = (RSS with conns - RSS before) / open.")
        ra_peak = ra_hwm if ra_hwm is not None else ra_rss
        print(f"  compared: rampart peak {fmt(ra_peak, '.1f')} MiB vs nginx RSS "
              f"{fmt(ng_rss, '.1f')} MiB")
        ratios["idle_memory"] = fmt_ratio(ra_peak, ng_rss)
        for name in ("nginx", "rampart"):
            if mem.get(f"{name}_open") != mem.get(f"{name}_alive") or \
                    mem.get(f"{name}_open") != str(n):
                print(f"WARNING: {name}: {mem.get(f'{name}_open')} of {n} connections "
                      f"opened, {mem.get(f'{name}_alive')} still open at the end")
        print()

    for scen, ratio in ratios.items():
        print(f"RATIO {scen} {ratio}")


if __name__ == "__main__":
    main()
