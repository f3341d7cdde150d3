#!/usr/bin/env python3
"""Pre-load check: fetch every URL of one scenario once per server, and measure what came back.

For each answer: HTTP status, output bytes, decoded format and size, and the luma PSNR against a
reference made the same way for everybody: the full-resolution source, EXIF-rotated, converted
to sRGB through its ICC profile, downscaled with Pillow's LANCZOS filter (in sRGB, alpha
premultiplied) to the output's exact size, alpha flattened onto white. An answer that does not
decode, or decodes to another format than the scenario asks for, is an error. For pass-through
the check is byte identity with the source instead.

Usage: check.py PLAN.json OUT.json ROW[,ROW...]
Writes a per-row summary to OUT.json and one line per URL to OUT.tsv.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

Image.MAX_IMAGE_PIXELS = 100_000_000  # the corpus tops out at 5120x2880
PIL_FORMAT = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "AVIF": "avif"}
SRGB = ImageCms.createProfile("sRGB")
TIMEOUT_S = 120


def to_srgb(im: Image.Image) -> Image.Image:
    """Upright RGB or RGBA pixels in sRGB, as a browser would show them."""
    icc = im.info.get("icc_profile")
    im = ImageOps.exif_transpose(im)
    alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    mode = "RGBA" if alpha else "RGB"
    im = im.convert(mode)
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            im = ImageCms.profileToProfile(im, src, SRGB, outputMode=mode)
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: keep the pixels as they are, as browsers do
    return im


def flatten(im: Image.Image) -> Image.Image:
    if im.mode != "RGBA":
        return im
    bg = Image.new("RGB", im.size, (255, 255, 255))
    bg.paste(im, mask=im.getchannel("A"))
    return bg


def luma(im: Image.Image) -> np.ndarray:
    a = np.asarray(flatten(im), dtype=np.float64)
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 100.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


class Source:
    """One corpus file: its bytes, and its sRGB pixels with references cached by size."""

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        self.sha = hashlib.sha256(self.data).hexdigest()
        self._pixels: Image.Image | None = None
        self._refs: dict[tuple[int, int], np.ndarray] = {}

    def reference(self, size: tuple[int, int]) -> np.ndarray:
        if size not in self._refs:
            if self._pixels is None:
                self._pixels = to_srgb(Image.open(io.BytesIO(self.data)))
            self._refs[size] = luma(self._pixels.resize(size, Image.Resampling.LANCZOS))
        return self._refs[size]


def fetch(url: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Accept": "image/*"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def measure(url: str, src: Source, want: str, passthrough: bool) -> dict:
    """Fetch one URL and judge the answer; "error" is set when it does not count as good."""
    try:
        status, body = fetch(url)
    except OSError as e:  # refused, reset, timed out
        return {"status": 0, "error": f"fetch: {type(e).__name__}"}
    out: dict = {"status": status, "bytes": len(body)}
    if not 200 <= status < 300:
        # the first line of a short text body names the reason (e.g. an unsupported option)
        reason = body[:80].decode("utf-8", "replace").split("\n")[0].strip()
        quoted = f" “{reason}”" if reason and reason.isprintable() else ""
        out["error"] = f"HTTP {status}{quoted}"
        return out
    if passthrough:
        same = hashlib.sha256(body).hexdigest() == src.sha
        out["identical"] = same
        if not same:
            out["error"] = "body differs from the source"
        return out
    try:
        im = Image.open(io.BytesIO(body))
        im.load()
    except Exception as e:  # noqa: BLE001 - any decoder failure is the server's error
        out["error"] = f"undecodable ({type(e).__name__})"
        return out
    fmt = PIL_FORMAT.get(im.format or "", str(im.format).lower())
    out.update(format=fmt, width=im.width, height=im.height)
    if fmt != want:
        out["error"] = f"got {fmt}, want {want}"
        return out
    out["psnr"] = round(psnr(luma(to_srgb(im)), src.reference(im.size)), 2)
    return out


def summarize(results: list[dict]) -> dict:
    good = [r for r in results if "error" not in r]
    statuses = Counter(r["status"] for r in results)
    errors = Counter(r["error"] for r in results if "error" in r)
    summary: dict = {
        "total": len(results),
        "ok": len(good),
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": dict(errors.most_common()),
    }
    if good:
        summary["mean_bytes"] = sum(r["bytes"] for r in good) / len(good)
        psnrs = [r["psnr"] for r in good if "psnr" in r]
        if psnrs:
            summary["mean_psnr"] = sum(psnrs) / len(psnrs)
            summary["min_psnr"] = min(psnrs)
            summary["max_side"] = max(max(r["width"], r["height"]) for r in good)
        if all(r.get("identical") for r in good) and any("identical" in r for r in good):
            summary["identical"] = True
    if not good:
        if set(statuses) == {501}:
            summary["label"] = "not supported (501)"
        else:
            summary["label"] = "failed check: " + ", ".join(
                f"{e} ×{n}" for e, n in errors.most_common(2)
            )
    return summary


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    plan = json.loads(Path(sys.argv[1]).read_text())
    out_json = Path(sys.argv[2])
    rows = [r for r in sys.argv[3].split(",") if r in plan["rows"]]
    results: dict[str, list[dict]] = {r: [] for r in rows}
    with out_json.with_suffix(".tsv").open("w") as tsv:
        for item in plan["items"]:
            src = Source(Path(item["file"]))
            for row in rows:
                url = item["urls"][row]
                r = measure(url, src, plan["format"], plan["passthrough"])
                results[row].append(r)
                tsv.write(f"{row}\t{url}\t{json.dumps(r)}\n")
    summary = {row: summarize(res) for row, res in results.items()}
    out_json.write_text(json.dumps(summary, indent=1))
    for row, s in summary.items():
        psnr_s = f" PSNR {s['mean_psnr']:.1f} dB" if "mean_psnr" in s else ""
        kb = f" {s['mean_bytes'] / 1024:.1f} KB" if "mean_bytes" in s else ""
        print(
            f"  check {plan['scenario']:<10} {row:<9} {s['ok']}/{s['total']} ok{kb}{psnr_s}"
            f"{'  ' + s['label'] if 'label' in s else ''}"
        )


if __name__ == "__main__":
    main()
