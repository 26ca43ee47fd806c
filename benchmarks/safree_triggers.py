"""SAFREE's trigger tokens in the toy world: are the concept's words flagged, and are benign prompts left alone?

For the toy table's evaluation prompts (the ``ErasureEvaluation`` callback's ``toyworld`` suite:
``evaluation_prompts`` with ``configs/toy_shapes.yaml``'s ``per_class``, ``per_group`` and ``out_of_grammar``;
``--per-class K`` gives K held-out prompts of every class instead), with the concept and its synonyms as
keywords (as the callback gives them), report per split

- ``concept_flagged``: share of the concept's prompts in which at least one word naming the concept (its
  colour or shape word) is a trigger token,
- ``benign_clean``: share of the other classes' prompts in which no token is a trigger (none is projected),
- ``flagged_share_*``: mean share of real tokens flagged per prompt, for both kinds of prompt,
- ``beta_*``: mean β = 1 − mean cos(h, (I − P_c) P_in h) of both kinds of prompt, and ``svf_steps_*`` the
  mean number of steps the self-validating filter (``schedule="self_validating"``) would project at 30 steps,

for each ``token_summary`` and ``alpha`` asked for (default: the row's defaults).

Usage: python benchmarks/safree_triggers.py [--concept "red ring"] [--per-class K] [--alpha 0.01 ...]
       [--summary auto first last mean] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

#: the toy table's suite (configs/toy_shapes.yaml's ErasureEvaluation)
TOY_TABLE_SUITE = dict(
    per_class=2, per_group={"erased": 32, "neighbour": 4}, out_of_grammar={"erased": 16, "neighbour": 2, "other": 1}
)


def measure(
    concept: str = "red ring", per_class: int | None = None, alphas=(0.01,), summaries=("auto",), seed: int = 1234
) -> list[dict]:
    """``per_class``: K held-out prompts of every class (no groups, no out-of-grammar split); ``None``: the
    toy table's suite."""
    from unlearn.backbones import build_backbone
    from unlearn.methods.baselines import SAFREE
    from unlearn.toyworld.grammar import concept_kind, evaluation_prompts, synonym_phrases

    bb = build_backbone("toy-cogvideox", torch_dtype="float32")
    keywords = [concept, *synonym_phrases(concept)]
    pinned = concept_kind(concept)
    suite = TOY_TABLE_SUITE if per_class is None else dict(per_class=per_class)
    records = evaluation_prompts(concept, seed=seed, **suite)
    out = []
    for split in sorted({r.split for r in records}):
        out += _measure(
            bb, SAFREE, keywords, pinned, concept, [r for r in records if r.split == split], split, alphas, summaries
        )
    return out


def _measure(bb, SAFREE, keywords, pinned, concept, records, split, alphas, summaries) -> list[dict]:
    out = []
    for summary in summaries:
        for alpha in alphas:
            sf = SAFREE(bb, keywords, alpha=alpha, token_summary=summary)
            hit = n_concept = clean = n_benign = 0
            share_c, share_b, beta_c, beta_b = [], [], [], []
            svf = SAFREE(bb, keywords, alpha=alpha, token_summary=summary, schedule="self_validating")
            for r in records:
                _, (beta,) = sf.project_embedding(bb.encode_prompts([r.text]), [r.text])
                det = sf.last_detections[0]
                share = len(det.flagged) / max(1, len(det.positions))
                is_concept = all(pinned[k] in (None, getattr(r.scene, k)) for k in ("shape", "colour"))
                if is_concept:
                    n_concept += 1
                    hit += bool(set(r.concept_indices(concept)) & set(det.flagged))
                    share_c.append(share)
                    beta_c.append(beta)
                else:
                    n_benign += 1
                    clean += not det.flagged
                    share_b.append(share)
                    beta_b.append(beta)
            out.append(
                {
                    "split": split,
                    "concept": concept,
                    "token_summary": sf.token_summary,
                    "alpha": alpha,
                    "keywords": len(keywords),
                    "concept_prompts": n_concept,
                    "concept_flagged": hit,
                    "concept_flagged_pct": 100 * hit / n_concept,
                    "benign_prompts": n_benign,
                    "benign_clean": clean,
                    "benign_clean_pct": 100 * clean / n_benign,
                    "flagged_share_concept": sum(share_c) / len(share_c),
                    "flagged_share_benign": sum(share_b) / len(share_b),
                    "beta_concept": sum(beta_c) / len(beta_c),
                    "beta_benign": sum(beta_b) / len(beta_b),
                    "svf_steps_concept": sum(svf.steps_for(30, b) for b in beta_c) / len(beta_c),
                    "svf_steps_benign": sum(svf.steps_for(30, b) for b in beta_b) / len(beta_b),
                }
            )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concept", default="red ring")
    p.add_argument(
        "--per-class", type=int, default=None, help="K held-out prompts of every class instead of the toy table's suite"
    )
    p.add_argument("--alpha", type=float, nargs="+", default=[0.01])
    p.add_argument("--summary", nargs="+", default=["auto"])
    p.add_argument("--json")
    a = p.parse_args()
    rows = measure(a.concept, a.per_class, a.alpha, a.summary)
    print(
        "| split | summary | α | concept words flagged | benign prompts clean | tokens flagged (concept / benign) "
        "| β (concept / benign) | self-validating steps of 30 (concept / benign) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['split']} | {r['token_summary']} | {r['alpha']} | {r['concept_flagged']}/{r['concept_prompts']} "
            f"({r['concept_flagged_pct']:.0f}%) | {r['benign_clean']}/{r['benign_prompts']} "
            f"({r['benign_clean_pct']:.0f}%) | {100 * r['flagged_share_concept']:.0f}% / "
            f"{100 * r['flagged_share_benign']:.0f}% | {r['beta_concept']:.3f} / {r['beta_benign']:.3f} | "
            f"{r['svf_steps_concept']:.1f} / {r['svf_steps_benign']:.1f} |"
        )
    if a.json:
        from pathlib import Path

        from unlearn.io import atomic_write_text

        atomic_write_text(Path(a.json), json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
