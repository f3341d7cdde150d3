#!/usr/bin/env python3
"""The scenario x server matrix of the load harness: one source of truth for ports, URL forms and
which server can take part in which scenario (and why not, when it cannot).

Commands (all print to stdout):
  plan.py ports                       "name port" per server process the harness starts
  plan.py rows                        "scenario<TAB>row<TAB>server<TAB>kind<TAB>detail" for every
                                      table row; kind is "url" (detail = path list file) or "na"
                                      (detail = reason); writes the path lists and check plans
                                      under $OUT_DIR/plan/
Environment: BASE_PORT, CORPUS_DIR, OUT_DIR (set by run.sh).

Every server reads the same origin; every table shows every row, so a peer that cannot do a
scenario is listed with the reason instead of being dropped.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

BOX = 512  # every transform fits the image into BOX x BOX, keeping the aspect ratio
QUALITY = {"jpeg": 80, "webp": 75, "avif": 60}  # PNG output is lossless: no quality
EXT_FORMAT = {"jpg": "jpeg", "png": "png", "webp": "webp"}

# Offsets from BASE_PORT. "-mem"/"-disk" are instances with a result cache for the hit scenarios;
# "imgrelay-shared" has memory and disk off and reads the bucket of the "s3" server (s3s-fs).
SERVERS = {
    "origin": 0,
    "imgrelay": 1,
    "imgrelay-mem": 2,
    "imgrelay-disk": 3,
    "ipx": 4,
    "thumbor": 5,
    "thumbor-mem": 6,
    "thumbor-disk": 7,
    "oximg": 8,
    "nginx": 9,
    "imgrelay-shared": 10,
    "s3": 11,
}
ROWS = ["imgrelay", "ipx", "thumbor", "oximg", "nginx"]


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    ext: str  # which corpus files (by extension)
    output: str | None = None  # None = keep the source format
    cache: str | None = None  # "memory" | "disk" | "shared": result cache on, URLs pre-warmed
    passthrough: bool = False

    @property
    def out_format(self) -> str:
        return self.output or EXT_FORMAT[self.ext]


SCENARIOS = [
    Scenario("miss-jpeg", "miss JPEG", "jpg"),
    Scenario("miss-png", "miss PNG", "png"),
    Scenario("miss-webp", "miss WebP", "webp"),
    Scenario("jpeg-webp", "JPEG→WebP", "jpg", output="webp"),
    Scenario("jpeg-avif", "JPEG→AVIF", "jpg", output="avif"),
    Scenario("hit-memory", "memory hit", "jpg", cache="memory"),
    Scenario("hit-disk", "disk hit", "jpg", cache="disk"),
    Scenario("hit-shared", "shared hit", "jpg", cache="shared"),
    Scenario("pass", "pass-through", "jpg", passthrough=True),
]


class NotApplicable(Exception):
    """This row cannot take part in this scenario; the message is shown in the table."""


def port(server: str) -> int:
    return int(os.environ.get("BASE_PORT", "18400")) + SERVERS[server]


def origin_url(name: str) -> str:
    return f"http://127.0.0.1:{port('origin')}/{name}"


def cached(base: str, sc: Scenario) -> str:
    suffix = {"memory": "-mem", "disk": "-disk", "shared": "-shared"}.get(sc.cache or "", "")
    return base + suffix


def quality(sc: Scenario) -> int | None:
    return QUALITY.get(sc.out_format)


def url_for(row: str, sc: Scenario, name: str) -> tuple[str, str]:
    """(server, request path) for one corpus file, or NotApplicable."""
    src = origin_url(name)
    q = quality(sc)
    if row == "imgrelay":
        if sc.passthrough:
            return "imgrelay", f"/?{src}"
        params = [("url", src), ("w", BOX), ("h", BOX), ("fit", "inside")]
        params += [("q", q)] if q else []
        params += [("output", sc.output)] if sc.output else []
        return cached("imgrelay", sc), "/?" + urlencode(params)
    if row == "ipx":
        if sc.passthrough:
            raise NotApplicable("n/a: no pass-through mode (sharp always re-encodes)")
        if sc.cache:
            raise NotApplicable("n/a: no result cache")
        mods = [f"s_{BOX}x{BOX}", "fit_inside"]
        mods += [f"q_{q}"] if q else []
        mods += [f"f_{sc.output}"] if sc.output else []
        return "ipx", f"/{','.join(mods)}/{src}"
    if row == "thumbor":
        if sc.passthrough:
            raise NotApplicable("n/a: no pass-through mode (always re-encodes)")
        if sc.cache == "shared":
            raise NotApplicable("n/a: no shared result storage configured")
        filters = [f"quality({q})"] if q else []
        filters += [f"format({sc.output})"] if sc.output else []
        flt = f"filters:{':'.join(filters)}/" if filters else ""
        return cached("thumbor", sc), f"/unsafe/fit-in/{BOX}x{BOX}/{flt}{src}"
    if row == "oximg":
        if sc.passthrough:
            raise NotApplicable("n/a: no pass-through mode (always re-encodes)")
        if sc.cache:
            raise NotApplicable("n/a: no result cache (coalescing only)")
        opts = [f"width={BOX}", f"height={BOX}"]
        opts += [f"quality={q}"] if q else []
        opts += [f"format={sc.output}"] if sc.output else []
        return "oximg", f"/image/{','.join(opts)}/{name}"
    if row == "nginx":
        if sc.passthrough:
            return "nginx", f"/pass/{name}"
        if sc.output:
            raise NotApplicable("n/a: image_filter cannot change the format")
        if sc.cache == "shared":
            raise NotApplicable("n/a: no shared cache tier")
        prefix = {"memory": "mem", "disk": "disk"}.get(sc.cache or "", "fit")
        return "nginx", f"/{prefix}/{name}"
    if row == "origin":
        return "origin", f"/{name}"
    raise ValueError(row)


def corpus(ext: str) -> list[Path]:
    return sorted(p for p in Path(os.environ["CORPUS_DIR"]).glob(f"*.{ext}") if p.is_file())


def write_rows() -> None:
    plan_dir = Path(os.environ["OUT_DIR"]) / "plan"
    plan_dir.mkdir(parents=True, exist_ok=True)
    for sc in SCENARIOS:
        files = corpus(sc.ext)
        rows = ROWS + (["origin"] if sc.passthrough else [])
        check = {
            "scenario": sc.key,
            "title": sc.title,
            "format": sc.out_format,
            "quality": quality(sc),
            "files": len(files),
            "passthrough": sc.passthrough,
            "rows": {},
            "items": [{"file": str(p), "urls": {}} for p in files],
        }
        for row in rows:
            try:
                pairs = [url_for(row, sc, p.name) for p in files]
            except NotApplicable as na:
                print(f"{sc.key}\t{row}\t-\tna\t{na}")
                continue
            server = pairs[0][0]
            base = f"http://127.0.0.1:{port(server)}"
            list_file = plan_dir / f"{sc.key}.{row}.paths"
            list_file.write_text("".join(path + "\n" for _, path in pairs))
            check["rows"][row] = server
            for item, (_, path) in zip(check["items"], pairs, strict=True):
                item["urls"][row] = base + path
            print(f"{sc.key}\t{row}\t{server}\turl\t{list_file}")
        (plan_dir / f"{sc.key}.check.json").write_text(json.dumps(check, indent=1))


def main() -> None:
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "ports":
        for name in SERVERS:
            print(name, port(name))
    elif cmd == "rows":
        write_rows()
    elif cmd == "scenarios":
        for sc in SCENARIOS:
            print(sc.key, sc.title, sep="\t")
    else:
        sys.exit(f"usage: {sys.argv[0]} ports|rows|scenarios")


if __name__ == "__main__":
    main()
