#!/usr/bin/env python3
"""Prints the table of docs/benchmarks.md from the last `cargo bench -p shipment-webhooks-benches --bench verify`.

Each figure compares benches of the same run. The layer's own cost is the
whole layer less `bare` (the same request to a service with no layer, which
reads the body: what the bench's request and handler cost) and less its
reference (one HMAC of what the provider signs, or Kourier's constant-time
token compare, plus decoding the event's few fields: the work no layer can
avoid). At 64 KiB the layer is compared with one bare HMAC-SHA256 of the
whole body. The targets of issue 13: own cost <= 0.5 us at 1 KiB; layer / HMAC
at 64 KiB <= 1.1x (Kosmo, Kourier), 1.5x (GoShiip), 2.5x (Shipmondo).
"""
import json
import os
import pathlib
import sys

target = os.environ.get("CARGO_TARGET_DIR", pathlib.Path(__file__).resolve().parent.parent / "target")
root = pathlib.Path(target) / "criterion"
NAMES = ("hmac", "reference", "json", "bare", "layer")
TARGET_64K = {"kosmo": 1.1, "kourier": 1.1, "goshiip": 1.5, "shipmondo": 2.5}


def mean_ns(group, name):
    path = root / group / name / "new" / "estimates.json"
    return json.loads(path.read_text())["mean"]["point_estimate"]


def show(ns):
    return f"{ns / 1000:.2f} µs" if abs(ns) >= 1000 else f"{ns:.0f} ns"


groups = sorted(p.name for p in root.iterdir() if (p / "reference").is_dir()) if root.is_dir() else []
if not groups:
    sys.exit("no results: run `cargo bench -p shipment-webhooks-benches --bench verify` first")
# Figures older than the benchmark's own build would be another run's.
binary = max((p for p in root.parent.glob("release/deps/verify-*") if p.suffix == ""),
             key=lambda p: p.stat().st_mtime, default=None)
if binary is None:
    sys.exit("no benchmark binary under target/release/deps: run `cargo bench -p shipment-webhooks-benches --bench verify`")
oldest = min((root / g / n / "new" / "estimates.json").stat().st_mtime for g in groups for n in NAMES)
if oldest < binary.stat().st_mtime:
    sys.exit("these results predate the last build of the benchmark: run `cargo bench -p shipment-webhooks-benches --bench verify` again")
print("| provider | body | HMAC of the body | reference | JSON decode | bare | layer "
      "| own: layer - bare - reference | layer / HMAC | target |")
print("|---|---|---|---|---|---|---|---|---|---|")
for size in ("1KiB", "64KiB"):
    for provider in ("kosmo", "kourier", "shipmondo", "goshiip"):
        group = f"{provider}_{size}"
        if group not in groups:
            continue
        hmac, reference, decode, bare, layer = (mean_ns(group, name) for name in NAMES)
        own = layer - bare - reference
        if size == "1KiB":
            target = "own ≤ 0.5 µs: " + ("met" if own <= 500 else "not met")
        else:
            limit = TARGET_64K[provider]
            target = f"≤ {limit}x HMAC: " + ("met" if layer / hmac <= limit else "not met")
        print(f"| {provider} | {size} | {show(hmac)} | {show(reference)} | {show(decode)} | {show(bare)} "
              f"| {show(layer)} | {show(own)} | {layer / hmac:.2f}x | {target} |")
