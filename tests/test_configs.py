"""Every config parses (`--print_config`); every CPU-sized config fits a few steps through the real CLI."""

from pathlib import Path

import pytest
import yaml

from unlearn.cli import main

# attack_*.yaml configure `unlearn attack`, not LightningCLI (tests/test_attacks.py parses and runs them)
CONFIGS = sorted(p for p in Path(__file__).resolve().parent.parent.glob("configs/*.yaml") if not p.name.startswith("attack_"))
TINY = [c for c in CONFIGS if c.name.startswith("tiny_")]
TOY_WEIGHTS = Path(__file__).resolve().parent.parent / "unlearn" / "toyworld" / "weights" / "world.json"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_print_config(config, capsys):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(config), "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    source = yaml.safe_load(config.read_text())
    # every key of the file is a constructor argument that survived parsing
    assert printed["model"]["class_path"] == source["model"]["class_path"]
    for key in source["model"].get("init_args", {}):
        assert key in printed["model"]["init_args"], key
    for key in source["data"].get("init_args", {}):
        assert key in printed["data"]["init_args"], key


@pytest.mark.parametrize("config", TINY, ids=lambda p: p.name)
def test_tiny_config_fits(config, tmp_path):
    main(["fit", "--config", str(config), "--trainer.max_steps", "2", "--trainer.max_epochs", "1",
          "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false",
          "--trainer.callbacks", "[]"])
    assert not list(tmp_path.rglob("*.ckpt"))  # adapters are never pickled


@pytest.mark.slow
@pytest.mark.skipif(not TOY_WEIGHTS.exists(), reason="toy world weights not built (unlearn toyworld pretrain)")
def test_toy_shapes_fast_dev_run(tmp_path):
    main(["fit", "--config", "configs/toy_shapes.yaml", "--trainer.fast_dev_run", "true",
          "--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir", str(tmp_path),
          "--data.init_args.num_prompts", "4", "--data.init_args.cache_dir", str(tmp_path / "cache")])


def _toy_ablation_variants() -> dict:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from toy_ablation import VARIANTS

    return VARIANTS


@pytest.mark.parametrize("name", list(_toy_ablation_variants()))
def test_toy_ablation_variant_overrides_parse_and_apply(name, capsys):
    """Each row of benchmarks/toy_ablation.py is the main config plus its overrides, and nothing else."""
    overrides = _toy_ablation_variants()[name]
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", "configs/toy_shapes.yaml", *overrides, "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    for key, value in zip(overrides[::2], overrides[1::2]):
        parts = key.removeprefix("--").split(".")  # e.g. model.init_args.alpha
        got = printed[parts[0]]["init_args"][parts[-1]]
        assert got == yaml.safe_load(value), (key, got, value)


def test_toy_ablation_splits_psr_into_preserved_and_other_classes():
    _toy_ablation_variants()  # puts benchmarks/ on the path
    from toy_ablation import _data_args, preserve_classes, split_psr

    preserved = preserve_classes(_data_args("configs/toy_shapes.yaml"))
    assert len(preserved) == 8 and "red ring" not in preserved
    assert all("red" in c.split() or "ring" in c.split() for c in preserved)
    row = {"per_class_top1": {"red ring": 0.0, "red square": 50.0, "green ring": 100.0, "blue bar": 20.0,
                              "white dot": 40.0}}
    assert split_psr(row, ["red square", "green ring"], "red ring") == (75.0, 30.0)
