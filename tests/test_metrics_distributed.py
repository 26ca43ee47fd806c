"""Distributed sync: two gloo processes, each updating part of the data, compute() the same values as one
process that sees all of it (ESR, PSR, NudityRate, SubjectConsistency, IdentitySimilarity), and the same
95% intervals (the per-video statistics behind the bootstrap are gathered from both ranks)."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

# imported here (not in the workers) so that forked workers inherit the imports
from unlearn.evaluation.metrics import (
    ErasureSuccessRate,
    IdentitySimilarity,
    NudityRate,
    PreservationSuccessRate,
    SubjectConsistency,
)
from unlearn.evaluation.scoring import classification_details

CLASSES = ("apple", "bird", "car", "dog")


class PixelLogits:
    class_names = CLASSES

    def logits(self, frames):
        return frames[:, 0, : len(CLASSES), 0].clone()


class MeanColour:
    def features(self, frames):
        return frames.mean(dim=(1, 2))


class BrightIsNude:
    """Constructed detections: bright frames get an exposed label, others a face."""

    def detect(self, frame):
        if frame.mean() > 127:
            return [{"class": "BUTTOCKS_EXPOSED", "score": 0.7, "box": [0, 0, 4, 4]}]
        return [{"class": "FACE_FEMALE", "score": 0.9, "box": [0, 0, 4, 4]}]


class ColourFace:
    """Embedding = mean colour; dark frames have no face."""

    def embed(self, frame):
        mean = frame.reshape(-1, 3).mean(0)
        return None if mean.sum() < 375 else mean / np.linalg.norm(mean)


def make_data():
    generator = torch.Generator().manual_seed(1234)
    videos = []
    for i in range(5):
        frames = torch.rand(3 + i, 6, 6, 3, generator=generator)
        videos.append((frames, CLASSES[i % len(CLASSES)]))
    return videos


def build_metrics():
    return {
        "esr": ErasureSuccessRate("apple", classifier=PixelLogits(), top_k=(1, 2)),
        "psr": PreservationSuccessRate(erased_class="apple", classifier=PixelLogits(), top_k=(1, 2)),
        "nudity": NudityRate(detector=BrightIsNude()),
        "consistency": SubjectConsistency(extractor=MeanColour()),
        "identity": IdentitySimilarity(
            reference_embeddings={"warm": np.array([1.0, 0.2, 0.1]), "cool": np.array([0.1, 0.3, 1.0])},
            embedder=ColourFace(),
        ),
    }


def run_metrics(videos):
    metrics = build_metrics()
    for frames, label in videos:
        metrics["esr"].update(frames, label)
        metrics["psr"].update(frames, label)
        metrics["nudity"].update(frames)
        metrics["consistency"].update(frames)
        metrics["identity"].update(frames, identity="warm" if label in ("apple", "car") else "cool")
    out = {name: {k: v.item() for k, v in m.compute().items()} for name, m in metrics.items()}
    details = classification_details(metrics["esr"], metrics["psr"])
    per_video = {}
    for name in ("nudity", "consistency", "identity"):
        with metrics[name].sync_context(should_sync=True, should_unsync=True):
            per_video[name] = sorted(map(tuple, metrics[name].video_table().tolist()))
    return out, {"intervals": details["intervals"], "esr_by_video": details["esr_by_video"], "per_video": per_video}


def _worker(rank, world_size, port, out_path):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        data = make_data()
        shard = data[:3] if rank == 0 else data[3:]  # uneven split on purpose
        results = run_metrics(shard)
        if rank == 0:
            torch.save(results, out_path)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_two_processes(tmp_path, start_method):
    out_path = str(tmp_path / "rank0.pt")
    mp.start_processes(_worker, args=(2, free_port(), out_path), nprocs=2, join=True, start_method=start_method)
    distributed, distributed_details = torch.load(out_path)
    single, single_details = run_metrics(make_data())
    assert distributed_details == single_details  # intervals over prompts: the same on one rank or two
    assert single_details["intervals"]["psr@1"]["n"] == 3 and len(single_details["per_video"]["nudity"]) == 5
    assert distributed.keys() == single.keys()
    for name in single:
        assert distributed[name].keys() == single[name].keys(), name
        for key, value in single[name].items():
            assert distributed[name][key] == pytest.approx(value, abs=1e-6, nan_ok=True), (name, key)
    # the data exercise every state (not all zeros)
    assert 0 < single["nudity"]["nude_frames"] < single["nudity"]["frames"] == 3 + 4 + 5 + 6 + 7
    assert single["identity"]["no_face_frames"] > 0 and single["identity"]["face_frames"] > 0
    assert single["psr"]["classes"] == 3


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
def test_two_gloo_processes_match_one_process_fork(tmp_path):
    # fork: the children reuse the parent's imports, so this runs in seconds
    _check_two_processes(tmp_path, "fork")


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_spawn(tmp_path):
    # spawn (fresh interpreters, as torch.multiprocessing.spawn / DDP launchers do): each child re-imports
    # torch + torchmetrics, 20-60 s on a loaded 2-core machine
    _check_two_processes(tmp_path, "spawn")


# ---------------------------------------------------------------------------------------------- a row's per-class table
def run_row(videos):
    """A whole evaluation row (RowMetrics: ESR/PSR with the per-class table) over ``videos``."""
    from unlearn.evaluation.scoring import Evaluators, MetricConfig, RowMetrics

    ev = Evaluators(
        MetricConfig(metrics=["classification"], classifier=PixelLogits(), erased_classes=["apple"]),
        list(CLASSES),
        "apple",
    )
    row = RowMetrics(ev)
    for frames, label in videos:
        row.update(frames[None], [label], ["a prompt"])
    return row.compute()


def assert_same(got, want, where=""):
    """Equal nested rows: same keys and values, floats up to rounding."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for k in want:
            assert_same(got[k], want[k], f"{where}/{k}")
    elif isinstance(want, float):
        assert got == pytest.approx(want, nan_ok=True), where
    else:
        assert got == want, where


def _row_worker(rank, world_size, port, out_path):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        data = make_data()
        result = run_row(data[:3] if rank == 0 else data[3:])
        torch.save(result, f"{out_path}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
def test_per_class_results_of_two_ranks_equal_one_process(tmp_path):
    out_path = str(tmp_path / "row")
    mp.start_processes(_row_worker, args=(2, free_port(), out_path), nprocs=2, join=True, start_method="fork")
    single = run_row(make_data())["classification"]["apple"]
    for rank in (0, 1):  # every rank reports the whole table, not its own shard
        two = torch.load(f"{out_path}.{rank}")["classification"]["apple"]
        assert_same(two, single, f"rank {rank}")
    assert single["per_class_frames"] == {"bird": 4, "car": 5, "dog": 6} and single["erased_frames"] == 3 + 7
    assert set(single["per_class_top1"]) == set(CLASSES)


def run_callback_path(suite_file, rank=0, world_size=1):
    """The evaluation callback's path: generate the suite with a row (each rank its share) and score it."""
    from unlearn.backbones import build_backbone
    from unlearn.evaluation.rows import RowGenerator, RowSpec
    from unlearn.evaluation.runner import score_in_memory
    from unlearn.evaluation.scoring import Evaluators, MetricConfig, RowMetrics
    from unlearn.evaluation.suites import load_suite

    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    gen = RowGenerator(bb, [RowSpec("original")], concept="apple", sampling={"num_inference_steps": 1})
    suite = load_suite(suite_file)
    ev = Evaluators(
        MetricConfig(metrics=["classification"], classifier=PixelLogits(), erased_classes=["apple"]),
        suite.labels,
        "apple",
    )
    return score_in_memory(gen, suite, {"original": RowMetrics(ev)}, batch_size=2, rank=rank, world_size=world_size)[
        "original"
    ]


def _callback_worker(rank, world_size, port, suite_file, out_path):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.save(run_callback_path(suite_file, rank, world_size), f"{out_path}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
def test_callback_path_shards_the_suite_and_syncs_per_class_counts(tmp_path):
    from unlearn.prompts import PromptSuite

    suite_file = str(
        PromptSuite(
            [
                {"prompt": f"a {c} number {i}", "concept": c, "seed": i}
                for i, c in enumerate(["apple", "bird", "apple", "car", "dog"])
            ]
        ).save(tmp_path / "s.jsonl")
    )
    out_path = str(tmp_path / "cb")
    mp.start_processes(
        _callback_worker, args=(2, free_port(), suite_file, out_path), nprocs=2, join=True, start_method="fork"
    )
    single = run_callback_path(suite_file)["classification"]["apple"]
    frames = single["per_class_frames"]
    assert frames == {"bird": 9, "car": 9, "dog": 9} and single["erased_frames"] == 18  # 9 per video, each prompt once
    for rank in (0, 1):
        two = torch.load(f"{out_path}.{rank}")["classification"]["apple"]
        assert two["per_class_frames"] == frames and two["erased_frames"] == 18
        assert two["per_class_top1"] == pytest.approx(single["per_class_top1"])
        assert two["esr@1"] == pytest.approx(single["esr@1"]) and two["psr@1"] == pytest.approx(single["psr@1"])
