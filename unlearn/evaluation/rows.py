"""The methods compared in the paper's tables, as one generator over a single backbone copy.

A method *row*: ``original`` (the frozen model), ``negprompt`` (the concept as negative prompt:
:class:`unlearn.methods.baselines.NegativePrompting`, true CFG on guidance-distilled backbones),
``safree`` (:class:`unlearn.methods.baselines.SAFREE`), ``videoeraser``
(:class:`unlearn.methods.baselines.VideoEraser`), ``t2vunlearning`` (exported adapters,
``adapters.safetensors`` + ``t2v_adapter_config.json``), ``t2vunlearning_official`` (the T2VUnlearning authors'
released adapters, ``eraser_weights.pt`` + ``eraser_config.json``: :mod:`unlearn.methods.t2vunlearning.official`)
and ``refusal_vector`` (a low-rank refusal edit: a
folder written by ``RefusalVectorUnlearning.export`` / ``save_edited_model`` holding
``refusal_delta.safetensors``, or the delta file itself), ``uce`` (:mod:`unlearn.methods.uce`, a closed-form
edit: ``uce_edit.safetensors``) and ``esd_x`` (:mod:`unlearn.methods.esd`, fine-tuned text-attention
projections: ``esd_edit.safetensors``). The backbone is loaded once: adapters are switched on only for their
row, and a weight edit (refusal, UCE, ESD) is applied for its row and undone (bit-exact) right after.

``RowGenerator.row_model(method)`` holds one row's model in place for longer and hands out a
:class:`RowModel`: the row's denoiser prediction, differentiable in the text conditioning (what white-box
attacks optimise through), and generation from a given conditioning (a learned token's).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from unlearn.backbones import PromptEmbedding, SamplingSettings, Switch
from unlearn.checks import InputError, check_int, check_range
from unlearn.io import file_sha256, require_finished
from unlearn.methods.baselines import SAFREE, NegativePrompting, VideoEraser
from unlearn.methods.baselines.keywords import safree_keywords
from unlearn.methods.esd import EDIT_FILE as ESD_FILE
from unlearn.methods.esd import load_esd_edit
from unlearn.methods.refusal import load_delta
from unlearn.methods.t2vunlearning import check_adapter_sites, load_adapters, read_adapter_config
from unlearn.methods.t2vunlearning.official import (
    OFFICIAL_WEIGHTS,
    infer_backbone,
    is_official_folder,
    load_official,
    read_official,
)
from unlearn.methods.uce import EDIT_FILE as UCE_FILE
from unlearn.methods.uce import load_uce_edit

from .row_cache import RowVideoCache, backbone_key

ROW_KINDS = (
    "original",
    "negprompt",
    "safree",
    "videoeraser",
    "t2vunlearning",
    "t2vunlearning_official",
    "refusal_vector",
    "uce",
    "esd_x",
)
#: rows whose model is adapters on the backbone: this package's, or the authors' released ones
_ADAPTER_KINDS = ("t2vunlearning", "t2vunlearning_official")
#: rows whose model is a dense weight edit (a folder written by the method's `unlearn fit`, or the file itself):
#: kind -> (file name in the folder, loader)
_WEIGHT_EDITS = {"uce": (UCE_FILE, load_uce_edit), "esd_x": (ESD_FILE, load_esd_edit)}
#: earlier names of row kinds: still read (users' configs and command lines, results written before #22), never
#: written; code, docs and new results use the canonical kind (:func:`canonical_kind`)
ROW_KIND_ALIASES = {"unlearned": "t2vunlearning", "refusal": "refusal_vector", "negative_prompt": "negprompt"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_@+-]+$")
#: the sampling settings a row may set: the fields of the backbone's own settings (``SamplingSettings``)
SAMPLING_KEYS = tuple(f.name for f in dataclasses.fields(SamplingSettings))


def canonical_kind(kind: str) -> str:
    """The canonical name of a row kind (``unlearned`` → ``t2vunlearning``, ...); other names unchanged."""
    return ROW_KIND_ALIASES.get(kind, kind)


def check_sampling(sampling: dict[str, Any], backbone: Any = None, prefix: str = "") -> None:
    """Refuse sampling settings out of their domain (:class:`unlearn.checks.InputError` naming ``prefix + key``):
    sizes and steps ≥ 1, guidance ≥ 0; with ``backbone``, a video size it cannot generate."""
    unknown = set(k for k, v in sampling.items() if v is not None) - set(SAMPLING_KEYS)
    if unknown:
        raise InputError(f"unknown sampling settings {sorted(unknown)}; known: {SAMPLING_KEYS}")
    for key in ("num_frames", "height", "width", "num_inference_steps"):
        check_int(prefix + key, sampling.get(key), low=1, optional=True)
    check_range(prefix + "guidance_scale", sampling.get("guidance_scale"), low=0, optional=True)
    if backbone is not None and hasattr(backbone, "check_video_size"):
        d = backbone.defaults
        size = [sampling.get(k) or getattr(d, k) for k in ("num_frames", "height", "width")]
        try:
            backbone.check_video_size(*size, keys=tuple(prefix + k for k in ("num_frames", "height", "width")))
        except ValueError as e:
            raise InputError(str(e)) from None


@dataclasses.dataclass
class RowSpec:
    """One row of a table.

    Args:
        kind: ``original``, ``negprompt``, ``safree``, ``videoeraser``, ``t2vunlearning``,
            ``t2vunlearning_official``, ``refusal_vector``, ``uce`` or ``esd_x``.
        name: row name and video folder name (default: ``kind``); letters, digits, ``_@+-``.
        concept: the erased concept of this row (negative prompt / SAFREE keyword / erased class);
            default the run's concept.
        keywords: negative-prompt / SAFREE keywords (default: negprompt ``[concept]``; SAFREE the authors' list
            of the concept where they give one, e.g. six for nudity, else ``[concept]``).
        adapters: ``t2vunlearning``: folder with ``adapters.safetensors`` + ``t2v_adapter_config.json``;
            ``t2vunlearning_official``: the authors' folder with ``eraser_weights.pt`` + ``eraser_config.json``.
        refusal: ``refusal_vector``: folder with ``refusal_delta.safetensors`` or the delta file.
        edit: ``uce`` / ``esd_x``: folder written by the method's ``unlearn fit`` (``uce_edit.safetensors`` /
            ``esd_edit.safetensors``) or that file itself.
        scale: adapter output scale (1 = as trained).
        live: the row is the model being trained or edited in this process (a ``t2vunlearning`` or
            ``refusal_vector`` row of the evaluation callback): no files, switched on and off by the
            generator's ``switch``.
        options: keyword arguments of the row's baseline: ``negprompt``: ``guidance_scale`` (of
            :class:`~unlearn.methods.baselines.NegativePrompting`); ``safree``: any argument of
            :class:`~unlearn.methods.baselines.SAFREE` (``alpha``, ``schedule``, ``safe_steps``,
            ``negative_prompt``, ``guidance_scale``, ``latent_reattention``, ...). Recorded in results.
        allow_unfinished: use adapters / a refusal folder of a run whose ``run_status.json`` says it failed or
            was interrupted (refused by default: they may be partial or older than the failure).
    """

    kind: str
    name: str | None = None
    concept: str | None = None
    keywords: list[str] | None = None
    adapters: str | None = None
    refusal: str | None = None
    edit: str | None = None
    scale: float = 1.0
    live: bool = False
    options: dict[str, Any] | None = None
    allow_unfinished: bool = False

    def __post_init__(self) -> None:
        self.kind = canonical_kind(self.kind)
        if self.kind not in ROW_KINDS:
            raise ValueError(f"unknown method {self.kind!r}; use one of {', '.join(ROW_KINDS)}")
        if self.options and self.kind not in _BASELINES:
            raise ValueError(
                f"method {self.kind!r} takes no options (only {', '.join(_BASELINES)} do); got {sorted(self.options)}"
            )
        self.name = self.name or self.kind
        if not _NAME_RE.match(self.name):
            raise ValueError(f"method name {self.name!r}: use letters, digits and _@+- only (it names a folder)")

    @classmethod
    def parse(cls, text: str | RowSpec, adapters: str | None = None, refusal: str | None = None) -> RowSpec:
        """``KIND``, ``KIND=PATH`` or ``NAME:KIND[=PATH]`` (PATH: adapters folder or refusal folder/delta);
        ``adapters``/``refusal`` fill the path of a bare ``t2vunlearning``/``refusal_vector``."""
        if isinstance(text, RowSpec):
            return text
        head, _, path = str(text).partition("=")
        name, _, kind = head.partition(":") if ":" in head else ("", "", head)
        kind = canonical_kind(kind.strip())
        path = path.strip() or None
        spec = cls(kind=kind, name=name.strip() or None)
        if spec.kind in _ADAPTER_KINDS:
            spec.adapters = path or (adapters if spec.kind == "t2vunlearning" else None)
        elif spec.kind == "refusal_vector":
            spec.refusal = path or refusal
        elif spec.kind in _WEIGHT_EDITS:
            spec.edit = path
        elif path:
            raise ValueError(
                f"method {text!r}: only t2vunlearning(_official), refusal_vector, uce and esd_x take a path"
            )
        return spec

    def resolve_concept(self, concept: str | None) -> str | None:
        return self.concept or concept

    def refusal_delta_path(self) -> Path:
        assert self.refusal is not None
        p = Path(self.refusal)
        return p / "refusal_delta.safetensors" if p.is_dir() else p

    def edit_path(self) -> Path:
        assert self.edit is not None
        p = Path(self.edit)
        return p / _WEIGHT_EDITS[self.kind][0] if p.is_dir() else p

    def check(self, concept: str | None, backbone: str | None = None) -> None:
        """Fail early, with one clear error, on a row that cannot run (``backbone``: the registry name the
        videos are generated with; adapters trained on another backbone are refused)."""
        if self.kind in _BASELINES and not (self.keywords or self.resolve_concept(concept)):
            raise ValueError(f"method {self.name!r} ({self.kind}) needs the concept to erase (--concept)")
        if self.live:
            return
        if self.kind == "t2vunlearning":
            if not self.adapters:
                raise InputError(f"method {self.name!r} needs an adapters folder (t2vunlearning=PATH or --adapters)")
            require_finished(self.adapters, f"method {self.name!r}: adapters", self.allow_unfinished)
            trained_on = read_adapter_config(self.adapters).get("backbone")  # FileNotFoundError naming the folder
            if backbone and trained_on not in (None, "unknown", backbone):
                raise InputError(f"adapters in {self.adapters} were trained on {trained_on!r}, not on {backbone!r}")
        if self.kind == "t2vunlearning_official":
            if not self.adapters or not is_official_folder(self.adapters):
                raise ValueError(
                    f"method {self.name!r} needs the authors' adapter folder (eraser_weights.pt + eraser_config.json; "
                    f"t2vunlearning_official=PATH); got {self.adapters!r}"
                )
            state, _ = read_official(self.adapters)  # every check of the file, before any video is made
            if backbone in ("cogvideox-2b", "cogvideox-5b", "hunyuanvideo"):
                made_for = infer_backbone(state)  # from the site names and widths of the full-size models
                if made_for not in ("unknown", backbone):  # unknown: not a published width (tiny test models)
                    raise ValueError(f"the authors' adapters in {self.adapters} are for {made_for!r}, not {backbone!r}")
        if self.kind == "refusal_vector":
            if not self.refusal:
                raise InputError(f"method {self.name!r} needs a refusal folder (refusal_vector=PATH or --refusal)")
            if not self.refusal_delta_path().is_file():
                raise FileNotFoundError(
                    f"{self.refusal!r} holds no refusal_delta.safetensors: give the folder written by "
                    "`unlearn fit` with RefusalVectorUnlearning (output_dir) or the delta file itself"
                )
            require_finished(self.refusal, f"method {self.name!r}: refusal edit", self.allow_unfinished)
        if self.kind in _WEIGHT_EDITS:
            if not self.edit:
                raise ValueError(f"method {self.name!r} needs its edit: {self.kind}=FOLDER (the output of its fit)")
            if not self.edit_path().is_file():
                raise FileNotFoundError(
                    f"{self.edit!r} holds no {_WEIGHT_EDITS[self.kind][0]}: give the folder written by `unlearn fit` "
                    f"with the {self.kind} method (its output_dir) or the file itself"
                )
            require_finished(self.edit, f"method {self.name!r}: {self.kind} edit", self.allow_unfinished)

    def fingerprint(self, concept: str | None) -> dict[str, Any]:
        """What the row's videos depend on (for the per-video manifest key)."""
        fp: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.kind in _BASELINES:
            concept = self.resolve_concept(concept)
            fp["keywords"] = self.keywords or (safree_keywords(concept) if self.kind == "safree" else [concept])
            fp["options"] = dict(sorted((self.options or {}).items()))
            fp["baseline_version"] = _BASELINE_VERSION
        if self.live:
            fp["live"] = True
        elif self.kind == "t2vunlearning":
            fp["adapters_sha256"] = file_sha256(Path(self.adapters) / "adapters.safetensors")
            fp["scale"] = self.scale
        elif self.kind == "t2vunlearning_official":
            fp["adapters_sha256"] = file_sha256(Path(self.adapters) / OFFICIAL_WEIGHTS)
            fp["scale"] = self.scale
        if self.kind == "refusal_vector" and not self.live:
            fp["refusal_delta_sha256"] = file_sha256(self.refusal_delta_path())
        if self.kind in _WEIGHT_EDITS and not self.live:
            fp["edit_sha256"] = file_sha256(self.edit_path())
        return fp

    def describe(self, concept: str | None) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k != "allow_unfinished"}
        d["concept"] = self.resolve_concept(concept)
        d.update({k: v for k, v in self.fingerprint(concept).items() if k.endswith("sha256")})
        return d


#: row kinds implemented by a baseline class of :mod:`unlearn.methods.baselines` (they take ``options``)
_BASELINES = {"negprompt": NegativePrompting, "safree": SAFREE, "videoeraser": VideoEraser}
#: bumped when a baseline's computation changes, so that stored videos of the old one are not reused
_BASELINE_VERSION = 3


def parse_rows(
    methods: Sequence[str | RowSpec], adapters: str | None = None, refusal: str | None = None
) -> list[RowSpec]:
    """Method specs from strings (``KIND``, ``KIND=PATH``, ``NAME:KIND[=PATH]``) or specs; names must differ."""
    specs = [RowSpec.parse(m, adapters=adapters, refusal=refusal) for m in methods]
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"method rows {dup} appear twice; name them apart with NAME:KIND[=PATH]")
    if not specs:
        raise ValueError("no method to evaluate: give at least one of " + ", ".join(ROW_KINDS))
    return specs


def apply_row_options(specs: Sequence[RowSpec], row_options: dict[str, dict[str, Any]] | None) -> None:
    """Give each spec its options from ``row_options`` (``{row name or kind: {option: value}}``; a row's own
    name wins over its kind). A key that names no row is an error."""
    if not row_options:
        return
    for key, opts in row_options.items():
        if not isinstance(opts, dict):
            raise InputError(
                f"row options (--row-options) for {key!r} must be a JSON object of that row's options, e.g. "
                f"{{{key!r}: {{'guidance_scale': 6.0}}}}; got {opts!r}"
            )
    names = {s.name for s in specs} | {s.kind for s in specs}
    unknown = sorted(set(row_options) - names)
    if unknown:
        raise ValueError(
            f"row_options for {unknown}, which name no row of this run (rows: "
            f"{sorted(s.name for s in specs)}); key them by row name or kind, e.g. "
            "{'negprompt': {'guidance_scale': 6.0}, 'safree': {'schedule': 'self_validating'}}"
        )
    for spec in specs:
        opts = row_options.get(spec.name, row_options.get(spec.kind))
        if opts is not None:
            spec.options = dict(opts)
            spec.__post_init__()  # options on a row that takes none fail here


class RowGenerator(nn.Module):
    """Generate the videos of every row with one backbone copy.

    ``generate(method, prompts, seeds)`` returns uint8 ``[B, F, H, W, 3]`` on the backbone's device.
    Adapter switches are child modules (they follow ``.to(device)`` and Lightning's device placement).

    Args:
        backbone: a built backbone (``unlearn.backbones.build_backbone``).
        methods: the rows.
        concept: the erased concept (default of every row's ``concept``).
        sampling: ``num_frames``, ``height``, ``width``, ``num_inference_steps``, ``guidance_scale``
            (``None`` entries: the backbone's defaults).
        switch: the on/off switch of the model trained or edited in this process (its adapter switch,
            or the refusal module's edit switch): ``disabled()`` gives the original model, ``scaled(s)`` the
            method's. Needed by ``live`` rows; when given, every other row runs with it disabled.
        cache: keep the videos of every row that does not depend on training (not ``live``) on disk and reuse
            them (:class:`~unlearn.evaluation.row_cache.RowVideoCache`; None: generate every time).
    """

    def __init__(
        self,
        backbone: nn.Module,
        methods: Sequence[RowSpec],
        concept: str | None = None,
        sampling: dict[str, Any] | None = None,
        switch: Switch | None = None,
        cache: RowVideoCache | None = None,
    ) -> None:
        super().__init__()
        self.cache = cache
        self.backbone = backbone
        object.__setattr__(self, "switch", switch)  # the trained module owns it; not a child of the generator
        self.concept = concept
        self.specs = {m.name: m for m in methods}
        self.sampling = {k: v for k, v in (sampling or {}).items() if v is not None}
        check_sampling(self.sampling, backbone)
        self.adapters = nn.ModuleDict()
        for m in methods:
            m.check(concept, backbone.name)
            if m.live and switch is None:
                raise ValueError(f"row {m.name!r} is live (the model of this run) but no switch was given")
            if m.kind == "t2vunlearning" and not m.live:
                loaded, config = load_adapters(m.adapters)
                if config.get("backbone") not in (None, "unknown", backbone.name):
                    raise InputError(
                        f"adapters in {m.adapters} were trained on {config['backbone']!r}, not on {backbone.name!r}"
                    )
                check_adapter_sites(backbone.attention_sites(), config, where=f"the adapters in {m.adapters}")
                self.adapters[m.name] = loaded.to(backbone.device)
            elif m.kind == "t2vunlearning_official":
                sites = backbone.attention_sites()
                loaded, _ = load_official(
                    m.adapters, backbone.name, [s.name for s in sites], [s.video_dim for s in sites]
                )
                self.adapters[m.name] = loaded.to(backbone.device)
        self._baselines: dict[str, Any] = {}
        self._edits: dict[str, Any] = {}
        for m in methods:
            if m.kind in _BASELINES:
                self.baseline(m.name)  # bad options fail here, before any video is made

    def keywords(self, method: str) -> list[str]:
        """The row's keywords: its own, else SAFREE's per-concept default (the authors' list where they give
        one, :func:`~unlearn.methods.baselines.keywords.safree_keywords`), else the concept (negprompt:
        the T2VUnlearning authors' negative prompt is the concept's name, test_hunyuan_negprompt.py:90)."""
        spec = self.specs[method]
        if spec.keywords:
            return list(spec.keywords)
        concept = spec.resolve_concept(self.concept)
        return safree_keywords(concept) if spec.kind == "safree" else [concept]

    def baseline(self, method: str) -> Any:
        """The :class:`NegativePrompting` / :class:`SAFREE` object of a baseline row (built once)."""
        if method not in self._baselines:
            spec = self.specs[method]
            cls = _BASELINES[spec.kind]
            try:
                self._baselines[method] = cls(self.backbone, self.keywords(method), **(spec.options or {}))
            except TypeError as err:
                known = [p for p in inspect.signature(cls).parameters if p not in ("backbone", "concept_keywords")]
                raise ValueError(
                    f"row {method!r} ({spec.kind}): bad options {sorted(spec.options or {})} ({err}); "
                    f"known: {', '.join(known)}"
                ) from err
        return self._baselines[method]

    def describe(self, method: str) -> dict[str, Any]:
        """The row as results record it: its spec, and for a baseline what it computes (negative prompt,
        guidance scale, SAFREE's settings) with this run's sampling."""
        spec = self.specs[method]
        d = spec.describe(self.concept)
        if spec.kind in _BASELINES:
            d["settings"] = self.baseline(method).settings(self.sampling.get("guidance_scale"))
        return d

    def file_edit(self, method: str) -> Any:
        """The weight edit of a ``refusal_vector`` / ``uce`` / ``esd_x`` row read from its file (once)."""
        if method not in self._edits:
            spec = self.specs[method]
            if spec.kind == "refusal_vector":
                self._edits[method] = load_delta(spec.refusal_delta_path())
            else:
                self._edits[method] = _WEIGHT_EDITS[spec.kind][1](str(spec.edit_path()))
        return self._edits[method]

    @contextlib.contextmanager
    def original_model(self):
        """The frozen model: the live switch (or the backbone's attached adapters) off."""
        switch = self.switch if self.switch is not None else getattr(self.backbone, "switch", None)
        with switch.disabled() if switch is not None else contextlib.nullcontext():
            yield

    def cache_key(self, method: str, prompts: Sequence[str], seeds: Sequence[int]) -> str | None:
        """The row cache's key of this batch of ``method`` (None: not cached: no cache, or a ``live`` row)."""
        spec = self.specs[method]
        if self.cache is None or spec.live:
            return None
        with self.original_model():  # the frozen weights, whatever the live switch holds now
            backbone = backbone_key(self.backbone, code=[sys.modules[__name__], *_BASELINES.values()])
        # what the row computes; not its name nor the paths of its files (their sha256 is there)
        row = {k: v for k, v in self.describe(method).items() if k not in ("name", "adapters", "refusal")}
        return self.cache.key(backbone, row, self.sampling, prompts, seeds)

    @torch.no_grad()
    def generate(self, method: str, prompts: Sequence[str], seeds: Sequence[int]) -> Tensor:
        """Videos (uint8 ``[B, F, H, W, 3]``) of ``method`` for ``prompts`` with ``seeds``; a row that does not
        depend on training is read from the row cache when it holds this batch, and stored there otherwise."""
        prompts, seeds = list(prompts), [int(s) for s in seeds]
        key = self.cache_key(method, prompts, seeds)
        if key is not None:
            cached = self.cache.get(key)
            if cached is not None:
                self.cache.hits += 1
                return cached.to(self.backbone.device)
        videos = self._generate(method, prompts, seeds)
        if key is not None:
            self.cache.misses += 1
            self.cache.put(key, videos)
        return videos

    def _generate(self, method: str, prompts: list[str], seeds: list[int]) -> Tensor:
        spec = self.specs[method]
        bb = self.backbone
        if spec.live:
            with self.switch.scaled(spec.scale):
                return bb.decode(bb.sample(prompts, seeds, **self.sampling))
        if spec.kind in _ADAPTER_KINDS:
            switch = self.adapters[method]
            if getattr(bb, "switch", None) is not switch:
                bb.attach_switch(switch)
            with switch.scaled(spec.scale):
                latents = bb.sample(prompts, seeds, **self.sampling)
            return bb.decode(latents)
        with self.original_model():
            if spec.kind == "original":
                latents = bb.sample(prompts, seeds, **self.sampling)
            elif spec.kind in _BASELINES:
                latents = self.baseline(method).sample(prompts, seeds, **self.sampling)
            elif spec.kind == "refusal_vector" or spec.kind in _WEIGHT_EDITS:
                edit = self.file_edit(method)
                edit.apply_to(bb, keep_originals=True)  # ValueError if the edit was made on other weights
                try:
                    latents = bb.sample(prompts, seeds, **self.sampling)
                finally:
                    edit.restore(bb)
            else:  # pragma: no cover - RowSpec validates kinds
                raise AssertionError(spec.kind)
            return bb.decode(latents)

    # ------------------------------------------------------------------ one row held in place (attacks)
    @contextlib.contextmanager
    def row_model(self, method: str) -> Iterator[RowModel]:
        """Hold row ``method``'s model in place (adapters on, refusal edit applied, or the original weights)
        for the block and yield its :class:`RowModel`. Do not call :meth:`generate` inside the block."""
        spec = self.specs[method]
        bb = self.backbone
        if spec.live:
            ctx = self.switch.scaled(spec.scale)
        elif spec.kind in _ADAPTER_KINDS:
            switch = self.adapters[method]
            if getattr(bb, "switch", None) is not switch:
                bb.attach_switch(switch)
            ctx = switch.scaled(spec.scale)
        else:
            ctx = self.original_model()
        with ctx:
            edit = None
            if (spec.kind == "refusal_vector" or spec.kind in _WEIGHT_EDITS) and not spec.live:
                edit = self.file_edit(method)
                edit.apply_to(bb, keep_originals=True)
            try:
                yield RowModel(self, method)
            finally:
                if edit is not None:
                    edit.restore(bb)


class RowModel:
    """One row's model while :meth:`RowGenerator.row_model` holds it in place.

    ``predict`` is the row's *conditional* denoiser prediction, differentiable in ``cond``: the row's weights
    (adapters, refusal edit) and its conditioning transform (SAFREE's projection at the sampler steps where
    SAFREE applies it). A negative prompt acts only through guidance at sampling, so ``negprompt``'s
    ``predict`` is the original model's, as in the white-box attacks' papers (UnlearnDiffAtk attacks the
    conditional noise prediction and samples with the defence's negative prompt). ``generate`` samples from a
    given conditioning with the row's negative prompt and SAFREE's schedule.
    """

    def __init__(self, generator: RowGenerator, method: str) -> None:
        self.generator, self.method = generator, method
        self.spec = generator.specs[method]
        self.backbone = generator.backbone
        self.num_inference_steps = int(
            generator.sampling.get("num_inference_steps") or self.backbone.defaults.num_inference_steps
        )

    def conditioning(
        self, cond: PromptEmbedding, step: int | None, prompts: Sequence[str] | None = None
    ) -> PromptEmbedding:
        """What the denoiser reads at sampler step ``step`` (``None``: a step outside SAFREE's projected span).

        SAFREE detects its trigger tokens on text: with ``prompts`` (the texts ``cond`` stands for) the
        projection applies as in sampling; without them (a conditioning that has no text, e.g. a soft prompt
        in the middle of an optimisation) it does not, and SAFREE acts through its negative prompt only."""
        if self.spec.kind != "safree" or step is None or prompts is None:
            return cond
        return self.generator.baseline(self.method).step_conditioning(cond, prompts, self.num_inference_steps)(
            int(step)
        )

    def predict(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        cond: PromptEmbedding,
        step: int | None = None,
        prompts: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """The row's conditional prediction at ``latents`` (``step``: the sampler step index of ``timesteps``,
        which decides SAFREE's projection; ``prompts``: see :meth:`conditioning`)."""
        return self.backbone.predict(latents, timesteps, self.conditioning(cond, step, prompts))

    @torch.no_grad()
    def generate(self, prompts: Sequence[str], seeds: Sequence[int], cond: PromptEmbedding) -> torch.Tensor:
        """Videos (uint8 ``[B, F, H, W, 3]``) of the row from the conditioning ``cond`` (``prompts`` label them,
        and SAFREE detects its trigger tokens on them)."""
        bb, sampling = self.backbone, self.generator.sampling
        prompts, seeds = list(prompts), [int(s) for s in seeds]
        if self.spec.kind in _BASELINES:
            latents = self.generator.baseline(self.method).sample(prompts, seeds, cond=cond, **sampling)
        else:
            latents = bb.sample(prompts, seeds, cond=cond, **sampling)
        return bb.decode(latents)
