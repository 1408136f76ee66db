#!/usr/bin/env python3
"""What the harness client costs: CPU per token, TTFT error, streams held, memory.

Starts the zero-think server (examples/zero_think.rs) as its own process, which streams
256 one-token chunks per request (the first at once, the rest GAP ms apart) and stamps on
its own clock when it wrote each request's first token. Then runs `harness run` with a
closed-loop load level of C workers against it for a few seconds, sampling the client's
CPU time (/proc/PID/stat) every 50 ms, and reports per (C, GAP):

- CPU-s per 1 M tokens: the client's CPU from the first call's start to the last call's
  end (start-up and the analysis after the run are outside that window), over the tokens
  streamed in it;
- TTFT error: the client's TTFT minus the server's (arrival to the first token's write),
  paired per request through the request number the server puts in `prompt_eval_count`;
  mean and p99, ms, over the measured requests (each worker's first request, which opens
  its connection, is warm-up);
- streams held: the most streams the server had open at once, against C;
- peak RSS of the client (VmHWM);
- for scale, the zero-think server's own CPU per token in the same window: the cost of
  one minimal stream on this machine (its timers, writes and wake-ups), a floor no
  client that reads every token as it arrives can go far below at the same gaps.

The client's runtime uses one worker thread per core unless TOKIO_WORKER_THREADS says
otherwise; `--env TOKIO_WORKER_THREADS=1` measures it with one. The workers' starts are
spread over one stream's length (`ramp_up_s`), since streams of equal length and equal gaps
would otherwise keep them in step, every first token of a round arriving in the same
millisecond; `--no-ramp` starts them together.

    make bench-client        # or: scripts/bench_client.py [--seconds 4] [--points 1x0,64x5]
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

from bench_proc import at, cpu_seconds, epoch, free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "harness"
SERVER = ROOT / "target" / "release" / "examples" / "zero_think"
TOKENS = 256
EXTRA_ENV = {}

SCENARIO = """
name: client-cost
seed: 1
model: m
server: {{ backend: ollama, url: "{url}", timeout_s: 600 }}
workload: {{ kind: prompts, synthetic: {{ input_tokens: 16, output_tokens: {tokens} }} }}
variants: {{ baseline: {{}} }}
load: {{ concurrency: [{c}], duration_s: {seconds}, warmup_requests: {c}, ramp_up_s: {ramp} }}
prime_on_switch: false
trials: 1
warmup: 0
"""


def peak_rss_mb(pid):
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def percentile(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def point(c, gap, seconds, ramp):
    port = free_port()
    server = subprocess.Popen(
        [SERVER, "--port", str(port), "--tokens", str(TOKENS), "--gap-ms", str(gap)],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                get(url + "/api/version")
                break
            except OSError:
                time.sleep(0.05)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            scenario = tmp / "client-cost.yaml"
            scenario.write_text(
                SCENARIO.format(url=url, c=c, seconds=seconds, tokens=TOKENS, ramp=ramp)
            )
            client = subprocess.Popen(
                [BIN, "run", scenario, "-q", "--out", tmp / "out"], env=dict(os.environ, **EXTRA_ENV),
                stdout=subprocess.DEVNULL,
            )
            samples, server_samples, rss = [], [], None
            while client.poll() is None:
                now = time.time()
                cpu, server_cpu = cpu_seconds(client.pid), cpu_seconds(server.pid)
                if cpu is not None and server_cpu is not None:
                    samples.append((now, sum(cpu)))
                    server_samples.append((now, sum(server_cpu)))
                    rss = peak_rss_mb(client.pid) or rss
                time.sleep(0.05)
            if client.returncode != 0:
                sys.exit(f"harness run failed with {client.returncode}")
            run = next((tmp / "out").iterdir())
            calls = [json.loads(l) for l in (run / "calls.jsonl").read_text().splitlines()]
        stamps = dict(get(url + "/stamps"))
        held = get(url + "/stats")["max_open"]
    finally:
        server.terminate()
        server.wait()

    calls = [c for c in calls if c["ok"]]


    start = min(epoch(x) for x in calls)
    end = max(epoch(x) + x["e2e_ms"] / 1e3 for x in calls)
    cpu = at(samples, end) - at(samples, start)
    server_cpu = at(server_samples, end) - at(server_samples, start)
    tokens = sum(x["output_tokens"] for x in calls)
    # Each worker's first request opens its connection (which the server cannot see) and
    # is warm-up; the error is measured on the rest.
    errors = [
        x["ttft_ms"] - stamps[x["prompt_tokens"]]
        for x in calls
        if x["phase"] == "measured" and x["prompt_tokens"] in stamps
    ]
    return {
        "c": c,
        "gap": gap,
        "calls": len(calls),
        "tokens": tokens,
        "cpu_per_m": cpu / tokens * 1e6,
        "server_per_m": server_cpu / tokens * 1e6,
        "ttft_err_mean": sum(errors) / len(errors),
        "ttft_err_p99": percentile(errors, 0.99),
        "held": held,
        "rss": rss,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="how long each point streams")
    ap.add_argument(
        "--points",
        default="1x0,16x0,64x0,1x5,16x5,64x5",
        help="C x gap-ms points, comma-separated",
    )
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the client")
    ap.add_argument(
        "--no-ramp",
        action="store_true",
        help="start all workers at once (default: spread over one stream's length)",
    )
    args = ap.parse_args()
    EXTRA_ENV.update(kv.split("=", 1) for kv in args.env)
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--quiet", "--bin", "harness", "--example", "zero_think"],
        cwd=ROOT,
        check=True,
    )
    print("| C × gap between tokens | CPU-s / 1 M tokens | server's CPU-s / 1 M tokens | TTFT error mean / p99 (ms) | streams held | peak RSS (MB) | calls |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for p in args.points.split(","):
        c, gap = p.split("x")
        ramp = 0.0 if args.no_ramp else TOKENS * float(gap) / 1e3
        r = point(int(c), float(gap), args.seconds, ramp)
        print(
            f"| {r['c']} × {r['gap']:g} ms | {r['cpu_per_m']:.2f} | {r['server_per_m']:.2f} | {r['ttft_err_mean']:+.2f} / {r['ttft_err_p99']:+.2f} "
            f"| {r['held']} of {r['c']} | {r['rss']:.0f} | {r['calls']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
