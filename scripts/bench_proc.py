"""What the bench scripts share: a free port, a process's CPU time from /proc, CPU at a
wall-clock instant interpolated between samples, and a call record's start as epoch
seconds."""

import datetime
import os
import pathlib
import socket

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """(user, system) CPU time of `pid`, seconds; None once it has exited."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def at(samples, t):
    """CPU seconds (one kind) at wall time `t`, interpolated between (time, cpu) samples."""
    before = [s for s in samples if s[0] <= t]
    after = [s for s in samples if s[0] >= t]
    if not before:
        return samples[0][1]
    if not after:
        return samples[-1][1]
    (t0, c0), (t1, c1) = before[-1], after[0]
    return c0 if t1 == t0 else c0 + (c1 - c0) * (t - t0) / (t1 - t0)


def epoch(call):
    """When a call record started, in seconds since the epoch."""
    return datetime.datetime.fromisoformat(call["started_at"].replace("Z", "+00:00")).timestamp()
