"""The refusal edit exported as a LoRA: diffusers' `load_lora_weights` (through PEFT) loads it into a stock
pipeline, and the pipeline then computes what the edited weights compute (tiny backbones, real diffusers)."""

import pytest
import torch

from unlearn.backbones import build_backbone
from unlearn.checks import InputError
from unlearn.methods.refusal import apply_refusal_edit, load_delta
from unlearn.methods.refusal.lora import LORA_WEIGHTS_NAME, refusal_lora_state_dict, save_refusal_lora

peft = pytest.importorskip("peft", reason="peft (a dependency in pyproject.toml) is what diffusers loads LoRAs with")

CASES = {
    # CogVideoX: the default layers (the text input projection, with a bias) and every attention's k/v (biases)
    "cogvideox-2b": ("CogVideoXPipeline", {}),
    "cogvideox-2b/attn_kv": ("CogVideoXPipeline", {"layers": "attn_kv", "rank": 2}),
    # Wan: cross-attention k/v
    "wan2.1-t2v-1.3b": ("WanPipeline", {}),
}


def _run(name):
    run = dict(prompt="a naked person walking on the beach", num_inference_steps=2, output_type="pt")
    if name.startswith("cog"):
        return run | dict(num_frames=9, height=32, width=32, max_sequence_length=16)
    return run | dict(num_frames=9, height=64, width=64, max_sequence_length=16)


@pytest.mark.parametrize("case", list(CASES))
def test_the_lora_loads_in_diffusers_and_equals_the_edited_weights(case, tmp_path):
    import diffusers

    name = case.split("/")[0]
    pipeline_class, options = CASES[case]
    bb = build_backbone(name, tiny=True, torch_dtype="float32")
    bb.save_pretrained(str(tmp_path / "stock"))
    edit = apply_refusal_edit(bb, "nudity", **options)
    edit.save_delta(tmp_path / "delta.safetensors")
    save_refusal_lora(edit, tmp_path / "lora")  # from the originals the edit kept
    assert sorted(p.name for p in (tmp_path / "lora").iterdir()) == [LORA_WEIGHTS_NAME, "refusal_lora.json"]

    cls = getattr(diffusers, pipeline_class)
    stock = cls.from_pretrained(str(tmp_path / "stock"))
    stock_frames = stock(**_run(name), generator=torch.Generator().manual_seed(0)).frames
    edited = cls.from_pretrained(str(tmp_path / "stock"))
    load_delta(tmp_path / "delta.safetensors").apply_to(edited)  # the edit on a stock pipeline
    edited_frames = edited(**_run(name), generator=torch.Generator().manual_seed(0)).frames

    pipe = cls.from_pretrained(str(tmp_path / "stock"))
    pipe.load_lora_weights(str(tmp_path / "lora"), adapter_name="refusal")
    lora_frames = pipe(**_run(name), generator=torch.Generator().manual_seed(0)).frames
    diff = (lora_frames - edited_frames).abs().max().item()
    moved = (edited_frames - stock_frames).abs().max().item()
    print(f"{case}: LoRA vs edited weights, frames max |delta| = {diff:.2e} (the edit moves them by {moved:.2e})")
    assert moved > 1e-3 and diff <= 1e-4 * max(1.0, moved)

    # fused into the weights, the LoRA is the edited weights up to float32 rounding
    pipe.fuse_lora(adapter_names=["refusal"])
    denoiser = pipe.transformer if hasattr(pipe, "transformer") else pipe.unet
    target = edited.transformer if hasattr(edited, "transformer") else edited.unet
    worst = 0.0
    for layer in edit.bases:
        got = denoiser.get_submodule(layer)
        got = getattr(got, "base_layer", got)
        want = target.get_submodule(layer)
        worst = max(worst, (got.weight - want.weight).abs().max().item() / want.weight.abs().max().item())
        if want.bias is not None:
            worst = max(worst, (got.bias - want.bias).abs().max().item() / max(want.bias.abs().max().item(), 1e-6))
    print(f"{case}: fused LoRA vs edited weights, max relative |delta| = {worst:.2e}")
    assert worst <= 1e-5
    pipe.unfuse_lora()
    pipe.unload_lora_weights()  # the stock pipeline again
    again = pipe(**_run(name), generator=torch.Generator().manual_seed(0)).frames
    assert (again - stock_frames).abs().max().item() <= 1e-5


def test_an_edit_from_a_file_needs_the_unedited_model(tmp_path):
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    stock = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    edit = apply_refusal_edit(bb, "nudity")
    edit.save_delta(tmp_path / "delta.safetensors")
    loaded = load_delta(tmp_path / "delta.safetensors")
    with pytest.raises(InputError, match="keeps no original weights"):
        refusal_lora_state_dict(loaded)
    with pytest.raises(InputError, match="already holds the refusal edit"):
        refusal_lora_state_dict(loaded, original=bb)  # the edited model
    from_file = refusal_lora_state_dict(loaded, original=stock)
    kept = refusal_lora_state_dict(edit)
    assert from_file.keys() == kept.keys() and all(k.startswith("transformer.") for k in kept)
    assert all(torch.equal(from_file[k], kept[k]) for k in kept)


def test_zeroscope_is_refused_with_the_alternative():
    bb = build_backbone("zeroscope", tiny=True, torch_dtype="float32")
    edit = apply_refusal_edit(bb, "nudity")
    with pytest.raises(InputError, match="UNet3DConditionModel.*save_edited_model"):
        refusal_lora_state_dict(edit)
