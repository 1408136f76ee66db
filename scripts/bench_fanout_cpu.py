#!/usr/bin/env python3
"""How much CPU the harness client uses while an agent graph fans out wide.

Starts the simulated server as its own process (so its CPU is not counted), runs an
agent_graph whose middle agent fans out to 64 instances, each a three-turn tool loop with a
two-second tool step, against it with `harness run`, and samples the client's CPU time
(/proc/PID/stat) every 50 ms. It reports the client's CPU as a share of one core over two
windows: from the first call's start to the last call's end (streaming included; the
analysis after the run is outside it), and between calls: while all 64 instances wait in
their tool steps and no call is in flight.

    make bench-fanout        # or: scripts/bench_fanout_cpu.py [--fan-out 64] [--trials 2]
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

from bench_proc import TICK, at, cpu_seconds, epoch, free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "harness"

SCENARIO = """
name: fanout-cpu
seed: 1
model: gemma3:latest
server: {{ backend: ollama, url: "{url}", timeout_s: 600 }}
workload: {{ kind: agent_graph, task: "Split the work.\\n- a\\n- b\\n- c\\n- d" }}
prime_on_switch: false
agents:
  planner: {{ persona: "You plan.", max_tokens: 16 }}
  worker:
    persona: "You research one item and call tools."
    after: [planner]
    fan_out: {fan_out}
    turns: 3
    tool: {{ wait_ms: 2000, result_tokens: 64 }}
    max_tokens: 32
  writer: {{ persona: "You merge.", after: [worker], max_tokens: 32 }}
variants: {{ baseline: {{}} }}
arms: [[baseline]]
trials: {trials}
warmup: 0
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fan-out", type=int, default=64)
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)

    port = free_port()
    sim = subprocess.Popen(
        [BIN, "sim-server", "--port", str(port), "--parallel", str(args.fan_out)],
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            scenario = tmp / "fanout.yaml"
            scenario.write_text(
                SCENARIO.format(url=f"http://127.0.0.1:{port}", fan_out=args.fan_out, trials=args.trials)
            )
            client = subprocess.Popen(
                [BIN, "run", scenario, "-q", "--out", tmp / "out"],
                stdout=subprocess.DEVNULL,
            )
            samples = []
            while client.poll() is None:
                cpu = cpu_seconds(client.pid)
                if cpu is not None:
                    samples.append((time.time(), cpu[0], cpu[1]))
                time.sleep(0.05)
            if client.returncode != 0:
                sys.exit(f"harness run failed with {client.returncode}")
            run = next((tmp / "out").iterdir())
            calls = [json.loads(l) for l in (run / "calls.jsonl").read_text().splitlines()]
    finally:
        sim.terminate()
        sim.wait()


    start = min(epoch(c) for c in calls)
    end = max(epoch(c) + c["e2e_ms"] / 1e3 for c in calls)
    user_samples = [(t, u) for t, u, _ in samples]
    system_samples = [(t, s) for t, _, s in samples]
    user = at(user_samples, end) - at(user_samples, start)
    system = at(system_samples, end) - at(system_samples, start)
    cpu = user + system
    wall = end - start
    # Between calls: from the last worker call of turn k to the first of turn k + 1, per trial.
    gaps = []
    workers = [c for c in calls if c["agent"] == "worker"]
    for trial in {c["trial"] for c in workers}:
        for k in (1, 2):
            ends = [epoch(c) + c["e2e_ms"] / 1e3 for c in workers if c["trial"] == trial and c["turn"] == k]
            starts = [epoch(c) for c in workers if c["trial"] == trial and c["turn"] == k + 1]
            if ends and starts and min(starts) > max(ends):
                gaps.append((max(ends), min(starts)))
    idle_wall = sum(b - a for a, b in gaps)
    idle_cpu = sum(
        at(user_samples, b) - at(user_samples, a) + at(system_samples, b) - at(system_samples, a)
        for a, b in gaps
    )
    failed = sum(not c["ok"] for c in calls)
    chunks = sum(c["content_chunks"] for c in calls)
    print(f"fan-out {args.fan_out}, {args.trials} trials: {len(calls)} calls ({failed} failed), {chunks} streamed chunks")
    print(f"calling window {wall:.2f} s; client CPU {cpu * 1e3:.0f} ms ({user * 1e3:.0f} ms user, {system * 1e3:.0f} ms kernel)")
    print(f"client CPU = {100 * cpu / wall:.2f}% of one core; {cpu * 1e6 / len(calls):.0f} µs per call, {cpu * 1e6 / max(chunks, 1):.1f} µs per chunk")
    if idle_wall > 0:
        # /proc counts CPU in clock ticks: less than one tick over the gaps reads as zero.
        resolution = 100 / TICK / idle_wall
        print(
            f"between calls ({len(gaps)} gaps, {idle_wall:.2f} s with no call in flight): "
            f"client CPU = {100 * idle_cpu / idle_wall:.2f}% of one core (resolution {resolution:.2f}%)"
        )


if __name__ == "__main__":
    main()
