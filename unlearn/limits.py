"""Sizes checked before work starts (issue #27, point 7): a video size that no backbone makes, or that does
not fit this machine's memory, is refused with one line naming the keys, instead of running until killed.

* :data:`MAX_FRAMES`: twice the longest default of the supported backbones (HunyuanVideo's 129 frames,
  ``unlearn/backbones/hunyuanvideo.py`` ``FULL_DEFAULTS``; CogVideoX 49, Wan 81, ZeroScope 24).
* one decoded float32 RGB video (``frames × height × width × 3 × 4`` bytes: what sampling decodes and the
  sample/evaluation callbacks hold) must fit in a quarter of the machine's physical memory.
"""

from __future__ import annotations

import os

from unlearn.checks import InputError

#: the most frames one generated video may have (2 × HunyuanVideo's default of 129)
MAX_FRAMES = 258


def physical_memory() -> int | None:
    """Bytes of physical memory (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_video_size(prefix: str, num_frames: int | None, height: int | None, width: int | None) -> None:
    """Raise :class:`InputError` when ``num_frames`` exceeds :data:`MAX_FRAMES`, or one decoded video of
    ``num_frames × height × width`` (float32 RGB) needs more than a quarter of the physical memory. Unset
    values (the backbone's defaults) pass."""
    if isinstance(num_frames, int) and not isinstance(num_frames, bool) and num_frames > MAX_FRAMES:
        raise InputError(
            f"{prefix}.num_frames={num_frames} is more than any supported backbone generates (at most {MAX_FRAMES}; "
            "defaults: CogVideoX 49, HunyuanVideo 129, Wan 81, ZeroScope 24). Fix: leave it unset for the "
            "backbone's default"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (num_frames, height, width)):
        return
    need = num_frames * height * width * 3 * 4
    memory = physical_memory()
    if memory and need > memory // 4:
        raise InputError(
            f"{prefix}.num_frames × height × width = {num_frames} × {height} × {width}: one decoded video is "
            f"{need / 2**30:.1f} GiB, more than a quarter of this machine's {memory / 2**30:.0f} GiB of memory. "
            "Fix: fewer frames or a smaller size (unset: the backbone's default)"
        )
