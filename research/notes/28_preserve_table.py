"""Table of the preservation-rule runs (research/notes/28_preserve_runs.sh): in-grammar ESR-1 / PSR-1, the
paired ΔPSR-1 against the original row of the same concept, the out-of-grammar split, the classes that lost most."""

import json
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/i28_pre")
orig = {}
rows = {}
for f in sorted(root.glob("*/eval/metrics.json")):
    d = json.loads(f.read_text())
    concept = d["erased_class"]
    if "original" in d["rows"]:
        orig[concept] = d["rows"]["original"]
    rows[f.parent.parent.name] = (concept, d["rows"]["t2vunlearning"], d.get("seconds_per_row"))
print(
    "| run | ESR-1 | PSR-1 | ΔPSR-1 vs original (paired over classes, 95% t interval) | out-of-grammar ESR-1 / PSR-1 "
    "| lost most |"
)
print("|---|---|---|---|---|---|")
for name, (concept, r, _) in rows.items():
    o = orig.get(concept)
    pc, po = r["per_class_top1"], (o or {}).get("per_class_top1", {})
    kept = [c for c in pc if c != concept and c in po]
    delta = sum(pc[c] - po[c] for c in kept) / len(kept) if kept else float("nan")
    worst = sorted(kept, key=lambda c: pc[c] - po[c])[:4]
    ref = r.get("vs_reference", {}).get("psr@1")
    ci = f" [{ref['low']:.1f}, {ref['high']:.1f}]" if ref else ""
    oog = r.get("splits", {}).get("out_of_grammar", {})
    print(
        f"| {name} | {r['esr@1']:.1f} | {r['psr@1']:.1f} | {delta:+.1f}{ci} | "
        f"{oog.get('esr@1', float('nan')):.1f} / {oog.get('psr@1', float('nan')):.1f} | "
        + ", ".join(f"{c} {pc[c] - po[c]:+.0f}" for c in worst)
        + " |"
    )
for c, o in orig.items():
    print(f"original ({c}): ESR-1 {o['esr@1']:.1f}, PSR-1 {o['psr@1']:.1f}")
