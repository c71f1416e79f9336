#!/usr/bin/env bash
# Rampart vs nginx as a plain reverse proxy, side by side in one run.
#
#   sudo bench/gateway.sh                       # full run (~5 min)
#   DURATION=3 ROUNDS=1 bench/gateway.sh        # quick check
#   RAMPART_BIN=target/release/rampart bench/gateway.sh   # skip the build
#
# What it does:
#   * a tiny nginx upstream (1 worker) on 127.0.0.1:18081 answering
#     "hello from upstream";
#   * nginx as reverse proxy (2 workers, upstream keepalive 64) on :18082
#     (HTTP) and :18443 (TLS, HTTP/1.1);
#   * Rampart "plain" (no access log, no bans) on :18090 / :18493 and
#     Rampart "protected" (rate limit that never triggers, IP deny list,
#     bans, default security headers) on :18091 / :18494;
#   * wrk runs, alternating nginx and Rampart, ROUNDS times per scenario:
#       http_get       GET via HTTP
#       http_post_1k   1 KiB POST via HTTP
#       https_get      GET via TLS, keep-alive
#       protected_get  Rampart protected GET vs nginx plain GET
#       default_get    Rampart as installed (defaults: WAF blocking with the
#                      rule set found, bans, headers, access log) vs nginx
#                      plain GET: what a user gets out of the box
#     and a table of medians (req/s, p99 latency) with Rampart/nginx ratios;
#   * idle-connection memory: IDLE_CONNECTIONS keep-alive connections held
#     open against a freshly started nginx and a freshly started Rampart;
#   * last lines: `RATIO <scenario> <ratio>` (throughput scenarios:
#     rampart req/s / nginx req/s; idle_memory: rampart MiB / nginx MiB).
#
# Progress goes to stderr, the report to stdout.
#
# Environment (defaults in brackets):
#   DURATION [10]          seconds per wrk run
#   ROUNDS [3]             rounds per scenario (medians are taken over them)
#   CONNECTIONS [32]       wrk connections (-c)
#   THREADS [2]            wrk threads (-t)
#   WARMUP [2]             seconds of unmeasured wrk load per target first (0: none)
#   SCENARIOS              subset/order of "http_get http_post_1k https_get protected_get default_get"
#   IDLE_CONNECTIONS [10000]  idle connections for the memory phase (0: skip it)
#   IDLE_SETTLE [2]        seconds to wait with the connections open before measuring
#   READY_TIMEOUT [30]     seconds a server has to start answering
#   RAMPART_BIN            use this binary instead of `cargo build --release -p rampart`
#   NGINX_BIN              nginx binary [nginx on PATH, else /usr/sbin/nginx]
#   OUT_DIR                if set, copy the raw results and wrk outputs there
#   KEEP_TMP [0]           1: keep the temporary directory (path is printed)
#   UPSTREAM_PORT [18081] NGINX_HTTP_PORT [18082] NGINX_HTTPS_PORT [18443]
#   RAMPART_HTTP_PORT [18090] RAMPART_HTTPS_PORT [18493] RAMPART_ADMIN_PORT [18099]
#   PROTECTED_HTTP_PORT [18091] PROTECTED_HTTPS_PORT [18494] PROTECTED_ADMIN_PORT [18098]
#   DEFAULT_HTTP_PORT [18092] DEFAULT_HTTPS_PORT [18495] DEFAULT_ADMIN_PORT [18097]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=${DURATION:-10}
DURATION=${DURATION%s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
WARMUP=${WARMUP%s}
SCENARIOS=${SCENARIOS:-"http_get http_post_1k https_get protected_get default_get"}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
IDLE_SETTLE=${IDLE_SETTLE:-2}
READY_TIMEOUT=${READY_TIMEOUT:-30}
KEEP_TMP=${KEEP_TMP:-0}
OUT_DIR=${OUT_DIR:-}

UPSTREAM_PORT=${UPSTREAM_PORT:-18081}
NGINX_HTTP_PORT=${NGINX_HTTP_PORT:-18082}
NGINX_HTTPS_PORT=${NGINX_HTTPS_PORT:-18443}
RAMPART_HTTP_PORT=${RAMPART_HTTP_PORT:-18090}
RAMPART_HTTPS_PORT=${RAMPART_HTTPS_PORT:-18493}
RAMPART_ADMIN_PORT=${RAMPART_ADMIN_PORT:-18099}
PROTECTED_HTTP_PORT=${PROTECTED_HTTP_PORT:-18091}
PROTECTED_HTTPS_PORT=${PROTECTED_HTTPS_PORT:-18494}
PROTECTED_ADMIN_PORT=${PROTECTED_ADMIN_PORT:-18098}
DEFAULT_HTTP_PORT=${DEFAULT_HTTP_PORT:-18092}
DEFAULT_HTTPS_PORT=${DEFAULT_HTTPS_PORT:-18495}
DEFAULT_ADMIN_PORT=${DEFAULT_ADMIN_PORT:-18097}
PORT_VARS=(UPSTREAM_PORT NGINX_HTTP_PORT NGINX_HTTPS_PORT RAMPART_HTTP_PORT
    RAMPART_HTTPS_PORT RAMPART_ADMIN_PORT PROTECTED_HTTP_PORT
    PROTECTED_HTTPS_PORT PROTECTED_ADMIN_PORT DEFAULT_HTTP_PORT DEFAULT_HTTPS_PORT DEFAULT_ADMIN_PORT)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in DURATION ROUNDS CONNECTIONS THREADS WARMUP IDLE_CONNECTIONS IDLE_SETTLE \
    READY_TIMEOUT "${PORT_VARS[@]}"; do
    is_uint "${!v}" || die "$v must be a whole number, got '${!v}'"
done
((ROUNDS >= 1)) || die "ROUNDS must be at least 1"
((DURATION >= 1)) || die "DURATION must be at least 1"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS ($CONNECTIONS) must be at least THREADS ($THREADS)"
for s in $SCENARIOS; do
    case $s in http_get | http_post_1k | https_get | protected_get | default_get) ;;
    *) die "unknown scenario '$s' in SCENARIOS (known: http_get http_post_1k https_get protected_get default_get)" ;;
    esac
done

# ---------------------------------------------------------------- setup ----

need_install=()
command -v wrk >/dev/null 2>&1 || need_install+=(wrk)
if [[ -z ${NGINX_BIN:-} ]]; then
    NGINX_BIN=$(command -v nginx 2>/dev/null || true)
    [[ -z $NGINX_BIN && -x /usr/sbin/nginx ]] && NGINX_BIN=/usr/sbin/nginx
    [[ -z $NGINX_BIN ]] && need_install+=(nginx-light)
fi
if ((${#need_install[@]})); then
    ((EUID == 0)) || die "missing ${need_install[*]}: run as root, or install them: apt-get install -y wrk nginx-light"
    log "installing ${need_install[*]} (apt-get install -y wrk nginx-light)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y wrk nginx-light >&2 ||
        { apt-get update >&2 && apt-get install -y wrk nginx-light >&2; } ||
        die "apt-get install -y wrk nginx-light failed"
    NGINX_BIN=${NGINX_BIN:-$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)}
fi
[[ -x $NGINX_BIN ]] || die "nginx not found at '$NGINX_BIN'"
command -v wrk >/dev/null 2>&1 || die "wrk not found after installation"
for tool in openssl curl python3 awk pgrep; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required but not installed"
done

if [[ -z ${RAMPART_BIN:-} ]]; then
    log "building rampart: cargo build --release -p rampart (set RAMPART_BIN to skip)"
    (cd "$ROOT" && cargo build --release -p rampart) >&2 || die "cargo build --release -p rampart failed"
    RAMPART_BIN=$ROOT/target/release/rampart
fi
[[ -x $RAMPART_BIN ]] || die "RAMPART_BIN '$RAMPART_BIN' is not an executable file"
RAMPART_BIN=$(cd "$(dirname "$RAMPART_BIN")" && pwd)/$(basename "$RAMPART_BIN")

# Open files: 10k idle connections need more than the usual 1024. Raise the
# soft limit as far as allowed; everything started below inherits it.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[[ $NOFILE == unlimited ]] && NOFILE=65536
if ((NOFILE < 65536)); then
    log "note: open-file limit is $NOFILE (hard limit; 65536 was not allowed)"
fi
if ((IDLE_CONNECTIONS > 0 && NOFILE < IDLE_CONNECTIONS + 200)); then
    die "open-file limit $NOFILE is too low for IDLE_CONNECTIONS=$IDLE_CONNECTIONS; lower IDLE_CONNECTIONS or raise the hard limit"
fi

# Busy or duplicate ports: fail early with a clear message.
port_busy() {
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}
declare -A seen_port=()
for v in "${PORT_VARS[@]}"; do
    p=${!v}
    [[ -z ${seen_port[$p]:-} ]] || die "$v and ${seen_port[$p]} are both $p"
    seen_port[$p]=$v
    if port_busy "$p"; then
        die "port $p ($v) is already in use; stop what listens there (ss -ltnp 'sport = :$p') or set $v to a free port"
    fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-bench.XXXXXX")
PIDS=()
SERVER_LOGS=() # shown when the script fails

# Stops one process we started (and its direct children, for nginx workers).
stop_proc() {
    local pid=$1 kids i
    kids=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop on SIGTERM within 10s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
    local keep=()
    for i in ${PIDS[@]+"${PIDS[@]}"}; do [[ $i == "$pid" ]] || keep+=("$i"); done
    PIDS=(${keep[@]+"${keep[@]}"})
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do stop_proc "$pid"; done
    if ((rc != 0 && rc != 130 && rc != 143)); then
        local f
        for f in ${SERVER_LOGS[@]+"${SERVER_LOGS[@]}"} "$TMP"/*-error.log; do
            [[ -s $f ]] || continue
            log "---- last lines of $(basename "$f") ----"
            tail -n 15 "$f" >&2 || true
        done
    fi
    if [[ -n $OUT_DIR && -d $TMP ]]; then
        mkdir -p "$OUT_DIR"
        cp "$TMP"/results.tsv "$TMP"/memory.env "$TMP"/wrk-*.txt "$TMP"/*.conf "$TMP"/*.toml \
            "$OUT_DIR"/ 2>/dev/null || true
        log "raw results copied to $OUT_DIR"
    fi
    if [[ $KEEP_TMP == 1 ]]; then
        log "kept temporary directory $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_bg NAME CMD... : runs CMD in the background, output to $TMP/NAME.log;
# the pid is left in BG_PID.
start_bg() {
    local name=$1
    shift
    "$@" >"$TMP/$name.log" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
    SERVER_LOGS+=("$TMP/$name.log")
}

# wait_ready NAME PID URL : until URL answers 200 (the process must stay up).
wait_ready() {
    local name=$1 pid=$2 url=$3 deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        kill -0 "$pid" 2>/dev/null ||
            die "$name exited during start-up; its log:$(printf '\n'; tail -n 30 "$TMP/$name.log")"
        if curl -ksS -o /dev/null --max-time 2 -w '%{http_code}' "$url" 2>/dev/null | grep -qx 200; then
            return 0
        fi
        ((SECONDS < deadline)) || die "$name did not answer 200 at $url within ${READY_TIMEOUT}s; its log:$(printf '\n'; tail -n 30 "$TMP/$name.log")"
        sleep 0.2
    done
}

# render TEMPLATE OUT : fills @NAME@ placeholders from shell variables.
render() {
    local text name
    text=$(<"$1")
    for name in TMP NOFILE WORKER_CONNECTIONS USER_DIRECTIVE MAX_CONNECTIONS \
        MAX_CONNECTIONS_PER_IP "${PORT_VARS[@]}"; do
        text=${text//@$name@/${!name}}
    done
    if [[ $text =~ @[A-Z_]+@ ]]; then
        die "unfilled placeholder ${BASH_REMATCH[0]} in $1"
    fi
    printf '%s\n' "$text" >"$2"
}

# Values used by the templates.
USER_DIRECTIVE=""
((EUID == 0)) && USER_DIRECTIVE="user $(id -un) $(id -gn);"
WORKER_CONNECTIONS=$((IDLE_CONNECTIONS + 1000 > 20000 ? IDLE_CONNECTIONS + 1000 : 20000))
MAX_CONNECTIONS=$WORKER_CONNECTIONS
MAX_CONNECTIONS_PER_IP=$((IDLE_CONNECTIONS + 100 > 20000 ? IDLE_CONNECTIONS + 100 : 20000))

mkdir -p "$TMP"/nginx-upstream-tmp "$TMP"/nginx-proxy-tmp
render "$HERE/nginx/upstream.conf.tmpl" "$TMP/nginx-upstream.conf"
render "$HERE/nginx/proxy.conf.tmpl" "$TMP/nginx-proxy.conf"
render "$HERE/rampart/plain.toml.tmpl" "$TMP/rampart-plain.toml"
render "$HERE/rampart/protected.toml.tmpl" "$TMP/rampart-protected.toml"
render "$HERE/rampart/default.toml.tmpl" "$TMP/rampart-default.toml"
cp "$HERE/lib/post_1k.lua" "$TMP/post_1k.lua"

log "temporary directory: $TMP"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1 ||
    die "openssl could not generate the certificate: $(cat "$TMP/openssl.log")"

for conf in nginx-upstream nginx-proxy; do
    "$NGINX_BIN" -t -p "$TMP" -e "$TMP/$conf-error.log" -c "$TMP/$conf.conf" >"$TMP/$conf-test.log" 2>&1 ||
        die "nginx rejects $conf.conf:$(printf '\n'; cat "$TMP/$conf-test.log")"
done
for conf in rampart-plain rampart-protected rampart-default; do
    "$RAMPART_BIN" check-config --config "$TMP/$conf.toml" >"$TMP/$conf-check.log" 2>&1 ||
        die "rampart rejects $conf.toml:$(printf '\n'; cat "$TMP/$conf-check.log")"
done

start_nginx() { # LOGNAME CONF (nginx's own error log: $TMP/<conf>-error.log)
    start_bg "$1" "$NGINX_BIN" -p "$TMP" -e "$TMP/$2-error.log" -c "$TMP/$2.conf"
}
start_rampart() { # NAME CONFIG
    start_bg "$1" env NO_COLOR=1 "$RAMPART_BIN" serve --config "$2" --grace 2s
}

start_nginx nginx-upstream nginx-upstream
UPSTREAM_PID=$BG_PID
wait_ready nginx-upstream "$UPSTREAM_PID" "http://127.0.0.1:$UPSTREAM_PORT/"

start_nginx nginx-proxy nginx-proxy
NGINX_PID=$BG_PID
start_rampart rampart-plain "$TMP/rampart-plain.toml"
RAMPART_PID=$BG_PID
start_rampart rampart-protected "$TMP/rampart-protected.toml"
PROTECTED_PID=$BG_PID
start_rampart rampart-default "$TMP/rampart-default.toml"
DEFAULT_PID=$BG_PID
wait_ready nginx-proxy "$NGINX_PID" "http://127.0.0.1:$NGINX_HTTP_PORT/"
wait_ready nginx-proxy "$NGINX_PID" "https://127.0.0.1:$NGINX_HTTPS_PORT/"
wait_ready rampart-plain "$RAMPART_PID" "http://127.0.0.1:$RAMPART_HTTP_PORT/"
wait_ready rampart-plain "$RAMPART_PID" "https://127.0.0.1:$RAMPART_HTTPS_PORT/"
wait_ready rampart-protected "$PROTECTED_PID" "http://127.0.0.1:$PROTECTED_HTTP_PORT/"
wait_ready rampart-default "$DEFAULT_PID" "http://127.0.0.1:$DEFAULT_HTTP_PORT/"
log "all servers answer"

# url_for SCENARIO TARGET
url_for() {
    case $1:$2 in
    http_get:nginx | http_post_1k:nginx | protected_get:nginx | default_get:nginx) echo "http://127.0.0.1:$NGINX_HTTP_PORT/" ;;
    http_get:rampart | http_post_1k:rampart) echo "http://127.0.0.1:$RAMPART_HTTP_PORT/" ;;
    https_get:nginx) echo "https://127.0.0.1:$NGINX_HTTPS_PORT/" ;;
    https_get:rampart) echo "https://127.0.0.1:$RAMPART_HTTPS_PORT/" ;;
    protected_get:rampart) echo "http://127.0.0.1:$PROTECTED_HTTP_PORT/" ;;
    default_get:rampart) echo "http://127.0.0.1:$DEFAULT_HTTP_PORT/" ;;
    *) die "no URL for $1/$2" ;;
    esac
}

# Sanity checks: every path returns the upstream's body; POST works; the
# protected variant really adds its security headers.
for url in "http://127.0.0.1:$NGINX_HTTP_PORT/" "https://127.0.0.1:$NGINX_HTTPS_PORT/" \
    "http://127.0.0.1:$RAMPART_HTTP_PORT/" "https://127.0.0.1:$RAMPART_HTTPS_PORT/" \
    "http://127.0.0.1:$PROTECTED_HTTP_PORT/"; do
    body=$(curl -ksS --max-time 5 "$url") || die "GET $url failed"
    [[ $body == "hello from upstream" ]] || die "GET $url returned an unexpected body: '$body'"
    code=$(curl -ksS --max-time 5 -o /dev/null -w '%{http_code}' \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-binary "$(printf 'a%.0s' $(seq 1024))" "$url") || die "POST $url failed"
    [[ $code == 200 ]] || die "POST of 1 KiB to $url returned $code, expected 200"
done
headers=$(curl -sS --max-time 5 -D - -o /dev/null "http://127.0.0.1:$PROTECTED_HTTP_PORT/")
grep -qi '^x-content-type-options: *nosniff' <<<"$headers" ||
    die "the protected Rampart did not add X-Content-Type-Options; response headers:$(printf '\n%s' "$headers")"
log "sanity checks passed (bodies, 1 KiB POST, security headers on the protected variant)"

# ------------------------------------------------------------ throughput ----

RESULTS=$TMP/results.tsv
: >"$RESULTS"

# run_wrk SCENARIO TARGET ROUND : one measured wrk run, appended to RESULTS.
run_wrk() {
    local scen=$1 target=$2 round=$3 url out rc=0 parsed
    url=$(url_for "$scen" "$target")
    out=$TMP/wrk-$scen-$target-r$round.txt
    local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
    [[ $scen == http_post_1k ]] && args+=(-s "$TMP/post_1k.lua")
    wrk "${args[@]}" "$url" >"$out" 2>&1 || rc=$?
    ((rc == 0)) || log "wrk exited with status $rc for $scen/$target (see below)"
    # rps, p99 in ms, non-2xx count, socket errors
    parsed=$(awk '
        /^Requests\/sec:/ { rps = $2 }
        /^[ \t]+99%[ \t]/ {
            v = $2
            if (v ~ /us$/)      { sub(/us$/, "", v); p99 = v / 1000 }
            else if (v ~ /ms$/) { sub(/ms$/, "", v); p99 = v + 0 }
            else if (v ~ /m$/)  { sub(/m$/, "", v);  p99 = v * 60000 }
            else if (v ~ /s$/)  { sub(/s$/, "", v);  p99 = v * 1000 }
        }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
        END {
            printf "%s\t%s\t%d\t%d\n", (rps == "" ? "NA" : rps),
                (p99 == "" ? "NA" : sprintf("%.3f", p99)), non2xx, errs
        }' "$out")
    printf '%s\t%s\t%s\t%s\n' "$round" "$scen" "$target" "$parsed" >>"$RESULTS"
    local rps p99 non2xx errs
    IFS=$'\t' read -r rps p99 non2xx errs <<<"$parsed"
    log "round $round  $(printf '%-14s %-8s' "$scen" "$target") $rps req/s  p99 $p99 ms${non2xx:+  non-2xx $non2xx}  socket errors $errs"
    if [[ $rps == NA || $non2xx != 0 || $errs != 0 || $rc != 0 ]]; then
        log "  wrk output for $scen/$target:"
        sed 's/^/    /' "$out" >&2
    fi
}

# Other work on the machine skews everything: sample how busy the CPUs are
# (over 1 s, with our servers idle) before measuring.
cpu_ticks() { awk '$1 == "cpu" { idle = $5 + $6; t = 0; for (i = 2; i <= NF; i++) t += $i; print t, idle }' /proc/stat; }
read -r t0 i0 < <(cpu_ticks)
sleep 1
read -r t1 i1 < <(cpu_ticks)
BUSY_BEFORE=$(( (t1 - t0) > 0 ? 100 * ((t1 - t0) - (i1 - i0)) / (t1 - t0) : 0 ))
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
if ((BUSY_BEFORE > 15)); then
    log "note: the CPUs are ${BUSY_BEFORE}% busy before measuring: other work on this machine will skew the numbers"
fi

if ((WARMUP > 0)); then
    log "warming up every target for ${WARMUP}s"
    for url in "http://127.0.0.1:$NGINX_HTTP_PORT/" "http://127.0.0.1:$RAMPART_HTTP_PORT/" \
        "https://127.0.0.1:$NGINX_HTTPS_PORT/" "https://127.0.0.1:$RAMPART_HTTPS_PORT/" \
        "http://127.0.0.1:$PROTECTED_HTTP_PORT/" "http://127.0.0.1:$DEFAULT_HTTP_PORT/"; do
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$url" >/dev/null 2>&1 || true
    done
fi

log "measuring: ${ROUNDS} round(s) x {$SCENARIOS} x {nginx, rampart}, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
for ((round = 1; round <= ROUNDS; round++)); do
    for scen in $SCENARIOS; do
        # Alternate who goes first, so neither always runs on a warmer machine.
        if ((round % 2 == 1)); then order="nginx rampart"; else order="rampart nginx"; fi
        for target in $order; do run_wrk "$scen" "$target" "$round"; done
    done
done

for pid in "$RAMPART_PID" "$PROTECTED_PID" "$DEFAULT_PID"; do
    kill -0 "$pid" 2>/dev/null || die "a Rampart process (pid $pid) died during the measurements"
done

# ---------------------------------------------------------- idle memory ----

MEMORY=$TMP/memory.env
: >"$MEMORY"

status_kib() { # PID FIELD -> kB value from /proc/PID/status, or 0
    awk -v f="$2:" '$1 == f { print $2; found = 1 } END { if (!found) print 0 }' \
        "/proc/$1/status" 2>/dev/null || echo 0
}
pss_kib() { # PID -> Pss in kB, or 0
    awk '$1 == "Pss:" { print $2; found = 1 } END { if (!found) print 0 }' \
        "/proc/$1/smaps_rollup" 2>/dev/null || echo 0
}
tree_sum() { # FIELD PID : sum over PID and its children (FIELD "Pss" reads smaps_rollup)
    local field=$1 pid=$2 total=0 p v
    for p in "$pid" $(pgrep -P "$pid" 2>/dev/null || true); do
        if [[ $field == Pss ]]; then v=$(pss_kib "$p"); else v=$(status_kib "$p" "$field"); fi
        total=$((total + v))
    done
    echo "$total"
}

# hold_idle NAME PORT : opens IDLE_CONNECTIONS and leaves the python client
# running (pid in IDLE_PID) once they are all tried; IDLE_OPEN = how many
# opened. (Sets globals: do not call it in $(...).)
hold_idle() {
    local name=$1 port=$2 deadline=$((SECONDS + 120 + IDLE_CONNECTIONS / 50))
    python3 "$HERE/lib/idle_conns.py" --port "$port" --count "$IDLE_CONNECTIONS" \
        >"$TMP/idle-$name.out" 2>"$TMP/idle-$name.log" &
    IDLE_PID=$!
    PIDS+=("$IDLE_PID")
    until grep -q '^READY' "$TMP/idle-$name.out"; do
        kill -0 "$IDLE_PID" 2>/dev/null ||
            die "the idle-connection client for $name exited early:$(printf '\n'; cat "$TMP/idle-$name.log")"
        ((SECONDS < deadline)) || die "opening $IDLE_CONNECTIONS connections to $name took too long"
        sleep 0.5
    done
    local ready
    ready=$(grep '^READY' "$TMP/idle-$name.out")
    log "$name: $ready"
    if [[ -s $TMP/idle-$name.log ]]; then sed 's/^/    /' "$TMP/idle-$name.log" >&2; fi
    IDLE_OPEN=$(sed -n 's/^READY open=\([0-9]*\).*/\1/p' "$TMP/idle-$name.out")
}

# release_idle NAME : stops the client; IDLE_ALIVE = connections still open.
release_idle() {
    local name=$1
    kill -TERM "$IDLE_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q '^DONE' "$TMP/idle-$name.out" && break
        kill -0 "$IDLE_PID" 2>/dev/null || break
        sleep 0.1
    done
    stop_proc "$IDLE_PID"
    IDLE_ALIVE=$(sed -n 's/^DONE alive=\([0-9]*\).*/\1/p' "$TMP/idle-$name.out")
    IDLE_ALIVE=${IDLE_ALIVE:-NA}
    log "$name: $(grep '^DONE' "$TMP/idle-$name.out" || echo 'client gave no DONE line')"
}

if ((IDLE_CONNECTIONS > 0)); then
    log "idle memory: restarting nginx proxy and Rampart so peak RSS reflects only this phase"
    stop_proc "$PROTECTED_PID"
    stop_proc "$DEFAULT_PID"
    stop_proc "$RAMPART_PID"
    stop_proc "$NGINX_PID"
    start_nginx nginx-proxy-idle nginx-proxy
    NGINX_PID=$BG_PID
    start_rampart rampart-idle "$TMP/rampart-plain.toml"
    RAMPART_PID=$BG_PID
    wait_ready nginx-proxy-idle "$NGINX_PID" "http://127.0.0.1:$NGINX_HTTP_PORT/"
    wait_ready rampart-idle "$RAMPART_PID" "http://127.0.0.1:$RAMPART_HTTP_PORT/"
    sleep 1
    echo "connections=$IDLE_CONNECTIONS" >>"$MEMORY"

    echo "nginx_base_rss_kib=$(tree_sum VmRSS "$NGINX_PID")" >>"$MEMORY"
    log "nginx: opening $IDLE_CONNECTIONS idle keep-alive connections"
    hold_idle nginx "$NGINX_HTTP_PORT"
    sleep "$IDLE_SETTLE"
    {
        echo "nginx_open=$IDLE_OPEN"
        echo "nginx_rss_kib=$(tree_sum VmRSS "$NGINX_PID")"
        echo "nginx_hwm_kib=$(tree_sum VmHWM "$NGINX_PID")"
        echo "nginx_pss_kib=$(tree_sum Pss "$NGINX_PID")"
        echo "nginx_processes=$((1 + $(pgrep -c -P "$NGINX_PID" || true)))"
    } >>"$MEMORY"
    release_idle nginx
    echo "nginx_alive=$IDLE_ALIVE" >>"$MEMORY"

    echo "rampart_base_rss_kib=$(status_kib "$RAMPART_PID" VmRSS)" >>"$MEMORY"
    log "rampart: opening $IDLE_CONNECTIONS idle keep-alive connections"
    hold_idle rampart "$RAMPART_HTTP_PORT"
    sleep "$IDLE_SETTLE"
    {
        echo "rampart_open=$IDLE_OPEN"
        echo "rampart_rss_kib=$(status_kib "$RAMPART_PID" VmRSS)"
        echo "rampart_hwm_kib=$(status_kib "$RAMPART_PID" VmHWM)"
        echo "rampart_pss_kib=$(pss_kib "$RAMPART_PID")"
    } >>"$MEMORY"
    release_idle rampart
    echo "rampart_alive=$IDLE_ALIVE" >>"$MEMORY"
    kill -0 "$RAMPART_PID" 2>/dev/null || die "Rampart died during the idle-connection phase"
fi

# ---------------------------------------------------------------- report ----

echo "Rampart vs nginx reverse proxy — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) CPU(s), $(uname -sr); load generator, proxies and upstream share them"
echo "rampart: $("$RAMPART_BIN" --version 2>&1 | head -n1) ($RAMPART_BIN)"
echo "nginx:   $("$NGINX_BIN" -v 2>&1 | head -n1 | sed 's/^nginx version: //'); wrk: $(wrk -v 2>&1 | head -n1 | awk '{print $2}')"
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, $ROUNDS round(s), warm-up ${WARMUP}s; open-file limit $NOFILE"
echo "CPU busy just before measuring (servers idle): ${BUSY_BEFORE}%; load average then: $LOAD_BEFORE"
echo
python3 "$HERE/lib/report.py" "$RESULTS" "$MEMORY"
