#!/usr/bin/env python3
"""Turns one harness run into markdown: the machine, the versions, then one table per scenario.

Usage: report.py OUT_DIR DURATION CONNECTIONS THREADS SCENARIOS ROWS
Reads OUT_DIR/plan, status, check and load (written by run.sh, check.py, monitor.py and wrk.lua),
prints the tables and writes the same figures to OUT_DIR/results.json. Every row of the plan is
printed: a row that did not run says why (not applicable, not installed, did not start, failed
its check, or answered 501 because imgrelay does not serve that scenario yet).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

COLUMNS = [
    "server",
    "req/s",
    "p50 ms",
    "p99 ms",
    "non-2xx",
    "peak RSS MiB",
    "CPU ms/req",
    "bg CPU %",
    "KB/file",
    "PSNR dB (min)",
    "checked",
    "imgrelay ÷ peer",
]


def load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def cmd(*args: str) -> str:
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def machine() -> list[str]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return [
        f"- machine: {os.cpu_count()} cores ({model}), {mem_kb / 1024 / 1024:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
    ]


def versions(out: Path) -> list[str]:
    peers = Path(os.environ.get("PEERS_DIR", "/work/peers"))
    ipx = load_json(peers / "ipx/node_modules/ipx/package.json").get("version", "?")
    sharp = load_json(peers / "ipx/node_modules/sharp/package.json").get("version", "?")
    thumbor = cmd(str(peers / "thumbor-venv/bin/thumbor"), "--version")
    # run.sh notes which imgrelay binary it ran (it runs a copy taken at the start)
    imgrelay = [ln for ln in read_text(out / "imgrelay.txt").splitlines() if ln.strip()]
    return [
        f"- {imgrelay[0]} ({'; '.join(imgrelay[1:])})" if imgrelay else "- imgrelay: not run",
        f"- ipx {ipx} (sharp {sharp}, node {cmd('node', '--version')})",
        f"- thumbor {thumbor.split()[1].lstrip('v') if ' ' in thumbor else '?'} (Pillow engine)",
        f"- {cmd(str(peers / 'oximg/bin/oximg'), '--version')}",
        f"- {cmd('nginx', '-v').replace('nginx version: ', '')} with image_filter (libgd)",
        f"- load: {cmd('wrk', '--version').split(' [')[0]}",
    ]


def fmt(x: float | None, digits: int = 1) -> str:
    """Fixed decimals, with more of them below 1 so that cache hits do not print as 0.0."""
    if x is None:
        return "—"
    if digits and 0 < abs(x) < 1:
        return f"{x:.2g}"
    return f"{x:.{digits}f}"


def row_cells(row: str, res: dict, base_rps: float | None) -> list[str]:
    if "label" in res:
        return [row, res["label"]] + [""] * (len(COLUMNS) - 2)
    chk, wrk, mon = res.get("check", {}), res.get("wrk", {}), res.get("mon", {})
    rps = res.get("rps")
    n = wrk.get("requests", 0)
    socket_errors = sum(
        wrk.get(k, 0) for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    non2xx = f"{wrk['status_errors']}" if wrk else "—"
    if socket_errors:
        non2xx += f" (+{socket_errors} socket)"
    if chk.get("identical"):
        quality = "identical"
    elif "mean_psnr" in chk:
        quality = f"{chk['mean_psnr']:.1f} ({chk['min_psnr']:.1f})"
    else:
        quality = "—"
    ratio = "—" if not (base_rps and rps) else f"{base_rps / rps:.2f}"
    return [
        row,
        fmt(rps),
        fmt(wrk.get("p50_us", 0) / 1000 if wrk else None),
        fmt(wrk.get("p99_us", 0) / 1000 if wrk else None),
        non2xx,
        fmt(mon["peak_rss_kb"] / 1024 if mon else None, 0),
        fmt(1000 * mon["cpu_s"] / n if mon and n else None),
        fmt(mon["bg_cpu_pct"] if mon else None, 0),
        fmt(chk["mean_bytes"] / 1024 if "mean_bytes" in chk else None),
        quality,
        f"{chk.get('ok', 0)}/{chk.get('total', 0)}" if chk else "—",
        ratio,
    ]


def main() -> None:
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    duration, conns, threads, only_sc, only_rows = sys.argv[2:7]

    def wanted(lst: str, item: str) -> bool:
        return lst in ("", "all") or item in lst.split(",")

    plan: dict[str, list[tuple[str, str, str, str]]] = {}
    for line in (out / "plan/rows.tsv").read_text().splitlines():
        sc, row, server, kind, detail = line.split("\t")
        plan.setdefault(sc, []).append((row, server, kind, detail))

    print("# imgrelay side-by-side load run\n")
    print(f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(*machine(), sep="\n")
    print(
        f"- load: wrk, {conns} connections, {threads} threads, {duration} s per server "
        "and scenario, after one check fetch of every URL"
    )
    print(*versions(out), sep="\n")
    all_results: dict = {}
    for sc, rows in plan.items():
        if not wanted(only_sc, sc):
            continue
        meta = load_json(out / f"plan/{sc}.check.json")
        checks = load_json(out / f"check/{sc}.json")
        results: dict[str, dict] = {}
        for row, server, kind, detail in rows:
            res: dict = {"server": server}
            status = (
                (out / "status" / server).read_text().strip()
                if (out / "status" / server).exists()
                else ""
            )
            if kind == "na":
                res["label"] = detail
            elif not wanted(only_rows, row):
                res["label"] = "not run (ROWS filter)"
            elif status != "ok":
                res["label"] = status or "not started"
            elif row not in checks:
                res["label"] = "check did not run"
            elif "label" in checks[row]:
                res["label"] = checks[row]["label"]
            else:
                res["check"] = checks[row]
                res["wrk"] = load_json(out / f"load/{sc}.{row}.wrk.json")
                res["mon"] = load_json(out / f"load/{sc}.{row}.mon.json")
                if res["wrk"].get("duration_us"):
                    res["rps"] = res["wrk"]["requests"] / (res["wrk"]["duration_us"] / 1e6)
                else:
                    res["label"] = "load run failed (no wrk summary)"
            results[row] = res
        base = results.get("imgrelay", {}).get("rps")
        out_fmt = meta.get("format", "?").upper()
        q = f" q{meta['quality']}" if meta.get("quality") else ""
        what = (
            "the original bytes, unchanged"
            if meta.get("passthrough")
            else f"fit 512×512 → {out_fmt}{q}"
        )
        if sc.startswith("hit-"):
            what += f", served from the {sc[4:]} result cache (warmed by the check fetch)"
        print(f"\n### {meta.get('title', sc)}\n")
        print(f"{meta.get('files', '?')} files ({sc}): {what}.\n")
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" + "---:|" * (len(COLUMNS) - 1))
        for row, res in results.items():
            print("| " + " | ".join(row_cells(row, res, base)) + " |")
        all_results[sc] = results
    (out / "results.json").write_text(json.dumps(all_results, indent=1))


if __name__ == "__main__":
    main()
