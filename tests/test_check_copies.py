"""The attention processors are diffusers' processors plus fenced hooks, and `unlearn.backbones.check_copies` proves it:
every marked copy matches the installed diffusers, the copied class is the one the denoiser really runs, and a
copy that drifts (outside the fenced regions) is caught with a diff."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from backbone_checks import get_bundle

from unlearn.backbones import available_backbones, backbone_class
from unlearn.backbones import check_copies as cc

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ROOT / "backbones"


def _copy_of(cls: type) -> cc.Copy:
    path = inspect.getsourcefile(cls)
    copies = [c for c in cc.find_copies(Path(path).read_text(), path) if c.qualname == f"{cls.__qualname__}.__call__"]
    assert len(copies) == 1, f"{cls.__qualname__}.__call__ in {path} carries no '# Copied from diffusers...' marker"
    return copies[0]


def _with(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_every_copy_matches_the_installed_diffusers(capsys):
    # what `python -m unlearn.backbones.check_copies` runs: every module of the package
    assert cc.main([]) == 0, capsys.readouterr().out
    assert "4 copied block(s) match the installed diffusers" in capsys.readouterr().out


@pytest.mark.parametrize("name", available_backbones())
def test_each_processor_is_a_marked_copy_of_the_processor_the_denoiser_runs(name):
    copy = _copy_of(backbone_class(name).processor_class)
    stock = {f"{type(p).__module__}.{type(p).__qualname__}" for p in get_bundle(name).stock_processors}
    assert stock == {copy.target.removesuffix(".__call__")}
    assert cc.check_copy(copy) is None


def test_a_drifted_copy_is_caught_with_a_diff(tmp_path, capsys):
    text = (FAMILIES / "cogvideox.py").read_text()
    drifted = tmp_path / "cogvideox.py"
    drifted.write_text(
        _with(text, "attn_mask=attention_mask, dropout_p=0.0", "attn_mask=attention_mask, dropout_p=0.1")
    )
    assert cc.main([str(drifted)]) == 1
    out = capsys.readouterr().out
    assert "no longer matches diffusers.models.attention_processor.CogVideoXAttnProcessor2_0.__call__" in out
    # the copy calls the attention its concept-map hook picks (the marker declares the rename F.sdpa->attention)
    assert "-    hidden_states = attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0" in out
    assert "+    hidden_states = attention(query, key, value, attn_mask=attention_mask, dropout_p=0.1" in out

    # a dropped line is drift too
    dropped = _with(text, "        if attn.norm_k is not None:\n            key = attn.norm_k(key)\n", "")
    drifted.write_text(dropped)
    count, problems = cc.check_files([drifted])
    assert count == 1 and len(problems) == 1 and "-        key = attn.norm_k(key)" in problems[0]


def test_hook_regions_comments_and_formatting_do_not_count(tmp_path):
    text = (FAMILIES / "zeroscope.py").read_text()
    text = _with(
        text,
        "ZeroScopeBackbone.adapt_attention_output(hidden_states, self.switch, self.site_index)\n",
        "ZeroScopeBackbone.adapt_attention_output(hidden_states, self.switch, 0)  # changed in the hook\n",
    )
    text = _with(
        text,
        "        # linear proj\n        hidden_states = attn.to_out[0](hidden_states)\n",
        "        hidden_states = attn.to_out[0](\n            hidden_states  # reformatted\n        )\n",
    )
    (tmp_path / "zeroscope.py").write_text(text)
    assert cc.check_files([tmp_path / "zeroscope.py"]) == (1, [])


def test_the_imports_region_must_bind_the_objects_diffusers_uses(tmp_path):
    text = (FAMILIES / "hunyuanvideo.py").read_text()
    text = _with(
        text,
        "        from diffusers.models.attention_dispatch import dispatch_attention_fn\n",
        "        from torch.nn.functional import scaled_dot_product_attention as dispatch_attention_fn\n",
    )
    (tmp_path / "hunyuanvideo.py").write_text(text)
    count, problems = cc.check_files([tmp_path / "hunyuanvideo.py"])
    assert count == 1 and len(problems) == 1
    assert "binds 'dispatch_attention_fn'" in problems[0] and "transformer_hunyuan_video" in problems[0]


def _stock_copy(marker: str, renames: dict[str, str]) -> str:
    """A module holding a marked copy of diffusers' AttnProcessor2_0.__call__ with ``renames`` applied."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    body = inspect.getsource(AttnProcessor2_0.__call__)
    for old, new in renames.items():
        body = re.sub(rf"\b{old}\b", new, body)
    return f"class P:\n    {marker}\n{body}"


def test_declared_renames(tmp_path):
    path = tmp_path / "copy.py"
    target = "diffusers.models.attention_processor.AttnProcessor2_0.__call__"
    path.write_text(_stock_copy(f"# Copied from {target} with attn->layer", {"attn": "layer"}))
    assert cc.check_files([path]) == (1, [])
    path.write_text(_stock_copy(f"# Copied from {target}", {"attn": "layer"}))
    assert len(cc.check_files([path])[1]) == 1  # the same rename, undeclared, is drift


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "class P:\n    # Copied from diffusers.models.attention_processor.NoSuchProcessor.__call__\n"
            "    def __call__(self):\n        pass\n",
            "has no 'NoSuchProcessor'",
        ),
        (
            "# Copied from diffusers.models.attention_processor.AttnProcessor2_0.__call__\n\nx = 1\n",
            "not directly above a def or class",
        ),
        (
            "class P:\n    # Copied from diffusers.models.attention_processor.AttnProcessor2_0.__call__\n"
            "    def __call__(self):\n        # t2v-unlearn: begin adapter hook\n        pass\n",
            "never closed",
        ),
        (
            "class P:\n    # Copied from diffusers.models.attention_processor.AttnProcessor2_0.__call__\n"
            "    def __call__(self):\n        # t2v-unlearn: begin adapter hook\n        pass\n"
            "        # t2v-unlearn: end concept-map hook\n        return 1\n",
            "does not close region 'adapter hook'",
        ),
        (
            "class P:\n    # Copied from diffusers.models.attention_processor.AttnProcessor2_0.__call__\n"
            "    def __call__(self):\n        if self:\n            # t2v-unlearn: begin adapter hook\n"
            "            pass\n            # t2v-unlearn: end adapter hook\n        return 1\n",
            "not valid Python",
        ),
        (
            "class P:\n    # Copied from diffusers.models.attention_processor.AttnProcessor2_0.__call__ with attn\n"
            "    def __call__(self):\n        pass\n",
            "not of the form old->new",
        ),
    ],
)
def test_bad_markers_and_regions_are_one_clear_problem(tmp_path, text, message):
    path = tmp_path / "bad.py"
    path.write_text(text)
    _, problems = cc.check_files([path])
    assert len(problems) == 1 and message in problems[0], problems
