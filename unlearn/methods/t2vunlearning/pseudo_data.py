"""Pseudo data: trajectories of x_t made by the frozen model, with their training targets, cached on disk.

For an (augmented) prompt and a seed, the frozen backbone denoises noise with classifier-free guidance. At
every recorded step ``i`` (latent ``x_t``, ``t = timesteps[i]``) the sampler already computes
``v(x_t, ∅, t)`` and ``v(x_t, c, t)``; from them the training target follows:

- role ``"unlearn"``: ``v_neg = v(x_t, ∅, t) − η (v(x_t, c, t) − v(x_t, ∅, t))``;
- role ``"preserve"``: the frozen prediction ``v(x_t, c_pre, t)``.

When a request carries its concept token mask (``concept_tokens``), the frozen conditional forward on the loss
prompt (the one that makes ``v(x_t, c, t)``) also records, per attention site, each video token's attention mass on
the concept tokens: ``concept_maps.<l>`` ``[S, F, N_l]`` per site ``l``, the frozen-model maps the concept mask
is built from (Receler ``train_receler.py:138-143``: the mask comes from the frozen model on the concept prompt).
No extra forward runs.

So one sampling run per (prompt, seed) yields a whole trajectory of training samples, and training costs the
adapted forward and backward only. :class:`PseudoTrajectoryCache` stores each trajectory as one safetensors
file keyed by a hash of everything that determines it (:func:`sampler_identity`: backbone weights, prediction
type, scheduler class and config, text length, guidance settings; the request: prompt, seed, loss condition;
:class:`PseudoDataSettings`; η); a changed setting gives a new key, never a stale entry.

Integrity: every entry records its own key and a sha256 of its tensors (names, dtypes, shapes, bytes) in its
metadata; each run verifies the entries it is about to train on. A truncated, empty or corrupt file, one whose
tensors were changed, or another entry's file copied over it is named in a warning, deleted and made again,
so a bad cache file costs one trajectory's sampling, never a wrong run. Temporary files of a killed build
are removed by the next build (:func:`unlearn.io.clean_orphan_temps`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from unlearn.backbones import PromptEmbedding, SamplingSettings, VideoBackbone
from unlearn.io import atomic_path, cache_dir, clean_orphan_temps
from unlearn.methods.t2vunlearning.losses import negatively_guided_target

#: 2: keys cover the scheduler, the text length and the backbone's guidance settings (``sampler_identity``)
CACHE_FORMAT_VERSION = 2


def default_cache_dir() -> Path:
    """Where trajectories are cached: :func:`unlearn.io.cache_dir` ``("pseudo")``."""
    return cache_dir("pseudo")


@dataclasses.dataclass(frozen=True)
class PseudoDataSettings:
    """How pseudo data is sampled: the sampling settings (the one type, :class:`~unlearn.backbones.SamplingSettings`)
    plus what only pseudo data has: the unconditional text and ``record_steps``, the sampler step indices to keep
    (None = all)."""

    sampling: SamplingSettings
    negative_prompt: str = ""
    record_steps: tuple[int, ...] | None = None

    def steps(self) -> list[int]:
        n = self.sampling.num_inference_steps
        if self.record_steps is None:
            return list(range(n))
        bad = [s for s in self.record_steps if not 0 <= s < n]
        if bad:
            raise ValueError(f"record_steps {bad} lie outside 0..{n - 1}")
        return sorted(set(self.record_steps))

    def flat(self) -> dict[str, Any]:
        """One flat JSON-ready dict of every field (the sampling settings' first): what cache keys and entries
        record, the same as before the sampling settings became one type, so existing caches stay valid."""
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "sampling"}
        return {**dataclasses.asdict(self.sampling), **own}


def sampler_identity(backbone: VideoBackbone) -> dict[str, Any]:
    """What of the backbone, besides its request and :class:`PseudoDataSettings`, shapes a trajectory: the weights
    (``fingerprint``), the prediction type, the scheduler that samples (class and config, as
    ``new_scheduler`` builds it: ZeroScope with DDIM and with DPM-Solver gives other x_t), the text length and
    the guidance settings (HunyuanVideo's embedded guidance, CogVideoX's dynamic CFG). JSON-ready."""
    scheduler = backbone.new_scheduler()
    config = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    return {
        "weights": backbone.fingerprint(),
        "prediction_type": backbone.prediction_type,
        "scheduler": {
            "class": f"{type(scheduler).__module__}.{type(scheduler).__qualname__}",
            "config": json.loads(json.dumps(config, sort_keys=True, default=str)),
        },
        "max_text_length": int(backbone.max_text_length),
        "guidance": json.loads(json.dumps(backbone.guidance_settings(), sort_keys=True, default=str)),
    }


@dataclasses.dataclass(frozen=True)
class TrajectoryRequest:
    """One trajectory to make: ``prompt`` makes x_t; ``loss_prompt`` conditions the targets."""

    role: Literal["unlearn", "preserve"]
    prompt: str
    seed: int
    loss_prompt: str
    #: the loss prompt's concept-token mask (one bool per text position): record the frozen concept maps
    concept_tokens: tuple[bool, ...] | None = None

    def key(self, identity: dict[str, Any], settings: PseudoDataSettings, eta: float) -> str:
        """The cache key: ``identity`` is :func:`sampler_identity` of the backbone that samples."""
        payload = {
            "v": CACHE_FORMAT_VERSION,
            "backbone": identity,
            "role": self.role,
            "prompt": self.prompt,
            "loss_prompt": self.loss_prompt,
            "seed": int(self.seed),
            "settings": settings.flat(),
            # η only shapes the unlearning target
            "eta": float(eta) if self.role == "unlearn" else None,
        }
        if self.concept_tokens is not None:  # only then: keys of requests without maps are unchanged
            payload["concept_tokens"] = [int(b) for b in self.concept_tokens]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


@torch.no_grad()
def make_trajectories(
    backbone: VideoBackbone,
    requests: Sequence[TrajectoryRequest],
    settings: PseudoDataSettings,
    eta: float,
    stop_after: int | None = None,
    progress: bool = False,
) -> list[dict[str, Tensor]]:
    """Sample ``requests`` as one batch with the frozen model and return, per request, the recorded
    ``x_t [S, ...]``, ``timesteps [S]``, ``target [S, ...]`` and the loss conditioning.

    Adapters, if attached, must be switched off by the caller (see :meth:`AdapterSwitch.disabled`).
    ``stop_after`` ends sampling early (per-step regeneration only needs the last recorded step).
    ``progress`` shows the sampler's steps (a full-size batch of trajectories takes minutes).
    Requests with ``concept_tokens`` also return ``concept_maps.<l>`` ``[S, F, N_l]`` per attention site ``l``: the
    frozen model's attention mass of each video token on the concept tokens, per attention site, recorded in the
    conditional forward on the loss prompt that the target needs anyway (the backbone's switch captures it).
    """
    steps = settings.steps()
    wanted = set(steps)
    prompts = [r.prompt for r in requests]
    cond = backbone.encode_prompts(prompts)
    loss_cond = backbone.encode_prompts([r.loss_prompt for r in requests])
    separate_loss_cond = any(r.loss_prompt != r.prompt for r in requests)
    uncond = backbone.encode_prompts([settings.negative_prompt] * len(requests))
    roles = [r.role for r in requests]
    rec: dict[str, list[Tensor]] = {"x_t": [], "timesteps": [], "target": []}
    with_maps = [r.concept_tokens is not None for r in requests]
    switch = getattr(backbone, "switch", None)
    if any(with_maps) and switch is None:
        raise ValueError("make_trajectories: concept_tokens need a backbone with an adapter switch attached")
    tokens2 = None  # [uncond rows | cond rows] as the batched guided prediction orders them
    if any(with_maps):
        width = max(len(r.concept_tokens) for r in requests if r.concept_tokens is not None)
        # a request without concept tokens (a preserve trajectory in the same batch) gets no maps
        tokens = torch.tensor(
            [list(r.concept_tokens) if r.concept_tokens is not None else [False] * width for r in requests],
            dtype=torch.bool,
        )
        tokens2 = torch.cat([torch.zeros_like(tokens), tokens])
        rec["concept_maps"] = []
    capture = contextlib.ExitStack()

    def arm(i: int) -> tuple[PromptEmbedding, PromptEmbedding]:
        # called by the sampler right before its forward of step i: capture the concept maps of that forward
        if tokens2 is not None and not separate_loss_cond and i in wanted:
            capture.enter_context(switch.capturing(tokens2))
        return cond, uncond

    def take_maps() -> None:
        _, maps = switch.take()
        capture.close()
        # per site [2B, F, N_l] (uncond rows first): the conditional rows (sites of a UNet differ in N_l)
        rec["concept_maps"].append([m[len(requests) :].float().to("cpu") for m in maps])

    def on_step(i: int, t: Tensor, x_t: Tensor, pred_uncond: Tensor, pred_cond: Tensor) -> None:
        if i not in wanted:
            return
        if separate_loss_cond:
            # the loss is conditioned on a different text (e.g. the bare concept): one more frozen call
            with switch.capturing(tokens2) if tokens2 is not None else contextlib.nullcontext():
                pred_uncond, pred_cond, _ = backbone.guided_prediction(x_t, t, loss_cond, uncond, 1.0)
        if tokens2 is not None:
            take_maps()
        neg = negatively_guided_target(pred_uncond.float(), pred_cond.float(), eta)
        target = torch.stack([neg[b] if role == "unlearn" else pred_cond[b].float() for b, role in enumerate(roles)])
        rec["x_t"].append(x_t.detach().to("cpu"))
        rec["target"].append(target.to(backbone.dtype).to("cpu"))
        rec["timesteps"].append(t.reshape(1).expand(len(requests)).to("cpu"))

    last = max(steps) + 1 if stop_after is None else stop_after
    with capture:
        backbone.sample(
            prompts,
            [r.seed for r in requests],
            **dataclasses.asdict(settings.sampling),
            cond=cond,
            uncond=uncond,
            stop_at_step=last,
            on_step=on_step,
            cond_for_step=arm if tokens2 is not None else None,
            progress=progress,
        )
    x_t = torch.stack(rec["x_t"], 1)  # [B, S, ...]
    target = torch.stack(rec["target"], 1)
    ts = torch.stack(rec["timesteps"], 1)
    # per site l: [B, S, F, N_l]
    maps = (
        [torch.stack(per_site, 1) for per_site in zip(*rec["concept_maps"], strict=True)]
        if tokens2 is not None
        else None
    )
    out = []
    for b in range(len(requests)):
        entry = {"x_t": x_t[b].contiguous(), "target": target[b].contiguous(), "timesteps": ts[b].contiguous()}
        if maps is not None and with_maps[b]:
            entry.update({f"concept_maps.{site}": m[b].contiguous() for site, m in enumerate(maps)})
        entry.update({k: v.contiguous() for k, v in loss_cond[b : b + 1].to("cpu").to_dict("cond.").items()})
        out.append(entry)
    return out


def tensors_sha256(tensors: Mapping[str, Tensor], get: Any = None) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order (the cache entry checksum).
    ``get(name)`` may load one tensor at a time (a file larger than memory); ``tensors`` then only names them."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = (get(name) if get is not None else tensors[name]).detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class CacheEntryError(ValueError):
    """A cache file that cannot be trusted (unreadable, another entry's, or altered)."""


class PseudoTrajectoryCache:
    """Trajectories on disk, one safetensors file per key, written atomically (temp file + rename), each
    carrying its key and a checksum of its tensors (verified by :meth:`verify` before a run uses it)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root or default_cache_dir()).expanduser()
        self.hits = 0
        self.misses = 0
        #: entries found broken and made again by the last :meth:`build` (path, reason)
        self.rebuilt: list[tuple[Path, str]] = []

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def contains(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, key: str, tensors: dict[str, Tensor], metadata: dict[str, Any]) -> Path:
        path = self.path(key)
        meta = {**metadata, "key": key, "tensors_sha256": tensors_sha256(tensors)}
        with atomic_path(path) as tmp:
            save_file(tensors, tmp, metadata={"json": json.dumps(meta, sort_keys=True)})
        return path

    @staticmethod
    def metadata(path: str | os.PathLike) -> dict[str, Any]:
        with safe_open(str(path), framework="pt") as f:
            return json.loads(f.metadata()["json"])

    def verify(self, key: str) -> None:
        """Raise :class:`CacheEntryError` (naming what is wrong) unless the entry of ``key`` is readable, says it
        is the entry of ``key``, and its tensors have the recorded checksum."""
        path = self.path(key)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["json"])
                names = {k: None for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
                if meta.get("key") != key:
                    raise CacheEntryError(
                        f"holds the entry of key {meta.get('key')!r}, not {key!r} (a file copied or moved)"
                        if meta.get("key")
                        else "records no key (written by an older version)"
                    )
                digest = tensors_sha256(names, get=f.get_tensor)
        except CacheEntryError:
            raise
        except Exception as e:  # noqa: BLE001 - every reading failure means the same: make the entry again
            size = path.stat().st_size if path.exists() else 0
            raise CacheEntryError(
                f"unreadable ({size} bytes; {type(e).__name__}: {' '.join(str(e).split())[:120]})"
            ) from None
        if meta.get("tensors_sha256") != digest:
            raise CacheEntryError("its tensors do not match their recorded checksum (the file was changed)")
        if not {"x_t", "target", "timesteps"} <= set(names):
            raise CacheEntryError(f"lacks trajectory tensors (has {sorted(names)})")
        if meta.get("concept_tokens") is not None and "concept_maps.0" not in names:
            raise CacheEntryError("was asked for the frozen concept maps but holds none")

    def _usable(self, key: str) -> bool:
        path = self.path(key)
        if not path.is_file():
            return False
        try:
            self.verify(key)
        except CacheEntryError as e:
            warnings.warn(
                f"pseudo-data cache entry {path} is {e}; deleting it and making it again", RuntimeWarning, stacklevel=3
            )
            self.rebuilt.append((path, str(e)))
            path.unlink(missing_ok=True)
            return False
        return True

    def build(
        self,
        backbone: VideoBackbone,
        requests: Sequence[TrajectoryRequest],
        settings: PseudoDataSettings,
        eta: float,
        batch_size: int = 4,
        rank: int = 0,
        world_size: int = 1,
        progress: bool = True,
    ) -> list[Path]:
        """Make every missing (or broken) trajectory of this rank's shard (request ``i`` belongs to rank
        ``i % world``) and return the paths of *all* requests (the caller synchronises ranks before reading
        them). Each existing entry of the shard is verified first; temporary files left by killed builds in
        the shard's folders are removed."""
        identity = sampler_identity(backbone)
        keys = [r.key(identity, settings, eta) for r in requests]
        mine = [i for i in range(len(requests)) if i % world_size == rank]
        for folder in sorted({self.path(keys[i]).parent for i in mine}):
            clean_orphan_temps(folder)
        self.rebuilt = []
        todo = {i for i in mine if not self._usable(keys[i])}
        self.hits += len(mine) - len(todo)
        self.misses += len(todo)
        # fixed batches of this rank's requests: an entry is always sampled in the same company, so one made
        # again (missing, or found broken) is bit for bit the entry a clean build makes (batched kernels are
        # not batch-invariant); a batch with nothing missing is skipped
        chunks = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
        chunks = [c for c in chunks if todo & set(c)]
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=f"pseudo data ({backbone.name}, rank {rank})", unit="traj")
        for chunk in chunks:
            made = make_trajectories(backbone, [requests[i] for i in chunk], settings, eta, progress=bar is not None)
            for i, tensors in zip(chunk, made):
                if i not in todo:
                    continue
                meta = {
                    **dataclasses.asdict(requests[i]),
                    "settings": settings.flat(),
                    "eta": eta,
                    "backbone": backbone.name,
                    "sampler": identity,
                }
                self.put(keys[i], tensors, meta)
            if bar is not None:
                bar.update(len(todo & set(chunk)))
        if bar is not None:
            bar.close()
        return [self.path(k) for k in keys]


class TrajectoryFile:
    """Reader of one cached trajectory. Small files are held in memory; large ones (full-size latents of
    many steps do not fit in RAM for many prompts) are read one step at a time."""

    #: files up to this size are loaded whole on first use
    in_memory_bytes = 64 * 2**20

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        try:
            with safe_open(self.path, framework="pt") as f:
                self.num_steps = f.get_slice("timesteps").get_shape()[0]
                #: per-site frozen concept maps, in site order
                self.map_keys = tuple(
                    sorted((k for k in f.keys() if k.startswith("concept_maps.")), key=lambda k: int(k.split(".")[1]))  # noqa: SIM118
                )
                self.cond = PromptEmbedding.from_dict(
                    {k: f.get_tensor(k) for k in f.keys() if k.startswith("cond.")},  # noqa: SIM118 - not a dict
                    "cond.",
                )
                meta = f.metadata()
            self.metadata = json.loads(meta["json"])
        except Exception as e:  # noqa: BLE001 - any reading failure: name the file and the fix
            raise CacheEntryError(
                f"pseudo-data cache file {self.path} cannot be read ({type(e).__name__}: "
                f"{' '.join(str(e).split())[:120]}). Fix: run again (the cache verifies its entries "
                "and makes broken ones again)"
            ) from None
        self._tensors: dict[str, Tensor] | None = None

    def step(self, i: int) -> dict[str, Tensor]:
        """Recorded step ``i``: ``x_t``, ``target``, ``timesteps`` and, in entries made with concept tokens, the
        frozen model's ``concept_maps.<l>`` ``[F, N_l]`` per attention site."""
        keys = ("x_t", "target", "timesteps", *self.map_keys)
        if self._tensors is None and os.path.getsize(self.path) <= self.in_memory_bytes:
            with safe_open(self.path, framework="pt") as f:
                self._tensors = {k: f.get_tensor(k) for k in keys}
        if self._tensors is not None:
            return {k: self._tensors[k][i] for k in keys}
        with safe_open(self.path, framework="pt") as f:
            return {k: f.get_slice(k)[i : i + 1][0] for k in keys}
