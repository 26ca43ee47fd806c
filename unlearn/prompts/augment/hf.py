"""Augmentation with a local causal language model through ``transformers``.

The paper used an uncensored Llama-3-8B (Orenguteng/Llama-3-8B-Lexi-Uncensored) prompted few-shot; any
``AutoModelForCausalLM`` works: a hub id (downloaded by transformers on first use) or a local folder written
by ``save_pretrained``. With a tokenizer that has a chat template the request is sent as chat messages
(system instruction, one few-shot exchange, the request); otherwise as a plain few-shot text ending in
``"1."``. Sampling is seeded (``torch.manual_seed`` inside ``torch.random.fork_rng``, so the caller's random
state is untouched); the answer is parsed as a numbered/bulleted list.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .base import (
    AugmentationError,
    AugmentationSource,
    build_messages,
    build_plain_prompt,
    instruction_template,
    parse_prompt_list,
)
from .styles import get_style

__all__ = ["TransformersSource"]


class TransformersSource(AugmentationSource):
    """Prompts from a local causal LM.

    Args:
        model: hub id, local folder, or an already loaded ``PreTrainedModel``.
        tokenizer: hub id/folder or tokenizer object; default: the same as ``model`` (must be given when
            ``model`` is an object without ``name_or_path``).
        device: ``"cpu"``, ``"cuda"``, ...; default: CUDA when available.
        dtype: ``"bfloat16"``, ``"float16"``, ``"float32"`` or ``None`` (the checkpoint's).
        max_new_tokens: generation budget per call; default: ``prompts_per_call x style.tokens_per_prompt + 32``.
        temperature, top_p: sampling parameters.
        prompts_per_call: a request for more prompts is split into calls of at most this many.
        use_chat_template: ``None`` = use it when the tokenizer has one.
        local_files_only: never touch the network (transformers' flag).
        generate_kwargs: extra keyword arguments for ``model.generate`` (e.g. ``repetition_penalty``).
    """

    kind = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        max_new_tokens: int | None = None,
        temperature: float = 0.9,
        top_p: float = 0.95,
        prompts_per_call: int = 10,
        use_chat_template: bool | None = None,
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        generate_kwargs: dict | None = None,
    ):
        super().__init__()
        self._model_spec = model
        self._tok_spec = tokenizer
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.prompts_per_call = max(1, int(prompts_per_call))
        self.use_chat_template = use_chat_template
        self.local_files_only = local_files_only
        self.trust_remote_code = trust_remote_code
        self.generate_kwargs = dict(generate_kwargs or {})
        self._model = None if isinstance(model, (str, os.PathLike)) else model
        self._tokenizer = None if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)) else tokenizer
        #: the decoded text of the last generation (for debugging)
        self.last_raw_output: str | None = None

    @property
    def model_id(self) -> str:
        spec = self._model_spec
        if isinstance(spec, (str, os.PathLike)):
            return str(spec)
        return str(getattr(spec, "name_or_path", "") or type(spec).__name__)

    def instructions(self, style: str) -> str:
        mode = "plain" if self.use_chat_template is False else "chat-if-available"
        gen = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "prompts_per_call": self.prompts_per_call,
            "max_new_tokens": self.max_new_tokens,
            "mode": mode,
            **{k: repr(v) for k, v in sorted(self.generate_kwargs.items())},
        }
        return instruction_template(get_style(style)) + f"\n---\n{gen}"

    # -- loading ------------------------------------------------------------------------------------------------
    def _load(self):
        if self._model is not None and self._tokenizer is not None:
            return self._model, self._tokenizer
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:  # pragma: no cover - transformers is a dependency
            raise AugmentationError(f"the transformers source needs torch and transformers ({e})") from e
        tok_spec = self._tok_spec if self._tok_spec is not None else self._model_spec
        if self._tokenizer is None:
            if not isinstance(tok_spec, (str, os.PathLike)):
                raise AugmentationError(
                    "give tokenizer= (a path, hub id or tokenizer) when model is an object without name_or_path"
                )
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(
                    str(tok_spec), local_files_only=self.local_files_only, trust_remote_code=self.trust_remote_code
                )
            except (OSError, ValueError) as e:
                raise AugmentationError(
                    f"cannot load the tokenizer from {str(tok_spec)!r}: {e}. Fix: pass a local folder written by "
                    "save_pretrained or a hub id reachable from this machine"
                ) from e
        if self._model is None:
            kwargs: dict[str, Any] = {
                "local_files_only": self.local_files_only,
                "trust_remote_code": self.trust_remote_code,
            }
            if self.dtype:
                kwargs["dtype"] = getattr(torch, self.dtype) if isinstance(self.dtype, str) else self.dtype
            try:
                self._model = AutoModelForCausalLM.from_pretrained(str(self._model_spec), **kwargs)
            except (OSError, ValueError) as e:
                raise AugmentationError(
                    f"cannot load a causal LM from {str(self._model_spec)!r}: {e}. Fix: pass a local folder "
                    "written by save_pretrained or a hub id reachable from this machine"
                ) from e
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model.to(device)
        self._model.eval()
        return self._model, self._tokenizer

    # -- generation ---------------------------------------------------------------------------------------------
    def _encode(self, tok, concept, n, style, synonyms):
        chat = self.use_chat_template
        if chat is None:
            chat = bool(getattr(tok, "chat_template", None))
        if chat:
            messages = build_messages(concept, n, style, synonyms)
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return text, tok(text, return_tensors="pt", add_special_tokens=False), ""
        text = build_plain_prompt(concept, n, style, synonyms)
        return text, tok(text, return_tensors="pt"), "1."

    def _generate_once(self, concept: str, n: int, style: str, seed: int, synonyms: Sequence[str]) -> list[str]:
        import torch

        model, tok = self._load()
        _, enc, prefix = self._encode(tok, concept, n, style, synonyms)
        device = next(model.parameters()).device
        enc = {k: v.to(device) for k, v in enc.items()}
        st = get_style(style)
        budget = self.max_new_tokens or (n * st.tokens_per_prompt + 32)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        kwargs = dict(do_sample=True, temperature=self.temperature, top_p=self.top_p, max_new_tokens=budget)
        if pad is not None:
            kwargs["pad_token_id"] = pad
        kwargs.update(self.generate_kwargs)
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            if device.type == "cuda":
                torch.cuda.manual_seed_all(seed)
            out = model.generate(**enc, **kwargs)
        new_tokens = out[0, enc["input_ids"].shape[1] :]
        text = prefix + tok.decode(new_tokens, skip_special_tokens=True)
        self.last_raw_output = text
        return parse_prompt_list(text)

    def generate(self, concept: str, n: int, style: str, seed: int, synonyms: Sequence[str] = ()) -> list[str]:
        get_style(style)  # fail early on an unknown style
        out: list[str] = []
        chunks = [min(self.prompts_per_call, n - i) for i in range(0, n, self.prompts_per_call)]
        for call, k in enumerate(chunks):
            self.calls += 1
            # everything parsed is returned (a chunk may yield more or fewer than k); the augmenter filters
            out.extend(self._generate_once(concept, k, style, seed + 1009 * call, synonyms))
        return out
