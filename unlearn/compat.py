"""The private framework calls the project makes, in one place, each with the versions it was checked against.

A private API can change in any release. Every such call goes through this module, so that a new torch or
Lightning shows up as one failing test (``tests/test_compat.py``) and one function to adapt, not as a crash in
the middle of a training run:

- ``torch._fused_sdp_choice``: which fused kernel ``scaled_dot_product_attention`` would pick
  (``backbones/attention.py`` computes the concept map from the same kernel's log-sum-exp);
- ``aten._scaled_dot_product_{flash_attention,flash_attention_for_cpu,efficient_attention,cudnn_attention}``:
  the kernels themselves, which return the log-sum-exp the public function drops;
- ``lightning.fabric.utilities.seed._collect_rng_states`` / ``_set_rng_states``: every RNG's state, stored in
  checkpoints so that a resumed run continues the same random stream;
- ``Tensor._version``: the in-place modification counter (the row cache's weights hash is memoized on it);
- LightningCLI's ``_parse_ckpt_path`` / ``_instantiate_trainer`` (overridden in ``unlearn/cli.py``): checked here
  to exist with the signature the override assumes.

:func:`check` raises :class:`CompatError` naming each missing or changed API and the versions this was tested on.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

#: the versions these private calls were last checked against (tests/test_compat.py runs against the installed ones)
TESTED = {"torch": "2.14", "lightning": "2.6"}


class CompatError(RuntimeError):
    """A private framework API this project relies on is missing or changed."""


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# ------------------------------------------------------------------------------------------------ torch attention
def fused_sdp_choice(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None) -> int:
    """The ``SDPBackend`` code ``scaled_dot_product_attention`` picks for these inputs (no dropout, not causal)."""
    return int(torch._fused_sdp_choice(query, key, value, mask, 0.0, False))


def flash_attention_cpu(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, scale: float | None):
    """``(output, lse)`` of the CPU flash kernel."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, attn_mask=mask, scale=scale)


def flash_attention(query: Tensor, key: Tensor, value: Tensor, scale: float | None, is_causal: bool = False):
    """The CUDA flash kernel's outputs (``[0]`` output, ``[1]`` lse)."""
    return torch.ops.aten._scaled_dot_product_flash_attention(query, key, value, 0.0, is_causal, False, scale=scale)


def efficient_attention(query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None, lse: bool, scale):
    """The memory-efficient kernel's outputs (``[0]`` output, ``[1]`` lse when ``lse``)."""
    return torch.ops.aten._scaled_dot_product_efficient_attention(query, key, value, bias, lse, scale=scale)


def cudnn_attention(query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None, scale: float | None):
    """The cuDNN kernel's outputs (``[0]`` output, ``[1]`` lse)."""
    return torch.ops.aten._scaled_dot_product_cudnn_attention(
        query, key, value, bias, True, 0.0, False, False, scale=scale
    )


# ------------------------------------------------------------------------------------------------ RNG states
def collect_rng_states(include_cuda: bool | None = None) -> dict[str, Any]:
    """Every RNG's state (torch, CUDA, numpy, python), as Lightning's seed utilities store them."""
    from lightning.fabric.utilities.seed import _collect_rng_states

    return _collect_rng_states(include_cuda=torch.cuda.is_available() if include_cuda is None else include_cuda)


def set_rng_states(states: dict[str, Any]) -> None:
    from lightning.fabric.utilities.seed import _set_rng_states

    _set_rng_states(states)


# ------------------------------------------------------------------------------------------------ tensors
def tensor_version(tensor: Tensor) -> int:
    """The tensor's in-place modification counter (changes whenever its data is written in place)."""
    return int(tensor._version)


# ------------------------------------------------------------------------------------------------ the check
#: LightningCLI's private methods that unlearn/cli.py overrides, with the parameters the overrides take
LIGHTNING_CLI_OVERRIDES = {"_parse_ckpt_path": ["self"], "_instantiate_trainer": ["self", "config", "callbacks"]}


def check() -> None:
    """Raise :class:`CompatError` naming every private API above that is missing or changed."""
    problems = []
    if not callable(getattr(torch, "_fused_sdp_choice", None)):
        problems.append("torch._fused_sdp_choice")
    for op in (
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    ):
        if not hasattr(torch.ops.aten, op):
            problems.append(f"torch.ops.aten.{op}")
    try:
        from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states  # noqa: F401
    except ImportError:
        problems.append("lightning.fabric.utilities.seed._collect_rng_states/_set_rng_states")
    from lightning.pytorch.cli import LightningCLI

    for name, params in LIGHTNING_CLI_OVERRIDES.items():
        method = getattr(LightningCLI, name, None)
        if method is None or list(inspect.signature(method).parameters) != params:
            problems.append(f"LightningCLI.{name}({', '.join(params[1:])})")
    if not isinstance(getattr(torch.zeros(1), "_version", None), int):
        problems.append("Tensor._version")
    if problems:
        raise CompatError(
            f"private APIs changed: {', '.join(problems)} (installed torch {_version('torch')}, lightning "
            f"{_version('lightning')}; checked against torch {TESTED['torch']}, lightning {TESTED['lightning']}). "
            "Fix: adapt unlearn/compat.py, or install the tested versions"
        )
