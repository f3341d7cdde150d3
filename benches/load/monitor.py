#!/usr/bin/env python3
"""Runs one load generator while watching the machine, for the load harness.

  monitor.py run SERVER_PID ORIGIN_PID OUT.json -- CMD [ARGS...]
      Runs CMD (wrk) with its stdout and stderr passed through. Every 100 ms it sums VmRSS over
      SERVER_PID and all its descendants and keeps the peak. At the end it writes OUT.json with
      that peak, the CPU seconds the server tree used, and "bg_cpu_pct": the share of the whole
      machine that went to anything other than the server, the origin and CMD itself (another
      build, another benchmark...). A run with a high bg_cpu_pct was disturbed.
  monitor.py quiet MAX_PCT TIMEOUT_S
      Waits until the machine is at most MAX_PCT % busy over one second, or TIMEOUT_S passed;
      prints the last reading. Lets run.sh wait for a quiet moment before each load run.
Exit status of "run" is CMD's.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
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


def tree(root: int, kids: dict[int, list[int]]) -> list[int]:
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
    """(busy, total) jiffies of all CPUs since boot. Interrupt time is left out of "busy": at
    tens of thousands of loopback requests a second it is the benchmark's own network traffic,
    charged to no process, and it would read as background work."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    busy = user + nice + system + steal
    return busy, busy + idle + iowait + irq + softirq


class TreeCpu:
    """CPU ticks used by a process tree since creation of this object (live processes only)."""

    def __init__(self, root: int, kids: dict[int, list[int]]) -> None:
        self.root = root
        self.start = {p: cpu_ticks(p) for p in tree(root, kids)}
        self.last = dict(self.start)

    def sample(self, kids: dict[int, list[int]]) -> list[int]:
        pids = tree(self.root, kids)
        for p in pids:
            self.last[p] = cpu_ticks(p) or self.last.get(p, 0)
        return pids

    def used(self) -> int:
        return sum(v - self.start.get(p, 0) for p, v in self.last.items())


def run(server: int, origin: int, out: Path, cmd: list[str]) -> int:
    kids = children_map()
    srv = TreeCpu(server, kids)
    org = TreeCpu(origin, kids) if origin != server else None  # loading the origin itself
    busy0, total0 = machine_ticks()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    peak = 0
    while proc.poll() is None:
        kids = children_map()
        peak = max(peak, sum(rss_kb(p) for p in srv.sample(kids)))
        if org:
            org.sample(kids)
        time.sleep(INTERVAL_S)
    # poll() reaped the child, so its CPU time is in our children's rusage; our own sampling
    # is harness overhead too, not background
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    load_s = ru.ru_utime + ru.ru_stime + me.ru_utime + me.ru_stime
    busy1, total1 = machine_ticks()
    total = max(1, total1 - total0)
    origin_ticks = org.used() if org else 0
    other = (busy1 - busy0) - srv.used() - origin_ticks - load_s * TICK
    out.write_text(
        json.dumps(
            {
                "peak_rss_kb": peak,
                "cpu_s": srv.used() / TICK,
                "origin_cpu_s": origin_ticks / TICK,
                "load_cpu_s": load_s,
                "wall_s": time.monotonic() - t0,
                "machine_busy_pct": 100.0 * (busy1 - busy0) / total,
                "bg_cpu_pct": max(0.0, 100.0 * other / total),
            }
        )
    )
    return proc.returncode


def busy_pct(window_s: float = 1.0) -> float:
    b0, t0 = machine_ticks()
    time.sleep(window_s)
    b1, t1 = machine_ticks()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


def quiet(max_pct: float, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pct = busy_pct()
    while pct > max_pct and time.monotonic() < deadline:
        pct = busy_pct()
    print(f"{pct:.0f}")


def main() -> None:
    args = sys.argv[1:]
    if len(args) >= 6 and args[0] == "run" and args[4] == "--":
        sys.exit(run(int(args[1]), int(args[2]), Path(args[3]), args[5:]))
    if len(args) == 3 and args[0] == "quiet":
        quiet(float(args[1]), float(args[2]))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
