#!/usr/bin/env python3
"""Prints the table of docs/benchmarks.md from the last `cargo bench --bench verify`.

Each ratio compares two figures of the same run: the whole layer against one
bare HMAC-SHA256 over the same body, and against that HMAC plus decoding the
same JSON (work any receiver must do).
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"


def mean_ns(group, name):
    path = root / group / name / "new" / "estimates.json"
    return json.loads(path.read_text())["mean"]["point_estimate"]


def show(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


groups = sorted(p.name for p in root.iterdir() if (p / "layer").is_dir()) if root.is_dir() else []
if not groups:
    sys.exit("no results: run `cargo bench --bench verify` first")
# Figures older than the benchmark's own build would be another run's.
binary = max((p for p in root.parent.glob("release/deps/verify-*") if p.suffix == ""),
             key=lambda p: p.stat().st_mtime, default=None)
if binary is None:
    sys.exit("no benchmark binary under target/release/deps: run `cargo bench --bench verify`")
oldest = min((root / g / n / "new" / "estimates.json").stat().st_mtime for g in groups for n in ("hmac", "json", "layer"))
if oldest < binary.stat().st_mtime:
    sys.exit("these results predate the last build of the benchmark: run `cargo bench --bench verify` again")
print("| provider | body | HMAC | JSON decode | layer | layer / HMAC | layer / (HMAC + JSON) |")
print("|---|---|---|---|---|---|---|")
for size in ("1KiB", "64KiB"):
    for provider in ("kosmo", "kourier", "shipmondo", "goshiip"):
        group = f"{provider}_{size}"
        if group not in groups:
            continue
        hmac, decode, layer = (mean_ns(group, name) for name in ("hmac", "json", "layer"))
        print(f"| {provider} | {size} | {show(hmac)} | {show(decode)} | {show(layer)} "
              f"| {layer / hmac:.2f}x | {layer / (hmac + decode):.2f}x |")
