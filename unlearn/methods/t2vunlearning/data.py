"""The datamodules: training prompts → pseudo-data trajectories (cached) → batches for the unlearning step.

The trajectories are made by the LightningModule's frozen backbone when the training dataloader is first
requested (after the model is on its device). With several processes each rank makes its shard of the
missing trajectories, the ranks meet at a barrier, and every rank then reads all of them.

The order of the samples depends only on ``seed`` and the epoch (:class:`ResumableSampler`), split across
ranks so that N processes with batch B see, step by step, the samples one process with batch N·B sees; and
:class:`ResumableLoader` records how far into its epoch a run got, so a
run resumed from a checkpoint continues with the batch it would have trained on next.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from unlearn.backbones import PromptEmbedding, SamplingSettings
from unlearn.checks import InputError, check_choice, check_int, check_range
from unlearn.io import cache_dir as unlearn_cache_dir
from unlearn.limits import check_video_size
from unlearn.prompts import PromptSuite, find_concept_words
from unlearn.prompts.augment import AugmentationError, PromptAugmenter, TemplateSource, build_source
from unlearn.toyworld.grammar import (
    COLOURS,
    SHAPES,
    class_contains,
    class_names,
    concept_name_prompt,
    neighbour_classes,
    parse_concept,
    prompts_for_concept,
    synonym_phrases,
)

from .pseudo_data import (
    PseudoDataSettings,
    PseudoTrajectoryCache,
    TrajectoryFile,
    TrajectoryRequest,
    default_cache_dir,
)


@dataclasses.dataclass
class TrainingPrompt:
    """A prompt, the words in it that name the concept (for the mask), its seed, and which of the erased
    concepts it shows ("" when one concept is erased)."""

    prompt: str
    concept_words: list[str]
    seed: int
    concept: str = ""


def load_prompt_file(path: str, concept: str, synonyms: Sequence[str]) -> list[TrainingPrompt]:
    """Read a prompt suite (JSONL/CSV, see docs/prompts.md)."""
    suite = PromptSuite.load(path)
    out = []
    for i, rec in enumerate(suite.records):
        words = list(rec.concept_words or []) or [concept, *synonyms]
        out.append(TrainingPrompt(rec.prompt, words, int(rec.seed) if rec.seed is not None else i, rec.concept or ""))
    return out


def concept_list(concept: str | Sequence[str]) -> list[str]:
    """``data.concept`` as a list (one concept or several erased together); one clear error when empty."""
    concepts = [concept] if isinstance(concept, str) else list(concept or [])
    if not concepts or any(not str(c).strip() for c in concepts):
        raise InputError(
            f"data.concept is empty ({concept!r}): name the concept to erase, e.g. --data.concept nudity, "
            "or list several: --data.concept '[red ring, blue square]'"
        )
    if len({str(c).casefold() for c in concepts}) != len(concepts):
        raise InputError(f"data.concept lists a concept twice: {concepts}")
    return [str(c) for c in concepts]


def word_in(words: Sequence[str], prompt: str) -> bool:
    """Whether any of ``words`` occurs in ``prompt`` as whole words (case-insensitive)."""
    return any(
        re.search(r"(?<!\w)" + r"\s+".join(map(re.escape, w.split())) + r"(?!\w)", prompt, re.IGNORECASE)
        for w in words
        if w.strip()
    )


class CachedTrajectoryDataset(Dataset):
    """Every recorded step of every unlearning trajectory is one sample; each is paired with a preserve
    sample (chosen deterministically from the index) when preserve trajectories exist."""

    def __init__(
        self,
        unlearn_files: Sequence[TrajectoryFile],
        concept_tokens: Sequence[Tensor | None],
        preserve_files: Sequence[TrajectoryFile] = (),
    ) -> None:
        self.files = list(unlearn_files)
        self.concept_tokens = list(concept_tokens)
        self.preserve = list(preserve_files)
        self.index = [(f, s) for f, tf in enumerate(self.files) for s in range(tf.num_steps)]
        self.preserve_index = [(f, s) for f, tf in enumerate(self.preserve) for s in range(tf.num_steps)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        f, s = self.index[i]
        tf = self.files[f]
        item: dict[str, Any] = dict(tf.step(s))
        item.update(tf.cond.to_dict("cond."))
        item = {k: (v[0] if k.startswith("cond.") else v) for k, v in item.items()}
        item["prompt_index"] = f  # the training prompt (T2VUnlearning's persistent adversary keeps one entry each)
        if self.concept_tokens[f] is not None:
            item["concept_tokens"] = self.concept_tokens[f]
        if self.preserve_index:
            pf, ps = self.preserve_index[(i * 7919) % len(self.preserve_index)]
            ptf = self.preserve[pf]
            for k, v in ptf.step(ps).items():
                item[f"pre_{k}"] = v
            for k, v in ptf.cond.to_dict("cond.").items():
                item[f"pre_{k}"] = v[0]
        return item


class RegenerationDataset(Dataset):
    """Per-step regeneration (ESD/Receler style, ``use_cache=False``): each sample is only a recipe — prompt,
    fresh seed, stop step — and the LightningModule samples x_t with the frozen model in the step.

    Every epoch draws new recipes: recipe ``i`` of epoch ``e`` comes from a generator seeded with
    ``(seed, e, i)``, so runs are reproducible and epochs do not repeat each other. The epoch is set by
    :meth:`set_epoch`, which :class:`T2VUnlearning` calls at the start of every training epoch.
    """

    def __init__(
        self,
        prompts: Sequence[TrainingPrompt],
        concept_tokens: Sequence[Tensor | None],
        preserve: Sequence[TrainingPrompt],
        steps: Sequence[int],
        samples_per_epoch: int,
        seed: int,
    ) -> None:
        self.prompts, self.concept_tokens, self.preserve = list(prompts), list(concept_tokens), list(preserve)
        self.steps, self.n, self.seed = list(steps), samples_per_epoch, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = random.Random(f"regeneration:{self.seed}:{self.epoch}:{i}")  # str seeds hash the same in every process
        p = rng.randrange(len(self.prompts))
        item: dict[str, Any] = {
            "regen_prompt_index": p,
            "regen_seed": rng.randrange(2**31),
            "regen_step": rng.choice(self.steps),
        }
        if self.concept_tokens[p] is not None:
            item["concept_tokens"] = self.concept_tokens[p]
        if self.preserve:
            item["regen_pre_index"] = rng.randrange(len(self.preserve))
        return item


class ConceptDataModule(pl.LightningDataModule):
    """Prompts of the concept to erase (and of a concept to preserve), turned into pseudo data.

    Args:
        concept: the concept to erase, e.g. "nudity", "golf ball", a person's name; or a list of concepts that one
            adapter set erases together (each prompt then belongs to one concept: its record's ``concept`` field in
            a prompt file, else the concept whose words it contains; its mask and, with ``loss_condition:
            concept``, its loss text are its own concept's).
        prompts: training prompts that contain the concept (augmented prompts); or give ``prompt_file``.
        prompt_file: a prompt suite (JSONL/CSV, docs/prompts.md) of training prompts.
        concept_synonyms: other words that name the concept in prompts (used to locate concept tokens); with
            several concepts, ``{concept: [words]}``.
        num_prompts: use only the first N prompts.
        augment: when no prompts are given, generate this many (per concept) with ``augment_source``.
        augment_style: prompt style for generated prompts ("cogvideox", "hunyuanvideo", "zeroscope", "toy").
        augment_source: where generated prompts come from. The paper augments with an LLM, few-shot (§3.3,
            App. A; its ablation: nudity rate 12.7 → 50.7 % without augmentation): ``{"kind": "openai",
            "base_url": ..., "model": ...}`` (an OpenAI-compatible server, e.g. vLLM or llama.cpp) or
            ``{"kind": "transformers", "model": <local HF model id or folder>}``; further keys go to the source
            (``unlearn.prompts.augment``). ``"template"``: the offline template grammar (not the paper's; an
            explicit switch for CPU runs and tests). ``None``: no source named — generating prompts is then an
            error that names these choices. Generated prompts are cached (``unlearn.io.cache_dir("augment")``).
        preserve_concept: a concept to keep (e.g. "person"); its prompts feed L_pre.
        preserve_prompts: prompts of the preserve concept; default: generated like ``augment``.
        seeds_per_prompt: trajectories per prompt (different seeds).
        seed: base seed for noise and sampling choices.
        num_frames: frames of the pseudo videos (None: the backbone's default).
        height: pseudo video height in pixels (None: the backbone's default).
        width: pseudo video width in pixels (None: the backbone's default).
        num_inference_steps: sampler steps of the pseudo data (None: the backbone's default).
        guidance_scale: CFG scale of the pseudo data (None: the backbone's default).
        record_steps: sampler step indices kept as training samples (None: every step).
        loss_condition: "prompt" conditions the loss on the prompt that made x_t; "concept" on the bare concept.
        use_cache: False regenerates x_t every training step (ESD/Receler style) instead of caching.
        cache_dir: where trajectories are stored (default ``$T2V_UNLEARN_CACHE/pseudo``, else
            ``~/.cache/t2v-unlearn/pseudo``).
        generation_batch_size: trajectories sampled together.
        regeneration_samples_per_epoch: epoch length when ``use_cache`` is False.
        batch_size: training batch size.
        num_workers: dataloader workers.
        allow_prompts_without_concept: accept training prompts in which neither the concept nor a synonym
            occurs (refused by default, whatever α is: such a prompt teaches the adapters to change content
            that is not the concept).

    Raises:
        InputError: a value outside its domain (counts and sizes ≥ 1, guidance ≥ 0, record steps ≥ 0), or a
            training prompt without the concept. Frame counts and sizes the backbone cannot generate, and
            record steps beyond ``num_inference_steps``, are refused in :meth:`setup`, before pseudo data is made.
    """

    def __init__(
        self,
        concept: str | list[str],
        prompts: list[str] | None = None,
        prompt_file: str | None = None,
        concept_synonyms: list[str] | dict[str, list[str]] | None = None,
        num_prompts: int | None = None,
        augment: int = 0,
        augment_style: str = "cogvideox",
        augment_source: str | dict[str, Any] | None = None,
        preserve_concept: str | None = None,
        preserve_prompts: list[str] | None = None,
        seeds_per_prompt: int = 1,
        seed: int = 0,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        record_steps: list[int] | None = None,
        loss_condition: Literal["prompt", "concept"] = "prompt",
        use_cache: bool = True,
        cache_dir: str | None = None,
        generation_batch_size: int = 4,
        regeneration_samples_per_epoch: int = 16,
        batch_size: int = 1,
        num_workers: int = 0,
        allow_prompts_without_concept: bool = False,
    ) -> None:
        super().__init__()
        #: the erased concepts; ``concept`` is the one name of them all (joined by ", " when there are several)
        self.concepts = concept_list(concept)
        check_int("data.num_prompts", num_prompts, low=1, optional=True)
        check_int("data.augment", augment, low=0)
        check_int(
            "data.seeds_per_prompt",
            seeds_per_prompt,
            low=1,
            fix="It is the number of trajectories (seeds) per training prompt",
        )
        for key, value in (
            ("num_frames", num_frames),
            ("height", height),
            ("width", width),
            ("num_inference_steps", num_inference_steps),
        ):
            check_int(f"data.{key}", value, low=1, optional=True, fix="Leave it unset for the backbone's default")
        check_range("data.guidance_scale", guidance_scale, low=0, optional=True)
        if prompts and prompt_file:  # one source of training prompts; neither is silently dropped
            raise InputError(
                f"data.prompts ({len(prompts)} prompts) and data.prompt_file ({prompt_file!r}) are both given; the "
                "training prompts come from one of them. Fix: drop one (--data.init_args.prompts null to train on "
                "the file)"
            )
        check_int("data.seed", seed, low=0, high=2**32 - 1, fix="a seed is a 32-bit number")
        check_video_size("data", num_frames, height, width)
        if record_steps is not None and (
            not record_steps or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in record_steps)
        ):
            raise InputError(
                f"data.record_steps must list sampler step indices >= 0 (or be null for every step); "
                f"got {record_steps!r}"
            )
        check_choice("data.loss_condition", loss_condition, ("prompt", "concept"))
        check_int("data.generation_batch_size", generation_batch_size, low=1)
        check_int("data.regeneration_samples_per_epoch", regeneration_samples_per_epoch, low=1)
        check_int("data.batch_size", batch_size, low=1)
        check_int("data.num_workers", num_workers, low=0)
        if cache_dir and Path(cache_dir).expanduser().is_file():
            raise InputError(f"data.cache_dir {cache_dir!r} is a file; give a folder for the pseudo-data cache")
        self.allow_prompts_without_concept = allow_prompts_without_concept
        self.concept = ", ".join(self.concepts)
        if isinstance(concept_synonyms, dict):
            unknown = sorted(set(concept_synonyms) - set(self.concepts))
            if unknown:
                raise ValueError(
                    f"data.concept_synonyms names {unknown}, which are not in data.concept {self.concepts}"
                )
            self.synonyms_of = {c: list(concept_synonyms.get(c) or []) for c in self.concepts}
        elif concept_synonyms and len(self.concepts) > 1:
            raise ValueError("with several concepts, give data.concept_synonyms per concept: {concept: [words]}")
        else:
            self.synonyms_of = {self.concepts[0]: list(concept_synonyms or [])}
            self.synonyms_of.update({c: [] for c in self.concepts[1:]})
        #: every word naming an erased concept besides the concepts' names (keywords of the baselines' rows)
        self.synonyms = [w for c in self.concepts for w in self.synonyms_of[c]]
        self.prompt_list = prompts
        self.prompt_file = prompt_file
        self.num_prompts = num_prompts
        self.augment = augment
        self.augment_style = augment_style
        llm = isinstance(augment_source, dict) and augment_source.get("kind") in ("openai", "transformers")
        if augment_source is not None and augment_source != "template" and not llm:
            raise InputError(
                f"data.augment_source {augment_source!r}: give {{kind: openai, base_url: URL, model: NAME}}, "
                "{kind: transformers, model: HF_ID_OR_FOLDER} or 'template' (the offline grammar)"
            )
        self.augment_source = augment_source
        self.preserve_concept = preserve_concept
        self.preserve_prompt_list = preserve_prompts
        self.seeds_per_prompt = seeds_per_prompt
        self.seed = seed
        self.size = (num_frames, height, width)
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.record_steps = record_steps
        self.loss_condition = loss_condition
        self.use_cache = use_cache
        self.cache = PseudoTrajectoryCache(cache_dir or default_cache_dir())
        self.generation_batch_size = generation_batch_size
        self.regeneration_samples_per_epoch = regeneration_samples_per_epoch
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.training_prompts = self._training_prompts()
        if not self.allow_prompts_without_concept:
            self._check_concept_in_prompts(self.training_prompts)
        self.preserve_prompts = self._preserve_prompts()
        empty = [i for i, p in enumerate(self.preserve_prompts) if not p.prompt.strip()]
        if empty:
            raise InputError(f"data.preserve_prompts {empty} are empty strings; remove them")

    def _check_concept_in_prompts(self, prompts: Sequence[TrainingPrompt]) -> None:
        missing = {p.prompt: p for p in prompts if not find_concept_words(p.prompt, p.concept_words)}
        if not missing:
            return
        shown = "; ".join(repr(t[:80]) for t in list(missing)[:3])
        words = sorted({w for p in missing.values() for w in p.concept_words})
        raise InputError(
            f"{len(missing)} training prompt(s) do not mention the concept {self.concept!r} (looked for "
            f"{words}), e.g. {shown}. Every training prompt must express the concept, whatever model.alpha is. "
            "Fix: correct those prompts, list the words they use in data.concept_synonyms (or the prompt file's "
            "concept_words), or set data.allow_prompts_without_concept=true to train on them anyway"
        )

    def setup(self, stage: str) -> None:
        """Check the pseudo-data settings against the model's backbone before any trajectory is made."""
        module = self.trainer.lightning_module if self.trainer is not None else None
        backbone = getattr(module, "backbone", None)
        if backbone is None:
            return
        settings = self.pseudo_data_settings(backbone)
        try:
            settings.steps()
        except ValueError as e:
            raise InputError(
                f"data.record_steps: {e} (data.num_inference_steps={settings.sampling.num_inference_steps})"
            ) from None
        try:
            backbone.check_video_size(
                settings.sampling.num_frames,
                settings.sampling.height,
                settings.sampling.width,
                keys=("data.num_frames", "data.height", "data.width"),
            )
        except ValueError as e:
            raise InputError(str(e)) from None

    # ------------------------------------------------------------------ prompts
    def _generated(self, concept: str, n: int, synonyms: Sequence[str], seed_offset: int = 0) -> list[TrainingPrompt]:
        source = self.augment_source
        if source is None:
            raise InputError(
                f"data.augment={self.augment} asks for generated prompts of {concept!r} but data.augment_source names "
                "no source. Fix: an LLM as the paper does — data.augment_source: {kind: openai, base_url: "
                "http://HOST:PORT/v1, model: NAME} or {kind: transformers, model: HF_ID_OR_FOLDER} — or "
                "data.augment_source: template for the offline grammar (not the paper's), or give data.prompt_file"
            )
        if source == "template":
            texts = TemplateSource().generate(
                concept, n, style=self.augment_style, seed=self.seed, synonyms=list(synonyms)
            )
        else:
            options = {k: v for k, v in source.items() if k != "kind"}
            try:
                llm = build_source(source["kind"], **options)
                suite = PromptAugmenter(llm, cache_dir=unlearn_cache_dir("augment")).augment(
                    concept, n, style=self.augment_style, seed=self.seed, synonyms=list(synonyms)
                )
            except (AugmentationError, OSError, ValueError, ImportError) as e:
                raise InputError(
                    f"data.augment_source {source!r} could not write prompts ({type(e).__name__}: "
                    f"{' '.join(str(e).split())[:300]}). Fix: start the server / download the model it names, give "
                    "data.prompt_file (`unlearn augment ... --out prompts.jsonl` on a machine that reaches an LLM), "
                    "or set data.augment_source: template for the offline grammar (not the paper's)"
                ) from None
            texts = list(suite.prompts)
        return [TrainingPrompt(t, [concept, *synonyms], self.seed + seed_offset + i) for i, t in enumerate(texts)]

    def concept_words(self, concept: str) -> list[str]:
        return [concept, *self.synonyms_of[concept]]

    def _owner(self, prompt: str, given: str = "") -> str:
        """Which erased concept a training prompt shows ("" with one concept)."""
        if len(self.concepts) == 1:
            return ""
        if given:
            if given not in self.concepts:
                raise ValueError(
                    f"training prompt {prompt!r} is labelled {given!r}, not one of data.concept {self.concepts}"
                )
            return given
        owners = [c for c in self.concepts if word_in(self.concept_words(c), prompt)]
        if not owners:
            raise ValueError(
                f"training prompt {prompt!r} names none of the concepts {self.concepts}. Fix: give each "
                "prompt a `concept` field in the prompt file, or name the concept (or a synonym) in it"
            )
        return owners[0]

    def _training_prompts(self) -> list[TrainingPrompt]:
        if self.prompt_file:
            first = self.concepts[0]
            prompts = []
            for p in load_prompt_file(self.prompt_file, first, self.synonyms_of[first]):
                owner = self._owner(p.prompt, p.concept)
                # a record without its own concept_words got the first concept's: give it its owner's instead
                words = (
                    self.concept_words(owner)
                    if owner and p.concept_words == self.concept_words(first)
                    else p.concept_words
                )
                prompts.append(dataclasses.replace(p, concept=owner, concept_words=words))
        elif self.prompt_list is not None:
            prompts = []
            for i, p in enumerate(self.prompt_list):
                owner = self._owner(p)
                prompts.append(TrainingPrompt(p, self.concept_words(owner or self.concepts[0]), self.seed + i, owner))
        elif self.augment > 0:
            prompts = []
            for k, c in enumerate(self.concepts):
                made = self._generated(c, self.augment, self.synonyms_of[c], seed_offset=100_000 * k)
                prompts += [dataclasses.replace(p, concept=c if len(self.concepts) > 1 else "") for p in made]
        else:
            prompts = []
        if self.num_prompts is not None:
            prompts = prompts[: self.num_prompts]
        if not prompts:
            raise InputError(
                f"no training prompts for concept {self.concept!r}: data.prompts is empty. Fix: list prompts in "
                "data.prompts, point data.prompt_file at a prompt suite, or set data.augment=N to generate N."
            )
        empty = [i for i, p in enumerate(prompts) if not isinstance(p.prompt, str) or not p.prompt.strip()]
        if empty:
            raise InputError(f"training prompts {empty} are empty strings; remove them from the prompt list")
        return [dataclasses.replace(p, seed=p.seed * 1000 + k) for p in prompts for k in range(self.seeds_per_prompt)]

    def _preserve_prompts(self) -> list[TrainingPrompt]:
        if self.preserve_prompt_list:
            return [
                TrainingPrompt(p, [self.preserve_concept or ""], self.seed + 10_000 + i)
                for i, p in enumerate(self.preserve_prompt_list)
            ]
        if self.preserve_concept:
            return self._generated(self.preserve_concept, max(1, min(8, len(self.training_prompts))), [])
        return []

    # ------------------------------------------------------------------ pseudo data
    def pseudo_data_settings(self, backbone: Any) -> PseudoDataSettings:
        d = backbone.defaults
        f, h, w = self.size
        sampling = SamplingSettings(
            num_frames=f or d.num_frames,
            height=h or d.height,
            width=w or d.width,
            num_inference_steps=self.num_inference_steps or d.num_inference_steps,
            guidance_scale=d.guidance_scale if self.guidance_scale is None else self.guidance_scale,
        )
        return PseudoDataSettings(
            sampling,
            record_steps=tuple(self.record_steps) if self.record_steps is not None else None,
        )

    def loss_prompt(self, p: TrainingPrompt) -> str:
        return (p.concept or self.concept) if self.loss_condition == "concept" else p.prompt

    def requests(
        self, concept_tokens: Sequence[Tensor | None] | None = None
    ) -> tuple[list[TrajectoryRequest], list[TrajectoryRequest]]:
        """Trajectories to make: the unlearning ones (with the loss prompt's concept-token mask when
        ``concept_tokens`` is given: the frozen model's concept maps are then recorded with them) and the
        preserving ones."""
        tokens = list(concept_tokens) if concept_tokens is not None else [None] * len(self.training_prompts)
        un = [
            TrajectoryRequest(
                "unlearn",
                p.prompt,
                p.seed,
                self.loss_prompt(p),
                None if m is None else tuple(bool(b) for b in m.tolist()),
            )
            for p, m in zip(self.training_prompts, tokens)
        ]
        pre = [TrajectoryRequest("preserve", p.prompt, p.seed, p.prompt) for p in self.preserve_prompts]
        return un, pre

    def concept_token_masks(self, backbone: Any, need: bool) -> list[Tensor | None]:
        if not need:
            return [None] * len(self.training_prompts)
        return [backbone.concept_token_mask([self.loss_prompt(p)], [p.concept_words])[0] for p in self.training_prompts]

    def train_dataloader(self) -> DataLoader:
        module = self.trainer.lightning_module
        backbone = module.backbone
        settings = self.pseudo_data_settings(backbone)
        tokens = self.concept_token_masks(backbone, need=module.hparams.alpha > 0)
        if not self.use_cache:
            dataset: Dataset = RegenerationDataset(
                self.training_prompts,
                tokens,
                self.preserve_prompts if module.hparams.beta > 0 else [],
                settings.steps(),
                self.regeneration_samples_per_epoch,
                self.seed,
            )
        else:
            # the concept mask from the frozen model (model.mask_source "frozen"): its maps are recorded with the
            # trajectories, in the frozen forward on the loss prompt that the target needs anyway
            frozen_maps = module.hparams.alpha > 0 and module.hparams.get("mask_source", "frozen") == "frozen"
            un, pre = self.requests(tokens if frozen_maps else None)
            if module.hparams.beta <= 0:
                pre = []
            strategy = self.trainer.strategy
            hits, misses = self.cache.hits, self.cache.misses
            # every prompt encoded once, then the text encoders and the VAE off the device while the denoiser
            # samples (pseudo data needs no decoding): the denoiser's phase holds it alone
            texts = [t for r in un + pre for t in (r.prompt, r.loss_prompt)] + [settings.negative_prompt]
            # the first concept map made (mask_source: frozen) is checked against an exact recompute
            guard = getattr(module, "guarded_concept_maps", contextlib.nullcontext)
            with module.switch.disabled(), backbone.prompts_encoded_then_parked(texts), guard():
                paths = self.cache.build(
                    backbone,
                    un + pre,
                    settings,
                    module.hparams.eta,
                    batch_size=self.generation_batch_size,
                    rank=self.trainer.global_rank,
                    world_size=self.trainer.world_size,
                    progress=self.trainer.is_global_zero,
                )
            # one line per process: which trajectories this rank made and which it found (a resumed or repeated
            # run makes none)
            print(
                f"pseudo data: rank {self.trainer.global_rank} of {self.trainer.world_size} made "
                f"{self.cache.misses - misses} and reused {self.cache.hits - hits} of {len(paths)} trajectories "
                f"in {self.cache.root}",
                file=sys.stderr,
                flush=True,
            )
            strategy.barrier("pseudo-data")
            files = [TrajectoryFile(p) for p in paths]
            dataset = CachedTrajectoryDataset(files[: len(un)], tokens, files[len(un) :])
        sampler = ResumableSampler(dataset, self.trainer.world_size, self.trainer.global_rank, self.seed)
        loader = ResumableLoader(
            dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers, collate_fn=collate
        )
        epoch_loop = self.trainer.fit_loop.epoch_loop
        loader.batches_done = lambda: epoch_loop.batch_progress.current.processed
        return loader


class ResumableSampler(DistributedSampler):
    """The shuffled order of the samples as a function of ``seed`` and the epoch only, split across ranks.

    Epoch ``e`` is the order a ``DataLoader(shuffle=True, generator=torch.Generator().manual_seed(seed))`` gives
    in its ``e``-th epoch under Lightning (each epoch's iterator draws one base seed, then one permutation, from
    that generator): the order of earlier versions of this data module, so their runs reproduce. With several processes
    rank ``r``
    takes positions ``r, r + N, ...`` of that order (padded like ``DistributedSampler``), so N processes with
    batch B train on exactly the batches one process with batch N·B trains on. ``resume_at`` starts part-way
    into one epoch (a resumed run). Lightning calls ``set_epoch`` and leaves a ``DistributedSampler`` in place.

    Args:
        dataset: the samples.
        num_replicas: number of processes (``trainer.world_size``).
        rank: this process (``trainer.global_rank``).
        seed: shuffle seed.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.skip_epoch: int | None = None
        self.skip = 0

    def resume_at(self, epoch: int, skip: int) -> None:
        """Iterate epoch ``epoch`` from its ``skip``-th sample of this rank on (the later epochs whole)."""
        self.set_epoch(epoch)
        self.skip_epoch, self.skip = epoch, skip

    def epoch_order(self, epoch: int) -> list[int]:
        """Every sample index in the order of epoch ``epoch`` (all ranks)."""
        n = len(self.dataset)
        generator = torch.Generator().manual_seed(int(self.seed))
        order: list[int] = []
        for _ in range(epoch + 1):  # replay the draws of the epochs before: O(epochs · n), once per epoch
            torch.empty((), dtype=torch.int64).random_(generator=generator)
            order = torch.randperm(n, generator=generator).tolist()
        return order

    def __iter__(self):
        order = self.epoch_order(self.epoch)
        order = (order * (self.total_size // max(1, len(order)) + 1))[: self.total_size]
        mine = order[self.rank : self.total_size : self.num_replicas]
        if self.skip_epoch == self.epoch and self.skip:
            mine = mine[self.skip :]
        return iter(mine)


class ResumableLoader(DataLoader):
    """A DataLoader with Lightning's ``state_dict``/``load_state_dict``: the checkpoint records the epoch and
    the batches of it already trained on (``batches_done``, set by the data module from the fit loop), and a
    resumed run skips exactly those."""

    batches_done: Any = None

    def state_dict(self) -> dict[str, int]:
        done = int(self.batches_done()) if self.batches_done is not None else 0
        return {
            "epoch": int(self.sampler.epoch),
            "batches_done": done,
            "batch_size": int(self.batch_size),
            "num_replicas": int(self.sampler.num_replicas),
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler: ResumableSampler = self.sampler
        if (state.get("batch_size"), state.get("num_replicas")) != (self.batch_size, sampler.num_replicas):
            raise InputError(
                f"the checkpoint was written with batch_size={state.get('batch_size')} on "
                f"{state.get('num_replicas')} process(es); this run has batch_size={self.batch_size} on "
                f"{sampler.num_replicas}. Fix: resume with the same data.batch_size and trainer.devices/num_nodes "
                "(or start a new run from the adapters with model.init_adapters)"
            )
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        if done >= len(self):  # the checkpoint closed its epoch: the next one starts from its beginning
            sampler.resume_at(epoch + 1, 0)
        else:
            sampler.resume_at(epoch, done * self.batch_size)


class ToyWorldDataModule(ConceptDataModule):
    """Erase a toy-world class (e.g. "red ring") with prompts from the world's paraphrase grammar.

    Args:
        concept: the class to erase, "<colour> <shape>" (or a single shape/colour word); or a list of them, erased
            together by one adapter set (each with its own prompts, synonyms and masks).
        num_prompts: training prompts drawn from the grammar's TRAIN split (held-out templates never appear), per
            concept.
        prompt_style: "rich" (augmented: context, paraphrases, synonyms), "bare" ("a red ring" and its synonym
            swaps), or "concept" (the concept's own name only, "a red ring" or "a ring": the paper's
            no-augmentation setting).
        preserve_classes: classes whose prompts feed L_pre (default: the neighbours sharing shape or colour of
            each concept, without the classes of any erased concept).
        preserve_prompts_per_class: prompts per preserved class.
        preserve_rule: how ``preserve_classes`` is chosen when it is not given: ``"neighbours"`` (default: the
            classes sharing shape or colour) or ``"conditioning"``: the ``preserve_top_k`` classes whose text
            conditioning (the model's own, prompt-mean of the encoder output, centred over all classes) has the
            largest absolute cosine with the erased concept's (:func:`conditioning_neighbours`). Both signs count:
            to first order an update that moves the concept's conditioning response moves ``c`` and ``−c`` alike
            (measured: erasing "red ring" cost most on the green classes, its most *anti*-aligned ones; issue #28).
        preserve_top_k: classes kept by ``"conditioning"`` (per erased concept; the union is used).
        seed: grammar and noise seed.
        num_inference_steps: sampler steps of the pseudo data (None: the backbone's default).
        guidance_scale: CFG scale of the pseudo data (None: the backbone's default).
        record_steps: sampler step indices kept as training samples (None: every step).
        use_cache: False regenerates x_t every training step instead of caching (as in :class:`ConceptDataModule`).
        cache_dir: where trajectories are stored (default ``$T2V_UNLEARN_CACHE/pseudo``, else
            ``~/.cache/t2v-unlearn/pseudo``).
        generation_batch_size: trajectories sampled together.
        batch_size: training batch size.
        num_workers: dataloader workers.
    """

    def __init__(
        self,
        concept: str | list[str] = "red ring",
        num_prompts: int = 32,
        prompt_style: Literal["rich", "bare", "concept"] = "rich",
        preserve_classes: list[str] | None = None,
        preserve_prompts_per_class: int = 2,
        preserve_rule: Literal["neighbours", "conditioning"] = "neighbours",
        preserve_top_k: int = 16,
        seed: int = 0,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        record_steps: list[int] | None = None,
        use_cache: bool = True,
        cache_dir: str | None = None,
        generation_batch_size: int = 64,
        batch_size: int = 8,
        num_workers: int = 0,
    ) -> None:
        check_int("data.num_prompts", num_prompts, low=1)
        check_choice("data.preserve_rule", preserve_rule, ("neighbours", "conditioning"))
        check_int("data.preserve_top_k", preserve_top_k, low=1)
        if preserve_rule == "conditioning" and preserve_classes is not None:
            raise InputError(
                "data.preserve_rule=conditioning chooses the preserved classes itself; drop data.preserve_classes "
                "or use preserve_rule=neighbours"
            )
        self.preserve_rule = preserve_rule
        self.preserve_top_k = preserve_top_k
        check_choice("data.prompt_style", prompt_style, ("rich", "bare", "concept"))
        try:
            for one in concept_list(concept):
                parse_concept(one)
        except (KeyError, ValueError) as e:
            raise InputError(
                f"data.concept {concept!r} is not a toy-world class ({e.args[0]}). Fix: name "
                f"'<colour> <shape>' (colours {', '.join(COLOURS)}; shapes {', '.join(SHAPES)}), "
                "a synonym of them, or one of the words"
            ) from None
        check_int("data.preserve_prompts_per_class", preserve_prompts_per_class, low=0)
        self.toy_num_prompts = num_prompts
        self.prompt_style = prompt_style
        concepts = concept_list(concept)
        if preserve_classes is None:
            # every concept's neighbours, but never a class that shows one of the erased concepts
            neighbours = dict.fromkeys(c for k in concepts for c in neighbour_classes(k))
            preserve_classes = [c for c in neighbours if not any(class_contains(c, k) for k in concepts)]
        self.preserve_classes = preserve_classes
        self.preserve_per_class = preserve_prompts_per_class
        super().__init__(
            concept=concepts if len(concepts) > 1 else concepts[0],
            concept_synonyms={k: synonym_phrases(k) for k in concepts}
            if len(concepts) > 1
            else synonym_phrases(concepts[0]),
            seed=seed,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            record_steps=record_steps,
            use_cache=use_cache,
            cache_dir=cache_dir,
            generation_batch_size=generation_batch_size,
            batch_size=batch_size,
            num_workers=num_workers,
            preserve_concept=", ".join(self.preserve_classes) or None,
        )

    def _training_prompts(self) -> list[TrainingPrompt]:
        out = []
        several = len(self.concepts) > 1
        for k, concept in enumerate(self.concepts):
            owner = concept if several else ""
            offset = 1_000_000 * k  # concept k > 0 gets its own seeds; the first keeps the single-concept ones
            if self.prompt_style == "concept":
                words = concept_name_prompt(concept)  # "a red ring", "a ring": one text, a new seed per copy
                out += [
                    TrainingPrompt(" ".join(words), words[1:], self.seed + offset + i, owner)
                    for i in range(self.toy_num_prompts)
                ]
                continue
            records = prompts_for_concept(
                concept, self.toy_num_prompts, split="train", style=self.prompt_style, seed=self.seed + 7919 * k
            )
            if not records:
                raise ValueError(f"the toy grammar produced no prompts for {concept!r}")
            out += [
                TrainingPrompt(r.text, [r.words[i] for i in r.concept_indices(concept)], self.seed + offset + i, owner)
                for i, r in enumerate(records)
            ]
        return out

    def setup(self, stage: str) -> None:
        super().setup(stage)
        module = self.trainer.lightning_module if self.trainer is not None else None
        backbone = getattr(module, "backbone", None)
        if self.preserve_rule == "conditioning" and backbone is not None:
            self.choose_preserve_classes(backbone)

    def choose_preserve_classes(self, backbone: Any) -> list[str]:
        """``preserve_rule="conditioning"``: rank the classes by the model's own text conditioning (see the
        class docstring) and set ``preserve_classes``/``preserve_prompts`` from the top ``preserve_top_k``."""
        ranked = {k: conditioning_neighbours(backbone, k, self.concepts, seed=self.seed) for k in self.concepts}
        chosen = dict.fromkeys(c for k in self.concepts for c, _ in ranked[k][: self.preserve_top_k])
        self.preserve_ranking = {k: [[c, round(v, 4)] for c, v in r] for k, r in ranked.items()}
        self.preserve_classes = list(chosen)
        self.preserve_concept = ", ".join(self.preserve_classes) or None
        self.preserve_prompts = self._preserve_prompts()
        return self.preserve_classes

    def _preserve_prompts(self) -> list[TrainingPrompt]:
        out = []
        for k, cls in enumerate(self.preserve_classes):
            style = "bare" if self.prompt_style == "concept" else self.prompt_style
            for j, r in enumerate(
                prompts_for_concept(cls, self.preserve_per_class, split="train", style=style, seed=self.seed + 100 + k)
            ):
                out.append(TrainingPrompt(r.text, [], 50_000 + 100 * k + j))
        return out


@torch.no_grad()
def conditioning_neighbours(
    backbone: Any, concept: str, erased: Sequence[str] = (), prompts_per_class: int = 8, seed: int = 0
) -> list[tuple[str, float]]:
    """The toy classes that do not show an erased concept, ranked by ``|cos|`` between their centred text
    conditioning and ``concept``'s, largest first, as ``(class, signed cosine)``.

    A class's conditioning is the mean over its ``prompts_per_class`` TRAIN-split rich prompts of the prompt-mean
    of ``backbone.encode_prompts`` (the encoder output the denoiser reads); every class's vector is centred by
    the mean over all classes, so a cosine says whether a class lies on the concept's side of the average
    prompt or opposite to it."""
    names = class_names()
    vecs = []
    for k, cls in enumerate(names):
        records = prompts_for_concept(cls, prompts_per_class, split="train", style="rich", seed=seed + 300 + k)
        h = backbone.encode_prompts([r.text for r in records]).hidden_states.float()
        vecs.append(h.mean(1).mean(0))
    table = torch.stack(vecs)
    table = table - table.mean(0)
    target = table[names.index(concept)] if concept in names else None
    if target is None:  # a one-word concept ("ring"): the mean of the classes that express it
        target = table[[i for i, c in enumerate(names) if class_contains(c, concept)]].mean(0)
    cos = torch.nn.functional.cosine_similarity(table, target[None], dim=1)
    keep = [i for i, c in enumerate(names) if not any(class_contains(c, e) for e in [concept, *erased])]
    return sorted(((names[i], float(cos[i])) for i in keep), key=lambda t: -abs(t[1]))


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = torch.stack(vals) if isinstance(vals[0], Tensor) else torch.tensor(vals)
    return out


def batch_embedding(batch: dict[str, Any], prefix: str) -> PromptEmbedding:
    return PromptEmbedding.from_dict({k[len(prefix) :]: v for k, v in batch.items() if k.startswith(prefix)})
