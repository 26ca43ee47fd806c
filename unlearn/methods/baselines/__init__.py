"""Inference-time baselines evaluated beside the methods: negative prompting, SAFREE and VideoEraser."""

from .negprompt import DISTILLED_TRUE_CFG_SCALE, NegativePrompting, negative_guidance_scale
from .safree import SAFREE, LatentReattention, TriggerDetection
from .videoeraser import VideoEraser

__all__ = [
    "DISTILLED_TRUE_CFG_SCALE",
    "LatentReattention",
    "NegativePrompting",
    "SAFREE",
    "TriggerDetection",
    "VideoEraser",
    "negative_guidance_scale",
]
