"""Adapters as files: ``adapters.safetensors`` + ``t2v_adapter_config.json``, and attaching them to a stock
diffusers pipeline, from a folder or a Hugging Face Hub repository (``unlearn push`` uploads one). Several sets
attach at once, each with its scale, and detach again (:func:`attach_adapters`, :func:`detach_adapters`).

The config file has a name of its own: ``adapter_config.json`` is PEFT's, with another schema, and a PEFT tool
reading ours would fail on it. Folders written before the rename (``adapter_config.json`` holding
``"format": "t2v-unlearn-adapters/1"``) are still read.

>>> from diffusers import CogVideoXPipeline                          # doctest: +SKIP
>>> pipe = CogVideoXPipeline.from_pretrained("THUDM/CogVideoX-2b")   # doctest: +SKIP
>>> attach_adapters(pipe, "runs/cogx2b_nudity/adapters")             # doctest: +SKIP
>>> attach_adapters(pipe, "user/cogx2b-no-nudity")   # or from the Hub  # doctest: +SKIP
>>> attach_adapters(pipe, "runs/cogx2b_faces/adapters", scale=0.8, adapter_name="faces")  # doctest: +SKIP
>>> detach_adapters(pipe, "faces")   # the others stay; detach_adapters(pipe): all  # doctest: +SKIP
>>> video = pipe("a prompt").frames[0]   # the concept is erased     # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from unlearn.backbones import AttentionSite, UnknownBackboneError, backbone_class, default_hub_id
from unlearn.checks import InputError
from unlearn.io import atomic_folder, load_checkpoint_file, require_finished

from .adapters import AdapterStack, AdapterSwitch
from .official import is_official_folder, load_official, save_official

WEIGHTS_NAME = "adapters.safetensors"
#: the adapters' keys in a Lightning checkpoint's ``state_dict``: the module's ``switch``
CHECKPOINT_PREFIX = "switch."
#: the same in checkpoints written before the switch had that name (#22); read, never written
LEGACY_CHECKPOINT_PREFIX = "controller."  # rename: keep


def checkpoint_adapter_state(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The adapter tensors of a T2VUnlearning checkpoint's ``state_dict``, keyed as in the switch (prefix
    removed); checkpoints of either prefix read the same."""
    out = {}
    for prefix in (LEGACY_CHECKPOINT_PREFIX, CHECKPOINT_PREFIX):
        out.update({k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)})
    return out


CONFIG_NAME = "t2v_adapter_config.json"
#: the config's name before the rename (PEFT's name): still read, never written
LEGACY_CONFIG_NAME = "adapter_config.json"
FORMAT = "t2v-unlearn-adapters/1"


class AdapterFileError(InputError):
    """An adapter folder or checkpoint is missing, malformed, or does not fit the model."""


def adapter_config(switch: AdapterSwitch, backbone_name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``t2v_adapter_config.json`` of ``switch`` (also stored in every Lightning checkpoint)."""
    return {
        "format": FORMAT,
        "backbone": backbone_name,
        "site_names": list(switch.site_names),
        "dims": [a.up.out_features for a in switch.adapters],
        "inner_dim": switch.inner_dim,
        **(extra or {}),
    }


def save_adapters(
    switch: AdapterSwitch, backbone_name: str, path: str | os.PathLike, extra: dict[str, Any] | None = None
) -> Path:
    """Write the adapters and their config into folder ``path`` atomically (:func:`unlearn.io.atomic_folder`: a
    reader never sees a mix of old and new files, and a crash leaves the previous folder intact)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AdapterFileError(
            f"{str(path)!r} is a file; the adapters are written as a folder. Fix: give a folder path"
        )
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in switch.state_dict().items()}
    config = adapter_config(switch, backbone_name, extra)
    with atomic_folder(path) as tmp:
        save_file(state, tmp / WEIGHTS_NAME)
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))
    return path


def config_file(path: str | os.PathLike) -> Path:
    """The config file of adapter folder ``path``: ``t2v_adapter_config.json``, or the legacy
    ``adapter_config.json`` of folders written before the rename when only that one exists."""
    path = Path(path)
    legacy = path / LEGACY_CONFIG_NAME
    return legacy if not (path / CONFIG_NAME).is_file() and legacy.is_file() else path / CONFIG_NAME


def read_adapter_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config of the adapter folder ``path``, checked: format, dims, inner width and site names."""
    path = Path(path)
    cfg_file, weights = config_file(path), path / WEIGHTS_NAME
    if not cfg_file.is_file() or not weights.is_file():
        raise FileNotFoundError(
            f"{str(path)!r} is not an adapter folder: it needs {CONFIG_NAME} and {WEIGHTS_NAME} "
            "(written by the AdapterCheckpoint callback or `unlearn export`)."
        )
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise AdapterFileError(
            f"{cfg_file}: not valid JSON ({e}). Fix: export the adapters again (`unlearn export`) or restore the file"
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise AdapterFileError(f"{cfg_file}: unknown adapter format {found!r}; expected {FORMAT!r}")
    dims, inner, names = config.get("dims"), config.get("inner_dim"), config.get("site_names")
    if (
        not (isinstance(dims, list) and dims and all(isinstance(d, int) and d > 0 for d in dims))
        or not (isinstance(inner, int) and inner > 0)
        or not (names is None or (isinstance(names, list) and len(names) == len(dims)))
    ):
        raise AdapterFileError(
            f"{cfg_file}: needs 'dims' (one positive width per attention site), 'inner_dim' > 0 "
            f"and 'site_names' (one per site, or null); got dims={dims!r}, inner_dim={inner!r}, "
            f"site_names={names!r}"
        )
    return config


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    file = path / WEIGHTS_NAME
    try:
        state = load_file(file)
    except (SafetensorError, OSError, ValueError) as e:
        raise AdapterFileError(
            f"{file}: cannot read the adapter weights ({type(e).__name__}: {e}); the file is "
            "truncated or corrupt. Fix: export the adapters again"
        ) from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:  # refused wherever adapters are loaded (init_adapters, evaluate, attach, push)
        raise AdapterFileError(
            f"{file}: {len(bad)} adapter tensor(s) hold NaN or infinite values (e.g. {bad[0]}); a run that "
            "diverged wrote them. Fix: use the adapters of a run that finished (lower model.learning_rate and "
            "train again)"
        )
    return state


def _switch_from(config: dict[str, Any], state: dict[str, torch.Tensor], where: str) -> AdapterSwitch:
    names = config.get("site_names") or [str(i) for i in range(len(config["dims"]))]
    switch = AdapterSwitch(config["dims"], config["inner_dim"], names)
    expected = {k: tuple(v.shape) for k, v in switch.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))[:3]
        unexpected = sorted(set(got) - set(expected))[:3]
        wrong = [f"{k}: {got[k]} (config says {expected[k]})" for k in expected if k in got and got[k] != expected[k]][
            :3
        ]
        raise AdapterFileError(
            f"{where}: the weights do not match the config (missing {missing}, unexpected "
            f"{unexpected}, wrong shapes {wrong}). Fix: export the adapters again"
        )
    switch.load_state_dict(state)
    return switch


def load_adapters(
    path: str | os.PathLike, sites: Sequence[AttentionSite] | None = None, backbone: str | None = None
) -> tuple[AdapterSwitch, dict[str, Any]]:
    """Rebuild the :class:`AdapterSwitch` saved in ``path``; returns it with its config. A folder in the
    T2VUnlearning authors' format (``eraser_weights.pt`` + ``eraser_config.json``) is read too
    (:mod:`.official`; ``sites``/``backbone``: the model's, needed for HunyuanVideo)."""
    if is_official_folder(path):
        names = [s.name for s in sites] if sites is not None else None
        dims = [s.video_dim for s in sites] if sites is not None else None
        switch, config = load_official(path, backbone, names, dims)
        return switch, {"format": FORMAT, **config}
    config = read_adapter_config(path)
    return _switch_from(config, _load_state(Path(path)), str(Path(path) / WEIGHTS_NAME)), config


def check_adapter_sites(sites: Sequence[AttentionSite], config: dict[str, Any], where: str = "the adapters") -> None:
    """Raise :class:`AdapterFileError` unless adapters with ``config`` (``dims``, ``site_names``) fit the
    attention ``sites`` one by one: the same number of sites, each adapter as wide as its site's video tokens,
    and the same site names where the config records them. Called before anything is installed on a model."""
    dims, names = list(config["dims"]), config.get("site_names")
    what = f"{where} (trained on {config.get('backbone', '?')!r})"
    if len(dims) != len(sites):
        raise AdapterFileError(
            f"{what} cover {len(dims)} attention sites; this model has {len(sites)}. Fix: use "
            "adapters trained on this model configuration"
        )
    wrong = [f"{s.name}: model {s.video_dim}, adapter {d}" for s, d in zip(sites, dims) if s.video_dim != d]
    if wrong:
        raise AdapterFileError(
            f"{what} do not fit this model's attention sites (video-token width differs at "
            f"{len(wrong)} of {len(sites)} sites, e.g. {'; '.join(wrong[:3])}). Fix: use adapters "
            "trained on this model (e.g. CogVideoX-2B adapters do not fit CogVideoX-5B)"
        )
    placeholder = names is None or names == [str(i) for i in range(len(dims))]
    if not placeholder and list(names) != [s.name for s in sites]:
        diff = [f"{a} vs {s.name}" for a, s in zip(names, sites) if a != s.name][:3]
        raise AdapterFileError(
            f"{what} name other attention sites than this model's ({'; '.join(diff)}). Fix: use "
            "adapters trained on this backbone"
        )


def load_adapter_weights(
    switch: AdapterSwitch,
    path: str | os.PathLike,
    expect_backbone: str | None = None,
    allow_unfinished: bool = False,
    key: str = "init_adapters",
) -> None:
    """Load saved adapter weights into an existing switch (resuming from exported adapters). The folder of
    a run that failed or was interrupted is refused unless ``allow_unfinished``; adapters of another backbone,
    or whose sites (count, widths, names) differ, are refused before the switch changes."""
    if not Path(path).exists():
        raise FileNotFoundError(
            f"{key}: {str(path)!r} does not exist. Fix: give the adapters folder of a finished run "
            "(<run>/adapters) or the output of `unlearn export`"
        )
    if is_official_folder(path):  # the authors' released adapters as the starting point
        dims = [a.up.out_features for a in switch.adapters]
        loaded, config = load_official(path, expect_backbone, switch.site_names, dims)
        if config["inner_dim"] != switch.inner_dim:
            raise AdapterFileError(
                f"{key}: the authors' adapters in {path} have rank {config['inner_dim']}; the model has "
                f"model.adapter_dim={switch.inner_dim}. Fix: set model.adapter_dim: {config['inner_dim']}"
            )
        switch.load_state_dict(loaded.state_dict())
        return
    require_finished(path, key, allow_unfinished, flag="model.allow_unfinished_init=true")
    config = read_adapter_config(path)
    if expect_backbone and config["backbone"] not in (expect_backbone, "unknown"):
        raise AdapterFileError(
            f"{key}: adapters in {path} were trained on {config['backbone']!r}, not {expect_backbone!r}"
        )
    names = config.get("site_names")
    placeholder = names is None or names == [str(i) for i in range(len(config["dims"]))]
    if not placeholder and names != switch.site_names:
        raise AdapterFileError(f"{key}: adapters in {path} cover sites {names}, the model has {switch.site_names}")
    dims = [a.up.out_features for a in switch.adapters]
    if config["dims"] != dims or config["inner_dim"] != switch.inner_dim:
        raise AdapterFileError(
            f"{key}: adapters in {path} have widths {config['dims']} and inner width "
            f"{config['inner_dim']}; the model needs {dims} and model.adapter_dim={switch.inner_dim}"
        )
    loaded = _switch_from(config, _load_state(Path(path)), str(Path(path) / WEIGHTS_NAME))
    switch.load_state_dict(loaded.state_dict())


def resolve_adapters(
    path_or_repo: str | os.PathLike, revision: str | None = None, cache_dir: str | os.PathLike | None = None
) -> Path:
    """The local adapter folder ``path_or_repo`` names: a folder as it is, or a Hub repository id
    (``user/name``) downloaded through ``huggingface_hub.snapshot_download`` (its cache; ``HF_HUB_OFFLINE=1``
    uses the cached copy only)."""
    path = Path(path_or_repo).expanduser()
    if path.exists():
        return path
    text = str(path_or_repo)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise FileNotFoundError(f"adapter folder {text!r} does not exist (and it is not a Hub id like 'user/name')")
    from huggingface_hub import snapshot_download

    folder = snapshot_download(
        text,
        revision=revision,
        cache_dir=cache_dir,
        allow_patterns=[WEIGHTS_NAME, CONFIG_NAME, LEGACY_CONFIG_NAME, "README.md"],
    )
    return Path(folder)


def _denoiser_of(pipeline_or_denoiser: Any) -> Any:
    for attr in ("transformer", "unet"):
        if getattr(pipeline_or_denoiser, attr, None) is not None:
            return getattr(pipeline_or_denoiser, attr)
    return pipeline_or_denoiser


def attach_adapters(
    pipeline_or_denoiser: Any,
    path_or_repo: str | os.PathLike,
    scale: float = 1.0,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    adapter_name: str | None = None,
) -> AdapterSwitch:
    """Install saved adapters on a stock diffusers pipeline (or its transformer/UNet) in place.

    ``path_or_repo``: an adapter folder, or a Hub repository id (``user/name``, see :func:`resolve_adapters`;
    ``revision`` pins a commit). The adapters are applied by forward hooks on the attention modules' outputs:
    the pipeline keeps its attention processors, so any attention backend set on it keeps working. The
    pipeline then generates with the concept erased; ``switch.scale = 0`` (or ``switch.disabled()``)
    gives the original model back exactly. Returns the switch. Every attention site is checked
    against the adapters (:func:`check_adapter_sites`) before the pipeline is changed: adapters of another model
    leave it untouched.

    Several sets attach side by side (``adapter_name``: ``default_0``, ``default_1``, ... when not given, as
    diffusers names LoRAs): each adds ``scale × its output`` computed from the same video tokens
    (:class:`~unlearn.methods.t2vunlearning.adapters.AdapterStack`, kept as ``denoiser._t2v_unlearn_adapters``).
    :func:`detach_adapters` removes one set or all of them.
    """
    denoiser = _denoiser_of(pipeline_or_denoiser)
    stack = getattr(denoiser, "_t2v_unlearn_adapters", None)
    if stack is not None and not isinstance(stack, AdapterStack):
        raise AdapterFileError("the model holds adapters attached by an older t2v-unlearn; build the pipeline again")
    name = adapter_name if adapter_name is not None else f"default_{len(stack.sets) if stack else 0}"
    if not isinstance(name, str) or not name:
        raise InputError(f"adapter_name must be a non-empty string, got {name!r}")
    if stack is not None and name in stack.sets:
        raise InputError(
            f"adapter_name {name!r} is already attached (attached: {', '.join(stack.sets)}). Fix: give another "
            f"adapter_name, or detach_adapters(pipe, {name!r}) first"
        )
    path = resolve_adapters(path_or_repo, revision=revision, cache_dir=cache_dir)
    if is_official_folder(path):  # the authors' format: the family from the denoiser's class
        kind = type(denoiser).__name__
        family_name = "hunyuanvideo" if "HunyuanVideo" in kind else "cogvideox-2b" if "CogVideoX" in kind else None
        if family_name is None:
            raise AdapterFileError(
                f"{path}: the authors' adapters exist for CogVideoX and HunyuanVideo; this denoiser is a {kind}"
            )
        family = backbone_class(family_name)
        sites = family.attention_sites_of(denoiser)
        switch, config = load_official(path, family_name, [s.name for s in sites], [s.video_dim for s in sites])
    else:
        switch, config = load_adapters(path)
        try:
            family = backbone_class(config["backbone"])
        except UnknownBackboneError as e:
            raise AdapterFileError(f"{path}: {e}") from None
    check_adapter_sites(family.attention_sites_of(denoiser), config, where=f"the adapters in {path}")
    param = next(denoiser.parameters())
    switch.to(param.device)
    switch.scale = float(scale)
    if stack is None:
        stack = AdapterStack()
        stack.family = family
        stack.sets[name] = switch
        family.install_adapter_hooks(denoiser, stack)
        # keep a reference so the adapters live as long as the model
        denoiser._t2v_unlearn_adapters = stack
    else:
        stack.sets[name] = switch
    return switch


def detach_adapters(pipeline_or_denoiser: Any, adapter_name: str | None = None) -> None:
    """Remove the adapter set ``adapter_name`` (all sets when ``None``) attached by :func:`attach_adapters`.
    When none is left, every hook the attaching installed is removed: the model is the stock one again."""
    denoiser = _denoiser_of(pipeline_or_denoiser)
    stack = getattr(denoiser, "_t2v_unlearn_adapters", None)
    if not isinstance(stack, AdapterStack) or not stack.sets:
        raise InputError("no adapters are attached to this model (attach_adapters attaches them)")
    if adapter_name is not None:
        if adapter_name not in stack.sets:
            raise InputError(f"no adapter set {adapter_name!r} is attached (attached: {', '.join(stack.sets)})")
        del stack.sets[adapter_name]
        if stack.sets:
            return
    stack.family.remove_adapter_hooks(denoiser)
    del denoiser.__dict__["_t2v_unlearn_adapters"]


def _read_checkpoint(path: str) -> dict[str, Any]:
    """A Lightning checkpoint of :class:`T2VUnlearning`, loaded tensors-only, with one clear error per defect."""
    p = Path(path)
    if not p.exists():
        raise AdapterFileError(
            f"--ckpt {path!r} does not exist. Fix: give a .ckpt written by `unlearn fit` "
            "(trainer.enable_checkpointing or a ModelCheckpoint callback)"
        )
    if p.is_dir():
        raise AdapterFileError(f"--ckpt {path!r} is a folder; give the .ckpt file (an adapters folder needs no export)")
    if p.stat().st_size == 0:
        raise AdapterFileError(
            f"--ckpt {path!r} is empty (0 bytes): the run that wrote it was killed. Fix: use "
            "another checkpoint or rerun the training"
        )
    try:
        ckpt = load_checkpoint_file(p)
    except Exception as e:  # noqa: BLE001 - every reading failure is the same defect for the user
        raise AdapterFileError(
            f"--ckpt {path!r} cannot be read as a tensors-only checkpoint ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:200]}); it is truncated, corrupt, or not a Lightning "
            "checkpoint. Fix: use another checkpoint or rerun the training"
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise AdapterFileError(f"--ckpt {path!r} holds no 'state_dict': not a Lightning checkpoint")
    return ckpt


def backbone_provenance(backbone_name: str, source: str | None) -> dict[str, str | None]:
    """Where a backbone's weights came from, for adapter configs and model cards: ``backbone_source`` (what
    was loaded), ``backbone_hub_id`` and ``backbone_revision`` (the Hub commit, when the weights came from the
    Hugging Face cache: a snapshot folder, or a hub id whose cached ``main`` is read)."""
    hub_id, revision = None, None
    text = str(source or "")
    parts = Path(text).parts
    snapshot = [i for i, p in enumerate(parts) if p == "snapshots" and i > 0 and parts[i - 1].startswith("models--")]
    if snapshot:
        i = snapshot[-1]
        hub_id = parts[i - 1][len("models--") :].replace("--", "/")
        revision = parts[i + 1] if i + 1 < len(parts) else None
    elif text.count("/") == 1 and not text.startswith((".", "/", "~")) and not Path(text).exists():
        hub_id = text
        from huggingface_hub import constants

        ref = Path(constants.HF_HUB_CACHE) / f"models--{text.replace('/', '--')}" / "refs" / "main"
        revision = ref.read_text().strip() if ref.is_file() else None
    elif not text:
        try:
            hub_id = default_hub_id(backbone_name)
        except KeyError:
            hub_id = None
    return {"backbone_source": text or None, "backbone_hub_id": hub_id, "backbone_revision": revision}


def export_adapters(
    ckpt: str,
    out: str,
    format: Literal["t2v-unlearn", "t2vunlearning"] = "t2v-unlearn",
    allow_unfinished: bool = False,
) -> Path:
    """Lightning checkpoint of :class:`T2VUnlearning` → an adapter folder.

    Args:
        ckpt: ``.ckpt`` written by ``unlearn fit`` (adapters only; read tensors-only, never unpickled).
        out: output folder.
        format: ``"t2v-unlearn"``: ``adapters.safetensors`` + ``t2v_adapter_config.json`` (what ``attach_adapters``,
            ``unlearn evaluate`` and ``model.init_adapters`` read); ``"t2vunlearning"``: the authors'
            ``eraser_weights.pt`` + ``eraser_config.json``, which their ``test_cogvideo.py`` / ``test_hunyuan.py``
            read with ``--eraser_path`` (:mod:`.official`; HunyuanVideo adapters must be zero outside the
            single-stream blocks, ``model.adapter_sites: authors``).
        allow_unfinished: export a checkpoint of a run that failed or was interrupted.
    """
    if format not in ("t2v-unlearn", "t2vunlearning"):
        raise InputError(f"export format {format!r}: use 't2v-unlearn' (this package's) or 't2vunlearning' (authors')")
    ckpt_data = _read_checkpoint(ckpt)  # safetensors + JSON, or Lightning's .ckpt weights-only; never a pickle
    require_finished(ckpt, "--ckpt", allow_unfinished)
    hp = ckpt_data.get("hyper_parameters") or {}
    state = checkpoint_adapter_state(ckpt_data["state_dict"])
    if not state:
        raise AdapterFileError(
            f"--ckpt {ckpt!r} holds no adapter weights (keys starting with {CHECKPOINT_PREFIX!r}); "
            "it is not a T2VUnlearning checkpoint (a refusal-vector run exports its own folder)"
        )
    stored = ckpt_data.get("adapter_config")
    if isinstance(stored, dict) and stored.get("dims"):
        config = dict(stored)
    else:  # checkpoints written before the config was stored: widths from the tensors, no site names
        try:
            n = len({k.split(".")[1] for k in state})
            config = {
                "format": FORMAT,
                "backbone": hp.get("backbone", "unknown"),
                "site_names": None,
                "dims": [int(state[f"adapters.{i}.up.weight"].shape[0]) for i in range(n)],
                "inner_dim": int(state["adapters.0.down.weight"].shape[0]),
            }
        except (KeyError, IndexError, ValueError) as e:
            raise AdapterFileError(
                f"--ckpt {ckpt!r}: the adapter weights are incomplete (missing {e}). Fix: use another checkpoint"
            ) from None
    switch = _switch_from(config, state, f"--ckpt {ckpt!r}")
    if format == "t2vunlearning":
        if config.get("site_names") is None:
            raise AdapterFileError(
                f"--ckpt {ckpt!r} records no attention-site names (an older checkpoint); the authors' format names "
                "every site. Fix: export with --format t2v-unlearn"
            )
        return save_official(switch, config.get("backbone", "unknown"), out)
    extra = {k: hp[k] for k in ("eta", "alpha", "beta", "adapter_dim", "mask_threshold") if k in hp}
    if config.get("site_names") is None:
        extra["site_names"] = None  # unknown: check_adapter_sites then compares the count and widths only
    return save_adapters(switch, config.get("backbone", "unknown"), out, extra=extra)

    return 0
