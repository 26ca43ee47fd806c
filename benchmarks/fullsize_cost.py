"""What a paper-setting run costs at full size: FLOPs counted on the real architectures, projected to an H100.

No weights and no GPU: every backbone is the real diffusers transformer built from its published configuration on
the ``meta`` device (``fullsize_models.py``), wrapped by the real ``T2VUnlearning`` module with its adapters, and
``torch.utils.flop_counter.FlopCounterMode`` counts what the real training step runs — ``compute_losses`` and the
backward of its total (attention as a CUDA device runs it: the flash / memory-efficient kernels, whose FLOPs the
counter knows). Per backbone at the geometry of its config:

- ``fwd/step``: transformer forwards per training step, counted by a hook on the denoiser during the step;
- ``TFLOP/step`` and the concept mask's share: the step with α > 0 minus the same step without the map, as a
  share of the step and of one adapted forward (the target: ≤ 10 % of the adapted forward);
- peak training memory (GiB): ``memory_plan.py``'s estimate (saved activations measured on meta) for the code as
  it is now (text encoders and VAE parked after the cache build, one forward graph alive at a time);
- ``s/step``: FLOPs ÷ (40 % of an H100's 989 TFLOPS dense bf16);
- the whole run of the backbone's config: pseudo data (trajectories from the config's data module, denoiser
  calls per trajectory counted by running the real sampler of the family's tiny model with the config's
  sampler settings, × the FLOPs of one full-size forward) + training steps (``trainer.max_steps``; a config
  still in epochs runs ``max_epochs`` passes over its cached samples) × s/step.

- the whole run, phase by phase (``whole_run``): weights read from disk, pseudo data (+ encoding every prompt
  once and moving the text encoder and VAE off the GPU), training (+ the ConceptMaskCallback's forwards), sample
  videos as the config's SampleVideoCallback makes them (renders × prompts × sampler steps × CFG forwards, one VAE
  decode per video counted on meta, the encoder/VAE moves per render), evaluation; and the peak GiB of each phase:
  training under bf16-mixed (autocast saves every LayerNorm input in float32: counted by hooks on a meta forward),
  pseudo data and samples with the phase-wise residency of ``VideoBackbone.prompts_encoded_then_parked`` /
  ``generate_offloaded`` (and, for comparison, with every module resident). Bandwidths and the VAE's MFU are the
  constants ``LOAD_GBPS``, ``PCIE_GBPS``, ``VAE_MFU``.

- the adversarial variant (``model.adversary`` / ``model.adversarial_steps`` in the config, or ``--set
  model.adversary=persistent --set model.adversarial_steps=K``): the step is counted with the adversary on (the
  inner steps, the frozen concept forward and the adversarial erase forward all run in ``compute_losses``), next
  to the plain step; its memory is the plain step's (the inner steps' and the adversarial forward's graphs are
  freed before the clean forward builds the step's graph) plus the persistent bank (perturbation + two Adam
  moments, float32, per training prompt), added to the training peak.

These are projections: FLOPs are exact for the architectures, the 40 % MFU is an assumption (``--mfu``), and
elementwise work (norms, the map's exp) is not counted. ``gpu_step.py`` measures the same step on a GPU.

Usage: OMP_NUM_THREADS=1 python benchmarks/fullsize_cost.py [--only cogvideox-2b ...] [--mfu 0.4]
       [--set trainer.max_steps=500 --set data.augment=32] [--json out.json] [--markdown out.md]
``--set KEY=VALUE`` overrides a key of every row's config (``trainer.*``, ``model.*`` or ``data.*``: passed to the
CLI as ``--KEY=VALUE``), to project a schedule before the configs carry it. Last line:
``cogx2b_nudity_h100_minutes: <x>``, the whole run of configs/cogx2b_nudity.yaml.

Parts of a row alone (seconds; a JSON line each, ``--json`` writes them all):
``--count-step alpha=1,beta=1,mask_source=adapted [--count-step ...] [--num-layers 1]``: the training step with
these model keys (the others: the row's config), at N blocks of the real width; ``--sample-videos CONFIG ...``:
each config's callbacks and its sample videos (renders, forwards, videos) in a run of its ``trainer.max_steps``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.utils._python_dispatch
import torch.utils._pytree
import yaml
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import memory_plan as mp  # noqa: E402
from fullsize_models import FULLSIZE, cuda_attention_on_meta, training_batch  # noqa: E402

from unlearn.backbones import PromptEmbedding, SamplingSettings, build_backbone  # noqa: E402
from unlearn.backbones.attention import concept_attention_probs  # noqa: E402
from unlearn.methods.t2vunlearning import T2VUnlearning  # noqa: E402
from unlearn.methods.t2vunlearning.pseudo_data import PseudoDataSettings, TrajectoryRequest, make_trajectories  # noqa: E402

H100_BF16_DENSE = 989.4e12  # FLOP/s, SXM, without sparsity
V100_FP16_TENSOR = 125e12  # FLOP/s, SXM2 (the paper's GPU; it has no bf16 tensor cores)
#: model keys of the adversarial variant, passed from the config to the counted step
ADVERSARY_KEYS = (
    "adversary",
    "adversarial_steps",
    "adversarial_epsilon",
    "adversarial_weight",
    "adversary_lr",
    "adversary_weight_decay",
)
#: the paper's appendix: 500 epochs take ≈2 h (CogVideoX-2B, HunyuanVideo) and ≈4 h (CogVideoX-5B) on one V100
PAPER_SECONDS_PER_EPOCH = {
    "cogvideox-2b": 2 * 3600 / 500,
    "cogvideox-5b": 4 * 3600 / 500,
    "hunyuanvideo": 2 * 3600 / 500,
}


# ------------------------------------------------------------------------------------------------ configs
def load_config(path: str | None, overrides: list[str]) -> dict[str, Any]:
    """The config as the CLI resolves it (includes, interpolations, ``--set`` overrides given as CLI options):
    its trainer section and the model's and data module's ``init_args`` (with their ``class_path``)."""
    from unlearn.cli import main as cli

    cfg: dict[str, Any] = {"trainer": {}, "model": {}, "data": {}}
    if not path:
        return cfg
    args = ["fit", "--config", str(ROOT / path)]
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq or key.split(".")[0] not in cfg:
            raise SystemExit(f"--set {item!r}: use trainer.KEY=VALUE, model.KEY=VALUE or data.KEY=VALUE")
        args.append(f"--{key}={value}")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        # LightningCLI warns that this script's own argv differs from the args it is given: intended here
        warnings.simplefilter("ignore")
        try:
            cli([*args, "--print_config"])
        except SystemExit as done:
            if done.code not in (0, None):
                raise
    raw = yaml.safe_load(printed.getvalue())
    cfg["trainer"] = dict(raw.get("trainer") or {})
    for section in ("model", "data"):
        cfg[section] = {
            **(raw.get(section, {}).get("init_args") or {}),
            "class_path": raw.get(section, {}).get("class_path"),
        }
    return cfg


def data_module(cfg: dict[str, Any]):
    """The config's data module, built for real (prompts, preserve prompts, trajectory requests)."""
    args = {k: v for k, v in cfg["data"].items() if k != "class_path"}
    if "augment_source" in args:
        # only the number of prompts counts here: the offline grammar writes as many as the configured LLM would
        args["augment_source"] = "template"
    module, _, cls = (cfg["data"].get("class_path") or "unlearn.methods.t2vunlearning.ConceptDataModule").rpartition(
        "."
    )
    # nothing is generated or cached here: only the prompts and the trajectory requests are read
    return getattr(importlib.import_module(module), cls)(**{**args, "cache_dir": tempfile.gettempdir()})


# ------------------------------------------------------------------------------------------------ counting
def meta_model(
    name: str,
    alpha: float,
    beta: float,
    ckpt: bool,
    num_layers: int | None = None,
    mask_source: str = "frozen",
    adversary: dict[str, Any] | None = None,
) -> T2VUnlearning:
    """The real module around the full-size backbone on meta (``num_layers``: fewer blocks of the real width).
    ``mask_source`` "frozen" (the default): the concept maps come with the pseudo data and cost the step nothing;
    "adapted": the step's own forward records them (the earlier route, whose share of the step this counts).
    ``adversary``: the adversarial variant's model keys (:data:`ADVERSARY_KEYS`); a persistent bank is counted
    with one shared entry (the same FLOPs as one per prompt: the batch's entries are what the step touches)."""
    extra = dict(adversary or {})
    if extra.get("adversary") == "persistent":
        extra["adversary_bank"] = "shared"
    model = T2VUnlearning(
        backbone=f"random-{name}",
        backbone_kwargs={"device": "meta", "num_layers": num_layers},
        alpha=alpha,
        beta=beta,
        gradient_checkpointing=ckpt,
        mask_source=mask_source,
        **extra,
    )
    model.switch.to("meta")
    return model


def count_step(
    name: str,
    alpha: float,
    beta: float,
    ckpt: bool,
    num_layers: int | None = None,
    mask_source: str = "frozen",
    adversary: dict[str, Any] | None = None,
) -> dict[str, float]:
    """FLOPs and denoiser forwards of one real training step (``compute_losses`` + backward of its total);
    ``adversary``: with the adversarial variant's keys (:func:`meta_model`)."""
    model = meta_model(name, alpha, beta, ckpt, num_layers, mask_source, adversary)
    calls = []
    batch = training_batch(model.backbone, name, preserve=beta > 0)  # (its frozen maps' forward is not the step's)
    model.backbone.denoiser.register_forward_pre_hook(lambda *a: calls.append(1))
    with cuda_attention_on_meta(), FlopCounterMode(display=False) as fc:
        losses = model.compute_losses(batch)
        losses["total"].backward()
    assert all(p.grad is not None for p in model.switch.parameters()), "every adapter must get a gradient"
    cond = batch["cond.hidden_states"]
    cfg = model.backbone.denoiser.config
    return {
        "flops": fc.get_total_flops(),
        "forwards": len(calls),
        "cond_shape": tuple(cond.shape[1:]),
        "width": cfg.num_attention_heads * cfg.attention_head_dim,  # the denoiser's hidden width, as counted
    }


def count_forward(name: str, adapters: bool) -> float:
    """FLOPs of one full-size denoiser forward at batch 1 (adapted with gradients on, or frozen under no_grad)."""
    model = meta_model(name, 0.0, 0.0, False)
    batch = training_batch(model.backbone, name)
    cond = PromptEmbedding.from_dict({k[5:]: v for k, v in batch.items() if k.startswith("cond.")})
    with cuda_attention_on_meta(), FlopCounterMode(display=False) as fc:
        if adapters:
            model.backbone.predict(batch["x_t"], batch["timesteps"], cond)
        else:
            with torch.no_grad(), model.switch.disabled():
                model.backbone.predict(batch["x_t"], batch["timesteps"], cond)
    return fc.get_total_flops()


def chunked_map_flops(name: str) -> float:
    """FLOPs of the previous route (chunked dense logits over all keys, unlearn.backbones.concept_attention_probs) for
    every site at the row's geometry (matmuls only: its logsumexp/exp passes over the same logits are not FLOPs)."""
    model = meta_model(name, 0.0, 0.0, False)
    bb, spec = model.backbone, FULLSIZE[name]
    cfg = bb.denoiser.config
    heads, dim = cfg.num_attention_heads, cfg.attention_head_dim
    tokens = mp.video_tokens(_plan(name), bb.denoiser, bb.latent_shape(*spec.geometry))
    keys = spec.text_len if name.startswith("wan") else spec.text_len + tokens  # Wan: cross-attention on text
    q = torch.empty(1, heads, tokens, dim, dtype=torch.bfloat16, device="meta")
    k = torch.empty(1, heads, keys, dim, dtype=torch.bfloat16, device="meta")
    with FlopCounterMode(display=False) as fc:
        concept_attention_probs(
            q, k, torch.zeros(1, keys, dtype=torch.bool), chunk_size=max(1, 2**26 // (heads * keys))
        )
    return fc.get_total_flops() * len(bb.attention_sites())


def pseudo_forwards_per_trajectory(
    name: str, settings: PseudoDataSettings, generation_batch_size: int, loss_prompt_differs: bool
) -> float:
    """Denoiser sample-forwards (batch elements) per trajectory: the family's tiny model runs the real
    ``make_trajectories`` with the config's sampler settings (steps, guidance, recorded steps), counted by a hook;
    the count depends on the sampler, not on the model's size."""
    bb = build_backbone(name, tiny=True, torch_dtype="float32")
    d = bb.defaults
    tiny = dataclasses.replace(
        settings,
        sampling=dataclasses.replace(settings.sampling, num_frames=d.num_frames, height=d.height, width=d.width),
    )
    n = generation_batch_size
    reqs = [
        TrajectoryRequest(
            "unlearn", f"a golf ball number {i}", i, "a golf ball" if loss_prompt_differs else f"a golf ball number {i}"
        )
        for i in range(n)
    ]
    samples = []  # batch size of every denoiser call (the wrappers call it with keyword arguments)
    bb.denoiser.register_forward_pre_hook(
        lambda m, a, kw: samples.append(kw["hidden_states"].shape[0]), with_kwargs=True
    )
    make_trajectories(bb, reqs, tiny, eta=1.0)
    return sum(samples) / n


def _plan(name: str) -> mp.Plan:
    return next(p for p in mp.PLANS if p.registry == name)


def memory(name: str) -> dict[str, Any]:
    plan = _plan(name)
    meta = mp.build_meta(plan)
    m = mp.measure(plan, meta, *FULLSIZE[name].geometry)
    weights = {
        "denoiser": mp.n_params(meta["denoiser"]) * mp.BF16,
        "text_encoders": sum(n for _, n in meta["text_encoders"]) * mp.BF16,
        "vae": meta["vae_params"] * mp.BF16,
    }
    return {**mp.estimate(plan, meta, m), "video_tokens": m["video_tokens"], "weights": weights}


# ------------------------------------------------------------------------------------------------ the whole run
#: bandwidths of the whole-run model (assumptions, printed with the result): reading safetensors from a local NVMe
#: disk (the hub download is not counted) and moving a module between host and device memory (pageable copies)
LOAD_GBPS = 2.0
PCIE_GBPS = 10.0
#: MFU assumed for the VAE's 3D convolutions (cuDNN conv3d in bf16 reaches far less than the matmuls' 40 %)
VAE_MFU = 0.2


class LiveBytes(torch.utils._python_dispatch.TorchDispatchMode):
    """Peak bytes of the tensors an operation sequence creates and keeps alive at once (meta tensors are freed
    like real ones when their last reference goes): the transient working set of a no-grad forward."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0

    def _free(self, n: int) -> None:
        self.live -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        import weakref

        out = func(*args, **(kwargs or {}))
        inputs = {id(a) for a in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)}
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and id(t) not in inputs and not t._is_view():
                n = t.numel() * t.element_size()
                self.live += n
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, n)
        return out


def inference_working_set(name: str) -> float:
    """Bytes of the largest transient working set of one frozen no-grad forward at batch 1 (meta, CUDA-style
    attention: no N×N matrix); sampling at batch B (CFG doubles it) needs about B times this."""
    model = meta_model(name, 0.0, 0.0, False)
    batch = training_batch(model.backbone, name)
    cond = PromptEmbedding.from_dict({k[5:]: v for k, v in batch.items() if k.startswith("cond.")})
    with torch.no_grad(), model.switch.disabled(), cuda_attention_on_meta(), LiveBytes() as live:
        model.backbone.predict(batch["x_t"], batch["timesteps"], cond)
    return float(live.peak)


def layernorm_input_elements(name: str) -> tuple[int, int]:
    """(elements entering every ``nn.LayerNorm`` of one adapted forward, number of transformer blocks): under
    bf16-mixed autocast ``layer_norm`` runs in float32 and saves its input as float32, 2 bytes more per element
    than the bf16 run ``memory_plan.py`` counts."""
    model = meta_model(name, 0.0, 0.0, False)
    batch = training_batch(model.backbone, name)
    cond = PromptEmbedding.from_dict({k[5:]: v for k, v in batch.items() if k.startswith("cond.")})
    seen = [0]
    hooks = [
        m.register_forward_pre_hook(lambda mod, a: seen.__setitem__(0, seen[0] + a[0].numel()))
        for m in model.backbone.denoiser.modules()
        if isinstance(m, torch.nn.LayerNorm)
    ]
    with cuda_attention_on_meta():
        model.backbone.predict(batch["x_t"], batch["timesteps"], cond)
    for h in hooks:
        h.remove()
    cfg = model.backbone.denoiser.config
    return seen[0], int(cfg.num_layers + getattr(cfg, "num_single_layers", 0))


_VAE_DECODE: dict[tuple, float] = {}


def vae_decode_flops(name: str) -> float:
    """FLOPs of decoding one video at the row's geometry (CogVideoX's VAE, tiled and sliced as the sample callback
    decodes; counted on meta). Other families: 0 (their random full-size builds carry no VAE here)."""
    spec = FULLSIZE[name]
    if not name.startswith("cogvideox"):
        return 0.0
    key = (name, spec.geometry)
    if key not in _VAE_DECODE:
        from diffusers import AutoencoderKLCogVideoX

        with torch.device("meta"):
            vae = AutoencoderKLCogVideoX().to(torch.bfloat16)
        vae.enable_tiling()
        vae.enable_slicing()
        bb = meta_model(name, 0.0, 0.0, False, num_layers=1).backbone
        f, c, h, w = bb.latent_shape(*spec.geometry)
        z = torch.empty(1, c, f, h, w, dtype=torch.bfloat16, device="meta")
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            vae.decode(z)
        _VAE_DECODE[key] = float(fc.get_total_flops())
    return _VAE_DECODE[key]


def callbacks_of(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{class name: init_args}`` of the config's trainer callbacks."""
    return {
        cb["class_path"].rsplit(".", 1)[-1]: dict(cb.get("init_args") or {})
        for cb in cfg["trainer"].get("callbacks") or []
    }


def renders(args: dict[str, Any], steps: int, at_start: bool) -> int:
    """How often a periodic callback acts in a run of ``steps`` optimizer steps (+1 for one at fit start)."""
    every = int(args.get("every_n_steps") or 0)
    return (steps // every if every else 0) + (1 if at_start else 0)


def sample_counts(cfg: dict[str, Any], name: str, steps: int) -> tuple[int, int, int]:
    """(renders, denoiser sample-forwards, decoded videos) of the config's SampleVideoCallback in a run of
    ``steps`` optimizer steps: the original model's videos at fit start plus one render every ``every_n_steps``,
    each ``prompts × sampler steps × 2`` forwards with classifier-free guidance (1× without)."""
    sample = callbacks_of(cfg).get("SampleVideoCallback")
    if not sample:
        return 0, 0, 0
    spec = FULLSIZE[name]
    data = cfg["data"]
    guidance = float(data.get("guidance_scale") if data.get("guidance_scale") is not None else spec.sampling[1])
    n = renders(sample, steps, at_start=True)
    prompts = len(sample.get("prompts") or [])
    sampler = int(sample.get("num_inference_steps") or spec.sampling[0])
    return n, n * prompts * sampler * (2 if guidance > 1 else 1), n * prompts


def whole_run(name: str, cfg: dict[str, Any], base: dict[str, Any], mem: dict[str, Any], mfu: float) -> dict[str, Any]:
    """Minutes of every phase the config switches on and the peak GiB of each (see the module docstring)."""
    spec = FULLSIZE[name]
    flops_s = mfu * H100_BF16_DENSE
    gib = 2**30
    w = mem["weights"]  # bytes: denoiser, text encoders, vae
    steps = base["training_steps"]
    cbs = callbacks_of(cfg)
    data = cfg["data"]
    adapted = base["adapted_forward_tflop"] * 1e12
    guidance = float(data.get("guidance_scale") if data.get("guidance_scale") is not None else spec.sampling[1])
    cfg_factor = 2 if guidance > 1 else 1
    phases: dict[str, dict[str, float]] = {}
    # weights from disk
    phases["load"] = {"minutes": (w["denoiser"] + w["text_encoders"] + w["vae"]) / (LOAD_GBPS * 1e9) / 60}
    # sample videos: renders x prompts x sampler steps x CFG forwards, one VAE decode per video, T5 on and off
    sample = cbs.get("SampleVideoCallback")
    sample_min = 0.0
    n_renders = 0
    if sample:
        n_renders, forwards, videos = sample_counts(cfg, name, steps)
        decode = videos * vae_decode_flops(name) / (VAE_MFU * H100_BF16_DENSE)
        moves = n_renders * 2 * (w["text_encoders"] + w["vae"]) / (PCIE_GBPS * 1e9)
        sample_min = (forwards * adapted / flops_s + decode + moves) / 60
        phases["samples"] = {
            "minutes": sample_min,
            "renders": n_renders,
            "forwards": forwards,
            "vae_decode_minutes": decode / 60,
            "module_moves_minutes": moves / 60,
        }
    # pseudo data: the trajectories (base row) + encoding every prompt once + T5 on and off once
    pseudo_min = base["pseudo_data_minutes"] + 2 * (w["text_encoders"] + w["vae"]) / (PCIE_GBPS * 1e9) / 60
    phases["pseudo_data"] = {"minutes": pseudo_min}
    # training: the steps (base row) + the concept-mask callback's forwards + the first step's map check (one
    # layer's chunked map: < 0.1 s, not counted)
    masks = cbs.get("ConceptMaskCallback")
    mask_min = (renders(masks, steps, at_start=False) * adapted / flops_s / 60) if masks else 0.0
    phases["training"] = {"minutes": base["training_minutes"] + mask_min, "mask_callback_minutes": mask_min}
    evaluation = cbs.get("ErasureEvaluation")
    phases["evaluation"] = {"minutes": 0.0, "note": "configured" if evaluation else "not in this config"}
    total = sum(p["minutes"] for p in phases.values())
    # peaks (GiB, what the allocator holds + 1.5 GiB CUDA context and workspaces, x1.1 fragmentation, as
    # memory_plan.py): per phase, with the phase-wise residency of VideoBackbone.prompts_encoded_then_parked /
    # generate_offloaded, and with every module resident (the code before it) for comparison
    work = inference_working_set(name)
    gen_batch = int(data.get("generation_batch_size", 1)) * cfg_factor
    sample_batch = (len(sample.get("prompts") or []) if sample else 1) * cfg_factor
    ctx = 1.5 * gib

    def peak(*parts: float) -> float:
        return (sum(parts) + ctx) * 1.1 / gib

    vae_work = 2.0 * gib  # tiled decode of one video (tiles of 60x90 latents, 2 latent frames at a time): ~2 GiB
    ln_elems, blocks = layernorm_input_elements(name)
    autocast_extra = 2 * ln_elems  # bytes: fp32 instead of bf16 LayerNorm inputs saved
    if base["gradient_checkpointing"]:
        autocast_extra = 2 * autocast_extra / max(1, blocks)  # only the recomputed block holds them
    train_key = "peak_gib_ckpt" if base["gradient_checkpointing"] else "peak_gib_no_ckpt"
    peaks = {
        "pseudo_data": max(peak(w["denoiser"], w["text_encoders"]), peak(w["denoiser"], gen_batch * work)),
        "training": base[train_key] + autocast_extra * 1.1 / gib + base.get("adversary_bank_gib", 0.0) * 1.1,
        "samples": max(
            peak(w["denoiser"], w["text_encoders"]),
            peak(w["denoiser"], sample_batch * work),
            peak(w["denoiser"], w["vae"], vae_work),
        )
        if sample
        else 0.0,
    }
    resident = w["denoiser"] + w["text_encoders"] + w["vae"]
    peaks_all_resident = {
        "pseudo_data": peak(resident, gen_batch * work),
        "samples": peak(resident, sample_batch * work, vae_work) if sample else 0.0,
    }
    return {
        "phases": phases,
        "whole_run_minutes": total,
        "peak_gib": peaks,
        "run_peak_gib": max(peaks.values()),
        "peak_gib_all_resident": peaks_all_resident,
        "autocast_extra_gib": autocast_extra / gib,
        "inference_working_set_gib": work / gib,
        "vae_decode_tflop": vae_decode_flops(name) / 1e12,
    }


# ------------------------------------------------------------------------------------------------ one row
def row(name: str, overrides: list[str], mfu: float) -> dict[str, Any]:
    spec = FULLSIZE[name]
    cfg = load_config(spec.config or FULLSIZE["cogvideox-2b"].config, overrides)
    hp = cfg["model"]
    alpha, beta = float(hp.get("alpha", 1.0)), float(hp.get("beta", 0.0))
    ckpt = bool(hp.get("gradient_checkpointing", False))
    flops_s = mfu * H100_BF16_DENSE
    t0 = time.time()
    adversary = {k: hp[k] for k in ADVERSARY_KEYS if k in hp and hp[k] is not None}
    adversarial = int(adversary.get("adversarial_steps") or 0) > 0
    step = count_step(
        name, alpha, beta, ckpt, mask_source=str(hp.get("mask_source") or "frozen"), adversary=adversary or None
    )
    plain = (
        count_step(name, alpha, beta, ckpt, mask_source=str(hp.get("mask_source") or "frozen")) if adversarial else step
    )
    no_map = count_step(name, 0.0, beta, ckpt)
    fwd = count_forward(name, adapters=True)
    frozen = count_forward(name, adapters=False)
    # what the concept map costs one forward, wherever it is recorded (mask_source "frozen": in the pseudo data's
    # frozen forward at each recorded step; "adapted": in the training step)
    mask = count_step(name, alpha, beta, ckpt, mask_source="adapted")["flops"] - no_map["flops"]
    old_map = chunked_map_flops(name)
    mem = memory(name)
    # pseudo data and schedule of the config
    dm = data_module(cfg)
    un, pre = dm.requests()
    if beta <= 0:
        pre = []
    settings = PseudoDataSettings(
        SamplingSettings(
            *spec.geometry,
            int(cfg["data"].get("num_inference_steps") or spec.sampling[0]),
            float(
                cfg["data"].get("guidance_scale") if cfg["data"].get("guidance_scale") is not None else spec.sampling[1]
            ),
        ),
        record_steps=tuple(cfg["data"]["record_steps"]) if cfg["data"].get("record_steps") else None,
    )
    per_traj = pseudo_forwards_per_trajectory(
        name, settings, int(cfg["data"].get("generation_batch_size", 1)), dm.loss_condition == "concept"
    )
    samples = len(un) * len(settings.steps())
    batch = int(cfg["data"].get("batch_size", 1))
    if int(cfg["trainer"].get("max_steps") or -1) > 0:
        steps, schedule = int(cfg["trainer"]["max_steps"]), "max_steps"
    else:
        steps = int(cfg["trainer"].get("max_epochs") or 1) * math.ceil(samples / batch)
        schedule = f"max_epochs {cfg['trainer'].get('max_epochs')} x {math.ceil(samples / batch)} batches"
    trajectories = len(un) + len(pre)
    pseudo_s = trajectories * per_traj * frozen / flops_s
    step_s = step["flops"] / flops_s
    out = {
        "backbone": name,
        "config": spec.config or "(none: cogx2b_nudity's data and schedule)",
        "geometry": "x".join(map(str, spec.geometry)),
        "video_tokens": mem["video_tokens"],
        "alpha": alpha,
        "beta": beta,
        "gradient_checkpointing": ckpt,
        "forwards_per_step": step["forwards"],
        "step_tflop": step["flops"] / 1e12,
        "adapted_forward_tflop": fwd / 1e12,
        "frozen_forward_tflop": frozen / 1e12,
        "mask_tflop": mask / 1e12,
        "mask_share_of_step": mask / step["flops"],
        "mask_share_of_forward": mask / fwd,
        "chunked_map_tflop": old_map / 1e12,
        "chunked_map_share_of_forward": old_map / fwd,
        "peak_gib_no_ckpt": mem["no_ckpt_denoiser_only"],
        "peak_gib_ckpt": mem["ckpt_denoiser_only"],
        "peak_gib_ckpt_all_weights": mem["ckpt_all"],
        "seconds_per_step": step_s,
        "trajectories": trajectories,
        "forwards_per_trajectory": per_traj,
        "seconds_per_trajectory": per_traj * frozen / flops_s,
        "pseudo_data_minutes": pseudo_s / 60,
        "training_steps": steps,
        "schedule": schedule,
        "cached_samples": samples,
        "training_minutes": steps * step_s / 60,
        "run_minutes": (pseudo_s + steps * step_s) / 60,
        "count_seconds": round(time.time() - t0, 1),
    }
    if adversarial:
        kind = str(adversary.get("adversary", "pgd"))
        entries = (len(un) if hp.get("adversary_bank", "prompt") == "prompt" else 1) if kind == "persistent" else 0
        tokens, width = step["cond_shape"]
        bank = entries * tokens * width * 4 * 3 + entries * 8  # float32 perturbation + 2 Adam moments, int64 steps
        out.update(
            {
                "adversary": kind,
                "adversarial_steps": int(adversary["adversarial_steps"]),
                "plain_forwards_per_step": plain["forwards"],
                "plain_step_tflop": plain["flops"] / 1e12,
                "plain_seconds_per_step": plain["flops"] / flops_s,
                "adversary_step_ratio": step["flops"] / plain["flops"],
                "adversary_bank_entries": entries,
                "adversary_bank_shape": [tokens, width],
                "adversary_bank_gib": bank / 2**30,
                "plain_training_minutes": steps * plain["flops"] / flops_s / 60,
            }
        )
    out.update(whole_run(name, cfg, out, mem, mfu))
    if name in PAPER_SECONDS_PER_EPOCH:
        out["v100_seconds_per_step"] = step["flops"] / (0.4 * V100_FP16_TENSOR)
        out["paper_seconds_per_epoch"] = PAPER_SECONDS_PER_EPOCH[name]
    return out


# ------------------------------------------------------------------------------------------------ parts of a row
#: model keys a ``--count-step`` variant may set (the others of the step are the row's)
STEP_KEYS = ("alpha", "beta", "gradient_checkpointing", "mask_source", *ADVERSARY_KEYS)


def step_variant(text: str) -> dict[str, Any]:
    """``KEY=VALUE,KEY=VALUE`` of :data:`STEP_KEYS` (values read as YAML: ``1``, ``adapted``, ``true``)."""
    keys = {}
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in STEP_KEYS:
            raise SystemExit(f"--count-step {text!r}: {item!r} is not KEY=VALUE with KEY one of {', '.join(STEP_KEYS)}")
        keys[key] = yaml.safe_load(value)
    return keys


def count_steps(names: list[str], overrides: list[str], variants: list[str], num_layers: int | None) -> list[dict]:
    """``--count-step``: the training step alone (:func:`count_step`), for every row and every variant; a key the
    variant does not set takes the row config's value (with ``--set``). ``num_layers``: blocks of the real width."""
    configs: dict[str, dict[str, Any]] = {}
    out = []
    for name in names:
        path = FULLSIZE[name].config or FULLSIZE["cogvideox-2b"].config
        if path not in configs:
            configs[path] = load_config(path, overrides)["model"]
        hp = configs[path]
        for variant in variants:
            keys = {**{k: hp[k] for k in STEP_KEYS if hp.get(k) is not None}, **step_variant(variant)}
            adversary = {k: keys[k] for k in ADVERSARY_KEYS if k in keys}
            step = count_step(
                name,
                float(keys.get("alpha", 1.0)),
                float(keys.get("beta", 0.0)),
                bool(keys.get("gradient_checkpointing", False)),
                num_layers,
                str(keys.get("mask_source") or "frozen"),
                adversary or None,
            )
            out.append({"backbone": name, "variant": variant, "num_layers": num_layers, **keys, **step})
    return out


def count_sample_videos(names: list[str], configs: list[str], overrides: list[str]) -> list[dict]:
    """``--sample-videos``: each config's trainer callbacks and its SampleVideoCallback's renders, denoiser
    sample-forwards and decoded videos (:func:`sample_counts`) in a run of its ``trainer.max_steps``, per row."""
    out = []
    for path in configs:
        cfg = load_config(path, overrides)
        steps = int(cfg["trainer"].get("max_steps") or -1)
        if steps <= 0:
            raise SystemExit(
                f"--sample-videos {path}: the config has no trainer.max_steps; add --set trainer.max_steps=N"
            )
        for name in names:
            n, forwards, videos = sample_counts(cfg, name, steps)
            out.append(
                {
                    "config": path,
                    "backbone": name,
                    "callbacks": list(callbacks_of(cfg)),
                    "steps": steps,
                    "renders": n,
                    "forwards": forwards,
                    "videos": videos,
                }
            )
    return out


def markdown(rows: list[dict[str, Any]], mfu: float) -> str:
    lines = [
        f"| backbone (config) | frames×H×W (video tokens) | α, β, ckpt | fwd/step | TFLOP/step | mask: share of step / "
        f"of adapted fwd (chunked route before) | peak GiB no ckpt / ckpt | s/step (H100 @{mfu:.0%}) | pseudo data: "
        "trajectories × s | steps | pseudo data + training (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backbone']} (`{r['config']}`) | {r['geometry']} ({r['video_tokens']:,}) | {r['alpha']:g}, "
            f"{r['beta']:g}, "
            f"{'yes' if r['gradient_checkpointing'] else 'no'} | {r['forwards_per_step']} | {r['step_tflop']:.0f} | "
            f"{r['mask_share_of_step']:.3%} / {r['mask_share_of_forward']:.3%} "
            f"({r['chunked_map_share_of_forward']:.0%}) | "
            f"{r['peak_gib_no_ckpt']:.0f} / {r['peak_gib_ckpt']:.0f} | {r['seconds_per_step']:.2f} | "
            f"{r['trajectories']} × {r['seconds_per_trajectory']:.0f} = {r['pseudo_data_minutes']:.1f} min | "
            f"{r['training_steps']:,} ({r['training_minutes']:.1f} min) | **{r['run_minutes']:.1f}** |"
        )
    return "\n".join(lines)


def markdown_adversary(rows: list[dict[str, Any]], mfu: float) -> str:
    """The adversarial variant against the plain step: forwards, FLOPs, seconds, training minutes, the bank."""
    lines = [
        f"| backbone (config) | adversary, inner steps K | fwd/step plain → adversarial | TFLOP/step plain → "
        f"adversarial (×) | s/step (H100 @{mfu:.0%}) | training minutes plain → adversarial | bank: entries × "
        "tokens × width (GiB, + to the training peak) | training peak GiB (bf16-mixed) | whole run (min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "adversary" not in r:
            continue
        e, (tok, wid) = r["adversary_bank_entries"], r["adversary_bank_shape"]
        lines.append(
            f"| {r['backbone']} (`{r['config']}`) | {r['adversary']}, {r['adversarial_steps']} | "
            f"{r['plain_forwards_per_step']} → {r['forwards_per_step']} | {r['plain_step_tflop']:.0f} → "
            f"{r['step_tflop']:.0f} ({r['adversary_step_ratio']:.1f}×) | {r['plain_seconds_per_step']:.2f} → "
            f"{r['seconds_per_step']:.2f} | {r['plain_training_minutes']:.1f} → {r['training_minutes']:.1f} | "
            f"{e} × {tok} × {wid} ({r['adversary_bank_gib']:.2f}) | {r['peak_gib']['training']:.1f} | "
            f"**{r['whole_run_minutes']:.1f}** |"
        )
    return "\n".join(lines)


def markdown_run(rows: list[dict[str, Any]], mfu: float) -> str:
    """The whole run of each config, phase by phase (minutes on one H100 at ``mfu``) and the peak GiB of each."""
    lines = [
        f"| backbone (config) | load | pseudo data | training (+ mask callback) | sample videos: renders × forwards, "
        f"VAE decode, T5/VAE moves | whole run (min, H100 @{mfu:.0%}) | peak GiB: pseudo data / training "
        "(bf16-mixed) / samples | run peak GiB (all modules resident: pseudo data / samples) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ph, pk = r["phases"], r["peak_gib"]
        s = ph.get("samples")
        samples = (
            f"{s['minutes']:.1f} ({s['renders']} renders, {s['forwards']:,} fwd; decode {s['vae_decode_minutes']:.1f}, "
            f"moves {s['module_moves_minutes']:.1f})"
            if s
            else "—"
        )
        alls = r["peak_gib_all_resident"]
        lines.append(
            f"| {r['backbone']} (`{r['config']}`) | {ph['load']['minutes']:.1f} | "
            f"{ph['pseudo_data']['minutes']:.1f} | "
            f"{ph['training']['minutes']:.1f} (+{ph['training']['mask_callback_minutes']:.2f}) | "
            f"{samples} | "
            f"**{r['whole_run_minutes']:.1f}** | "
            f"{pk['pseudo_data']:.1f} / {pk['training']:.1f} / {pk['samples']:.1f} | "
            f"**{r['run_peak_gib']:.1f}** ({alls['pseudo_data']:.1f} / {alls['samples']:.1f}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help=f"rows to run (default all: {', '.join(FULLSIZE)})")
    ap.add_argument("--mfu", type=float, default=0.4, help="assumed model-FLOPs utilisation of the H100")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key of every row, e.g. trainer.max_steps=500 or data.augment=32",
    )
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None)
    ap.add_argument(
        "--count-step",
        dest="variants",
        action="append",
        default=[],
        metavar="KEY=VALUE,...",
        help="only count the training step of each row with these model keys (repeatable, one step each; e.g. "
        f"alpha=1,beta=1,mask_source=adapted; keys: {', '.join(STEP_KEYS)}; the others: the row's config)",
    )
    ap.add_argument(
        "--num-layers", type=int, default=None, help="with --count-step: this many blocks of the real width"
    )
    ap.add_argument(
        "--sample-videos",
        nargs="+",
        default=None,
        metavar="CONFIG",
        help="only count the sample videos (SampleVideoCallback) of these configs in a run of trainer.max_steps",
    )
    args = ap.parse_args(argv)
    if args.num_layers is not None and (not args.variants or args.num_layers < 1):
        ap.error("--num-layers N (N >= 1) counts a reduced step: give it with --count-step")
    if args.variants and args.sample_videos:
        ap.error("--count-step and --sample-videos are separate modes: give one")
    torch.set_grad_enabled(True)
    names = args.only or list(FULLSIZE)
    if args.variants or args.sample_videos:
        key, parts = (
            ("steps", count_steps(names, args.overrides, args.variants, args.num_layers))
            if args.variants
            else ("sample_videos", count_sample_videos(names, args.sample_videos, args.overrides))
        )
        for part in parts:
            print(json.dumps(part), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"overrides": args.overrides, key: parts}, indent=2))
        return 0
    rows = []
    for name in names:
        r = row(name, args.overrides, args.mfu)
        rows.append(r)
        print(json.dumps(r), flush=True)
        if "paper_seconds_per_epoch" in r:
            print(
                f"  {name}: the paper's epoch took {r['paper_seconds_per_epoch']:.1f} s on a V100; one training step "
                f"is {r['step_tflop']:.0f} TFLOP = {r['v100_seconds_per_step']:.1f} s at 40% of its 125 TFLOPS: one "
                f"epoch ≈ {r['paper_seconds_per_epoch'] / r['v100_seconds_per_step']:.1f} steps, not a pass over "
                f"{r['cached_samples']} cached samples",
                flush=True,
            )
    table = markdown(rows, args.mfu) + "\n\n" + markdown_run(rows, args.mfu)
    if any("adversary" in r for r in rows):
        table += "\n\n" + markdown_adversary(rows, args.mfu)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"mfu": args.mfu, "overrides": args.overrides, "rows": rows}, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    cog = next((r for r in rows if r["backbone"] == "cogvideox-2b"), None)
    for r in rows:
        print(
            f"{r['backbone']}: whole run {r['whole_run_minutes']:.1f} min ("
            + ", ".join(f"{k} {v['minutes']:.1f}" for k, v in r["phases"].items())
            + "); peak GiB "
            + ", ".join(f"{k} {v:.1f}" for k, v in r["peak_gib"].items())
            + f"; run peak {r['run_peak_gib']:.1f} GiB"
        )
    if cog is not None:
        print(f"cogx2b_nudity_h100_minutes: {cog['whole_run_minutes']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
