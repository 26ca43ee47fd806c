"""Adapters as files: ``adapters.safetensors`` + ``adapter_config.json``, and attaching them to a stock
diffusers pipeline, from a folder or a Hugging Face Hub repository (``unlearn push`` uploads one).

>>> from diffusers import CogVideoXPipeline                          # doctest: +SKIP
>>> pipe = CogVideoXPipeline.from_pretrained("THUDM/CogVideoX-2b")   # doctest: +SKIP
>>> attach_adapters(pipe, "runs/cogx2b_nudity/adapters")             # doctest: +SKIP
>>> attach_adapters(pipe, "user/cogx2b-no-nudity")   # or from the Hub  # doctest: +SKIP
>>> video = pipe("a prompt").frames[0]   # the concept is erased     # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from backbones import backbone_class, default_hub_id
from unlearn.io import load_checkpoint_file

from .adapters import AdapterController

WEIGHTS_NAME = "adapters.safetensors"
CONFIG_NAME = "adapter_config.json"
FORMAT = "t2v-unlearn-adapters/1"


def save_adapters(controller: AdapterController, backbone_name: str, path: str | os.PathLike,
                  extra: dict[str, Any] | None = None) -> Path:
    """Write the adapters and their config into folder ``path`` atomically (a reader never sees a mix of
    old and new files, and a crash leaves the previous folder intact)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in controller.state_dict().items()}
        save_file(state, tmp / WEIGHTS_NAME)
        config = {
            "format": FORMAT,
            "backbone": backbone_name,
            "site_names": controller.site_names,
            "dims": [a.up.out_features for a in controller.adapters],
            "inner_dim": controller.inner_dim,
            **(extra or {}),
        }
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_adapter_config(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    cfg_file, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
    if not cfg_file.is_file() or not weights.is_file():
        raise FileNotFoundError(
            f"{str(path)!r} is not an adapter folder: it needs {CONFIG_NAME} and {WEIGHTS_NAME} "
            "(written by the AdapterCheckpoint callback or `unlearn export`)."
        )
    config = json.loads(cfg_file.read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{cfg_file}: unknown adapter format {config.get('format')!r}; expected {FORMAT!r}")
    return config


def load_adapters(path: str | os.PathLike) -> tuple[AdapterController, dict[str, Any]]:
    """Rebuild the :class:`AdapterController` saved in ``path``; returns it with its config."""
    config = read_adapter_config(path)
    controller = AdapterController(config["dims"], config["inner_dim"], config["site_names"])
    controller.load_state_dict(load_file(Path(path) / WEIGHTS_NAME))
    return controller, config


def load_adapter_weights(controller: AdapterController, path: str | os.PathLike, expect_backbone: str | None = None) -> None:
    """Load saved adapter weights into an existing controller (resuming from exported adapters)."""
    config = read_adapter_config(path)
    if expect_backbone and config["backbone"] != expect_backbone:
        raise ValueError(f"adapters in {path} were trained on {config['backbone']!r}, not {expect_backbone!r}")
    if config["site_names"] != controller.site_names:
        raise ValueError(f"adapters in {path} cover sites {config['site_names']}, the model has {controller.site_names}")
    controller.load_state_dict(load_file(Path(path) / WEIGHTS_NAME))


def resolve_adapters(path_or_repo: str | os.PathLike, revision: str | None = None,
                     cache_dir: str | os.PathLike | None = None) -> Path:
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

    folder = snapshot_download(text, revision=revision, cache_dir=cache_dir,
                               allow_patterns=[WEIGHTS_NAME, CONFIG_NAME, "README.md"])
    return Path(folder)


def attach_adapters(pipeline_or_denoiser: Any, path_or_repo: str | os.PathLike, scale: float = 1.0,
                    revision: str | None = None, cache_dir: str | os.PathLike | None = None) -> AdapterController:
    """Install saved adapters on a stock diffusers pipeline (or its transformer/UNet) in place.

    ``path_or_repo``: an adapter folder, or a Hub repository id (``user/name``, see :func:`resolve_adapters`;
    ``revision`` pins a commit). The adapters are applied by forward hooks on the attention modules' outputs:
    the pipeline keeps its attention processors, so any attention backend set on it keeps working. The
    pipeline then generates with the concept erased; ``controller.scale = 0`` (or ``controller.disabled()``)
    gives the original model back exactly. Returns the controller.
    """
    controller, config = load_adapters(resolve_adapters(path_or_repo, revision=revision, cache_dir=cache_dir))
    denoiser = pipeline_or_denoiser
    for attr in ("transformer", "unet"):
        if getattr(pipeline_or_denoiser, attr, None) is not None:
            denoiser = getattr(pipeline_or_denoiser, attr)
            break
    param = next(denoiser.parameters())
    controller.to(param.device)
    controller.scale = float(scale)
    backbone_class(config["backbone"]).install_adapter_hooks(denoiser, controller)
    # keep a reference so the controller lives as long as the model
    denoiser._t2v_unlearn_adapters = controller
    return controller


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
        hub_id = parts[i - 1][len("models--"):].replace("--", "/")
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


def export_main(argv: list[str] | None = None) -> int:
    """``unlearn export --ckpt run.ckpt --out adapters/``: Lightning checkpoint → safetensors + JSON."""
    import argparse

    parser = argparse.ArgumentParser(prog="unlearn export", description=export_main.__doc__)
    parser.add_argument("--ckpt", required=True, help="Lightning .ckpt written by `unlearn fit` (adapters only)")
    parser.add_argument("--out", required=True, help="output folder for adapters.safetensors + adapter_config.json")
    args = parser.parse_args(argv)
    ckpt = load_checkpoint_file(args.ckpt)  # safetensors + JSON, or Lightning's .ckpt weights-only; never a pickle
    hp = ckpt.get("hyper_parameters", {})
    state = {k[len("controller."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("controller.")}
    if not state:
        raise SystemExit(f"{args.ckpt} holds no adapter weights (keys starting with 'controller.')")
    n = len({k.split(".")[1] for k in state})
    dims = [state[f"adapters.{i}.up.weight"].shape[0] for i in range(n)]
    inner = state["adapters.0.down.weight"].shape[0]
    controller = AdapterController(dims, inner, hp.get("site_names") or [str(i) for i in range(n)])
    controller.load_state_dict(state)
    extra = {k: hp[k] for k in ("eta", "alpha", "beta", "adapter_dim") if k in hp}
    save_adapters(controller, hp.get("backbone", "unknown"), args.out, extra=extra)
    print(f"wrote {args.out}/{WEIGHTS_NAME} and {CONFIG_NAME}")
    return 0
