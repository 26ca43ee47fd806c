"""SAFREE (Yoon et al., ICLR 2025), training-free, as its authors run it on video.

Read from the authors' CogVideoX pipeline (jaehong31/SAFREE, ``cogvideox/cogvideox_pipeline.py``) and their
image pipeline (``models/modified_stable_diffusion_pipeline.py``); every part is switchable:

1. **Toxic subspace.** Each concept keyword is encoded alone; its *summary vector* (below) is one column of
   ``C``; ``P_c`` projects onto span(C).
2. **Trigger tokens.** Each real token of the prompt (not template, special or padding tokens) is masked in
   turn — replaced by the tokenizer's token id 0, as the authors do (T5's and the toy world's ``<pad>``) — and
   the masked prompt is re-encoded; ``d_i = ‖(I − P_c) e_i‖`` is the distance of masked prompt ``i``'s summary
   ``e_i`` to the toxic subspace. Token ``i`` is a trigger when ``d_i ≥ (1 + α) · mean_{j≠i} d_j`` (removing it
   moves the prompt away from the concept; α = 0.01 in the authors' code).
3. **Projection.** Each trigger token's embedding ``h`` (the full prompt's encoder output at its position) is
   replaced by ``(I − P_c) P_in h``: projected onto the prompt's input space (``P_in``: span of the masked
   summaries ``e_i``), then onto the orthogonal complement of the toxic subspace.
4. **Steps.** The projected embedding conditions the first denoising steps only: ``schedule="fixed"`` (default,
   the authors' video code: steps 0–12 whatever the number of steps, ``0 <= i <= 12`` in
   cogvideox_pipeline.py:844 (50 steps) and safree_hunyuan_pipeline.py:1005 (30 steps); or ``safe_steps``) or
   ``schedule="self_validating"`` (the image code's self-validating filter: ``β = 1 − mean cos(h, (I − P_c) P_in h)``
   over the prompt's tokens, steps ``0..round(up_t · sigmoid(5·(10β − 5.333)))`` with ``up_t`` 10 of 50).
5. **Negative prompt.** The keywords, joined with ", ", are the negative prompt of classifier-free guidance
   (cogvideox_pipeline.py:759-760); on guidance-distilled backbones (HunyuanVideo) off by default, as the
   T2VUnlearning authors ran it (below); switched on there it is true CFG (see :mod:`.negprompt`).
6. **Latent re-attention** (image version only; the authors' video code has none): on a UNet backbone
   (ZeroScope) the skip features of the first up blocks, computed with the projected embedding, are compared in
   the Fourier domain with those computed with the original prompt; low-frequency coefficients where the
   projected ones are larger are multiplied by ``s`` (``lra_scales``; FreeU's per-level convention). Off by
   default; other backbones raise.

**Encoding** (``encoding="authors"``, the default) follows the authors' tokenization per text encoder, read
from their code: each keyword is tokenized *padded to the text length with its attention mask* (T5/CLIP:
``_new_encode_negative_prompt2``, cogvideox_pipeline.py:387-413; Llama: ``_encode_negative_prompt_llama``,
T2VUnlearning safree_hunyuan_pipeline.py:350-402, the prompt template included); each masked prompt is the
prompt's own token ids *unpadded* with one id set to 0, encoded with no attention mask (``_masked_encode_prompt``,
cogvideox_pipeline.py:416-457; ``_masked_encode_prompt_llama`` safree_hunyuan_pipeline.py:516-575, template
cropped off before encoding). The vectors are the text encoder's last hidden states (``last_hidden_state``).
``encoding="backbone"`` takes both through the backbone's own conditioning path instead (padded, no mask:
about 200 T5 pad tokens then enter each keyword's vector; kept only to compare).

The *summary vector* of an encoding (``token_summary="auto"``): position 0 for bidirectional encoders (T5: the
authors' video code, ``[:, 0, :]`` at cogvideox_pipeline.py:411 and :453); the last real token for causal ones
(CLIP's pooled EOS token: the authors' image code); the mean over all positions on HunyuanVideo (the
T2VUnlearning authors' ``mean(dim=1)``, safree_hunyuan_pipeline.py:399 and :573, and the SAFREE paper's
footnote on mean pooling for decoder text encoders).

**HunyuanVideo** (T2VUnlearning's ``test_safree_hunyuan.py`` + ``safree_hunyuan_pipeline.py``): no negative
prompt (``do_true_cfg = False``, line 888: "when set to True the generation output is a total mess"), the
embedded guidance of the run (their ``guidance_scale`` 6.0), and the CLIP pooled vector projected too
(``project_pooled``): the prompt's 77 CLIP token states, trigger tokens projected as above with CLIP-side
summaries (pooled EOS), averaged over the 77 positions, replace the pooled vector at the projected steps
(lines 938-945, 1005-1006). ``negative_prompt=None`` and ``project_pooled=None`` pick these per backbone.

**Sampler** (``sampler="cogvideox_dpm"``, CogVideoX only): the SAFREE demo's ``CogVideoXDPMScheduler``
(``timestep_spacing="trailing"``) with ``use_dynamic_cfg=True`` (jaehong31/SAFREE cogvideox/cli_demo.py:74, 90);
``"backbone"`` (default) keeps the backbone's own scheduler and guidance, so SAFREE compares with the other
rows on the same sampler. Differences from the authors' code: see ``docs/evaluation.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from unlearn.backbones import PromptEmbedding, VideoBackbone

from .negprompt import negative_guidance_scale

#: the authors' video code: the projected embedding conditions steps 0..12 (``0 <= i <= 12``,
#: cogvideox_pipeline.py:844; T2VUnlearning's safree_hunyuan_pipeline.py:1005 keeps 0..12 at 30 steps)
AUTHORS_FIXED_STEPS = 13
#: the authors' image code: ``up_t`` = 10 for 50 steps; ``f_beta``'s sigmoid midpoint and slope (non-artist)
AUTHORS_UP_T = (10, 50)
_SVF_MIDPOINT, _SVF_SLOPE = 5.333, 2.5 * 2.0

TokenSummary = Literal["auto", "first", "last", "mean"]
Encoding = Literal["authors", "backbone"]
Sampler = Literal["backbone", "cogvideox_dpm"]


def orthonormal_basis(columns: Tensor, rtol: float = 1e-5) -> Tensor:
    """Orthonormal basis ``[D, r]`` of the span of the columns of ``[D, n]`` (SVD; directions with singular
    value below ``rtol`` × the largest are dropped: the authors' ``E (EᵀE)⁺ Eᵀ`` without forming D×D)."""
    u, s, _ = torch.linalg.svd(columns.double(), full_matrices=False)
    if s.numel() == 0 or float(s[0]) == 0.0:
        return columns.new_zeros(columns.shape[0], 0, dtype=torch.float64)
    return u[:, s > rtol * s[0]]


def project(x: Tensor, basis: Tensor) -> Tensor:
    """Projection of the rows of ``x`` ``[N, D]`` onto span(basis)."""
    return (x.double() @ basis) @ basis.T


@dataclasses.dataclass
class TriggerDetection:
    """SAFREE's trigger-token decision for one prompt.

    ``positions``: indices into the encoded text sequence of the prompt's real tokens; ``distances``: ``d_i`` of
    each masked prompt; ``flagged``: positions of the trigger tokens; ``tokens``: the token strings."""

    prompt: str
    positions: list[int]
    tokens: list[str]
    distances: list[float]
    flagged: list[int]

    @property
    def flagged_tokens(self) -> list[str]:
        return [t for p, t in zip(self.positions, self.tokens) if p in set(self.flagged)]


class SAFREE:
    """SAFREE on a backbone. ``sample`` mirrors :meth:`VideoBackbone.sample` and returns latents.

    Args:
        backbone: any registered backbone (its adapters should be off).
        concept_keywords: words/phrases naming the concept (the authors use a list per concept,
            :data:`~unlearn.methods.baselines.keywords.AUTHORS_CONCEPT_KEYWORDS`; rows take it by default).
        alpha: α of the trigger rule ``d_i ≥ (1 + α)·mean_{j≠i} d_j`` (authors: 0.01).
        projection: replace trigger tokens by their projection (False: only the negative prompt acts).
        schedule: ``"fixed"`` (default; the authors' video code) or ``"self_validating"`` (the image code).
        safe_steps: ``"fixed"``: number of first steps with the projected embedding (None: 13, steps 0..12).
        up_t: ``"self_validating"``: the largest step index (None: 10/50 of the steps, the authors' image default).
        negative_prompt: use the keywords as the negative prompt (None: yes on CFG backbones, as the SAFREE
            authors; no on guidance-distilled ones, as the T2VUnlearning authors ran SAFREE on HunyuanVideo).
        guidance_scale: classifier-free guidance scale of the negative prompt (None: the sampling scale; true
            CFG ``DISTILLED_TRUE_CFG_SCALE`` on guidance-distilled backbones); see :mod:`.negprompt`.
        token_summary: the vector that stands for a whole encoding: ``"auto"``, ``"first"``, ``"last"`` (last
            real token) or ``"mean"``.
        encoding: ``"authors"`` (their padding and attention masks per text encoder) or ``"backbone"``.
        project_pooled: also project the pooled CLIP vector (HunyuanVideo; None: on where the backbone has a
            CLIP ``text_encoder_2``, as the T2VUnlearning authors do).
        sampler: ``"backbone"`` or ``"cogvideox_dpm"`` (the SAFREE demo's DPM scheduler + dynamic CFG).
        latent_reattention: the image version's Fourier re-attention (UNet backbones only: ZeroScope).
        lra_scales: ``s`` per up block, first block first (the authors' FreeU-style ``s1, s2`` = 0.9, 0.2).
        lra_radius: half-width of the low-frequency window (authors: 1).
    """

    def __init__(
        self,
        backbone: VideoBackbone,
        concept_keywords: Sequence[str],
        alpha: float = 0.01,
        projection: bool = True,
        schedule: Literal["fixed", "self_validating"] = "fixed",
        safe_steps: int | None = None,
        up_t: int | None = None,
        negative_prompt: bool | None = None,
        guidance_scale: float | None = None,
        token_summary: TokenSummary = "auto",
        encoding: Encoding = "authors",
        project_pooled: bool | None = None,
        sampler: Sampler = "backbone",
        latent_reattention: bool = False,
        lra_scales: Sequence[float] = (0.9, 0.2),
        lra_radius: int = 1,
    ) -> None:
        keywords = [k for k in concept_keywords if k and k.strip()]
        if not keywords:
            raise ValueError("SAFREE needs at least one concept keyword")
        if schedule not in ("fixed", "self_validating"):
            raise ValueError(f"SAFREE schedule must be 'fixed' or 'self_validating'; got {schedule!r}")
        if token_summary not in ("auto", "first", "last", "mean"):
            raise ValueError(f"SAFREE token_summary must be auto, first, last or mean; got {token_summary!r}")
        if encoding not in ("authors", "backbone"):
            raise ValueError(f"SAFREE encoding must be 'authors' or 'backbone'; got {encoding!r}")
        if sampler not in ("backbone", "cogvideox_dpm"):
            raise ValueError(f"SAFREE sampler must be 'backbone' or 'cogvideox_dpm'; got {sampler!r}")
        if sampler == "cogvideox_dpm" and not hasattr(backbone, "use_dynamic_cfg"):
            raise ValueError(
                f"SAFREE sampler='cogvideox_dpm' is the SAFREE CogVideoX demo's sampler; {backbone.name} is not a "
                "CogVideoX backbone. Fix: sampler='backbone'."
            )
        if alpha < 0:
            raise ValueError(f"SAFREE alpha must be >= 0; got {alpha}")
        if safe_steps is not None and safe_steps < 0:
            raise ValueError(f"SAFREE safe_steps must be >= 0; got {safe_steps}")
        self.backbone = backbone
        self.keywords = list(keywords)
        self.alpha = float(alpha)
        self.projection = bool(projection)
        self.schedule = schedule
        self.safe_steps = safe_steps
        self.up_t = up_t
        self.use_negative_prompt = (
            (not backbone.guidance_distilled) if negative_prompt is None else bool(negative_prompt)
        )
        self.guidance_scale = guidance_scale
        if self.use_negative_prompt and guidance_scale is not None:
            negative_guidance_scale(backbone, guidance_scale)  # bad values fail at construction
        self.encoding = encoding
        self.sampler = sampler
        has_clip = getattr(backbone, "text_encoder_2", None) is not None and getattr(backbone, "tokenizer_2", None)
        self.project_pooled = bool(has_clip) if project_pooled is None else bool(project_pooled)
        if self.project_pooled and not has_clip:
            raise ValueError(
                f"SAFREE project_pooled projects the pooled CLIP vector; {backbone.name} has no CLIP text_encoder_2. "
                "Fix: project_pooled=false."
            )
        self.lra = LatentReattention(backbone, lra_scales, lra_radius) if latent_reattention else None
        self.token_summary = self._resolve_summary(token_summary) if token_summary == "auto" else token_summary
        self.mask_token = backbone.tokenizer.convert_ids_to_tokens(0)
        self.toxic_basis = orthonormal_basis(self.keyword_summaries().T)  # [D, r]
        self._clip_toxic_basis = (
            orthonormal_basis(self._clip_pooled(self.keywords).T) if self.project_pooled else None
        )  # [D2, r2]
        self.last_detections: list[TriggerDetection] = []
        self._detections: dict[str, tuple[TriggerDetection, Tensor]] = {}  # detect(), per prompt
        self._pooled: dict[str, Tensor] = {}  # projected pooled vector, per prompt

    # ------------------------------------------------------------------ summaries
    def _resolve_summary(self, mode: str) -> str:
        """``"mean"`` on a backbone with a prompt template (HunyuanVideo's Llama: the T2VUnlearning authors and
        the SAFREE paper's footnote), else ``"first"`` for a bidirectional text encoder and ``"last"`` for a
        causal one (position 0 of a causal encoder does not see the rest of the prompt). Probed: does position
        0 change when a token is appended?"""
        bb = self.backbone
        if getattr(bb, "prompt_template", None) is not None:
            return "mean"
        a = self.keywords[0]
        emb = bb.encode_prompts([a, f"{a} {a}"]).hidden_states.float()
        p = bb.text_token_offset
        causal = torch.allclose(emb[0, p], emb[1, p], rtol=1e-4, atol=1e-5)
        return "last" if causal else "first"

    def _span(self, prompt: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
        """Token ids, character offsets, and the encoded positions of the prompt's real tokens."""
        ids, offsets = self.backbone.text_tokens(prompt)
        off = self.backbone.text_token_offset
        real = [i + off for i, (s, e) in enumerate(offsets) if e > s]
        return ids, offsets, real

    def _summary_rows(self, emb: PromptEmbedding, lengths: Sequence[int]) -> Tensor:
        """``encoding="backbone"``: one summary vector per encoding; ``lengths``: tokens (specials included)."""
        h = emb.hidden_states.float()
        off = self.backbone.text_token_offset
        rows = []
        for b, n in enumerate(lengths):
            n = max(1, min(int(n), h.shape[1] - off))
            if self.token_summary == "first":
                rows.append(h[b, off])
            elif self.token_summary == "last":
                rows.append(h[b, off + n - 1])
            else:
                rows.append(h[b, off : off + n].mean(0))
        return torch.stack(rows)

    def _pool(self, h: Tensor, mask: Tensor | None) -> Tensor:
        """``encoding="authors"``: the summary rows of last hidden states ``[N, L, D]``. ``"first"``: position
        0; ``"last"``: the last attended position (CLIP's EOS: what ``pooler_output`` reads); ``"mean"``: every
        position, padding included, as the T2VUnlearning authors' ``mean(dim=1)``."""
        h = h.float()
        if self.token_summary == "first":
            return h[:, 0]
        if self.token_summary == "mean":
            return h.mean(1)
        last = (
            torch.full((h.shape[0],), h.shape[1] - 1, device=h.device)
            if mask is None
            else mask.to(h.device).long().sum(1) - 1
        )
        return h[torch.arange(h.shape[0], device=h.device), last]

    def _run_text_encoder(self, ids: Tensor, mask: Tensor | None) -> Tensor:
        """Last hidden states of the backbone's (first) text encoder for token ids ``[N, L]``."""
        enc = self.backbone.text_encoder
        device = next(enc.parameters()).device
        out = enc(input_ids=ids.to(device), attention_mask=None if mask is None else mask.to(device))
        return out if isinstance(out, Tensor) else out[0]

    @torch.no_grad()
    def keyword_summaries(self) -> Tensor:
        """Summary vectors ``[K, D]`` of the keywords (the columns of the toxic subspace)."""
        if self.encoding == "backbone":
            return self.summaries(self.keywords)
        bb = self.backbone
        template = getattr(bb, "prompt_template", None)
        texts = [template["template"].format(k) for k in self.keywords] if template else list(self.keywords)
        length = bb.max_text_length + (bb.crop_start if template else 0)
        enc = bb.tokenizer(
            texts, padding="max_length", max_length=length, truncation=True, return_tensors="pt",
            return_attention_mask=True,
        )  # fmt: skip
        h = self._run_text_encoder(enc["input_ids"], enc["attention_mask"])
        return self._pool(h, enc["attention_mask"])

    def summaries(self, texts: Sequence[str]) -> Tensor:
        """Summary vectors ``[N, D]`` of ``texts`` through the backbone's conditioning path (float32)."""
        texts = list(texts)
        lengths = [len(self.backbone.text_tokens(t)[0]) for t in texts]
        return self._summary_rows(self.backbone.encode_prompts(texts), lengths)

    @torch.no_grad()
    def masked_summaries(self, prompt: str) -> tuple[Tensor, list[int], list[str]]:
        """Summary vectors ``[n, D]`` of the prompt with each of its ``n`` real tokens masked in turn (token id
        0), with the masked tokens' encoded positions and strings."""
        if self.encoding == "backbone":
            masked, positions, tokens = self.masked_prompts(prompt)
            lengths = [len(self.backbone.text_tokens(m)[0]) for m in masked]
            return self._summary_rows(self.backbone.encode_prompts(masked), lengths), positions, tokens
        ids, offsets, positions = self._span(prompt)
        off = self.backbone.text_token_offset
        tokens = [prompt[offsets[p - off][0] : offsets[p - off][1]].strip() for p in positions]
        rows = torch.tensor(ids).repeat(len(positions), 1)
        for r, p in enumerate(positions):
            rows[r, p - off] = 0  # the authors' mask id (cogvideox_pipeline.py:443)
        # no attention mask, as the authors (every position attended, the masked one too); written as all ones
        # for encoders that would otherwise read padding off id 0 (the toy world's)
        return self._pool(self._run_text_encoder(rows, torch.ones_like(rows)), None), positions, tokens

    # ------------------------------------------------------------------ pooled CLIP vector (HunyuanVideo)
    def _clip_encode(self, texts: Sequence[str] | Tensor, pad: bool) -> Any:
        bb = self.backbone
        if isinstance(texts, Tensor):
            ids = texts
        else:
            length = bb.tokenizer_2.model_max_length if pad else None
            ids = bb.tokenizer_2(
                list(texts), padding="max_length" if pad else "longest", max_length=length, truncation=True,
                return_tensors="pt",
            ).input_ids  # fmt: skip
        enc = bb.text_encoder_2
        return enc(ids.to(next(enc.parameters()).device), output_hidden_states=False)

    @torch.no_grad()
    def _clip_pooled(self, texts: Sequence[str]) -> Tensor:
        """CLIP pooled vectors of ``texts`` padded to 77, no mask (``_encode_negative_prompt_clip``)."""
        return self._clip_encode(texts, pad=True).pooler_output.float()

    @torch.no_grad()
    def projected_pooled(self, prompt: str) -> Tensor | None:
        """The T2VUnlearning authors' pooled vector of ``prompt`` at the projected steps (None when
        ``project_pooled`` is off): CLIP-side trigger tokens (masked prompts' pooled vectors, positions after
        BOS, ``_masked_encode_prompt_clip``), their token states replaced by ``(I − P_c) P_in h``, and the mean
        over the 77 positions (safree_hunyuan_pipeline.py:938-945)."""
        if not self.project_pooled:
            return None
        if prompt not in self._pooled:
            bb = self.backbone
            ids = bb.tokenizer_2([prompt], padding="longest", truncation=True, return_tensors="pt").input_ids
            n = ids.shape[1] - 2  # real tokens between BOS and EOS
            states = self._clip_encode([prompt], pad=True).last_hidden_state[0].float()  # [77, D2]
            if n < 2:
                self._pooled[prompt] = states.mean(0)
                return self._pooled[prompt]
            masked = ids.repeat(n, 1)
            for i in range(n):
                masked[i, i + 1] = 0
            e = self._clip_encode(masked, pad=False).pooler_output.float()  # [n, D2]
            toxic = self._clip_toxic_basis.to(e.device)
            d = (e.double() - project(e, toxic)).norm(dim=-1)
            flagged = d >= (1.0 + self.alpha) * ((d.sum() - d) / (n - 1))
            proj = project(states, orthonormal_basis(e.T).to(states.device))
            proj = (proj - project(proj, toxic.to(states.device))).float()
            out = states.clone()
            for i in torch.nonzero(flagged).flatten().tolist():
                out[i + 1] = proj[i + 1]
            self._pooled[prompt] = out.mean(0)
        return self._pooled[prompt]

    # ------------------------------------------------------------------ trigger tokens
    def masked_prompts(self, prompt: str) -> tuple[list[str], list[int], list[str]]:
        """One prompt per real token, that token replaced by the mask token; with the token positions and
        the token strings."""
        ids, offsets, real = self._span(prompt)
        off = self.backbone.text_token_offset
        out, tokens = [], []
        for pos in real:
            s, e = offsets[pos - off]
            out.append(prompt[:s] + self.mask_token + prompt[e:])
            tokens.append(prompt[s:e].strip())
        return out, real, tokens

    @torch.no_grad()
    def detect(self, prompt: str) -> tuple[TriggerDetection, Tensor]:
        """The trigger tokens of ``prompt`` and its input-space basis ``[D, r]`` (span of the masked summaries).

        Depends on the text and the frozen text encoder only, so it is computed once per prompt: a white-box
        attack asks for the same prompts at every optimisation step (one re-encoding per token each time)."""
        if prompt not in self._detections:
            self._detections[prompt] = self._detect(prompt)
        return self._detections[prompt]

    def _detect(self, prompt: str) -> tuple[TriggerDetection, Tensor]:
        e, positions, tokens = self.masked_summaries(prompt)  # [n, D]
        if len(positions) < 2:  # nothing to compare a single token with
            return TriggerDetection(prompt, positions, tokens, [], []), torch.zeros(0)
        basis = self.toxic_basis.to(e.device)
        d = (e.double() - project(e, basis)).norm(dim=-1)  # distance of each masked prompt to the subspace
        n = d.numel()
        mean_others = (d.sum() - d) / (n - 1)
        flagged = [positions[i] for i in torch.nonzero(d >= (1.0 + self.alpha) * mean_others).flatten().tolist()]
        det = TriggerDetection(prompt, positions, tokens, [float(x) for x in d], flagged)
        return det, orthonormal_basis(e.T)

    def project_embedding(self, cond: PromptEmbedding, prompts: Sequence[str]) -> tuple[PromptEmbedding, list[float]]:
        """The projected conditioning of ``prompts`` and each prompt's β (1 − mean cosine between its token
        embeddings and their projections, for the self-validating filter). Stores ``last_detections``.

        The trigger tokens are found from the prompts' text (no gradient); the projection is linear in ``cond``
        and differentiable in it (white-box attacks optimise through it)."""
        h = cond.hidden_states.float()
        out = h.clone()
        betas = []
        self.last_detections = []
        off = self.backbone.text_token_offset
        for b, prompt in enumerate(prompts):
            det, in_basis = self.detect(prompt)
            self.last_detections.append(det)
            if in_basis.numel() == 0:
                betas.append(0.0)
                continue
            n_tokens = len(self.backbone.text_tokens(prompt)[0])
            toks = h[b, off : off + n_tokens]
            proj = project(toks, in_basis.to(h.device))
            proj = proj - project(proj, self.toxic_basis.to(h.device))  # (I − P_c) P_in h
            cos = torch.nn.functional.cosine_similarity(proj.float(), toks, dim=-1)
            betas.append(float(1.0 - cos.mean()))
            for p in det.flagged:
                out[b, p] = proj[p - off].to(out.dtype)
        return PromptEmbedding(out.to(cond.hidden_states.dtype), cond.attention_mask, cond.pooled), betas

    # ------------------------------------------------------------------ steps
    def steps_for(self, num_inference_steps: int, beta: float) -> int:
        """How many first steps use the projected embedding."""
        n = num_inference_steps
        if self.schedule == "fixed":
            if self.safe_steps is not None:
                return min(n, self.safe_steps)
            return min(n, AUTHORS_FIXED_STEPS)
        up_t = self.up_t if self.up_t is not None else round(AUTHORS_UP_T[0] / AUTHORS_UP_T[1] * n)
        z = _SVF_SLOPE * (10.0 * beta - _SVF_MIDPOINT)
        last = round(up_t * (1.0 / (1.0 + math.exp(-z))))
        return min(n, last + 1)  # the authors' loop uses the projection while i <= last

    def settings(self, sampling_scale: float | None = None) -> dict[str, Any]:
        """What the row computes, for results files."""
        bb = self.backbone
        return {
            "keywords": list(self.keywords),
            "alpha": self.alpha,
            "projection": self.projection,
            "schedule": self.schedule,
            "safe_steps": self.safe_steps,
            "up_t": self.up_t,
            "negative_prompt": ", ".join(self.keywords) if self.use_negative_prompt else None,
            "guidance_scale": (
                negative_guidance_scale(self.backbone, self.guidance_scale, sampling_scale)
                if self.use_negative_prompt
                else sampling_scale
            ),
            "token_summary": self.token_summary,
            "encoding": self.encoding,
            "project_pooled": self.project_pooled,
            "sampler": self.sampler,
            "scheduler": "CogVideoXDPMScheduler" if self.sampler == "cogvideox_dpm" else type(bb.scheduler).__name__,
            "guidance": bb.guidance_settings() if self.sampler == "backbone" else {"use_dynamic_cfg": True},
            "embedded_guidance_scale": getattr(bb, "embedded_guidance_scale", None),
            "mask_token": self.mask_token,
            "latent_reattention": None if self.lra is None else self.lra.settings(),
        }

    def step_conditioning(
        self, cond: PromptEmbedding, prompts: Sequence[str], num_inference_steps: int
    ) -> Callable[[int], PromptEmbedding]:
        """The conditioning SAFREE gives the denoiser at sampler step ``i``: the projected one for each flagged
        prompt's first :meth:`steps_for` steps, the prompt's own after. ``prompts``: the texts ``cond`` stands
        for (trigger tokens are detected on them). Differentiable in ``cond``. Stores ``last_detections``."""
        prompts = list(prompts)
        pooled, pooled_cut = None, [0] * len(prompts)
        if self.projection:
            projected, betas = self.project_embedding(cond, prompts)
            spans = [self.steps_for(num_inference_steps, beta) for beta in betas]
            cut = [c if det.flagged else 0 for c, det in zip(spans, self.last_detections, strict=True)]
            if self.project_pooled and cond.pooled is not None:
                # the authors swap the pooled vector at steps 0..12 whether or not a token was flagged
                pooled = torch.stack([self.projected_pooled(p) for p in prompts]).to(cond.pooled)
                pooled_cut = spans
        else:
            projected, cut = cond, [0] * len(prompts)
            self.last_detections = []

        def at(i: int) -> PromptEmbedding:
            dev = cond.hidden_states.device
            use = torch.tensor([i < c for c in cut], device=dev)
            use_pooled = torch.tensor([i < c for c in pooled_cut])
            if not use.any() and not use_pooled.any():
                return cond
            h = torch.where(use[:, None, None], projected.hidden_states, cond.hidden_states)
            pool = cond.pooled
            if pooled is not None and use_pooled.any():
                pool = torch.where(use_pooled.to(pool.device)[:, None], pooled, cond.pooled)
            return PromptEmbedding(h, cond.attention_mask, pool)

        return at

    @contextlib.contextmanager
    def _sampler(self):
        """The row's sampler for the duration of a ``with`` block (``"cogvideox_dpm"``: the SAFREE demo's)."""
        if self.sampler == "backbone":
            yield
            return
        from diffusers import CogVideoXDPMScheduler

        bb = self.backbone
        saved = bb.scheduler, bb.use_dynamic_cfg
        # cli_demo.py:74 and :90
        bb.scheduler = CogVideoXDPMScheduler.from_config(bb.scheduler.config, timestep_spacing="trailing")
        bb.use_dynamic_cfg = True
        try:
            yield
        finally:
            bb.scheduler, bb.use_dynamic_cfg = saved

    @torch.no_grad()
    def sample(
        self, prompts: Sequence[str], seeds: Sequence[int], cond: PromptEmbedding | None = None, **sampling: Any
    ) -> Tensor:
        """Latents of ``prompts``; ``cond``: their conditioning when it is not their text's (an attack's learned
        tokens; the trigger tokens are still detected on ``prompts``)."""
        bb = self.backbone
        prompts = list(prompts)
        cond = bb.encode_prompts(prompts) if cond is None else cond
        sampling_scale = sampling.pop("guidance_scale", None)
        if self.use_negative_prompt:
            guidance = negative_guidance_scale(bb, self.guidance_scale, sampling_scale)
            uncond = bb.encode_prompts([", ".join(self.keywords)] * len(prompts))
        else:
            guidance = sampling_scale
            uncond = bb.encode_prompts([""] * len(prompts))
        steps = sampling.get("num_inference_steps") or bb.defaults.num_inference_steps
        conditioning = self.step_conditioning(cond, prompts, steps)

        def cond_for_step(i: int) -> tuple[PromptEmbedding, PromptEmbedding]:
            c = conditioning(i)
            if self.lra is not None:
                self.lra.reference = PromptEmbedding.cat([uncond, cond]) if c is not cond else None
            return c, uncond

        with self._sampler(), self.lra.installed() if self.lra is not None else contextlib.nullcontext():
            return bb.sample(
                prompts,
                list(seeds),
                cond=cond,
                uncond=uncond,
                cond_for_step=cond_for_step,
                guidance_scale=guidance,
                **sampling,
            )


class LatentReattention:
    """SAFREE's adaptive latent re-attention on a UNet denoiser (the image version; ZeroScope here).

    While installed, every denoiser call whose text conditioning differs from ``reference`` (the same batch
    with the original prompts) first runs the denoiser on ``reference`` and records the skip features entering
    the first ``len(scales)`` up blocks; the real call then filters its own skip features: in the centred 2D
    Fourier spectrum of each frame, inside the low-frequency window of half-width ``radius``, coefficients whose
    real part is at least the reference's are multiplied by ``scales[k]`` (up block ``k``). Costs one more
    denoiser call on the steps that use the projected embedding.
    """

    def __init__(self, backbone: VideoBackbone, scales: Sequence[float], radius: int = 1) -> None:
        ups = getattr(backbone.denoiser, "up_blocks", None)
        if not isinstance(ups, nn.ModuleList) or not len(ups):
            raise ValueError(
                f"SAFREE latent_reattention filters a UNet's skip features; {backbone.name}'s denoiser "
                f"({type(backbone.denoiser).__name__}) has no up blocks. It is offered on ZeroScope; the authors' "
                "video code (CogVideoX) has no latent re-attention. Fix: latent_reattention=false."
            )
        if not scales or len(scales) > len(ups):
            raise ValueError(f"lra_scales needs 1..{len(ups)} values (one per up block); got {list(scales)}")
        if radius < 1:
            raise ValueError(f"lra_radius must be >= 1; got {radius}")
        self.backbone = backbone
        self.scales = [float(s) for s in scales]
        self.radius = int(radius)
        self.reference: PromptEmbedding | None = None
        self._recorded: dict[int, tuple[Tensor, ...]] = {}
        self._rows: Tensor | None = None  # per denoiser batch row: True where the conditioning differs
        self._mode = "idle"

    def settings(self) -> dict[str, Any]:
        return {"scales": list(self.scales), "radius": self.radius}

    def filter(self, own: Tensor, ref: Tensor, scale: float, rows: Tensor | None = None) -> Tensor:
        """Filter skip features ``own`` ``[N, C, H, W]`` against ``ref`` (same shape); only the rows where
        ``rows`` (bool ``[N]``) is True change."""
        dtype = own.dtype
        f = torch.fft.fftshift(torch.fft.fftn(own.float(), dim=(-2, -1)), dim=(-2, -1))
        g = torch.fft.fftshift(torch.fft.fftn(ref.float(), dim=(-2, -1)), dim=(-2, -1))
        h, w = f.shape[-2:]
        r = self.radius
        win = (..., slice(max(0, h // 2 - r), h // 2 + r), slice(max(0, w // 2 - r), w // 2 + r))
        low, ref_low = f[win], g[win]
        # the authors' rule: keep the projected coefficient where the original one is larger, else attenuate
        f[win] = torch.where(low.real >= ref_low.real, low * scale, low)
        out = torch.fft.ifftn(torch.fft.ifftshift(f, dim=(-2, -1)), dim=(-2, -1)).real.to(dtype)
        if rows is None:
            return out
        return torch.where(rows.to(out.device)[:, None, None, None], out, own)

    def installed(self) -> contextlib.AbstractContextManager:
        """Hooks on the denoiser and its first up blocks for the duration of a ``with`` block."""
        lra = self
        unet = self.backbone.denoiser

        def unet_hook(module: nn.Module, args: tuple, kwargs: dict):
            text = kwargs.get("encoder_hidden_states")
            if lra._mode != "idle" or lra.reference is None or text is None:
                return None
            ref = lra.reference.hidden_states.to(text.device, text.dtype)
            if ref.shape != text.shape or torch.equal(ref, text):
                return None
            sample = args[0] if args else kwargs["sample"]
            differs = (ref != text).flatten(1).any(1)  # [B]; the UNet folds frames into the batch, frame-minor
            lra._rows = differs.repeat_interleave(sample.shape[2])
            lra._mode = "record"
            try:
                module(*args, **{**kwargs, "encoder_hidden_states": ref})
            finally:
                lra._mode = "apply"
            return None

        def unet_done(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            if lra._mode == "apply":
                lra._mode, lra._recorded, lra._rows = "idle", {}, None

        def block_hook(k: int):
            def hook(module: nn.Module, args: tuple, kwargs: dict):
                skips = kwargs.get("res_hidden_states_tuple")
                if skips is None:
                    return None
                if lra._mode == "record":
                    lra._recorded[k] = tuple(s.detach() for s in skips)
                elif lra._mode == "apply" and k in lra._recorded:
                    ref = lra._recorded[k]
                    new = tuple(lra.filter(s, r, lra.scales[k], lra._rows) for s, r in zip(skips, ref))
                    return args, {**kwargs, "res_hidden_states_tuple": new}
                return None

            return hook

        @contextlib.contextmanager
        def ctx():
            handles = [
                unet.register_forward_pre_hook(unet_hook, with_kwargs=True),
                unet.register_forward_hook(unet_done, with_kwargs=True),
            ]
            handles += [
                unet.up_blocks[k].register_forward_pre_hook(block_hook(k), with_kwargs=True)
                for k in range(len(self.scales))
            ]
            try:
                yield
            finally:
                for hd in handles:
                    hd.remove()
                self.reference, self._recorded, self._rows, self._mode = None, {}, None, "idle"

        return ctx()
