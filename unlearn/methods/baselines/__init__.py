"""Inference-time baselines evaluated beside the methods: negative prompting, SAFREE and VideoEraser."""

from .keywords import AUTHORS_CONCEPT_KEYWORDS, safree_keywords
from .negprompt import DISTILLED_EMBEDDED_GUIDANCE, DISTILLED_TRUE_CFG_SCALE, NegativePrompting, negative_guidance_scale
from .safree import SAFREE, LatentReattention, TriggerDetection
from .videoeraser import VideoEraser

__all__ = [
    "AUTHORS_CONCEPT_KEYWORDS",
    "DISTILLED_EMBEDDED_GUIDANCE",
    "DISTILLED_TRUE_CFG_SCALE",
    "LatentReattention",
    "NegativePrompting",
    "SAFREE",
    "TriggerDetection",
    "VideoEraser",
    "negative_guidance_scale",
    "safree_keywords",
]
