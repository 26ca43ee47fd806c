"""Pretrain the toy text-to-video model (text encoder + tiny CogVideoX transformer) and its frame classifier.

Usage (reproducible; the record of the shipped weights states the exact command)::

    python -m unlearn.toyworld.pretrain --out unlearn/toyworld/weights --steps 4500 --seed 0 --threads 1

What it does:

1. builds the word-level tokenizer from the grammar's vocabulary;
2. trains the text encoder and the denoiser jointly on freshly rendered (prompt, video) pairs of the TRAIN
   split (a mix of bare and rich prompts, 10% caption dropout to the empty prompt), v-prediction loss with
   the CogVideoX-2B-style ``CogVideoXDDIMScheduler``;
3. trains (or copies, with ``--classifier DIR``) the shape x colour frame classifier;
4. evaluates: samples videos for held-out rich prompts covering all 25 classes, classifies every frame and
   reports shape x colour, shape-only and colour-only top-1 accuracy;
5. writes everything (safetensors + JSON only) to a temporary folder next to ``--out`` and renames it into
   place at the end, so a killed run leaves nothing half-written. If evaluation fails, the temporary folder
   is kept and its path printed (``python -m unlearn.toyworld.evaluate_pretrained DIR`` can finish the job).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from unlearn.io import atomic_entries, dir_size, replace_folder

from . import grammar
from .backbone import ToyCogVideoXBackbone, WorldConfig, build_tokenizer, tokenize
from .classifier import ShapeColourClassifier, train_classifier
from .evaluate_pretrained import evaluate_generation, write_record
from .grammar import sample_prompt
from .render import COLOURS, SHAPES, frames_to_latents, render_video


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m unlearn.toyworld.pretrain", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="unlearn/toyworld/weights", help="output folder (replaced atomically)")
    p.add_argument("--steps", type=int, default=5000, help="denoiser training steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine decay floor (fraction of --lr)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--caption-dropout", type=float, default=0.1)
    p.add_argument("--bare-prob", type=float, default=0.3, help="share of bare prompts in the training mix")
    p.add_argument("--height", type=int, default=16)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--num-layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=16)
    p.add_argument("--text-dim", type=int, default=64)
    p.add_argument("--max-text-length", type=int, default=24)
    p.add_argument("--log-every", type=int, default=250)
    p.add_argument(
        "--save-every",
        type=int,
        default=1000,
        help="write the current weights into the temporary folder every N steps (0: never), so a "
        "running pretraining can be evaluated with evaluate_pretrained TMPDIR --classifier DIR",
    )
    p.add_argument("--classifier", default=None, help="folder of an already trained classifier to ship")
    p.add_argument("--classifier-steps", type=int, default=1200)
    p.add_argument("--eval-per-class", type=int, default=4, help="held-out prompts per shape x colour class")
    p.add_argument("--eval-steps", type=int, default=30, help="sampling steps in the evaluation")
    p.add_argument("--guidance", type=float, default=5.0, help="CFG scale in the evaluation")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-eval", action="store_true")
    return p.parse_args(argv)


def lr_at(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def make_batch(rng: np.random.Generator, n: int, world: WorldConfig, bare_prob: float, caption_dropout: float):
    """``(prompts, latents [n, F, 3, H, W])`` of the train split; dropped captions become the empty prompt."""
    prompts, vids = [], []
    for _ in range(n):
        rec = sample_prompt(rng, split="train", bare_prob=bare_prob)
        vids.append(render_video(rec.scene, world.height, world.width, world.frames))
        prompts.append("" if rng.random() < caption_dropout else rec.text)
    return prompts, frames_to_latents(np.stack(vids))


def train_denoiser(args, world: WorldConfig, tokenizer, log=print, checkpoint_dir: Path | None = None):
    """Jointly train the text encoder and transformer of a fresh ``toy-cogvideox`` backbone; returns the backbone
    (eval mode, frozen) and a dict of training stats.

    With ``checkpoint_dir`` and ``args.save_every``, the current weights are written there periodically."""
    from tqdm import tqdm

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device(args.device)
    backbone = ToyCogVideoXBackbone.tiny(seed=args.seed, world=world, tokenizer=tokenizer).to(device)
    text_encoder, transformer, scheduler = backbone.text_encoder, backbone.denoiser, backbone.scheduler
    backbone.requires_grad_(True)  # a backbone is frozen by default; pretraining trains it
    n_params = sum(p.numel() for p in transformer.parameters()) + sum(p.numel() for p in text_encoder.parameters())
    log(
        f"[pretrain] parameters: transformer {sum(p.numel() for p in transformer.parameters()) / 1e6:.3f} M, "
        f"text encoder {sum(p.numel() for p in text_encoder.parameters()) / 1e6:.3f} M"
    )
    params = list(transformer.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, args.steps, args.warmup, args.min_lr_ratio))
    alphas = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
    T = scheduler.config.num_train_timesteps
    gen = torch.Generator().manual_seed(args.seed)
    transformer.train()
    text_encoder.train()
    t0 = time.time()
    ema, history = None, []
    bar = tqdm(range(args.steps), desc="pretrain", dynamic_ncols=True, mininterval=5.0, file=sys.stderr)
    for step in bar:
        prompts, x0 = make_batch(rng, args.batch_size, world, args.bare_prob, args.caption_dropout)
        x0 = x0.to(device)
        enc = tokenize(tokenizer, prompts, world.max_text_length)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        t = torch.randint(0, T, (x0.shape[0],), generator=gen).to(device)
        a = alphas[t].view(-1, 1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise  # == scheduler.add_noise
        v_target = a.sqrt() * noise - (1 - a).sqrt() * x0  # == scheduler.get_velocity
        ctx = text_encoder(enc["input_ids"].to(device), enc["attention_mask"].to(device))
        v = transformer(hidden_states=x_t, encoder_hidden_states=ctx, timestep=t, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(v, v_target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        lv = loss.item()
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        if step % 5 == 0:
            bar.set_postfix(loss=f"{ema:.4f}", lr=f"{sched.get_last_lr()[0]:.1e}", refresh=False)
        if (step + 1) % args.log_every == 0 or step == 0:
            el = time.time() - t0
            history.append({"step": step + 1, "loss_ema": round(ema, 5), "elapsed_s": round(el, 1)})
            log(
                f"[pretrain] step {step + 1}/{args.steps} loss(ema) {ema:.4f} lr {sched.get_last_lr()[0]:.2e} "
                f"elapsed {el / 60:.1f} min ({el / (step + 1):.3f} s/step)"
            )
        if (
            checkpoint_dir is not None
            and args.save_every
            and (step + 1) % args.save_every == 0
            and step + 1 < args.steps
        ):
            with atomic_entries(checkpoint_dir, last="progress.json") as staged:
                backbone.save_pretrained(str(staged))
                (staged / "progress.json").write_text(json.dumps({"step": step + 1, "loss_ema": ema}))
            log(f"[pretrain] weights of step {step + 1} written to {checkpoint_dir}")
    bar.close()
    backbone.requires_grad_(False)
    backbone.eval()
    stats = {
        "train_wall_s": round(time.time() - t0, 1),
        "final_loss_ema": round(ema, 5),
        "loss_history": history,
        "parameters": n_params,
    }
    return backbone, stats


def main(argv=None) -> int:
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    t_start = time.time()
    world = WorldConfig(
        height=args.height,
        width=args.width,
        frames=args.frames,
        max_text_length=args.max_text_length,
        text_dim=args.text_dim,
        num_layers=args.num_layers,
        num_attention_heads=args.heads,
        attention_head_dim=args.head_dim,
        guidance_scale=args.guidance,
        num_inference_steps=args.eval_steps,
    )
    if grammar.max_prompt_words() > world.max_text_length:
        raise SystemExit(f"max_text_length {world.max_text_length} < longest prompt {grammar.max_prompt_words()}")
    tokenizer = build_tokenizer(max_length=world.max_text_length)
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    command = "python -m unlearn.toyworld.pretrain " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    print(f"[pretrain] {command}\n[pretrain] world {asdict(world)}\n[pretrain] writing to {tmp} then {out}", flush=True)

    backbone, stats = train_denoiser(args, world, tokenizer, log=lambda m: print(m, flush=True), checkpoint_dir=tmp)
    world.extra = {
        "vocabulary_size": len(tokenizer),
        "shapes": list(SHAPES),
        "colours": list(COLOURS),
        "concept_synonyms": grammar.concept_words(),
        "heldout_templates": sorted(grammar.HELDOUT_TEMPLATES),
    }
    backbone.world = world
    backbone.save_pretrained(str(tmp))
    (tmp / "progress.json").unlink(missing_ok=True)
    print(f"[pretrain] denoiser saved to {tmp}", flush=True)

    record = {
        "command": command,
        "seed": args.seed,
        "steps": args.steps,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "args": vars(args),
        "world": asdict(world),
        "train": stats,
        "torch": torch.__version__,
    }
    try:
        t_c = time.time()
        if args.classifier:
            clf = ShapeColourClassifier.from_pretrained(args.classifier)
            record["classifier"] = {"source": str(args.classifier)}
        else:
            clf, clf_stats = train_classifier(
                height=world.height,
                width=world.width,
                frames=world.frames,
                steps=args.classifier_steps,
                seed=args.seed + 1,
                log=lambda m: print(m, flush=True),
            )
            record["classifier"] = clf_stats
        record["classifier"]["wall_s"] = round(time.time() - t_c, 1)
        clf.save_pretrained(tmp / "classifier")
        if not args.no_eval:
            t_e = time.time()
            res = evaluate_generation(
                backbone,
                clf,
                per_class=args.eval_per_class,
                num_inference_steps=args.eval_steps,
                guidance_scale=args.guidance,
                seed=args.seed + 2,
            )
            res["wall_s"] = round(time.time() - t_e, 1)
            record["generation_eval"] = res
            print(
                f"[pretrain] generated frames (held-out rich prompts): shape x colour "
                f"{res['top1_shape_colour']:.3f}, shape {res['top1_shape']:.3f}, colour {res['top1_colour']:.3f}",
                flush=True,
            )
    except Exception as e:  # keep the trained denoiser; evaluation can be redone
        import traceback

        traceback.print_exc()
        record["error"] = repr(e)
        (tmp / "pretrain_record.json").write_text(json.dumps(record, indent=2))
        print(f"[pretrain] evaluation failed; trained components kept in {tmp}", flush=True)
        return 1

    record["total_wall_s"] = round(time.time() - t_start, 1)
    record["weights_bytes"] = dir_size(tmp)
    write_record(tmp, record)
    replace_folder(tmp, out)
    print(
        f"[pretrain] done in {record['total_wall_s'] / 60:.1f} min; weights {record['weights_bytes'] / 1e6:.2f} MB "
        f"in {out}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
