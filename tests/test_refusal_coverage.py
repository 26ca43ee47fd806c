"""The default refusal edit leaves no path by which the prompt reaches the video tokens, on every registered
backbone (tiny models): every text path into the prediction passes an edited layer, and no edited layer's
output keeps a component in its removed subspace. The one path left on purpose is the prompt's token count
(the attention mask over padding), which carries no concept: the probes compare prompts of equal length."""

import pytest
from backbone_checks import get_bundle

from unlearn.backbones import available_backbones
from unlearn.methods.refusal.edit import (
    apply_refusal_edit,
    collect_token_activations,
    covers_text_paths,
    resolve_layers,
)

PAIRS = [
    ("a red ring moves left", "a blue ring moves left"),
    ("a red square on the beach", "a blue square on the beach"),
    ("a small red dog", "a small blue dog"),
    ("the red car at night", "the blue car at night"),
    ("a red bird in the sky", "a blue bird in the sky"),
]
UNSEEN = ["a red house near the river", "a woman walking in the city", "a blue cat"]


@pytest.mark.parametrize("name", available_backbones())
def test_default_edit_covers_every_text_path(name):
    bb = get_bundle(name).bb
    layers = resolve_layers(bb, "auto")
    assert covers_text_paths(bb, layers), f"{name}: the prompt reaches the prediction around {layers}"
    edit = apply_refusal_edit(bb, PAIRS, layers="auto", digests=False)
    try:
        assert set(edit.bases) == set(layers)
        acts = collect_token_activations(bb, UNSEEN, list(edit.bases))
        for layer, basis in edit.bases.items():
            a = acts[layer].double()
            left = (a @ basis.to(a)).abs().max()
            assert left <= 1e-5 * a.abs().max(), f"{name}: {layer} keeps {left:.2e} of the concept direction"
    finally:
        edit.restore(bb)


def test_hunyuan_text_kv_alone_leaves_paths_open():
    """The earlier default (dual-stream add_k/add_v) misses the text stream into the single-stream blocks and
    the pooled CLIP modulation; `auto` now edits the text's entry points instead."""
    bb = get_bundle("hunyuanvideo").bb
    kv = resolve_layers(bb, "text_kv")
    assert all(n.startswith("transformer_blocks.") for n in kv)
    assert not covers_text_paths(bb, kv)
    auto = resolve_layers(bb, "auto")
    assert set(auto) == {
        "context_embedder.proj_in",
        "context_embedder.time_text_embed.text_embedder.linear_1",
        "time_text_embed.text_embedder.linear_1",
    }
    # neither the token path nor the pooled path alone is enough
    assert not covers_text_paths(bb, ["context_embedder.proj_in"])
    assert not covers_text_paths(bb, ["time_text_embed.text_embedder.linear_1"])


def test_text_input_is_the_texts_entry_points():
    cog = get_bundle("cogvideox-2b").bb
    assert resolve_layers(cog, "text_input") == ["patch_embed.text_proj"]
    wan = get_bundle("wan2.1-t2v-1.3b").bb
    assert resolve_layers(wan, "text_input") == ["condition_embedder.text_embedder.linear_1"]
    assert resolve_layers(wan, "auto") == resolve_layers(wan, "text_kv")  # cross-attention: k/v cover every path
