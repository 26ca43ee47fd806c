"""Does each attention layer's concept map point at the object? (toy world; feeds the choice of
``model.mask_layers`` in ``configs/toy_shapes.yaml``)

For rich prompts of one concept, render the true video, noise it to timestep t, run the toy denoiser with the
concept-map capture on, and compare, per attention layer, the mean concept attention of the object's video
tokens with that of the background tokens. A ratio above 1 means the map localises the object; the L_loc
mask of a layer with a ratio below 1 covers the background instead.

Usage: python benchmarks/toy_mask_quality.py [--weights unlearn/toyworld/weights] [--concept "red ring"]
       [--prompts 16] [--timesteps 100 300 600 900] [--seed 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json

import torch


def layer_ratios(weights: str | None, concept: str, n_prompts: int, timesteps: list[int], seed: int = 3) -> dict:
    from unlearn.backbones import build_backbone
    from unlearn.methods.t2vunlearning.adapters import AdapterSwitch
    from unlearn.toyworld.grammar import prompts_for_concept
    from unlearn.toyworld.render import COLOUR_RGB, frames_to_latents, render_video

    bb = build_backbone("toy-cogvideox", pretrained=weights)
    world = bb.world
    sites = bb.attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 8)
    bb.attach_switch(switch)
    per_t: dict[int, list[list[float]]] = {t: [] for t in timesteps}
    for r in prompts_for_concept(concept, n_prompts, split="train", style="rich", seed=seed):
        frames = torch.as_tensor(render_video(r.scene, world.height, world.width, world.frames))
        rgb = torch.tensor(COLOUR_RGB[r.scene.colour], dtype=torch.float32)
        # the object's pixels: close to its colour (backgrounds never use the object colours exactly)
        obj = (frames.float() - rgb).abs().amax(-1) < 40
        p = world.patch_size
        obj_tokens = torch.nn.functional.avg_pool2d(obj[:, None].float(), p)[:, 0].reshape(world.frames, -1) > 0.25
        if obj_tokens.all() or not obj_tokens.any():
            continue
        x0 = frames_to_latents(frames)[None]
        tokens = bb.concept_token_mask([r.text], [[r.words[i] for i in r.concept_indices(concept)]])
        cond = bb.encode_prompts([r.text])
        for t in timesteps:
            tt = torch.tensor([t])
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t))
            x_t = bb.new_scheduler().add_noise(x0, noise, tt)
            with torch.no_grad(), switch.capturing(tokens):
                bb.predict(x_t, tt, cond)
            _, maps = switch.take()
            per_t[t].append([float(m[0][obj_tokens].mean() / m[0][~obj_tokens].mean()) for m in maps])
    out = {}
    for t, rows in per_t.items():
        med = torch.tensor(rows).median(0).values
        out[t] = [round(float(v), 3) for v in med]
    return {"weights": bb.source, "concept": concept, "prompts": n_prompts, "median_obj_bg_ratio_per_layer": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="toy weights folder (default: the shipped weights)")
    ap.add_argument("--concept", default="red ring")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--timesteps", type=int, nargs="+", default=[100, 300, 600, 900])
    ap.add_argument("--seed", type=int, default=3, help="seed of the held-out prompts drawn")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    res = layer_ratios(args.weights, args.concept, args.prompts, args.timesteps, seed=args.seed)
    print(f"object/background concept attention, median over {args.prompts} rich '{args.concept}' prompts")
    print(
        "| t | "
        + " | ".join(f"layer {i}" for i in range(len(next(iter(res["median_obj_bg_ratio_per_layer"].values())))))
        + " |"
    )
    for t, v in res["median_obj_bg_ratio_per_layer"].items():
        print(f"| {t} | " + " | ".join(f"{x:.2f}" for x in v) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
