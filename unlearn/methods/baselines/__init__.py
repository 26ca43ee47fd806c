"""Inference-time baselines evaluated beside the methods: negative prompting and SAFREE."""

from .negprompt import DISTILLED_TRUE_CFG_SCALE, NegativePrompting, negative_guidance_scale
from .safree import SAFREE, LatentReattention, TriggerDetection

__all__ = [
    "DISTILLED_TRUE_CFG_SCALE",
    "LatentReattention",
    "NegativePrompting",
    "SAFREE",
    "TriggerDetection",
    "negative_guidance_scale",
]
