"""The evaluation callback reads suites through the runner's loader: same prompts, seeds and hash."""

import json

import pytest

from unlearn.evaluation.suites import load_suite


def test_toyworld_suite_is_stable():
    s = load_suite("toyworld", per_class=2, seed=7)
    assert len(s) == 50 and s.sha256() == load_suite("toyworld", per_class=2, seed=7).sha256()
    assert [it.seed for it in s] == list(range(7, 57))
    assert s.sha256() != load_suite("toyworld", per_class=2, seed=8).sha256()


def test_suite_file_seeds_and_missing_class(tmp_path):
    from unlearn.callbacks import ErasureEvaluation

    good = tmp_path / "ok.jsonl"
    good.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"prompt": "a golf ball on grass", "concept": "golf ball", "seed": 3},
                {"prompt": "a church at dusk", "concept": "church"},
            ]
        )
        + "\n"
    )
    s = load_suite(str(good), per_class=1, seed=100)
    assert [(it.label, it.seed) for it in s] == [("golf ball", 3), ("church", 101)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"prompt": "a church at dusk", "concept": "church"})
        + "\n"
        + json.dumps({"prompt": "a quiet street"})
        + "\n"
    )

    class _DM:
        concept = "church"

    class _Trainer:
        datamodule = _DM()

    with pytest.raises(ValueError, match=r"prompt 1 \('a quiet street'\) names no class"):
        ErasureEvaluation(suite=str(bad), per_class=1, seed=0).evaluate(_Trainer(), None, final=False)


def test_callback_records_what_each_row_computed(tmp_path):
    """A short fit on the random toy model: metrics.json names each row's settings (the negative-prompting
    scale, SAFREE's options) beside its numbers."""
    import json

    import lightning.pytorch as pl

    from unlearn.callbacks import ErasureEvaluation
    from unlearn.methods.t2vunlearning import T2VUnlearning, ToyWorldDataModule

    model = T2VUnlearning(backbone="toy-cogvideox", tiny=True, torch_dtype="float32", adapter_dim=4, alpha=0.0)
    dm = ToyWorldDataModule(
        num_prompts=2,
        preserve_prompts_per_class=1,
        num_inference_steps=2,
        record_steps=[1],
        cache_dir=str(tmp_path / "cache"),
        batch_size=2,
    )
    cb = ErasureEvaluation(
        rows=["original", "negprompt", "safree", "t2vunlearning"],
        per_class=1,
        per_group={},
        out_of_grammar={},
        num_inference_steps=2,
        batch_size=25,
        sample_videos=0,
        row_options={"safree": {"schedule": "self_validating"}},
        dirpath=str(tmp_path / "eval"),
    )
    pl.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[cb],
    ).fit(model, dm)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    # the rows by their canonical names only: no `unlearned` alias row (results before #22 repeated the live row)
    assert set(metrics["rows"]) == {"original", "negprompt", "safree", "t2vunlearning"}
    methods = metrics["methods"]
    assert methods["negprompt"]["settings"] == {
        "negative_prompt": "red ring",
        "guidance_scale": 5.0,
        "true_cfg": False,
        "embedded_guidance_scale": None,
    }
    assert methods["safree"]["settings"]["schedule"] == "self_validating"
    assert methods["safree"]["options"] == {"schedule": "self_validating"}
    assert "crimson hoop" in methods["safree"]["keywords"]
    assert metrics["rows"]["original"]["erased_frames"] == 4  # one prompt of the erased class, four frames
    # collateral where it lands: every kept class of every row against the original, in metrics.json and .md
    orig = metrics["rows"]["original"]["per_class_top1"]
    for row in ("negprompt", "safree", "t2vunlearning"):
        r = metrics["rows"][row]
        per = r["vs_reference"]["per_class"]
        assert set(per) == set(orig) - {"red ring"} and len(per) == 24
        assert all(per[c]["delta"] == pytest.approx(r["per_class_top1"][c] - orig[c]) for c in per)
    md = (tmp_path / "eval" / "metrics.md").read_text()
    table = md.split("### Per-class top-1 against the original row")[1].split("\n\n")[1].splitlines()
    assert table[0] == "| class | original top-1 | Δ negprompt | Δ safree | Δ t2vunlearning |" and len(table) == 2 + 24
    # ... and as bars, beside esr_psr.png
    from PIL import Image

    with Image.open(tmp_path / "eval" / "plots" / "class_delta.png") as im:
        assert im.format == "PNG" and im.size == (1200, 540)
