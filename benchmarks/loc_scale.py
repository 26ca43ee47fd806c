"""What α means under each L_loc normalization: the shipped configs at full size (projection) and a measured step.

T2VUnlearning's ``L = L_unlearn + α·L_loc``. ``L_unlearn`` is a mean over the prediction's elements. ``L_loc`` is

- ``masked_mean`` (the default, Receler ``train_receler.py:184-185``): per layer the mean of ``o²`` over the
  masked-out entries (tokens outside the mask × channels), averaged over layers;
- ``paper``: Eq. (7)'s squared norm ``(1/L) Σ_l ‖o^l ⊙ (1 − M)‖²`` divided by the prediction's element count.

At step 0 the adapters' ``Up`` is zero, so ``o ≡ 0`` and ``L_loc = 0`` under both: α acts from the first update
on. For an adapter output whose entries have mean square ``r²`` outside the mask (coverage ``c``),
``L_loc(masked_mean) = r²`` and ``L_loc(paper) = r²·(1 − c)·mean_l(C_l·N_l)/N_pred``. The factor
``K = mean_l(C_l·N_l)/N_pred`` (adapter width × video tokens per layer over prediction elements) is what this
script projects at full size: it is exact for the architectures, read from the real diffusers transformers built
on the ``meta`` device at the geometry of each shipped config (``fullsize_models.py``), no weights. α under
``paper`` weighs localization as α·K·(1 − c) does under ``masked_mean``: with K ≈ 30–48 at full size the
``paper`` reading is the far *stronger* one (the same α = 1 means 30×(1 − c) more localization on CogVideoX-2B).

Second part, measured (real code path, tiny random models at their test geometry, CPU): ``L_loc/L_unlearn`` at
step 0 and after one Adam step (lr 1e-4, the paper's) from the zero initialisation, under both normalizations.

Usage: OMP_NUM_THREADS=1 python benchmarks/loc_scale.py [--only cogvideox-2b ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fullsize_models import FULLSIZE, cuda_attention_on_meta  # noqa: E402

from unlearn.backbones import PromptEmbedding  # noqa: E402
from unlearn.methods.t2vunlearning import T2VUnlearning  # noqa: E402

#: α of each shipped config (configs/base/cogvideox.yaml, configs/base/hunyuanvideo.yaml)
CONFIG_ALPHA = {"cogvideox-2b": 1.0, "cogvideox-5b": 1.0, "hunyuanvideo": 5.0}


def projection(name: str) -> dict[str, float]:
    """K = mean_l(C_l·N_l)/N_pred at the config's geometry, from a meta-device forward of the real model."""
    from fullsize_models import training_batch

    model = T2VUnlearning(backbone=f"random-{name}", backbone_kwargs={"device": "meta"}, alpha=0.0)
    model.switch.to("meta")
    bb, switch = model.backbone, model.switch
    batch = training_batch(bb, name)
    cond = PromptEmbedding.from_dict({k[5:]: v for k, v in batch.items() if k.startswith("cond.")})
    with torch.no_grad(), cuda_attention_on_meta(), switch.capturing():
        bb.predict(batch["x_t"], batch["timesteps"], cond)
    squares, _ = switch.take()
    widths = [a.up.out_features for a in switch.adapters]
    n_pred = batch["x_t"][0].numel()
    per_layer = [c * sq.shape[1] for c, sq in zip(widths, squares, strict=True)]
    return {
        "geometry": "x".join(map(str, FULLSIZE[name].geometry)),
        "layers": len(widths),
        "width": widths[0],
        "video_tokens": squares[0].shape[1],
        "prediction_elements": n_pred,
        "K": sum(per_layer) / len(per_layer) / n_pred,
    }


def measured(backbone: str, normalization: str, seed: int = 0) -> dict[str, float]:
    """L_loc and L_unlearn of the real module on a tiny model, at step 0 and after one Adam step (lr 1e-4)."""
    torch.manual_seed(seed)
    model = T2VUnlearning(
        backbone=backbone,
        tiny=True,
        torch_dtype="float32",
        alpha=1.0,
        loc_normalization=normalization,
        mask_threshold=0.5,  # tiny random maps: at 0.1 the averaged mask covers every token
    )
    bb, switch = model.backbone, model.switch
    prompt = ["a naked person walking on the beach"]
    g = torch.Generator().manual_seed(seed)
    shape = bb.latent_shape(bb.defaults.num_frames, bb.defaults.height, bb.defaults.width)
    x = torch.randn(1, *shape, generator=g)
    t = torch.tensor([500])
    cond = bb.encode_prompts(prompt)
    tokens = bb.concept_token_mask(prompt, [["naked"]])
    with torch.no_grad(), switch.disabled():
        u, c, _ = bb.guided_prediction(x, t, cond, bb.encode_prompts([""]), 1.0)
        with switch.capturing(tokens):
            bb.predict(x, t, cond)
        maps = switch.take()[1]
    target = u - 7.0 * (c - u)
    batch = {"x_t": x, "timesteps": t, "target": target, "concept_tokens": tokens, **cond.to_dict("cond.")}
    batch.update({f"concept_maps.{i}": m for i, m in enumerate(maps)})
    opt = torch.optim.Adam(switch.parameters(), lr=1e-4)
    out = {}
    for step in (0, 1):
        losses = model.compute_losses(batch)
        loc, unlearn = float(losses["loc"].detach()), float(losses["unlearn"].detach())
        out.update({f"step{step}_loc": loc, f"step{step}_unlearn": unlearn, f"step{step}_ratio": loc / unlearn})
        out["coverage"] = float(losses["mask_coverage"].detach())
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=list(CONFIG_ALPHA))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    print("Full size (projection: real architectures on meta, the configs' geometry, no weights)")
    print(
        "| backbone | geometry | layers x width | video tokens | prediction elements | K | α (config) | "
        "config α under 'paper' = masked_mean α of (c=0 / 0.5) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.only:
        p = projection(name)
        a = CONFIG_ALPHA[name]
        p.update({"backbone": name, "alpha": a})
        rows.append(p)
        print(
            f"| {name} | {p['geometry']} | {p['layers']} x {p['width']} | {p['video_tokens']} | "
            f"{p['prediction_elements']} | {p['K']:.1f} | {a:g} | {a * p['K']:.3g} / {a * 0.5 * p['K']:.3g} |"
        )
    print("At step 0 L_loc = 0 under both normalizations (Up is zero-initialised, o ≡ 0).")
    print()
    print("Measured (tiny random models, test geometry, real T2VUnlearning.compute_losses; one Adam step, lr 1e-4)")
    print("| backbone | normalization | coverage | L_loc/L_unlearn step 0 | L_loc/L_unlearn step 1 |")
    print("|---|---|---|---|---|")
    tiny = []
    for backbone in ("cogvideox-2b", "hunyuanvideo"):
        for norm in ("masked_mean", "paper"):
            m = measured(backbone, norm)
            m.update({"backbone": backbone, "normalization": norm})
            tiny.append(m)
            print(
                f"| {backbone} (tiny) | {norm} | {m['coverage']:.2f} | {m['step0_ratio']:.3g} | "
                f"{m['step1_ratio']:.3g} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"fullsize": rows, "tiny": tiny}, indent=2))


if __name__ == "__main__":
    main()
