"""Quick probe (issue #28, point 3): several concepts with the refusal vector, variants of the direction
combination, scored on a reduced toy suite in one process (backbone loaded once, each edit restored).

python research/notes/28_multi_refusal_probe.py [--variants stack kept ...] [--erased 16] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from unlearn.backbones import build_backbone  # noqa: E402
from unlearn.evaluation import load_suite  # noqa: E402
from unlearn.methods.refusal import RefusalPairsDataModule  # noqa: E402
from unlearn.methods.refusal.edit import RefusalVectorConfig, apply_refusal_edit, collect_token_activations  # noqa: E402
from unlearn.toyworld import load_classifier  # noqa: E402
from unlearn.toyworld.grammar import class_names, prompts_for_concept  # noqa: E402

THREE = ["red ring", "blue square", "green cross"]


def score(backbone, clf, suite, batch=100):
    hits = defaultdict(list)
    items = list(suite)
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        with torch.no_grad():
            vids = backbone.decode(backbone.sample([it.prompt for it in chunk], [it.seed for it in chunk]))
        for it, frames in zip(chunk, clf.predict_video(vids), strict=True):
            hits[it.label] += [f == it.label for f in frames]
    return {c: 100.0 * sum(v) / len(v) for c, v in hits.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", nargs="+", default=["stack"])
    ap.add_argument("--erased", type=int, default=16)
    ap.add_argument("--neighbour", type=int, default=4)
    ap.add_argument("--other", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rank", type=int, default=1)
    ap.add_argument("--out", default="runs/i28_probe.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    bb = build_backbone("toy-cogvideox", torch_dtype="float32")
    clf = load_classifier()
    dm = RefusalPairsDataModule(concept=THREE, source="toyworld", num_pairs=5, seed=args.seed)
    suite = load_suite(
        "toyworld",
        per_class=2,
        seed=1234,
        concept=THREE,
        per_group={"erased": args.erased, "neighbour": args.neighbour, "other": args.other},
        out_of_grammar={},
    )
    print(f"{len(suite)} prompts", flush=True)
    t0 = time.perf_counter()
    cache = Path(f"runs/i28_original_{args.erased}_{args.neighbour}_{args.other}.json")
    res = {"original": json.loads(cache.read_text()) if cache.is_file() else score(bb, clf, suite)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(res["original"]))
    print(f"original scored in {time.perf_counter() - t0:.0f} s", flush=True)
    kept = [c for c in res["original"] if c not in THREE]

    def show(row, r):
        esr = {c: 100 - r[c] for c in THREE}
        psr = sum(r[c] for c in kept) / len(kept)
        d = psr - sum(res["original"][c] for c in kept) / len(kept)
        worst = sorted(kept, key=lambda c: r[c] - res["original"][c])[:4]
        print(
            f"{row:40s} ESR " + " / ".join(f"{esr[c]:.0f}" for c in THREE) + f"  PSR-1 kept {psr:.1f} (Δ {d:+.1f})"
            "  worst: " + ", ".join(f"{c} {r[c] - res['original'][c]:+.0f}" for c in worst),
            flush=True,
        )

    for v in args.variants:
        name, _, opts = v.partition(":")
        kw = json.loads(opts) if opts else {}
        recenter = kw.pop("recenter_probe", False)
        per_class = kw.pop("kept_per_class", 0)
        kept_prompts = (
            [
                r.text
                for k, cls in enumerate(class_names())
                if cls not in THREE
                for r in prompts_for_concept(cls, per_class, split="train", style="rich", seed=args.seed + 100 + k)
            ]
            if per_class
            else []
        )
        kw = {"layers": "auto", "rank": args.rank, "cpca_weight": 1.0, "token_reduce": "mean", **kw}
        cfg = RefusalVectorConfig(**kw)
        edit = apply_refusal_edit(bb, dm.pairs_by_concept(), cfg, kept_prompts=kept_prompts)
        if recenter:  # prototype: add back the kept (safe prompts') mean output inside the removed subspace
            safe = [p.safe for ps in dm.pairs_by_concept().values() for p in ps]
            with edit.original_weights(bb):
                acts = collect_token_activations(bb, safe, edit.layers)
            for n in edit.layers:
                mu = acts[n].reshape(-1, acts[n].shape[-1]).mean(0).double()
                u = edit.bases[n]
                mod = bb.denoiser.get_submodule(n)
                with torch.no_grad():
                    mod.bias += (edit.strength * (u @ (u.T @ mu))).float()
        res[v] = score(bb, clf, suite)
        edit.restore(bb)
        show(v, res[v])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
