"""Pretrain the toy text-to-video model (text encoder + tiny CogVideoX transformer) and its frame classifier.

Usage (reproducible; the record of the shipped weights states the exact command)::

    unlearn toyworld pretrain --out unlearn/toyworld/weights --steps 4500 --seed 0 --threads 1

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
   is kept and its path printed (``unlearn toyworld evaluate DIR`` can finish the job).
"""

from __future__ import annotations

import argparse
import inspect
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


def pretrain(
    out: str = "unlearn/toyworld/weights",
    steps: int = 5000,
    seed: int = 0,
    threads: int = 2,
    batch_size: int = 32,
    lr: float = 8e-4,
    warmup: int = 200,
    min_lr_ratio: float = 0.1,
    weight_decay: float = 0.01,
    caption_dropout: float = 0.1,
    bare_prob: float = 0.3,
    height: int = 16,
    width: int = 16,
    frames: int = 4,
    num_layers: int = 4,
    heads: int = 4,
    head_dim: int = 16,
    text_dim: int = 64,
    max_text_length: int = 24,
    log_every: int = 250,
    save_every: int = 1000,
    classifier: str | None = None,
    classifier_steps: int = 1200,
    eval_per_class: int = 4,
    eval_steps: int = 30,
    guidance: float = 5.0,
    device: str = "cpu",
    no_eval: bool = False,
) -> int:
    """Train the toy text encoder + denoiser (+ classifier) and ship the weights (``unlearn toyworld pretrain``).

    Args:
        out: output folder (replaced atomically).
        steps: denoiser training steps.
        seed: seed of the training data and initialisation.
        threads: torch CPU threads.
        batch_size: videos per training step.
        lr: peak learning rate.
        warmup: linear warm-up steps.
        min_lr_ratio: cosine decay floor (fraction of ``lr``).
        weight_decay: AdamW weight decay.
        caption_dropout: share of captions dropped to the empty prompt.
        bare_prob: share of bare prompts in the training mix.
        height: frame height.
        width: frame width.
        frames: frames per video.
        num_layers: transformer blocks.
        heads: attention heads.
        head_dim: width of each head.
        text_dim: text encoder width.
        max_text_length: tokens the text encoder reads.
        log_every: log every this many steps.
        save_every: write the current weights into the temporary folder every N steps (0: never), so a running
            pretraining can be evaluated with ``unlearn toyworld evaluate TMPDIR --classifier DIR``.
        classifier: folder of an already trained classifier to ship.
        classifier_steps: classifier training steps.
        eval_per_class: held-out prompts per shape x colour class.
        eval_steps: sampling steps in the evaluation.
        guidance: CFG scale in the evaluation.
        device: training device.
        no_eval: skip the evaluation.
    """
    args = argparse.Namespace(**locals())
    defaults = {k: v.default for k, v in inspect.signature(pretrain).parameters.items()}
    given = [f"--{k} {shlex.quote(str(v))}" for k, v in vars(args).items() if v != defaults[k]]
    return _pretrain(args, " ".join(["unlearn toyworld pretrain", *given]))


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


def _pretrain(args: argparse.Namespace, command: str) -> int:
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
