"""Toy world renderer: determinism, shapes/colours, distinguishability."""

import numpy as np
import pytest

from unlearn.toyworld import weights_available
from unlearn.toyworld.render import (
    BACKGROUNDS,
    COLOURS,
    SHAPES,
    SceneSpec,
    class_names,
    frames_to_latents,
    latents_to_frames,
    random_scene,
    render_video,
)


def test_render_shape_dtype_and_determinism():
    s = SceneSpec("ring", "red", "right", "striped", "large", second_colour="blue", seed=7)
    a = render_video(s)
    b = render_video(s)
    assert a.shape == (4, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(
        a, render_video(SceneSpec("ring", "red", "right", "striped", "large", second_colour="blue", seed=8))
    )
    assert render_video(s, height=24, width=24, frames=6).shape == (6, 24, 24, 3)


def test_motion_moves_the_object():
    for motion, axis, sign in [("right", 1, 1), ("left", 1, -1), ("down", 0, 1), ("up", 0, -1)]:
        v = render_video(SceneSpec("dot", "white", motion, "dark", seed=3)).astype(float).sum(-1)
        com = [np.array(np.unravel_index(np.argmax(f), f.shape))[axis] for f in v]
        assert sign * (com[-1] - com[0]) >= 2, motion
    still = render_video(SceneSpec("dot", "white", "still", "dark", seed=3))
    assert np.array_equal(still[0], still[-1])


def test_every_class_renders_differently():
    firsts = {}
    for c in COLOURS:
        for s in SHAPES:
            firsts[(c, s)] = render_video(SceneSpec(s, c, "still", "dark", seed=0))[0].astype(int)
    keys = list(firsts)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert np.abs(firsts[a] - firsts[b]).sum() > 500, (a, b)


def test_colours_stay_visible_on_every_background():
    for bg in BACKGROUNDS:
        for c in COLOURS:
            v = render_video(SceneSpec("square", c, "still", bg, seed=1)).astype(int)
            centre = v[0, 7:9, 7:9].reshape(-1, 3).mean(0)
            corner = v[0, 0, 0]
            assert np.abs(centre - corner).max() > 100, (bg, c)


def test_random_scene_and_latent_round_trip():
    rng = np.random.default_rng(0)
    scenes = [random_scene(rng) for _ in range(50)]
    assert {s.shape for s in scenes} == set(SHAPES)
    assert SceneSpec.from_dict(scenes[0].to_dict()) == scenes[0]
    v = render_video(scenes[0])
    lat = frames_to_latents(v)
    assert tuple(lat.shape) == (4, 3, 16, 16) and float(lat.min()) >= -1 and float(lat.max()) <= 1
    assert np.array_equal(latents_to_frames(lat).numpy(), v)
    assert len(class_names()) == 25 and class_names()[0] == "red ring"


def test_bad_spec_rejected():
    with pytest.raises(ValueError):
        SceneSpec("triangle", "red")
    with pytest.raises(ValueError):
        SceneSpec("ring", "purple")


@pytest.mark.skipif(not weights_available(), reason="toy weights not built yet: run unlearn toyworld pretrain")
def test_shipped_classifier_recognises_fresh_frames():
    import torch

    from unlearn.toyworld import load_classifier
    from unlearn.toyworld.classifier import accuracy, rendered_frames

    torch.set_num_threads(1)
    clf = load_classifier()
    x, y = rendered_frames(100, seed=424242)
    assert accuracy(clf, x, y) >= 0.95
    v, i, names = clf.topk(x[:3], k=5)
    assert v.shape == (3, 5) and len(names[0]) == 5


@pytest.mark.skipif(not weights_available(), reason="toy weights not built yet: run unlearn toyworld pretrain")
def test_shipped_classifier_says_nothing_drawn_and_off_palette():
    import numpy as np
    import torch

    from unlearn.toyworld import load_classifier
    from unlearn.toyworld.classifier import blank_frames, is_off_palette, outcome_accuracy
    from unlearn.toyworld.render import random_scene

    torch.set_num_threads(1)
    clf = load_classifier()
    assert clf.outcomes[0] == "nothing" and len(clf.labels) == 31
    # a blank frame is never a class: every background, and flat black / grey frames
    flat = np.stack([np.full((16, 16, 3), v, dtype=np.uint8) for v in (0, 22, 60, 105)])
    assert clf.predict(np.concatenate([blank_frames(seed=5), flat])) == ["nothing"] * 8
    # an object in a colour off the palette is reported as such, with its shape
    rng = np.random.default_rng(1)
    cases = {"ring": (225, 35, 225), "square": (240, 140, 30), "cross": (30, 220, 220), "bar": (150, 225, 40)}
    for shape, rgb in cases.items():
        assert is_off_palette(rgb)
        spec = random_scene(rng, shape=shape, colour="red", background="dark", second_colour=None)
        assert set(clf.predict(render_video(spec, colour_rgb=rgb))) == {f"off-palette {shape}"}, (shape, rgb)
        assert set(clf.predict(render_video(spec))) == {f"red {shape}"}
    acc = outcome_accuracy(clf, 50, seed=31337)
    assert acc["blank_nothing"] == 1.0 and acc["blank_called_a_class"] == 0.0 and acc["off_palette_any"] >= 0.9
