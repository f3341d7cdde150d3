#!/usr/bin/env python3
"""Samples one server's process tree from /proc while a load run lasts.

Usage: rss.py ROOT_PID OUT.json   (stops on SIGTERM/SIGINT, then writes OUT.json)
Every 100 ms it sums VmRSS over ROOT_PID and all its descendants and keeps the peak; it also
reports the CPU time the tree used during the sampling window and how busy the whole machine
was (from /proc/stat), so that interference from other work on the box shows up in the tables.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

INTERVAL_S = 0.1
TICK = os.sysconf("SC_CLK_TCK")


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: fields start after the last ")"
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(root: int) -> list[int]:
    kids = children_map()
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(kids.get(pid, []))
    return pids


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError):
        return 0


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, out = int(sys.argv[1]), Path(sys.argv[2])
    stop = False

    def on_signal(_sig, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start_cpu: dict[int, int] = {p: cpu_ticks(p) for p in tree(root)}
    last_cpu = dict(start_cpu)
    busy0, total0 = machine_ticks()
    t0 = time.monotonic()
    peak = samples = 0
    while not stop:
        pids = tree(root)
        peak = max(peak, sum(rss_kb(p) for p in pids))
        for p in pids:
            last_cpu[p] = cpu_ticks(p) or last_cpu.get(p, 0)
        samples += 1
        time.sleep(INTERVAL_S)
    busy1, total1 = machine_ticks()
    used = sum(v - start_cpu.get(p, 0) for p, v in last_cpu.items())
    out.write_text(json.dumps({
        "peak_rss_kb": peak,
        "cpu_s": used / TICK,
        "wall_s": time.monotonic() - t0,
        "machine_busy_pct": 100.0 * (busy1 - busy0) / max(1, total1 - total0),
        "samples": samples,
    }))


if __name__ == "__main__":
    main()
