"""FVD and VBench's Subject Consistency (DINO) and Object Class as torchmetrics metrics, on small random networks
given by path, against a reference computation written the way StyleGAN-V and VBench compute them."""

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms

from unlearn.checks import InputError
from unlearn.evaluation.metrics.quality import (
    FrechetVideoDistance,
    VBenchObjectClass,
    VBenchSubjectConsistency,
)


class TinyI3D(nn.Module):
    """The I3D TorchScript's call signature on a tiny random 3D conv net."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, stride=2)
        self.head = nn.Linear(8, 6)

    def forward(self, x, rescale: bool = False, resize: bool = False, return_features: bool = False):
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 24, 24), mode="trilinear", align_corners=False)
        h = torch.relu(self.conv(x)).mean((2, 3, 4))
        return self.head(h) if return_features else self.head(h).softmax(-1)


def _videos(seed, n, frames=5, h=20, w=28):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, frames, h, w, 3), generator=g, dtype=torch.uint8)


def test_fvd_equals_stylegan_v_on_a_torchscript_detector(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(TinyI3D()).save(str(path))
    fvd = FrechetVideoDistance(str(path), feature_dim=6)
    real, fake = _videos(1, 12), (_videos(2, 10).float() * 0.6).to(torch.uint8)
    for chunk in real.split(5):
        fvd.update(chunk, real=True)
    for chunk in fake.split(4):
        fvd.update(chunk, real=False)
    got = float(fvd.compute()["fvd"])

    # reference: StyleGAN-V's compute_fvd (features of uint8 [B, 3, T, H, W] with rescale/resize, np.cov,
    # scipy.linalg.sqrtm)
    detector = torch.jit.load(str(path))

    def feats(v):
        x = v.permute(0, 4, 1, 2, 3).float()
        with torch.no_grad():
            return detector(x, rescale=True, resize=True, return_features=True).double().numpy()

    fr, ff = feats(real), feats(fake)
    mu_r, mu_g = fr.mean(0), ff.mean(0)
    sigma_r, sigma_g = np.cov(fr, rowvar=False), np.cov(ff, rowvar=False)
    s, _ = scipy.linalg.sqrtm(np.dot(sigma_g, sigma_r), disp=False)
    expected = float(np.real(np.square(mu_g - mu_r).sum() + np.trace(sigma_g + sigma_r - s * 2)))
    print(f"FVD: metric {got:.6f}, reference {expected:.6f}")
    assert expected > 0 and got == pytest.approx(expected, rel=1e-4)


def _tiny_vit(tmp_path):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    cfg = ViTConfig(
        image_size=16, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37
    )
    ViTModel(cfg, add_pooling_layer=False).save_pretrained(tmp_path / "dino")
    return tmp_path / "dino"


def test_subject_consistency_equals_vbench_on_a_dino_folder(tmp_path):
    from transformers import ViTModel

    folder = _tiny_vit(tmp_path)
    metric = VBenchSubjectConsistency(str(folder), resolution=16)
    base = _videos(3, 1, frames=6, h=24, w=40)[0]
    videos = torch.stack([base, base.flip(0), (base // 2 + 60).to(torch.uint8)])  # some frames alike, some not
    metric.update(videos[:2])
    metric.update(videos[2:])
    got = metric.compute()

    # reference: vbench/subject_consistency.py with vbench/utils.py dino_transform, frame by frame
    model = ViTModel.from_pretrained(folder).eval()
    transform = transforms.Compose(
        [
            transforms.Resize(size=16, antialias=False),
            transforms.Lambda(lambda x: x.float().div(255.0)),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    sim, cnt, per_video = 0.0, 0, []
    for video in videos:
        images = transform(video.permute(0, 3, 1, 2))
        video_sim, first, former = 0.0, None, None
        for i in range(len(images)):
            with torch.no_grad():
                out = model(pixel_values=images[i].unsqueeze(0), interpolate_pos_encoding=True)
            features = F.normalize(out.last_hidden_state[:, 0], dim=-1, p=2)
            if i == 0:
                first = features
            else:
                sim_pre = max(0.0, F.cosine_similarity(former, features).item())
                sim_fir = max(0.0, F.cosine_similarity(first, features).item())
                video_sim += (sim_pre + sim_fir) / 2
                cnt += 1
            former = features
        per_video.append(video_sim / (len(images) - 1))
        sim += video_sim
    print(f"subject consistency: metric {float(got['subject_consistency']):.6f}, VBench {sim / cnt:.6f}")
    assert float(got["subject_consistency"]) == pytest.approx(sim / cnt, abs=1e-5)
    assert metric.per_video == pytest.approx(per_video, abs=1e-5) and int(got["videos"]) == 3


def test_object_class_equals_the_frame_share_of_detections(tmp_path):
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessor

    torch.manual_seed(0)
    labels = {0: "golf ball", 1: "dog", 2: "church"}
    cfg = YolosConfig(
        image_size=[32, 32],
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        num_detection_tokens=4,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    detector = YolosForObjectDetection(cfg)
    for p in detector.class_labels_classifier.parameters():  # confident, varied detections from random weights
        nn.init.normal_(p, std=3.0)
    detector.save_pretrained(tmp_path / "det")
    YolosImageProcessor(size={"shortest_edge": 32, "longest_edge": 32}).save_pretrained(tmp_path / "det")
    metric = VBenchObjectClass(str(tmp_path / "det"), threshold=0.6)
    videos = _videos(4, 3, frames=4, h=32, w=32)
    objects = ["golf ball", "dog", "golf ball"]
    metric.update(videos, objects)
    got = metric.compute()

    # reference: VBench's check_generate over per-frame label sets, the labels from the detector's logits
    model = YolosForObjectDetection.from_pretrained(tmp_path / "det").eval()
    processor = YolosImageProcessor.from_pretrained(tmp_path / "det")
    hits = frames = 0
    for video, obj in zip(videos, objects, strict=True):
        inputs = processor(images=[f.numpy() for f in video], return_tensors="pt")
        with torch.no_grad():
            prob = model(**inputs).logits.softmax(-1)[..., :-1]
        scores, classes = prob.max(-1)
        for s, c in zip(scores, classes, strict=True):
            found = {labels[int(k)] for k in c[s > 0.6]}
            hits += obj in found
            frames += 1
    print(f"object class: metric {float(got['object_class']):.4f}, reference {hits / frames:.4f}")
    assert 0 < hits < frames  # some frames show their object, some do not
    assert int(got["frames"]) == frames and float(got["object_class"]) == pytest.approx(hits / frames)


def test_missing_weights_are_one_clear_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    with pytest.raises(InputError, match=r"FrechetVideoDistance.detector: .*nowhere.pt.* does not exist"):
        FrechetVideoDistance(str(tmp_path / "nowhere.pt"))
    with pytest.raises(
        InputError, match=r"VBenchSubjectConsistency.dino: cannot get 'facebook/dino-vitb16'.*hf download"
    ):
        VBenchSubjectConsistency("facebook/dino-vitb16")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no transformers model"):
        VBenchSubjectConsistency(str(tmp_path / "empty"))
