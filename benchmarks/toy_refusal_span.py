"""How much of a concept can a linear edit of the text input remove without moving the kept classes? (#28 point 3)

The refusal vector edits one linear layer of the toy world's text path (``patch_embed.text_proj``, 64 outputs;
every text path passes it). Any linear edit ``W'`` that leaves the kept classes' mean outputs where they are
(``W' m_k = W m_k``) changes a concept's mean output ``m_c = Σ a_k m_k + r`` only through the part ``r`` that
no combination of kept class means gives. So the share of the concept's mean difference
``d = m_c − mean(neighbours)`` outside ``span{m_k}`` bounds what a perfectly selective edit can remove at this
site, whatever the combination rule (stacked, whitened, orthogonalised): when it is small, erasure and
preservation trade off and no rule removes the trade-off.

Printed per concept: ``|d|`` relative to the concept's distance from the class average, the parallelogram
residual ``|m(c,s) − m(c,s') − m(c',s) + m(c',s')| / |d|`` (0 = colour and shape add up; how much of the class is
a conjunction), and the share of ``d`` outside the span of the kept class means (22 classes when the three
concepts of the issue are erased, 24 when one is), next to the share a random direction would have
(``sqrt((64 − k) / 64)``).

    python benchmarks/toy_refusal_span.py [--prompts 16] [--json out.json]

Class means: ``--prompts`` TRAIN-split rich prompts per class (the pairs' split), mean over attended tokens.
"""

from __future__ import annotations

import argparse
import json
import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from unlearn.backbones import build_backbone  # noqa: E402
from unlearn.io import atomic_write_text  # noqa: E402
from unlearn.toyworld.grammar import prompts_for_concept  # noqa: E402
from unlearn.toyworld.render import COLOURS, SHAPES  # noqa: E402

THREE = ("red ring", "blue square", "green cross")


def class_means(prompts_per_class: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """Each class's mean ``text_proj`` output over its prompts' attended tokens (float64)."""
    bb = build_backbone("toy-cogvideox", torch_dtype="float32")
    proj = bb.denoiser.patch_embed.text_proj
    out = {}
    with torch.no_grad():
        for cls in (f"{c} {s}" for c in COLOURS for s in SHAPES):
            texts = [p.text for p in prompts_for_concept(cls, prompts_per_class, split="train", seed=seed)]
            emb = bb.encode_prompts(texts)
            h = proj(emb.hidden_states.float()).double()
            mask = torch.ones(h.shape[:2], dtype=h.dtype) if emb.attention_mask is None else emb.attention_mask
            mask = mask.to(h.dtype).unsqueeze(-1)
            out[cls] = ((h * mask).sum(1) / mask.sum(1)).mean(0)
    return out


def outside_share(d: torch.Tensor, kept: list[torch.Tensor]) -> float:
    """``|(I − P)d| / |d|`` with ``P`` the orthogonal projection onto ``span(kept)``."""
    q, _ = torch.linalg.qr(torch.stack(kept).T)
    return float((d - q @ (q.T @ d)).norm() / d.norm())


def measure(means: dict[str, torch.Tensor]) -> dict:
    classes = list(means)
    avg = torch.stack(list(means.values())).mean(0)
    dim = avg.numel()
    out = {"dim": dim, "concepts": {}}
    for concept in THREE:
        colour, shape = concept.split()
        neighbours = [c for c in classes if c != concept and (c.split()[0] == colour or c.split()[1] == shape)]
        d = means[concept] - torch.stack([means[c] for c in neighbours]).mean(0)
        residuals = [
            float(
                (means[concept] - means[f"{colour} {s}"] - means[f"{c} {shape}"] + means[f"{c} {s}"]).norm() / d.norm()
            )
            for c in COLOURS
            for s in SHAPES
            if c != colour and s != shape
        ]
        one = [means[c] for c in classes if c != concept]
        three = [means[c] for c in classes if c not in THREE]
        out["concepts"][concept] = {
            "d_over_distance_from_average": float(d.norm() / (means[concept] - avg).norm()),
            "parallelogram_residual_mean": sum(residuals) / len(residuals),
            "outside_kept_span_one_erased": outside_share(d, one),
            "outside_kept_span_three_erased": outside_share(d, three),
            "random_direction_one_erased": math.sqrt((dim - len(one)) / dim),
            "random_direction_three_erased": math.sqrt((dim - len(three)) / dim),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=16, help="train-split prompts per class")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args()
    res = measure(class_means(args.prompts))
    res["prompts_per_class"] = args.prompts
    print(
        "| concept | |d| / |m_c − average| | parallelogram residual / |d| | d outside span(kept), 1 erased "
        "(random) | d outside span(kept), 3 erased (random) |"
    )
    print("|---|---|---|---|---|")
    for c, r in res["concepts"].items():
        print(
            f"| {c} | {r['d_over_distance_from_average']:.2f} | {r['parallelogram_residual_mean']:.2f} | "
            f"{r['outside_kept_span_one_erased']:.3f} ({r['random_direction_one_erased']:.2f}) | "
            f"{r['outside_kept_span_three_erased']:.3f} ({r['random_direction_three_erased']:.2f}) |"
        )
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
