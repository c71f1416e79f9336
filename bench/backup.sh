#!/usr/bin/env bash
# Rampart backup vs restic and BorgBackup on the same generated dataset,
# alternating rounds, medians.
#
#   bench/backup.sh                         # 1 GiB, 3 rounds
#   TOTAL_MB=256 ROUNDS=1 bench/backup.sh   # quick check
#
# Steps per tool and round, each on a fresh repository: first backup,
# unchanged re-run, incremental after ~5% change, full restore, read-all
# check; then repository size and peak memory of the first backup.
# Last lines: `RATIO <step> <tool time / rampart time>` (above 1: Rampart
# faster) for restic.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TOTAL_MB=${TOTAL_MB:-1024}
ROUNDS=${ROUNDS:-3}
TOOLS=${TOOLS:-"rampart restic borg"}
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
for t in restic borg; do
    command -v $t >/dev/null || { ((EUID == 0)) && apt-get install -y restic borgbackup >&2 || { log "missing $t"; exit 1; }; }
done
if [[ -z ${RAMPART_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release -p rampart) >&2
    RAMPART_BIN=$ROOT/target/release/rampart
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-backup-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export RAMPART_BACKUP_PASSWORD=bench-only-password RESTIC_PASSWORD=bench-only-password BORG_PASSPHRASE=bench-only-password
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
RESULTS=$TMP/results.tsv
: >"$RESULTS"

timed() { # NAME TOOL STEP -- command...: seconds and peak KiB into RESULTS
    local tool=$1 step=$2 round=$3
    shift 4
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$TMP/mem" "$@" >"$TMP/out" 2>&1 || { cat "$TMP/out" >&2; exit 1; }
    t1=$(date +%s.%N)
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$tool" "$step" "$(echo "$t1 - $t0" | bc)" "$(tail -1 "$TMP/mem")" >>"$RESULTS"
    log "$round $tool $step: $(echo "$t1 - $t0" | bc) s, $(tail -1 "$TMP/mem") KiB"
}

for r in $(seq "$ROUNDS"); do
    for tool in $TOOLS; do
        data=$TMP/data
        rm -rf "$data" "$TMP/repo" "$TMP/restore"
        TOTAL_MB=$TOTAL_MB python3 "$HERE/backup_dataset.py" "$data"
        sync
        cat $(find "$data" -type f) >/dev/null # warm page cache
        case $tool in
        rampart)
            "$RAMPART_BIN" backup init --repo "$TMP/repo" >/dev/null
            timed rampart first "$r" -- "$RAMPART_BIN" backup run --repo "$TMP/repo" "$data"
            timed rampart unchanged "$r" -- "$RAMPART_BIN" backup run --repo "$TMP/repo" "$data"
            size=$(du -sb "$TMP/repo" | cut -f1)
            python3 "$HERE/backup_dataset.py" "$data" --change 5
            timed rampart incremental "$r" -- "$RAMPART_BIN" backup run --repo "$TMP/repo" "$data"
            timed rampart restore "$r" -- "$RAMPART_BIN" backup restore --repo "$TMP/repo" latest --target "$TMP/restore"
            timed rampart check "$r" -- "$RAMPART_BIN" backup check --repo "$TMP/repo" --read-data
            ;;
        restic)
            restic init --repo "$TMP/repo" >/dev/null
            timed restic first "$r" -- restic --repo "$TMP/repo" backup "$data"
            timed restic unchanged "$r" -- restic --repo "$TMP/repo" backup "$data"
            size=$(du -sb "$TMP/repo" | cut -f1)
            python3 "$HERE/backup_dataset.py" "$data" --change 5
            timed restic incremental "$r" -- restic --repo "$TMP/repo" backup "$data"
            timed restic restore "$r" -- restic --repo "$TMP/repo" restore latest --target "$TMP/restore"
            timed restic check "$r" -- restic --repo "$TMP/repo" check --read-data
            ;;
        borg)
            borg init -e repokey "$TMP/repo" >/dev/null 2>&1
            timed borg first "$r" -- borg create --compression lz4 "$TMP/repo::a" "$data"
            timed borg unchanged "$r" -- borg create --compression lz4 "$TMP/repo::b" "$data"
            size=$(du -sb "$TMP/repo" | cut -f1)
            python3 "$HERE/backup_dataset.py" "$data" --change 5
            timed borg incremental "$r" -- borg create --compression lz4 "$TMP/repo::c" "$data"
            mkdir -p "$TMP/restore"
            timed borg restore "$r" -- sh -c "cd '$TMP/restore' && borg extract '$TMP/repo::c'"
            timed borg check "$r" -- borg check --verify-data "$TMP/repo"
            ;;
        esac
        printf '%s\t%s\trepo_bytes\t%s\t0\n' "$r" "$tool" "$size" >>"$RESULTS"
    done
done
python3 - "$RESULTS" <<'PY'
import sys
from statistics import median
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
val = {}
mem = {}
for r, tool, step, v, m in rows:
    val.setdefault((tool, step), []).append(float(v))
    if step == "first":
        mem.setdefault(tool, []).append(int(m))
tools = [t for t in ("rampart", "restic", "borg") if (t, "first") in val]
steps = ["first", "unchanged", "incremental", "restore", "check"]
print("| step | " + " | ".join(tools) + " | restic / rampart |")
print("|---|" + "---|" * (len(tools) + 1))
for s in steps:
    cells = [f"{median(val[(t, s)]):.2f} s" for t in tools]
    ratio = median(val[("restic", s)]) / median(val[("rampart", s)]) if ("restic", s) in val and ("rampart", s) in val else float("nan")
    print(f"| {s} | " + " | ".join(cells) + f" | {ratio:.2f} |")
print("| repository after first backup | " + " | ".join(f"{median(val[(t, 'repo_bytes')]) / 1e6:.0f} MB" for t in tools) + " | |")
print("| peak memory, first backup | " + " | ".join(f"{median(mem[t]) / 1024:.0f} MiB" for t in tools) + " | |")
for s in steps:
    if ("restic", s) in val and ("rampart", s) in val:
        print(f"RATIO {s} {median(val[('restic', s)]) / median(val[('rampart', s)]):.2f}")
PY
