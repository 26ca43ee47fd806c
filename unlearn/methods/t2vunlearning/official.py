"""The T2VUnlearning authors' adapter format: ``eraser_weights.pt`` + ``eraser_config.json``, read and written.

Their release (``TobisawaMisakii/T2VUnlearning``, ``README0.md``: "[x] checkpoint, [x] inference") ships nudity
adapters for CogVideoX-2B/5B and HunyuanVideo in this layout, written by ``save_cogvideo_eraser_from_transformer``
/ ``save_hunyuan_eraser_from_transformer`` (``receler/erasers/cogvideo_erasers.py:15-40``,
``hunyuan_erasers.py:12-37``):

- ``eraser_config.json``: ``{"eraser_type": "adapter", "eraser_rank": 128}``;
- ``eraser_weights.pt``: ``torch.save`` of ``{"<site>.adapter": AdapterEraser.state_dict()}``, each holding
  ``down.weight [rank, dim]``, ``down.bias [rank]``, ``up.weight [dim, rank]``, ``up.bias [dim]``
  (``receler/erasers/utils.py:304-320``: ``up(GELU(down(h)))``).

Their injection (``inject_eraser``) wraps CogVideoX's ``transformer_blocks.<i>.attn1`` (``cogvideo_erasers.py:76-85``)
and HunyuanVideo's ``single_transformer_blocks.<i>.attn`` only (``hunyuan_erasers.py:59-68``), and adds the adapter
to the attention's *video* output, ``hidden_states + adapter(hidden_states)`` (``cogvideo_erasers.py:119-120``,
``hunyuan_erasers.py:99-100``): the place, width, activation and switch of this package's adapters
(:class:`~unlearn.methods.t2vunlearning.adapters.VideoTokenAdapter`), so their weights load here unchanged; the
dual-stream HunyuanVideo sites they do not cover get zero adapters (output exactly 0).

The ``.pt`` file is a pickle: it is read with ``torch.load(weights_only=True)`` (tensors and plain containers only,
no code runs) and every tensor is checked (names, widths, the rank of the config, finite values) before use.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from unlearn.checks import InputError
from unlearn.io import atomic_folder

from .adapters import AdapterSwitch

OFFICIAL_WEIGHTS = "eraser_weights.pt"
OFFICIAL_CONFIG = "eraser_config.json"
#: where the authors' injection puts adapters, per backbone family (a site-name prefix; None: every site)
AUTHOR_SITE_PREFIX: dict[str, str | None] = {"cogvideox": None, "hunyuanvideo": "single_transformer_blocks."}
_PARAMS = ("down.weight", "down.bias", "up.weight", "up.bias")


class OfficialFormatError(InputError):
    """A folder in the authors' adapter format that is malformed or does not fit the model."""


def is_official_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder in the authors' format (it holds ``eraser_weights.pt`` or its config)."""
    p = Path(path)
    return p.is_dir() and ((p / OFFICIAL_WEIGHTS).exists() or (p / OFFICIAL_CONFIG).exists())


def author_sites(backbone: str, site_names: Sequence[str]) -> list[int]:
    """Indices of the attention sites the authors' injection covers on ``backbone`` (a registry name)."""
    prefix = AUTHOR_SITE_PREFIX["hunyuanvideo"] if "hunyuanvideo" in backbone else None
    return [i for i, n in enumerate(site_names) if prefix is None or n.startswith(prefix)]


def infer_backbone(state: Mapping[str, Mapping[str, torch.Tensor]]) -> str:
    """The backbone an authors'-format state belongs to, from its keys and widths (full-size models only)."""
    keys = list(state)
    width = int(next(iter(state.values()))["up.weight"].shape[0]) if keys else 0
    if any(k.startswith("single_transformer_blocks.") for k in keys):
        return "hunyuanvideo"
    if keys and all(k.startswith("transformer_blocks.") and k.endswith(".attn1") for k in keys):
        # CogVideoX's layout; the width tells the published models apart (other widths: a model of unknown size)
        return {1920: "cogvideox-2b", 3072: "cogvideox-5b"}.get(width, "unknown")
    raise OfficialFormatError(
        f"cannot tell the backbone of these authors'-format adapters (sites {keys[:2]}..., width {width}). "
        "Fix: name it (backbone=... / the evaluation row's backbone)"
    )


def read_official(path: str | os.PathLike) -> tuple[dict[str, dict[str, torch.Tensor]], int]:
    """The per-site adapter weights (``{site_name: {down.weight, ...}}``, float32) and the rank of an authors'
    folder, each part checked with one clear error per problem."""
    folder = Path(path)
    cfg_file, weights = folder / OFFICIAL_CONFIG, folder / OFFICIAL_WEIGHTS
    for f in (cfg_file, weights):
        if not f.is_file():
            raise OfficialFormatError(
                f"{str(folder)!r} lacks {f.name}: an authors'-format folder holds {OFFICIAL_WEIGHTS} and "
                f"{OFFICIAL_CONFIG} (their release: README0.md of TobisawaMisakii/T2VUnlearning)"
            )
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise OfficialFormatError(f"{cfg_file}: not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("eraser_type") != "adapter":
        found = config.get("eraser_type") if isinstance(config, dict) else type(config).__name__
        raise OfficialFormatError(f"{cfg_file}: eraser_type {found!r}; only 'adapter' erasers exist in their code")
    rank = config.get("eraser_rank")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise OfficialFormatError(f"{cfg_file}: eraser_rank must be a positive integer; got {rank!r}")
    try:
        raw = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure: the file is not a tensors-only checkpoint
        raise OfficialFormatError(
            f"{weights}: cannot be read with torch.load(weights_only=True) ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:200]}); it is truncated, corrupt, or holds more than tensors"
        ) from None
    if not isinstance(raw, Mapping) or not raw:
        raise OfficialFormatError(
            f"{weights}: expected a dict {{'<site>.adapter': state_dict}}; got {type(raw).__name__}"
        )
    state: dict[str, dict[str, torch.Tensor]] = {}
    for key, sd in raw.items():
        if not isinstance(key, str) or not key.endswith(".adapter"):
            raise OfficialFormatError(f"{weights}: key {key!r} is not '<attention module>.adapter'")
        if not isinstance(sd, Mapping) or set(sd) != set(_PARAMS):
            got = sorted(sd) if isinstance(sd, Mapping) else type(sd).__name__
            raise OfficialFormatError(f"{weights}: {key} holds {got}; an AdapterEraser holds {list(_PARAMS)}")
        t = {k: v for k, v in sd.items()}
        if not all(isinstance(v, torch.Tensor) and v.is_floating_point() for v in t.values()):
            raise OfficialFormatError(f"{weights}: {key} holds a non-floating-point entry")
        dim = t["up.weight"].shape[0] if t["up.weight"].dim() == 2 else -1
        shapes = {k: tuple(v.shape) for k, v in t.items()}
        want = {"down.weight": (rank, dim), "down.bias": (rank,), "up.weight": (dim, rank), "up.bias": (dim,)}
        if dim < 1 or shapes != want:
            raise OfficialFormatError(
                f"{weights}: {key} has shapes {shapes}; with eraser_rank {rank} from {OFFICIAL_CONFIG} an adapter of "
                f"width {dim} needs {want}"
            )
        bad = [k for k, v in t.items() if not torch.isfinite(v).all()]
        if bad:
            raise OfficialFormatError(f"{weights}: {key} holds NaN or infinite values in {bad}")
        state[key[: -len(".adapter")]] = {k: v.detach().to(torch.float32).contiguous() for k, v in t.items()}
    return state, rank


def official_to_switch(
    state: Mapping[str, Mapping[str, torch.Tensor]],
    rank: int,
    backbone: str,
    site_names: Sequence[str],
    dims: Sequence[int],
    where: str = "the adapters",
) -> AdapterSwitch:
    """An :class:`AdapterSwitch` over the model's sites holding the authors' adapters (zero where their
    injection puts none). Sites missing from the file, sites the model lacks and widths that differ are errors."""
    covered = author_sites(backbone, site_names)
    expected = {site_names[i] for i in covered}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise OfficialFormatError(
            f"{where} do not cover the sites their injection uses on {backbone}: missing {missing[:3]}"
            f"{' ...' if len(missing) > 3 else ''}, unexpected {unexpected[:3]}{' ...' if len(unexpected) > 3 else ''}"
            f" ({len(expected)} expected). Fix: use adapters released for {backbone}"
        )
    wrong = [
        f"{site_names[i]}: file {state[site_names[i]]['up.weight'].shape[0]}, model {dims[i]}"
        for i in covered
        if state[site_names[i]]["up.weight"].shape[0] != dims[i]
    ]
    if wrong:
        raise OfficialFormatError(
            f"{where} do not fit {backbone}: adapter width differs at {len(wrong)} sites, e.g. {wrong[0]} "
            "(CogVideoX-2B adapters are 1920 wide, CogVideoX-5B 3072)"
        )
    switch = AdapterSwitch(list(dims), rank, list(site_names))
    with torch.no_grad():
        for p in switch.parameters():
            p.zero_()
        for i in covered:
            adapter, sd = switch.adapters[i], state[site_names[i]]
            adapter.load_state_dict(dict(sd))
    return switch


def load_official(
    path: str | os.PathLike,
    backbone: str | None = None,
    site_names: Sequence[str] | None = None,
    dims: Sequence[int] | None = None,
) -> tuple[AdapterSwitch, dict[str, Any]]:
    """Read an authors'-format folder into a switch over ``site_names``/``dims`` (the model's sites; None: the
    sites their file names, enough for CogVideoX) and an ``adapter_config.json``-like config."""
    state, rank = read_official(path)
    backbone = backbone or infer_backbone(state)
    if site_names is None:
        if backbone.startswith("hunyuanvideo"):
            raise OfficialFormatError(
                f"{path}: HunyuanVideo adapters in the authors' format cover the single-stream blocks only; loading "
                "them needs the model's attention sites (attach_adapters / the evaluation rows pass them)"
            )
        site_names = sorted(state, key=lambda n: int(n.split(".")[1]))
        dims = [int(state[n]["up.weight"].shape[0]) for n in site_names]
    if dims is None:
        raise ValueError("load_official: give dims with site_names")
    switch = official_to_switch(state, rank, backbone, site_names, dims, where=f"the adapters in {path}")
    config = {
        "backbone": backbone,
        "site_names": list(site_names),
        "dims": list(dims),
        "inner_dim": rank,
        "source_format": "t2vunlearning",
    }
    return switch, config


def switch_to_official(switch: AdapterSwitch, backbone: str) -> dict[str, dict[str, torch.Tensor]]:
    """The authors' ``{'<site>.adapter': state_dict}`` of ``switch``. Adapters at sites their injection does
    not cover must be exactly zero (their code has no place for them)."""
    covered = set(author_sites(backbone, switch.site_names))
    out: dict[str, dict[str, torch.Tensor]] = {}
    for i, (name, adapter) in enumerate(zip(switch.site_names, switch.adapters, strict=True)):
        sd = {k: v.detach().to("cpu").contiguous() for k, v in adapter.state_dict().items()}
        if i in covered:
            out[f"{name}.adapter"] = sd
        elif bool(sd["up.weight"].any()) or bool(sd["up.bias"].any()):
            norm = math.sqrt(float(sd["up.weight"].float().square().sum() + sd["up.bias"].float().square().sum()))
            raise OfficialFormatError(
                f"the adapter at {name} is non-zero (Up norm {norm:.3g}), but the authors' injection has no adapter "
                f"there ({backbone}: {AUTHOR_SITE_PREFIX.get('hunyuanvideo')}* only). Fix: train with "
                "model.adapter_sites: authors, or keep this package's format"
            )
    return out


def save_official(switch: AdapterSwitch, backbone: str, path: str | os.PathLike) -> Path:
    """Write ``eraser_weights.pt`` + ``eraser_config.json`` (their ``test_cogvideo.py`` / ``test_hunyuan.py``
    read it with ``--eraser_path``) atomically. The ``.pt`` holds tensors and dicts only."""
    state = switch_to_official(switch, backbone)
    path = Path(path)
    with atomic_folder(path) as tmp:
        torch.save(state, tmp / OFFICIAL_WEIGHTS)
        (tmp / OFFICIAL_CONFIG).write_text(
            json.dumps({"eraser_type": "adapter", "eraser_rank": int(switch.inner_dim)}, indent=4)
        )
    return path
