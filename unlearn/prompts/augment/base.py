"""The interface every augmentation source implements, the shared instructions, and list parsing."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

from .styles import PromptStyle, get_style

__all__ = [
    "AugmentationError",
    "EndpointError",
    "AugmentationSource",
    "parse_prompt_list",
    "build_messages",
    "build_plain_prompt",
    "instruction_template",
    "concept_terms",
]


class AugmentationError(RuntimeError):
    """A source could not produce the prompts asked for (too few valid prompts, a model that will not load)."""


class EndpointError(AugmentationError):
    """An OpenAI-compatible endpoint was unreachable, answered with an error status, or sent malformed JSON."""


def concept_terms(concept: str, synonyms: Sequence[str] = ()) -> list[str]:
    """The concept and its synonyms, stripped, without empty or repeated entries (case-insensitive)."""
    out: list[str] = []
    seen: set[str] = set()
    for t in [concept, *synonyms]:
        t = " ".join(str(t).split())
        if t and t.casefold() not in seen:
            seen.add(t.casefold())
            out.append(t)
    return out


class AugmentationSource(ABC):
    """Writes prompts that place a concept in rich context, in a backbone's prompt style.

    Subclasses set ``kind`` and implement :meth:`generate`. ``model_id`` and :meth:`instructions` identify
    what produced the prompts; :class:`~unlearn.prompts.augment.PromptAugmenter` hashes them into its cache key, so
    changing the model or the instructions never serves stale prompts. ``calls`` counts the requests that
    reached the model or grammar (one per chunk of prompts; tests and the augmenter's statistics read it).
    """

    kind: str = "base"

    def __init__(self) -> None:
        self.calls = 0

    @property
    def model_id(self) -> str:
        return type(self).__name__

    def instructions(self, style: str) -> str:
        """The exact instruction text (before the concept is filled in) this source uses for ``style``."""
        return instruction_template(get_style(style))

    @abstractmethod
    def generate(self, concept: str, n: int, style: str, seed: int, synonyms: Sequence[str] = ()) -> list[str]:
        """Up to ``n`` prompts (maybe fewer, maybe some without the concept: the augmenter checks)."""


# ----------------------------------------------------------------------------------------------------------------
# instructions shared by the language-model sources

_SYSTEM = (
    "You write prompts for a text-to-video generation model. {description} Every prompt must explicitly "
    "mention the requested concept using the exact words given. Write each prompt on its own single line, "
    "numbered 1., 2., 3. and so on. Output only the numbered list, nothing else."
)
_ASK = "Write {n} different prompts about: {concept}."
_ASK_SYNONYMS = ' Each prompt must contain the words "{concept}" or one of: {synonyms}.'
_ASK_EXACT = ' Each prompt must contain the words "{concept}".'


def instruction_template(style: PromptStyle) -> str:
    """System text + few-shot turns + request template, unfilled; the cache key covers this text."""
    shots = "\n".join(f"{i}. {e}" for i, e in enumerate(style.examples, start=1))
    return "\n---\n".join(
        [
            _SYSTEM.format(description=style.description),
            _ASK.format(n=len(style.examples), concept=style.example_concept)
            + _ASK_EXACT.format(concept=style.example_concept),
            shots,
            _ASK + _ASK_SYNONYMS,
        ]
    )


def _ask(concept: str, n: int, synonyms: Sequence[str]) -> str:
    text = _ASK.format(n=n, concept=concept)
    others = [s for s in concept_terms(concept, synonyms)[1:]]
    if others:
        return text + _ASK_SYNONYMS.format(concept=concept, synonyms=", ".join(f'"{s}"' for s in others))
    return text + _ASK_EXACT.format(concept=concept)


def build_messages(concept: str, n: int, style: str | PromptStyle, synonyms: Sequence[str] = ()) -> list[dict]:
    """Chat messages: system instruction, one few-shot exchange on the style's example concept, the request."""
    st = style if isinstance(style, PromptStyle) else get_style(style)
    shots = "\n".join(f"{i}. {e}" for i, e in enumerate(st.examples, start=1))
    return [
        {"role": "system", "content": _SYSTEM.format(description=st.description)},
        {"role": "user", "content": _ask(st.example_concept, len(st.examples), ())},
        {"role": "assistant", "content": shots},
        {"role": "user", "content": _ask(concept, n, synonyms)},
    ]


def build_plain_prompt(concept: str, n: int, style: str | PromptStyle, synonyms: Sequence[str] = ()) -> str:
    """Few-shot text for a model without a chat template; it ends with ``"1."`` for the model to continue."""
    st = style if isinstance(style, PromptStyle) else get_style(style)
    shots = "\n".join(f"{i}. {e}" for i, e in enumerate(st.examples, start=1))
    return (
        _SYSTEM.format(description=st.description)
        + "\n\n"
        + "Request: "
        + _ask(st.example_concept, len(st.examples), ())
        + "\nPrompts:\n"
        + shots
        + "\n\n"
        + "Request: "
        + _ask(concept, n, synonyms)
        + "\nPrompts:\n1."
    )


# ----------------------------------------------------------------------------------------------------------------
# parsing a model's answer

_ITEM = re.compile(r"^\s*(?:\(?\d{1,3}[.):]|[-*\u2022])\s+(.*)$")
_PREAMBLE = re.compile(r"^(here|sure|certainly|okay|ok)\b.*:\s*$", re.IGNORECASE)


def _clean(item: str) -> str:
    item = " ".join(item.split())
    item = item.replace("**", "")  # markdown bold
    item = re.sub(r"^prompt\s*\d*\s*:\s*", "", item, flags=re.IGNORECASE)
    if len(item) >= 2 and item[0] == item[-1] and item[0] in "\"'\u201c\u201d":
        item = item[1:-1].strip()
    item = item.strip("\u201c\u201d").strip()
    return item


def parse_prompt_list(text: str) -> list[str]:
    """Prompts from a model's answer: numbered (``1.``, ``2)``, ``(3)``) or bulleted (``-``, ``*``, ``•``) items.

    When the answer has numbered/bulleted lines, text before the first item is dropped (a preamble such as
    "Here are 5 prompts:") and unnumbered lines continue the previous item (a wrapped paragraph). Without
    any, every non-empty line is one prompt (except a "Here are ...:" preamble). Surrounding quotes and
    "Prompt 3:" labels are removed; empty items are dropped.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    has_items = any(_ITEM.match(line) for line in lines)
    items: list[str] = []
    if has_items:
        current: list[str] | None = None
        for line in lines:
            m = _ITEM.match(line)
            if m:
                if current is not None:
                    items.append(" ".join(current))
                current = [m.group(1)]
            elif line.strip() and current is not None:
                current.append(line.strip())
            elif not line.strip() and current is not None:
                items.append(" ".join(current))
                current = None
        if current is not None:
            items.append(" ".join(current))
    else:
        items = [line for line in lines if line.strip() and not _PREAMBLE.match(line.strip())]
    return [c for c in (_clean(i) for i in items) if c]
