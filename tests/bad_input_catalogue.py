"""The bad-input catalogue (issues #15, #27): the mistakes a new user makes, each run through the `unlearn` command.

    python benchmarks/bad_inputs.py --code /work/main --out runs/bad_inputs/main     # before
    python benchmarks/bad_inputs.py --code .          --out runs/bad_inputs/branch   # after

runs every case as its own process (``PYTHONPATH=<code>``, so any checkout can be measured with the same cases)
and writes ``<out>/results.json`` + ``<out>/table.md``. ``tests/test_bad_inputs.py`` runs the same cases in one
process (fast) and a few as real processes.

A case is a command line of ``unlearn`` (``{ws}``: the shared workspace with one tiny finished run, weights
folders and prompt files; ``{root}``: the case's own output folder, seeded with an earlier run's finished
adapters), the exit status it must end with (2: refused before the run started; 1: the run failed; 0: the bad
input was repaired, e.g. a corrupt cache entry made again, with a warning naming it), and the key words the
last stderr line (for exit 0: a warning) must hold. Each outcome is one of

* **clear**: the right exit status, no traceback, the key words on the last line;
* **unclear**: refused without a traceback, but the last line lacks the key words;
* **traceback**: a Python traceback on stderr;
* **silent wrong**: exit 0 on bad input, or an output of the failed command (or an older one beside it) that
  passes for a good one (a finished-looking adapters folder the failing run wrote into, results, an export);

and, independently, **lost**: the earlier run's adapters in the case folder were destroyed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

TINY_YAML = """\
# the catalogue's tiny T2VUnlearning run (CPU, seconds): cogvideox-2b tiny, 2 prompts, 2 sampler steps
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  max_epochs: 1
  max_steps: 2
  logger: false
  enable_checkpointing: false
  enable_model_summary: false
  enable_progress_bar: false
  callbacks:
    - class_path: unlearn.callbacks.AdapterCheckpoint
model:
  class_path: unlearn.methods.t2vunlearning.T2VUnlearning
  init_args:
    backbone: cogvideox-2b
    tiny: true
    torch_dtype: float32
    adapter_dim: 4
    eta: 7.0
    alpha: 1.0
    beta: 0.0
    learning_rate: 1.0e-3
data:
  class_path: unlearn.methods.t2vunlearning.ConceptDataModule
  init_args:
    concept: nudity
    concept_synonyms: [naked, nude]
    prompts: [a naked person walking on the beach, a nude woman standing in a sunlit room]
    num_frames: 9
    height: 32
    width: 32
    num_inference_steps: 2
    guidance_scale: 6.0
    batch_size: 2
"""

REFUSAL_YAML = """\
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  max_epochs: 1
  logger: false
  enable_checkpointing: false
  enable_model_summary: false
  enable_progress_bar: false
model:
  class_path: unlearn.methods.refusal.RefusalVectorUnlearning
  init_args: {backbone: zeroscope, tiny: true, torch_dtype: float32, rank: 2, save_model: false}
data:
  class_path: unlearn.methods.refusal.RefusalPairsDataModule
  init_args: {concept: nudity, num_pairs: 2, substitute: clothed, templates: person}
"""

TOY_SUITE = [
    {"prompt": "a red ring moves left", "concept": "red ring", "seed": 1},
    {"prompt": "a blue square moves up", "concept": "blue square", "seed": 2},
]


# ============================================================================================ the workspace
def _fit_argv(ws: Path, root: Path, *extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        str(ws / "tiny.yaml"),
        "--trainer.default_root_dir",
        str(root),
        "--data.init_args.cache_dir",
        str(ws / "cache"),
        *extra,
    ]


def run_unlearn(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """``unlearn argv`` in this process: (exit status, stderr + warnings)."""
    from unlearn.cli import main

    err = io.StringIO()
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            try:
                rc = int(main(list(argv)) or 0)
            except SystemExit as e:  # argparse usage errors
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = err.getvalue()
    notes = "".join(f"warning: {w.message}\n" for w in caught)
    return rc, notes + text


def build_workspace(ws: Path) -> Path:
    """The shared inputs: one tiny finished run (adapters + checkpoint), weights folders, prompt files."""
    import torch

    from unlearn.backbones import build_backbone
    from unlearn.methods.t2vunlearning import AdapterSwitch, save_adapters
    from unlearn.prompts import PromptSuite

    ws.mkdir(parents=True, exist_ok=True)
    (ws / "tiny.yaml").write_text(TINY_YAML)
    (ws / "refusal.yaml").write_text(REFUSAL_YAML)
    good = ws / "good"
    rc, err = run_unlearn(_fit_argv(ws, good, "--trainer.enable_checkpointing", "true"))
    if rc != 0:
        raise RuntimeError(f"the catalogue's good run failed ({rc}):\n{err[-3000:]}")
    ckpts = sorted(good.rglob("*.ckpt"))
    if not ckpts or not (good / "adapters" / "adapters.safetensors").is_file():
        raise RuntimeError(f"the good run wrote no checkpoint/adapters: {sorted(p.name for p in good.rglob('*'))}")
    shutil.copy(ckpts[-1], ws / "good.ckpt")
    shutil.copytree(ws / "cache", ws / "clean_cache")  # the good run's pseudo data, before any other case adds to it
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    bb.save_pretrained(str(ws / "weights" / "cogx2b"))
    build_backbone("zeroscope", tiny=True, torch_dtype="float32").save_pretrained(str(ws / "weights" / "zeroscope"))
    big = build_backbone("cogvideox-5b", tiny=True, torch_dtype="float32")
    sites = big.attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 4, [s.name for s in sites])
    save_adapters(switch, "cogvideox-2b", ws / "adapters_5b_named_2b")  # a 5B run's adapters, relabelled by hand
    save_adapters(switch, "cogvideox-5b", ws / "adapters_5b")
    torch.manual_seed(0)
    p = ws / "prompts"
    p.mkdir(exist_ok=True)
    (p / "empty.jsonl").write_text("")
    (p / "bad.jsonl").write_text('{"prompt": "a naked person"}\n{"prompt": "a nude man", \n')
    (p / "latin1.jsonl").write_bytes('{"prompt": "a naked person in a café"}\n'.encode("latin-1"))
    (p / "nocol.csv").write_text("text\na naked person\n")
    PromptSuite(TOY_SUITE).save(ws / "toy_suite.jsonl")
    return ws


# ============================================================================================ checks
def tree(path: Path, skip: tuple[str, ...] = ("cache",)) -> dict[str, str]:
    """relative path → sha256 of every file under ``path`` (``skip``: top-level folders left out)."""
    out = {}
    if not path.exists():
        return out
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path)
        if f.is_file() and rel.parts[0] not in skip:
            out[str(rel)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def adapters_ok(folder: Path) -> bool:
    try:
        from unlearn.methods.t2vunlearning import load_adapters

        load_adapters(folder)
        return True
    except Exception:  # noqa: BLE001
        return False


def marked_unfinished(path: Path) -> bool:
    """True when a ``run_status.json`` at or above ``path`` says its run failed or was interrupted (files read
    directly, so any checkout's outputs can be judged)."""
    p = path.absolute()
    for folder in [p, *p.parents]:
        f = folder / "run_status.json"
        if f.is_file():
            try:
                return json.loads(f.read_text()).get("status") != "finished"
            except ValueError:
                return True
    return False


def fit_problem(root: Path, before: dict[str, str], rc: int) -> str | None:
    """A failed fit that wrote into its folder must leave the adapters there marked as not finished."""
    if rc == 0:
        return None
    after = tree(root)
    # the run's bookkeeping (status, the folder's lock and record) is not an output
    written = {k for k in set(after) | set(before) if after.get(k) != before.get(k)} - {
        "run_status.json",
        ".unlearn-fit.lock",
        "run_record.json",
    }
    if written and (root / "adapters").exists() and not marked_unfinished(root / "adapters"):
        return f"the failed run wrote {sorted(written)[:3]} and left adapters/ looking finished"
    return None


# ============================================================================================ the cases
Setup = Callable[[Path, Path], None]
Verify = Callable[[Path, Path, int, str], "str | None"]


@dataclasses.dataclass
class Case:
    """One bad input. ``argv``: ``unlearn`` arguments with ``{ws}``/``{root}``; ``code``: the exit status it
    must end with; ``words``: key words (all, case-insensitive) of the last stderr line, or of the warning for
    exit 0; ``forbid``: strings that must appear nowhere on stderr (secrets); ``fit``: a training run (its
    folder is seeded with finished adapters and judged by :func:`fit_problem`)."""

    name: str
    argv: list[str]
    code: int
    words: list[str]
    setup: Setup | None = None
    verify: Verify | None = None
    forbid: list[str] = dataclasses.field(default_factory=list)
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    fit: bool = False
    slow: bool = False

    def render(self, ws: Path, root: Path) -> list[str]:
        return [a.replace("{ws}", str(ws)).replace("{root}", str(root)) for a in self.argv]


def fit(name: str, extra: list[str], code: int, words: list[str], **kw: Any) -> Case:
    return Case(
        name,
        [
            "fit",
            "--config",
            "{ws}/tiny.yaml",
            "--trainer.default_root_dir",
            "{root}",
            "--data.init_args.cache_dir",
            "{ws}/cache",
            *extra,
        ],
        code,
        words,
        fit=True,
        **kw,
    )


def m(key: str, value: str) -> list[str]:
    return [f"--model.init_args.{key}={value}"]


def d(key: str, value: str) -> list[str]:
    return [f"--data.init_args.{key}={value}"]


def pf(path: str) -> list[str]:
    """``data.prompt_file`` instead of the tiny config's prompts (both together are refused)."""
    return [*d("prompts", "null"), *d("prompt_file", path)]


def _copy_weights(ws: Path, root: Path) -> Path:
    dst = root / "w"
    shutil.copytree(ws / "weights" / "cogx2b", dst)
    return dst


def _truncate_text_encoder(ws: Path, root: Path) -> None:
    f = next((_copy_weights(ws, root) / "text_encoder").glob("*.safetensors"))
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _write(rel: str, data: bytes | str) -> Setup:
    def setup(ws: Path, root: Path) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())

    return setup


def _broken_adapters(name: str, data: bytes) -> Setup:
    """A copy of the good adapters in ``root/a`` whose file ``name`` holds ``data``."""

    def setup(ws: Path, root: Path) -> None:
        shutil.copytree(ws / "good" / "adapters", root / "a")
        (root / "a" / name).write_bytes(data)

    return setup


def _failed_run_adapters(ws: Path, root: Path) -> None:
    """An earlier run in ``root/prev`` that failed after writing adapters (what RunStatus leaves)."""
    shutil.copytree(ws / "good" / "adapters", root / "prev" / "adapters")
    (root / "prev" / "run_status.json").write_text(json.dumps({"status": "failed", "error": "KeyboardInterrupt"}))


def _ckpt(mutate: Callable[[dict], None] | None = None, raw: Callable[[bytes], bytes] | None = None) -> Setup:
    def setup(ws: Path, root: Path) -> None:
        from unlearn.io import load_checkpoint_file, save_checkpoint_file

        root.mkdir(parents=True, exist_ok=True)
        if raw is not None:
            (root / "x.ckpt").write_bytes(raw((ws / "good.ckpt").read_bytes()))
            return
        ckpt = load_checkpoint_file(ws / "good.ckpt")
        if mutate is not None:
            mutate(ckpt)
        save_checkpoint_file(ckpt, root / "x.ckpt")

    return setup


def _both(*setups: Setup) -> Setup:
    def setup(ws: Path, root: Path) -> None:
        for s in setups:
            s(ws, root)

    return setup


def _drop_adapter_keys(ckpt: dict) -> None:
    del ckpt["state_dict"]["switch.adapters.0.up.weight"]


def _no_output(rel: str) -> Verify:
    def verify(ws: Path, root: Path, rc: int, err: str) -> str | None:
        return f"{rel} was written by the failed command" if (root / rel).exists() else None

    return verify


def _cache_entries(ws: Path, root: Path) -> list[Path]:
    """The case's own copy of the good run's pseudo-data cache (the run under test then finds it)."""
    shutil.copytree(ws / "clean_cache", root / "cache")
    return sorted((root / "cache").rglob("*.safetensors"))


def _corrupt_cache(how: str) -> Setup:
    def setup(ws: Path, root: Path) -> None:
        entries = _cache_entries(ws, root)
        f = entries[0]
        data = bytearray(f.read_bytes())
        if how == "garbage":  # finite garbage in the tensor bytes, the header intact
            n = int.from_bytes(data[:8], "little")
            start = 8 + n
            for i in range(start, len(data) - 4, 4):
                data[i : i + 4] = (0x3F000000 + (i * 2654435761 % 0x7FFFFF)).to_bytes(4, "little")
            f.write_bytes(bytes(data))
        elif how == "truncated":
            f.write_bytes(bytes(data[: len(data) // 2]))
        elif how == "empty":
            f.write_bytes(b"")
        elif how == "swapped":  # another entry's file under this key
            shutil.copy(entries[1], f)
        elif how == "orphan":
            host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())
            (f.parent / f".{f.name}.~{host}-999999~x.tmp").write_bytes(b"half")  # a killed writer's

    return setup


def _cache_verify(how: str) -> Verify:
    def verify(ws: Path, root: Path, rc: int, err: str) -> str | None:
        if how == "orphan":
            left = list((root / "cache").rglob("*.tmp"))
            return f"orphan temporary files left: {[p.name for p in left]}" if left else None
        clean = tree(ws / "good" / "adapters")
        got = tree(root / "adapters")
        if not got:
            return "no adapters written"
        return (
            None
            if got["adapters.safetensors"] == clean["adapters.safetensors"]
            else "the adapters differ from those of a clean run (trained on the corrupt entry)"
        )

    return verify


# ============================================================================================ issue #27's kinds
def _nan_adapters(ws: Path, root: Path) -> None:
    """A copy of the good adapters in ``root/a`` with a NaN weight (what a diverged run leaves)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(ws / "good" / "adapters", root / "a")
    state = load_file(root / "a" / "adapters.safetensors")
    key = sorted(state)[0]
    state[key][..., 0] = float("nan")
    save_file(state, root / "a" / "adapters.safetensors")


def _nan_toy_adapters(ws: Path, root: Path) -> None:
    """NaN adapters of the evaluation cases' backbone (the tiny toy model) in ``root/a``."""
    from unlearn.backbones import build_backbone
    from unlearn.methods.t2vunlearning import AdapterSwitch, save_adapters

    sites = build_backbone("toy-cogvideox", tiny=True, torch_dtype="float32").attention_sites()
    switch = AdapterSwitch([s.video_dim for s in sites], 4, [s.name for s in sites])
    switch.adapters[0].up.weight.data.fill_(float("nan"))
    save_adapters(switch, "toy-cogvideox", root / "a")


def _hparams(**changes: Any) -> Callable[[dict], None]:
    """A checkpoint whose recorded model hyperparameters were edited (an attacker's, or another run's)."""

    def mutate(ckpt: dict) -> None:
        ckpt["hyper_parameters"] = {**ckpt.get("hyper_parameters", {}), **changes}

    return mutate


def _other_config_record(ws: Path, root: Path) -> None:
    """The folder holds a finished run of another config (what ``unlearn fit`` records in run_record.json)."""
    record = {"format": "t2v-unlearn-run-record/1", "config_sha256": "0" * 64, "config": {"model": {"eta": 1.0}}}
    (root / "run_record.json").write_text(json.dumps(record))


_LOCKS: list[int] = []


def _folder_in_use(ws: Path, root: Path) -> None:
    """Another fit holds the folder's lock (an flock, as ``unlearn fit`` takes it)."""
    import fcntl

    fd = os.open(root / ".unlearn-fit.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.pwrite(fd, json.dumps({"pid": 4242, "host": "elsewhere", "started": "earlier"}).encode(), 0)
    _LOCKS.append(fd)


def _release_lock(ws: Path, root: Path, rc: int, err: str) -> str | None:
    while _LOCKS:
        os.close(_LOCKS.pop())
    return None


def _failed_run_status(ws: Path, root: Path) -> None:
    shutil.copytree(ws / "good" / "adapters", root / "run" / "adapters")
    (root / "run" / "run_status.json").write_text(json.dumps({"status": "failed", "error": "DivergenceError"}))


def pu(name: str, folder: str, code: int, words: list[str], extra: list[str] = (), **kw: Any) -> Case:
    return Case(name, ["push", folder, "--repo", "alice/x", "--dry-run", *extra], code, words, **kw)


#: the checkout cases run against (None: this process); setups that run `unlearn` themselves use it too, so
#: the files they make are those of the code under test
CODE: Path | None = None


def _run_setup(argv: list[str]) -> tuple[int, str]:
    if CODE is None:
        return run_unlearn(argv)
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from unlearn.cli import main; sys.exit(main())", *argv],
        env={**os.environ, "PYTHONPATH": str(CODE)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    return proc.returncode, proc.stderr


def _corrupt_video(ws: Path, root: Path) -> None:
    rc, err = _run_setup(_evaluate(ws, root / "out"))
    if rc != 0:
        raise RuntimeError(err[-2000:])
    v = _video0(root)
    data = bytearray(v.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)  # same size, other bytes
    v.write_bytes(bytes(data))
    (root / "corrupted.sha256").write_text(hashlib.sha256(bytes(data)).hexdigest())


def _video0(root: Path) -> Path:
    """The original row's video of prompt 0 (``videos/original_0_<label>.mp4``, the fit callback's names)."""
    return next((root / "out" / "videos").glob("original_0_*.mp4"))


def _video_verify(ws: Path, root: Path, rc: int, err: str) -> str | None:
    v = _video0(root)
    if hashlib.sha256(v.read_bytes()).hexdigest() == (root / "corrupted.sha256").read_text():
        return "the corrupted video was reused and scored"
    return None


def _evaluate(ws: Path, out: Path, *methods: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "evaluate",
        "--out",
        str(out),
        "--suite",
        str(ws / "toy_suite.jsonl"),
        "--backbone",
        "toy-cogvideox",
        "--tiny",
        "--dtype",
        "float32",
        "--concept",
        "red ring",
        "--classifier",
        "toyworld",
        "--steps",
        "2",
        "--no-plots",
        "--methods",
        *(methods or ("original",)),
        *extra,
    ]


def ev(name: str, methods: list[str], code: int, words: list[str], extra: list[str] = (), **kw: Any) -> Case:
    argv = [
        "evaluate",
        "--out",
        "{root}/out",
        "--suite",
        "{ws}/toy_suite.jsonl",
        "--backbone",
        "toy-cogvideox",
        "--tiny",
        "--dtype",
        "float32",
        "--concept",
        "red ring",
        "--classifier",
        "toyworld",
        "--steps",
        "2",
        "--no-plots",
        "--methods",
        *methods,
        *extra,
    ]
    kw.setdefault("verify", _no_output("out/metrics.json"))
    return Case(name, argv, code, words, **kw)


def ex(
    name: str,
    setup: Setup | None,
    code: int,
    words: list[str],
    ckpt: str = "{root}/x.ckpt",
    out: str = "{root}/exported",
    **kw: Any,
) -> Case:
    kw.setdefault("verify", _no_output("exported/adapters.safetensors"))
    return Case(name, ["export", "--ckpt", ckpt, "--out", out], code, words, setup=setup, **kw)


def au(name: str, extra: list[str], code: int, words: list[str], out: str = "{root}/p.jsonl", **kw: Any) -> Case:
    argv = ["augment", "--concept", "nudity", "--n", "2", "--out", out, "--cache-dir", "{root}/augcache", *extra]
    kw.setdefault(
        "verify", lambda ws, root, rc, err: "an output file was written" if rc and list(root.glob("p.*")) else None
    )
    return Case(name, argv, code, words, **kw)


def rf(name: str, extra: list[str], code: int, words: list[str], **kw: Any) -> Case:
    return Case(
        name,
        ["fit", "--config", "{ws}/refusal.yaml", "--trainer.default_root_dir", "{root}", *extra],
        code,
        words,
        fit=True,
        **kw,
    )


CASES: list[Case] = [
    # ---- the model (construction)
    fit("unknown_backbone", m("backbone", "cogvideox-3b"), 2, ["unknown backbone", "cogvideox-3b", "cogvideox-2b"]),
    fit("pretrained_missing", m("pretrained", "{root}/nowhere"), 2, ["does not exist", "nowhere"]),
    fit(
        "pretrained_empty_folder",
        m("pretrained", "{root}/w"),
        2,
        ["incomplete", "transformer"],
        setup=lambda ws, root: (root / "w").mkdir(parents=True),
    ),
    fit(
        "pretrained_truncated_text_encoder",
        m("pretrained", "{root}/w"),
        2,
        ["text_encoder", "truncated"],
        setup=_truncate_text_encoder,
    ),
    fit("pretrained_other_family", m("pretrained", "{ws}/weights/zeroscope"), 2, ["TextToVideoSD", "CogVideoX"]),
    fit(
        "pretrained_missing_vae",
        m("pretrained", "{root}/w"),
        2,
        ["missing", "vae"],
        setup=lambda ws, root: shutil.rmtree(_copy_weights(ws, root) / "vae"),
    ),
    fit("bad_dtype", m("torch_dtype", "bfloat"), 2, ["torch_dtype", "bfloat"]),
    fit("alpha_negative", m("alpha", "-1"), 2, ["model.alpha", ">= 0"]),
    fit("beta_negative", m("beta", "-0.5"), 2, ["model.beta", ">= 0"]),
    fit("eta_negative", m("eta", "-5"), 2, ["model.eta", "> 0"]),
    fit("eta_zero", m("eta", "0"), 2, ["model.eta", "> 0"]),
    fit("adapter_dim_zero", m("adapter_dim", "0"), 2, ["model.adapter_dim", ">= 1"]),
    fit("adapter_dim_negative", m("adapter_dim", "-3"), 2, ["model.adapter_dim", ">= 1"]),
    fit("adapter_dim_not_int", m("adapter_dim", "abc"), 2, ["adapter_dim", "integer"]),
    fit("mask_threshold_above_one", m("mask_threshold", "2.0"), 2, ["model.mask_threshold", "< 1"]),
    fit("mask_threshold_zero", m("mask_threshold", "0"), 2, ["model.mask_threshold", "> 0"]),
    fit("learning_rate_zero", m("learning_rate", "0"), 2, ["model.learning_rate", "> 0"]),
    fit("learning_rate_negative", m("learning_rate", "-1e-3"), 2, ["model.learning_rate", "> 0"]),
    fit("weight_decay_negative", m("weight_decay", "-0.1"), 2, ["model.weight_decay", ">= 0"]),
    fit("mask_layers_out_of_range", m("mask_layers", "[99]"), 2, ["mask_layers", "99"]),
    fit("model_option_typo", m("adapter_dimm", "8"), 2, ["adapter_dimm", "not accepted", "adapter_dim'"]),
    fit("divergence_factor_below_one", m("divergence_factor", "0.5"), 2, ["divergence_factor", "> 1"]),
    fit("init_adapters_missing", m("init_adapters", "{root}/nowhere"), 2, ["init_adapters", "nowhere"]),
    fit("init_adapters_of_5b_model", m("init_adapters", "{ws}/adapters_5b_named_2b"), 2, ["init_adapters", "widths"]),
    fit("init_adapters_of_other_backbone", m("init_adapters", "{ws}/adapters_5b"), 2, ["cogvideox-5b", "cogvideox-2b"]),
    fit(
        "init_adapters_truncated_weights",
        m("init_adapters", "{root}/a"),
        2,
        ["adapters.safetensors", "truncated"],
        setup=_broken_adapters("adapters.safetensors", b"\x10\x00"),
    ),
    fit(
        "init_adapters_bad_json",
        m("init_adapters", "{root}/a"),
        2,
        ["t2v_adapter_config.json", "json"],
        setup=_broken_adapters("t2v_adapter_config.json", b"{oops"),
    ),
    fit(
        "init_adapters_of_failed_run",
        m("init_adapters", "{root}/prev/adapters"),
        2,
        ["init_adapters", "failed"],
        setup=_failed_run_adapters,
    ),
    Case("config_missing", ["fit", "--config", "{root}/nope.yaml"], 2, ["nope.yaml", "does not exist"]),
    Case(
        "config_bad_yaml",
        ["fit", "--config", "{root}/bad.yaml"],
        2,
        ["bad.yaml", "line 1"],
        setup=_write("bad.yaml", "model: [unclosed\n"),
    ),
    fit("model_class_unknown", ["--model", "unlearn.methods.NoSuchMethod"], 2, ["NoSuchMethod", "no attribute"]),
    # ---- the data (construction)
    fit("concept_empty", d("concept", ""), 2, ["data.concept", "empty"]),
    fit("prompts_empty_list", d("prompts", "[]"), 2, ["data.prompts", "empty"]),
    fit(
        "prompt_without_concept",
        d("prompts", "[a cat sleeping on a bed]"),
        2,
        ["do not mention the concept", "nudity", "allow_prompts_without_concept"],
    ),
    fit(
        "prompt_without_concept_alpha_zero",
        [*m("alpha", "0"), *d("prompts", "[a cat sleeping on a bed]")],
        2,
        ["do not mention the concept", "allow_prompts_without_concept"],
    ),
    fit("prompt_file_missing", pf("{root}/none.jsonl"), 2, ["none.jsonl", "not found"]),
    fit("prompt_file_empty", pf("{ws}/prompts/empty.jsonl"), 2, ["empty.jsonl"]),
    fit("prompt_file_bad_json", pf("{ws}/prompts/bad.jsonl"), 2, ["bad.jsonl", "line 2"]),
    fit("prompt_file_not_utf8", pf("{ws}/prompts/latin1.jsonl"), 2, ["latin1.jsonl", "utf-8"]),
    fit("prompt_file_no_prompt_column", pf("{ws}/prompts/nocol.csv"), 2, ["nocol.csv", "prompt"]),
    fit("seeds_per_prompt_zero", d("seeds_per_prompt", "0"), 2, ["data.seeds_per_prompt", ">= 1"]),
    fit("batch_size_zero", d("batch_size", "0"), 2, ["data.batch_size", ">= 1"]),
    fit("num_inference_steps_zero", d("num_inference_steps", "0"), 2, ["data.num_inference_steps", ">= 1"]),
    fit("num_frames_not_4k_plus_1", d("num_frames", "8"), 2, ["data.num_frames", "4k+1", "9"]),
    fit("height_not_multiple_of_16", d("height", "30"), 2, ["data.height", "multiples of 16"]),
    fit("record_steps_beyond_schedule", d("record_steps", "[7]"), 2, ["data.record_steps", "0..1"]),
    fit("record_steps_negative", d("record_steps", "[-1]"), 2, ["data.record_steps", ">= 0"]),
    fit("guidance_scale_negative", d("guidance_scale", "-1"), 2, ["data.guidance_scale", ">= 0"]),
    fit("num_prompts_zero", d("num_prompts", "0"), 2, ["data.num_prompts", ">= 1"]),
    fit("generation_batch_size_zero", d("generation_batch_size", "0"), 2, ["data.generation_batch_size", ">= 1"]),
    fit("cache_dir_is_a_file", d("cache_dir", "{root}/f"), 2, ["data.cache_dir", "is a file"], setup=_write("f", "x")),
    fit(
        "toy_concept_unknown",
        ["--data", "unlearn.methods.t2vunlearning.ToyWorldDataModule", *d("concept", "purple hexagon")],
        2,
        ["data.concept", "purple", "red"],
    ),
    fit(
        "toy_num_prompts_zero",
        ["--data", "unlearn.methods.t2vunlearning.ToyWorldDataModule", *d("num_prompts", "0")],
        2,
        ["data.num_prompts", ">= 1"],
    ),
    # ---- callbacks
    fit(
        "mask_callback_every_zero",
        ["--trainer.callbacks+=unlearn.callbacks.ConceptMaskCallback", "--trainer.callbacks.every_n_epochs=0"],
        2,
        ["every_n_steps", "every_n_epochs", "both 0"],
    ),
    fit(
        "mask_callback_threshold",
        ["--trainer.callbacks+=unlearn.callbacks.ConceptMaskCallback", "--trainer.callbacks.threshold=1.5"],
        2,
        ["threshold", "< 1"],
    ),
    fit(
        "samples_callback_no_prompts",
        ["--trainer.callbacks+=unlearn.callbacks.SampleVideoCallback", "--trainer.callbacks.prompts=[]"],
        2,
        ["SampleVideoCallback", "prompt"],
    ),
    fit(
        "samples_callback_bad_frames",
        [
            "--trainer.callbacks+=unlearn.callbacks.SampleVideoCallback",
            "--trainer.callbacks.prompts=[a naked person]",
            "--trainer.callbacks.num_frames=6",
        ],
        2,
        ["num_frames", "4k+1"],
    ),
    fit(
        "evaluation_callback_unknown_row",
        ["--trainer.callbacks+=unlearn.callbacks.ErasureEvaluation", "--trainer.callbacks.rows=[bogus]"],
        2,
        ["bogus", "rows"],
    ),
    fit(
        "evaluation_callback_per_class_zero",
        ["--trainer.callbacks+=unlearn.callbacks.ErasureEvaluation", "--trainer.callbacks.per_class=0"],
        2,
        ["per_class", ">= 1"],
    ),
    # ---- the run
    fit(
        "diverging_learning_rate",
        [*m("learning_rate", "1e6"), "--trainer.max_steps", "40", "--trainer.max_epochs", "40"],
        1,
        ["diverged", "model.learning_rate"],
    ),
    fit("ckpt_path_missing", ["--ckpt_path", "{root}/none.ckpt"], 2, ["none.ckpt"]),
    fit(
        "cache_entry_finite_garbage",
        ["--data.init_args.cache_dir", "{root}/cache"],
        0,
        ["cache", "checksum"],
        setup=_corrupt_cache("garbage"),
        verify=_cache_verify("garbage"),
    ),
    fit(
        "cache_entry_truncated",
        ["--data.init_args.cache_dir", "{root}/cache"],
        0,
        ["cache", "unreadable"],
        setup=_corrupt_cache("truncated"),
        verify=_cache_verify("truncated"),
    ),
    fit(
        "cache_entry_zero_bytes",
        ["--data.init_args.cache_dir", "{root}/cache"],
        0,
        ["cache", "unreadable"],
        setup=_corrupt_cache("empty"),
        verify=_cache_verify("empty"),
    ),
    fit(
        "cache_entry_swapped",
        ["--data.init_args.cache_dir", "{root}/cache"],
        0,
        ["cache", "entry of key"],
        setup=_corrupt_cache("swapped"),
        verify=_cache_verify("swapped"),
    ),
    fit(
        "cache_orphan_temp_file",
        ["--data.init_args.cache_dir", "{root}/cache"],
        0,
        [],
        setup=_corrupt_cache("orphan"),
        verify=_cache_verify("orphan"),
    ),
    # ---- refusal vector
    rf("refusal_strength_zero", m("strength", "0"), 2, ["model.strength", "> 0"]),
    rf("refusal_rank_zero", m("rank", "0"), 2, ["model.rank", ">= 1"]),
    rf("refusal_num_pairs_zero", d("num_pairs", "0"), 2, ["data.num_pairs", ">= 1"]),
    rf("refusal_delta_missing", m("delta_file", "{root}/none.safetensors"), 2, ["none.safetensors", "does not exist"]),
    rf(
        "refusal_delta_truncated",
        m("delta_file", "{root}/d.safetensors"),
        2,
        ["d.safetensors", "truncated"],
        setup=_write("d.safetensors", b"\x40\x00\x00\x00\x00\x00\x00\x00{}"),
    ),
    # ---- export
    ex("export_missing_ckpt", None, 2, ["none.ckpt", "does not exist"], ckpt="{root}/none.ckpt"),
    ex("export_empty_ckpt", _write("x.ckpt", b""), 2, ["x.ckpt", "empty"]),
    ex("export_truncated_ckpt", _ckpt(raw=lambda b: b[: len(b) // 2]), 2, ["x.ckpt", "truncated"]),
    ex("export_garbage_ckpt", _write("x.ckpt", b"not a checkpoint at all" * 10), 2, ["x.ckpt", "corrupt"]),
    ex("export_partial_ckpt", _ckpt(_drop_adapter_keys), 2, ["x.ckpt", "adapters.0.up.weight"]),
    ex("export_no_adapters_in_ckpt", _ckpt(lambda c: c.update(state_dict={})), 2, ["x.ckpt", "no adapter weights"]),
    ex(
        "export_ckpt_of_failed_run",
        _both(_ckpt(), _write("run_status.json", json.dumps({"status": "failed", "error": "DivergenceError"}))),
        2,
        ["failed", "--allow-unfinished"],
    ),
    ex(
        "export_out_is_a_file",
        _both(_ckpt(), _write("exported", "x")),
        2,
        ["exported", "is a file"],
        verify=lambda ws, root, rc, err: (
            None if (root / "exported").is_file() else "the file given as --out was replaced"
        ),
    ),
    # ---- evaluate
    ev(
        "evaluate_unknown_backbone",
        ["original"],
        2,
        ["unknown backbone", "toy-cogvidex"],
        extra=["--backbone", "toy-cogvidex"],
    ),
    ev("evaluate_adapters_missing", ["t2vunlearning={root}/nowhere"], 2, ["nowhere", "adapter"]),
    ev(
        "evaluate_adapters_of_failed_run",
        ["t2vunlearning={root}/prev/adapters"],
        2,
        ["failed", "--allow-unfinished"],
        setup=_failed_run_adapters,
    ),
    ev("evaluate_adapters_of_another_model", ["t2vunlearning={ws}/adapters_5b"], 2, ["cogvideox-5b", "toy-cogvideox"]),
    ev("evaluate_num_frames_zero", ["original"], 2, ["num_frames", ">= 1"], extra=["--num-frames", "0"]),
    ev("evaluate_suite_missing", ["original"], 2, ["none.jsonl", "not found"], extra=["--suite", "{root}/none.jsonl"]),
    Case(
        "evaluate_same_size_corrupt_video",
        _evaluate(Path("{ws}"), Path("{root}/out")),
        0,
        [],
        setup=_corrupt_video,
        verify=_video_verify,
    ),
    # ---- augment
    au("augment_out_parquet", [], 2, ["p.parquet", ".jsonl"], out="{root}/p.parquet"),
    au("augment_out_no_suffix", [], 2, ["suffix"], out="{root}/p"),
    au("augment_n_zero", ["--n", "0"], 2, ["--n"]),
    au("augment_exclude_missing", ["--exclude", "{root}/none.jsonl"], 2, ["none.jsonl", "not found"]),
    au(
        "augment_url_credentials_unreachable",
        [
            "--source",
            "openai",
            "--model",
            "m",
            "--url",
            "http://user:S3cr3tPASS@127.0.0.1:9/v1",
            "--max-retries",
            "0",
            "--timeout",
            "2",
        ],
        1,
        ["127.0.0.1", "cannot connect"],
        forbid=["S3cr3tPASS"],
    ),
    au(
        "augment_cleartext_key_remote",
        [
            "--source",
            "openai",
            "--model",
            "m",
            "--url",
            "http://192.0.2.1:9/v1",
            "--max-retries",
            "0",
            "--timeout",
            "1",
        ],
        1,
        ["192.0.2.1"],
        env={"OPENAI_API_KEY": "sk-cleartextKEY123"},
        forbid=["sk-cleartextKEY123"],
        verify=lambda ws, root, rc, err: None if "cleartext" in err else "no warning about the cleartext API key",
    ),
    au("augment_openai_without_url", ["--source", "openai"], 2, ["--url", "--model"]),
    # ---- toyworld
    Case("toyworld_unknown_command", ["toyworld", "pretrian"], 2, ["pretrian", "pretrain"]),
    # ==== issue #27: beyond the first catalogue, by kind
    # ---- config files and includes
    Case(
        "config_include_not_yaml",
        ["fit", "--config", "{root}/c.yaml"],
        2,
        ["passwd", "not a mapping"],
        setup=_write("c.yaml", "config: /etc/passwd\n"),
    ),
    Case(
        "config_include_binary",
        ["fit", "--config", "{root}/c.yaml"],
        2,
        ["b.yaml", "binary"],
        setup=_both(_write("c.yaml", "config: b.yaml\n"), _write("b.yaml", bytes(range(256)))),
    ),
    Case(
        "config_empty",
        ["fit", "--config", "{root}/c.yaml"],
        2,
        ["c.yaml", "empty"],
        setup=_write("c.yaml", "# nothing\n"),
    ),
    Case(
        "config_includes_itself",
        ["fit", "--config", "{root}/c.yaml"],
        2,
        ["c.yaml", "includes itself"],
        setup=_write("c.yaml", "config: c.yaml\n"),
    ),
    Case(
        "config_nested_block_drops_class_path",
        ["fit", "--config", "{root}/c.yaml"],
        2,
        ["eta", "class_path", "dotted key"],
        setup=lambda ws, root: (root / "c.yaml").write_text(
            f"config: {ws}/tiny.yaml\nmodel:\n  init_args:\n    eta: 3.0\n"
        ),
    ),
    # ---- checkpoints restore state, never configuration
    fit(
        "ckpt_of_another_concept",
        ["--ckpt_path", "{ws}/good.ckpt", *d("concept", "gore"), *d("allow_prompts_without_concept", "true")],
        2,
        ["data.concept", "another run", "--allow_config_mismatch"],
    ),
    fit(
        "ckpt_hparams_name_hub_weights",
        ["--ckpt_path", "{root}/x.ckpt"],
        2,
        ["model.pretrained", "attacker/backdoored-cogvideox"],
        setup=_ckpt(_hparams(pretrained="attacker/backdoored-cogvideox", tiny=False)),
    ),
    fit(
        "ckpt_hparams_name_a_class",
        ["--ckpt_path", "{root}/x.ckpt"],
        2,
        ["model._class_path", "RefusalVectorUnlearning"],
        setup=_ckpt(_hparams(_class_path="unlearn.methods.refusal.RefusalVectorUnlearning")),
    ),
    fit(
        "ckpt_hparams_adapter_dim",
        ["--ckpt_path", "{root}/x.ckpt"],
        2,
        ["model.adapter_dim", "8", "4"],
        setup=_ckpt(_hparams(adapter_dim=8)),
    ),
    fit(
        "ckpt_path_last_without_checkpointing",
        ["--ckpt_path", "last"],
        2,
        ["writes no checkpoint", "nothing to resume"],
    ),
    fit(
        "ckpt_path_last_nothing_yet",
        [
            "--ckpt_path",
            "last",
            "--trainer.enable_checkpointing=true",
            "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
            "--trainer.callbacks.dirpath={root}/checkpoints",
            "--trainer.callbacks.save_last=true",
        ],
        2,
        ["checkpoints", "nothing to resume"],
    ),
    # ---- run folders
    fit("run_folder_of_another_config", [], 2, ["another config", "run_record.json"], setup=_other_config_record),
    fit("run_folder_in_use", [], 2, ["in use by another", "pid 4242"], setup=_folder_in_use, verify=_release_lock),
    Case(
        "default_root_dir_below_a_file",
        _fit_argv(Path("{ws}"), Path("{root}/f/run")),
        2,
        ["trainer.default_root_dir", "not a folder"],
        setup=_write("f", "x"),
    ),
    # ---- data: exclusive options, ranges, sizes, file kinds
    fit(
        "prompts_and_prompt_file",
        d("prompt_file", "{ws}/toy_suite.jsonl"),
        2,
        ["data.prompts", "data.prompt_file", "both"],
    ),
    fit("seed_huge", d("seed", "1000000000000000000000000000000"), 2, ["data.seed", "32-bit"]),
    fit("num_frames_huge", d("num_frames", "1000001"), 2, ["data.num_frames", "258"]),
    fit(
        "video_larger_than_memory",
        [*d("num_frames", "257"), *d("height", "8192"), *d("width", "8192")],
        2,
        ["num_frames", "height", "memory"],
    ),
    fit(
        "prompt_file_links_to_a_device",
        pf("{root}/endless.jsonl"),
        2,
        ["endless.jsonl", "not a regular file"],
        setup=lambda ws, root: os.symlink("/dev/zero", root / "endless.jsonl"),
    ),
    fit(
        "prompt_file_deeply_nested",
        pf("{root}/deep.json"),
        2,
        ["deep.json", "nested too deeply"],
        setup=_write("deep.json", "[" * 200_000),
    ),
    fit("init_adapters_nan", m("init_adapters", "{root}/a"), 2, ["adapters.safetensors", "NaN"], setup=_nan_adapters),
    ev(
        "evaluate_nan_adapters", ["t2vunlearning={root}/a"], 2, ["adapters.safetensors", "NaN"], setup=_nan_toy_adapters
    ),
    ev(
        "evaluate_row_options_bad_json",
        ["original", "negprompt"],
        2,
        ["--row-options", "not valid JSON"],
        extra=["--row-options", '{"negprompt": {"guidance_scale": 6.0}'],
    ),
    ev(
        "evaluate_row_options_not_objects",
        ["original", "negprompt"],
        2,
        ["--row-options", "negprompt", "object"],
        extra=["--row-options", '{"negprompt": 6.0}'],
    ),
    # ---- publishing
    pu("push_failed_run", "{root}/run/adapters", 2, ["failed", "--allow-unfinished"], setup=_failed_run_status),
    pu("push_nan_adapters", "{root}/a", 2, ["adapters.safetensors", "NaN"], setup=_nan_adapters),
    Case(
        "push_repo_path_traversal",
        ["push", "{ws}/good/adapters", "--repo", "../..", "--dry-run"],
        2,
        ["--repo", "not a Hub repository id"],
    ),
]


# ============================================================================================ running
@dataclasses.dataclass
class Outcome:
    name: str
    rc: int
    expected: int
    last_line: str
    outcome: str  # clear / unclear / traceback / silent wrong
    lost: bool
    problem: str | None
    seconds: float


def last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def judge(case: Case, ws: Path, root: Path, rc: int, err: str, before: dict[str, str]) -> Outcome:
    problem = case.verify(ws, root, rc, err) if case.verify is not None else None
    if case.fit and problem is None:
        problem = fit_problem(root, before, rc)
    leaked = [s for s in case.forbid if s in err]
    if leaked:
        problem = f"secret {leaked[0][:4]}... shown on stderr"
    lost = case.fit and not adapters_ok(root / "adapters")
    line = last_line(err)
    text = err if case.code == 0 else line
    words_ok = all(w.lower() in text.lower() for w in case.words)
    if "Traceback (most recent call last)" in err:
        outcome = "traceback"
    elif (rc == 0 and case.code != 0) or problem:
        outcome = "silent wrong"
    elif rc == case.code and words_ok:
        outcome = "clear"
    elif rc == 0:
        outcome = "silent wrong"  # repaired, but without a word about it
    else:
        outcome = "unclear"
    return Outcome(case.name, rc, case.code, line[:300], outcome, lost, problem, 0.0)


def prepare(case: Case, ws: Path, root: Path) -> dict[str, str]:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    if case.fit:  # an earlier, finished run in the same folder: its adapters must survive any failure
        shutil.copytree(ws / "good" / "adapters", root / "adapters")
        (root / "run_status.json").write_text(json.dumps({"status": "finished"}))
    if case.setup is not None:
        case.setup(ws, root)
    return tree(root)


def run_case(case: Case, ws: Path, code: Path | None = None, timeout: float = 900) -> Outcome:
    """Run one case in this process (``code`` None) or as a process with ``PYTHONPATH=code``."""
    global CODE
    CODE = code
    root = ws / "cases" / case.name
    before = prepare(case, ws, root)
    argv = case.render(ws, root)
    t0 = time.perf_counter()
    if code is None:
        rc, err = run_unlearn(argv, case.env)
    else:
        env = {
            **os.environ,
            "PYTHONPATH": str(code),
            "OMP_NUM_THREADS": "1",
            "WANDB_MODE": "offline",
            "T2V_UNLEARN_CACHE": str(ws / "default_cache"),
            **case.env,
        }
        env.pop("UNLEARN_DEBUG", None)
        try:
            proc = subprocess.run(
                [sys.executable, "-c", "import sys; from unlearn.cli import main; sys.exit(main())", *argv],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            rc, err = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as e:
            rc, err = 124, f"{e.stderr or ''}\ntimeout after {timeout} s"
    out = judge(case, ws, root, rc, err, before)
    out.seconds = round(time.perf_counter() - t0, 2)
    return out


def table(outcomes: list[Outcome]) -> str:
    count = {k: sum(o.outcome == k for o in outcomes) for k in ("clear", "unclear", "traceback", "silent wrong")}
    lost = sum(o.lost for o in outcomes)
    lines = [
        "| tried | clear error | unclear | traceback | silent wrong | data lost |",
        "|---|---|---|---|---|---|",
        f"| {len(outcomes)} | {count['clear']} | {count['unclear']} | {count['traceback']} | "
        f"{count['silent wrong']} | {lost} |",
        "",
        "| case | exit (expected) | outcome | last stderr line |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        note = o.outcome + (" + lost" if o.lost else "") + (f" ({o.problem})" if o.problem else "")
        lines.append(f"| {o.name} | {o.rc} ({o.expected}) | {note} | {o.last_line.replace('|', '/')[:160]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose `unlearn` is measured (PYTHONPATH)")
    ap.add_argument("--out", type=Path, required=True, help="output folder (workspace, results.json, table.md)")
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    a = ap.parse_args(argv)
    ws = a.out / "ws"
    if not (ws / "good.ckpt").is_file():
        build_workspace(ws)
    cases = [c for c in CASES if not a.only or c.name in a.only]
    earlier = {}
    if a.only and (a.out / "results.json").is_file():  # a partial rerun updates the earlier results
        earlier = {o["name"]: Outcome(**o) for o in json.loads((a.out / "results.json").read_text())}
    outcomes = []
    for c in cases:
        o = run_case(c, ws, code=a.code.resolve())
        print(
            f"{o.name:<40} {o.rc:>3} ({o.expected}) {o.outcome:<13} {o.seconds:6.1f}s  {o.last_line[:90]}", flush=True
        )
        outcomes.append(o)
    if earlier:
        earlier.update({o.name: o for o in outcomes})
        outcomes = [earlier[c.name] for c in CASES if c.name in earlier]
    (a.out / "results.json").write_text(json.dumps([dataclasses.asdict(o) for o in outcomes], indent=1))
    (a.out / "table.md").write_text(table(outcomes))
    print(table(outcomes).split("\n\n")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
