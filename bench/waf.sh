#!/usr/bin/env bash
# Rampart's WAF vs nginx + ModSecurity v3, same OWASP CRS v4 (../shared/crs)
# at paranoia level 1 in blocking mode, same upstream, in one run.
#
#   bench/waf.sh                              # full run (~6 min)
#   DURATION=3 ROUNDS=1 bench/waf.sh          # quick check
#   RAMPART_BIN=target/release/rampart bench/waf.sh
#
# Targets (each scenario runs them in turn, ROUNDS times, medians taken):
#   nginx          nginx 2 workers, reverse proxy, no WAF
#   modsecurity    the same nginx server block with ModSecurity v3 + CRS
#   rampart        Rampart with the WAF blocking (CRS, PL1)
#   rampart_nowaf  Rampart with the WAF off
# Scenarios (wrk -t THREADS -c CONNECTIONS):
#   get_args    GET /search?q=shoes&page=2&sort=price
#   form_1k     POST, 1 KiB urlencoded form (35 fields)
#   form_16k    POST, 16 KiB urlencoded form (35 fields, longer values)
#   args_500    POST, urlencoded form of 500 short fields (about 5 KiB)
#   json_4k     POST, 4 KiB JSON document
#   attack      GET /?id=1' or 1=1-- (refused with 403 by both WAFs)
# Last lines: `RATIO <scenario> <rampart/modsecurity req/s>`, then the WAF's
# CPU cost per request byte and per argument (from form_1k, form_16k and
# args_500: both cores busy, so a request costs 2 s / req/s of CPU).
#
# Needs nginx, libnginx-mod-http-modsecurity, wrk (installed with apt-get when
# missing and running as root) and ../shared/crs.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CRS=${CRS:-$(cd "$ROOT/../shared/crs" 2>/dev/null && pwd || true)}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
SCENARIOS=${SCENARIOS:-"get_args form_1k form_16k args_500 json_4k attack"}
TARGETS=${TARGETS:-"nginx modsecurity rampart rampart_nowaf"}
UPSTREAM_PORT=${UPSTREAM_PORT:-18181}
NGINX_PORT=${NGINX_PORT:-18182}
MODSEC_PORT=${MODSEC_PORT:-18183}
RAMPART_PORT=${RAMPART_PORT:-18190}
NOWAF_PORT=${NOWAF_PORT:-18191}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ -n $CRS && -d $CRS/rules ]] || die "the CRS is not at ../shared/crs (set CRS=DIR)"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
[[ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ]] || missing+=(libnginx-mod-http-modsecurity)
if ((${#missing[@]})); then
    ((EUID == 0)) || die "missing ${missing[*]}: apt-get install -y ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
if [[ -z ${RAMPART_BIN:-} ]]; then
    log "building rampart (cargo build --release -p rampart)"
    (cd "$ROOT" && cargo build --release -p rampart) >&2
    RAMPART_BIN=$ROOT/target/release/rampart
fi
ulimit -n 65536 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-waf-bench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in ${PIDS[@]+"${PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
    for p in ${PIDS[@]+"${PIDS[@]}"}; do wait "$p" 2>/dev/null || true; done
    [[ ${KEEP_TMP:-0} == 1 ]] && log "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

fill() { # TEMPLATE OUT NAME=VALUE...
    local t=$1 o=$2
    shift 2
    cp "$t" "$o"
    local kv
    for kv in "$@"; do sed -i "s|@${kv%%=*}@|${kv#*=}|g" "$o"; done
}
mkdir -p "$TMP/nginx-tmp" "$TMP/modsec-tmp"
fill "$HERE/waf/modsecurity.conf.tmpl" "$TMP/modsecurity.conf" TMP="$TMP" CRS="$CRS"
fill "$HERE/waf/nginx.conf.tmpl" "$TMP/nginx.conf" TMP="$TMP" UPSTREAM_PORT="$UPSTREAM_PORT" \
    NGINX_PORT="$NGINX_PORT" MODSEC_PORT="$MODSEC_PORT"
fill "$HERE/waf/rampart.toml.tmpl" "$TMP/rampart.toml" TMP="$TMP" NAME=waf PORT="$RAMPART_PORT" CRS="$CRS" \
    MODE=blocking UPSTREAM_PORT="$UPSTREAM_PORT"
fill "$HERE/waf/rampart.toml.tmpl" "$TMP/nowaf.toml" TMP="$TMP" NAME=nowaf PORT="$NOWAF_PORT" CRS="$CRS" \
    MODE=off UPSTREAM_PORT="$UPSTREAM_PORT"
python3 "$HERE/waf/make_bodies.py" "$TMP" >/dev/null

log "starting nginx (upstream, plain proxy, ModSecurity)"
"$NGINX_BIN" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" >"$TMP/nginx.out" 2>&1 &
PIDS+=($!)
RAMPART_LOG=warn "$RAMPART_BIN" serve --config "$TMP/rampart.toml" >"$TMP/rampart.out" 2>&1 &
PIDS+=($!)
RAMPART_LOG=warn "$RAMPART_BIN" serve --config "$TMP/nowaf.toml" >"$TMP/nowaf.out" 2>&1 &
PIDS+=($!)

port_of() {
    case $1 in
    nginx) echo "$NGINX_PORT" ;; modsecurity) echo "$MODSEC_PORT" ;;
    rampart) echo "$RAMPART_PORT" ;; rampart_nowaf) echo "$NOWAF_PORT" ;;
    esac
}
for t in $TARGETS; do
    p=$(port_of "$t")
    for _ in $(seq 150); do
        curl -fsS -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null && break
        sleep 0.2
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$p/" || { tail -20 "$TMP"/*.out "$TMP/nginx-error.log" >&2; die "$t does not answer on :$p"; }
done
# Both WAFs must refuse the attack and pass the benign requests.
for t in modsecurity rampart; do
    p=$(port_of "$t")
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/?id=1%27%20or%201=1--")
    [[ $code == 403 ]] || die "$t answered $code, not 403, to the attack"
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/search?q=shoes&page=2&sort=price")
    [[ $code == 200 ]] || die "$t answered $code to the benign GET"
done

wrk_args() { # SCENARIO PORT
    case $1 in
    get_args) echo "http://127.0.0.1:$2/search?q=shoes&page=2&sort=price" ;;
    form_1k) echo "-s $TMP/post_form_1k.lua http://127.0.0.1:$2/account" ;;
    form_16k) echo "-s $TMP/post_form_16k.lua http://127.0.0.1:$2/account" ;;
    args_500) echo "-s $TMP/post_args_500.lua http://127.0.0.1:$2/account" ;;
    json_4k) echo "-s $TMP/post_json_4k.lua http://127.0.0.1:$2/api/orders" ;;
    attack) echo "http://127.0.0.1:$2/?id=1%27%20or%201=1--" ;;
    esac
}
RESULTS=$TMP/results.tsv
: >"$RESULTS"
for s in $SCENARIOS; do
    if ((WARMUP > 0)); then
        for t in $TARGETS; do
            # shellcheck disable=SC2046
            wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" $(wrk_args "$s" "$(port_of "$t")") >/dev/null 2>&1 || true
        done
    fi
    for r in $(seq "$ROUNDS"); do
        for t in $TARGETS; do
            out=$TMP/wrk-$s-$t-$r.txt
            # shellcheck disable=SC2046
            wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency $(wrk_args "$s" "$(port_of "$t")") >"$out" 2>&1 || true
            rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
            p50=$(awk '$1=="50%" {print $2}' "$out")
            p99=$(awk '$1=="99%" {print $2}' "$out")
            non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$t" "${rps:-0}" "${p50:-n/a}" "${p99:-n/a}" "${non2xx:-0}" >>"$RESULTS"
            log "$s round $r $t: ${rps:-0} req/s, p50 ${p50:-?}, p99 ${p99:-?}, non-2xx ${non2xx:-0}"
        done
    done
done
[[ -n ${OUT_DIR:-} ]] && { mkdir -p "$OUT_DIR"; cp "$TMP"/results.tsv "$TMP"/wrk-*.txt "$OUT_DIR"/; }
python3 "$HERE/waf/report.py" "$RESULTS"
