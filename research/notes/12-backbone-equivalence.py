"""One-off check for issue #12 (backbone loading hooks, processors marked as diffusers copies): every
registered backbone gives bit-identical outputs before and after the refactor.

    python research/notes/12-backbone-equivalence.py record  /tmp/bb-before   # on the old code
    python research/notes/12-backbone-equivalence.py record  /tmp/bb-after    # on the new code
    python research/notes/12-backbone-equivalence.py compare /tmp/bb-before /tmp/bb-after

For each name (tiny, float32, seed 3): ``encode_prompts`` (hidden, mask, pooled), ``predict`` with adapters off,
``predict`` with non-zero adapters while capturing concept maps (the processors' two hooks), a 2-step
``sample``, ``decode`` of that sample, ``fingerprint()``, the plain attributes (defaults, text length, VAE
factors, scheduler config), and the same after ``save_pretrained`` -> ``build_backbone(pretrained=folder)``
(fixed folder, so the fingerprint's source is the same). The toy world's shipped weights are recorded too.
Run with OMP_NUM_THREADS=1 so that CPU kernels take the same paths.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from unlearn.backbones import available_backbones, build_backbone
from unlearn.methods.t2vunlearning.adapters import AdapterController

PROMPTS = ["a golf ball rolls across the grass", "a red ball and a golf ball on the beach"]
CONCEPT = "golf ball"
SEED = 3


def plain_attributes(bb) -> dict:
    out = {
        "class": type(bb).__name__,
        "name": bb.name,
        "source": bb.source,
        "dtype": str(bb.dtype),
        "defaults": repr(bb.defaults),
        "max_text_length": bb.max_text_length,
        "scheduler": type(bb.scheduler).__name__,
        "scheduler_config": {k: repr(v) for k, v in bb.scheduler.config.items() if not k.startswith("_")},
        "new_scheduler": type(bb.new_scheduler()).__name__,
    }
    for k, v in vars(bb).items():
        if isinstance(v, (int, float, str, bool)) or (isinstance(v, dict) and k == "prompt_template"):
            out[k] = repr(v)
    return out


def record_one(bb, prefix: str, tensors: dict, meta: dict) -> None:
    torch.manual_seed(0)
    c = bb.encode_prompts(PROMPTS)
    for k, v in c.to_dict(f"{prefix}/cond/").items():
        tensors[k] = v
    d = bb.defaults
    x = bb.initial_noise([0, 1], d.num_frames, d.height, d.width)
    t = bb.timesteps_for(4)[1].reshape(1).expand(2).clone()
    with torch.no_grad():
        tensors[f"{prefix}/predict"] = bb.predict(x, t, c)
    sites = bb.attention_sites()
    torch.manual_seed(1)
    ctl = AdapterController([s.video_dim for s in sites], 8, [s.name for s in sites])
    for a in ctl.adapters:
        torch.nn.init.normal_(a.up.weight, std=0.5)
    bb.attach_controller(ctl)
    ct = bb.concept_token_mask(PROMPTS, [[CONCEPT]] * 2)
    with torch.no_grad(), ctl.capturing(ct):
        tensors[f"{prefix}/predict_adapted"] = bb.predict(x, t, c)
    outs, maps = ctl.take()
    for i, (o, m) in enumerate(zip(outs, maps)):
        tensors[f"{prefix}/adapter_out/{i}"] = o.detach()
        tensors[f"{prefix}/concept_map/{i}"] = m
    with ctl.disabled():
        sample = bb.sample(PROMPTS, [5, 6], num_inference_steps=2)
    tensors[f"{prefix}/sample"] = sample
    tensors[f"{prefix}/decode"] = bb.decode(sample)
    meta[prefix] = {
        **plain_attributes(bb),
        "fingerprint": bb.fingerprint(),
        "concept_indices": bb.concept_token_indices(PROMPTS[1], CONCEPT),
        "sites": [s.name for s in sites],
    }


def record(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tensors: dict = {}
    meta: dict = {}
    for name in available_backbones():
        bb = build_backbone(name, tiny=True, torch_dtype="float32", seed=SEED)
        record_one(bb, name, tensors, meta)
        folder = Path("/tmp/bb-equivalence-weights") / name
        shutil.rmtree(folder, ignore_errors=True)
        bb.save_pretrained(str(folder))
        back = build_backbone(name, pretrained=str(folder), torch_dtype="float32")
        record_one(back, f"{name}@folder", tensors, meta)
        print(name, meta[name]["fingerprint"], meta[f"{name}@folder"]["fingerprint"], flush=True)
    record_one(build_backbone("toy-cogvideox"), "toy-cogvideox@shipped", tensors, meta)
    # bfloat16: components loaded in the backbone dtype (folders) or cast after building (tiny)
    record_one(build_backbone("toy-cogvideox", torch_dtype="bfloat16"), "toy-cogvideox@shipped-bf16", tensors, meta)
    for name in ("cogvideox-2b", "wan2.1-t2v-1.3b"):
        record_one(build_backbone(name, tiny=True, torch_dtype="bfloat16", seed=SEED), f"{name}-bf16", tensors, meta)
        folder = Path("/tmp/bb-equivalence-weights") / name
        record_one(
            build_backbone(name, pretrained=str(folder), torch_dtype="bfloat16"), f"{name}@folder-bf16", tensors, meta
        )
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "tensors.safetensors"))
    (out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


def compare(a: Path, b: Path) -> int:
    ta, tb = load_file(str(a / "tensors.safetensors")), load_file(str(b / "tensors.safetensors"))
    ma, mb = json.loads((a / "meta.json").read_text()), json.loads((b / "meta.json").read_text())
    bad = [
        k
        for k in sorted(set(ta) | set(tb))
        if k not in ta
        or k not in tb
        or ta[k].dtype != tb[k].dtype
        or ta[k].shape != tb[k].shape
        or not torch.equal(ta[k], tb[k])
    ]
    bad_meta = [
        f"{k}.{f}: {ma.get(k, {}).get(f)!r} != {mb.get(k, {}).get(f)!r}"
        for k in sorted(set(ma) | set(mb))
        for f in sorted(set(ma.get(k, {})) | set(mb.get(k, {})))
        if ma.get(k, {}).get(f) != mb.get(k, {}).get(f)
    ]
    print(
        f"{len(ta)} tensors, {len(ma)} backbones (tiny and reloaded from folders): "
        f"{len(bad)} tensors differ, {len(bad_meta)} attributes differ"
    )
    for line in bad + bad_meta:
        print("  DIFF", line)
    return 1 if bad or bad_meta else 0


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record(Path(sys.argv[2]))
    else:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
