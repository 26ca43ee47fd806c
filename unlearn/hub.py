"""Adapters on the Hugging Face Hub: ``unlearn push ADAPTERS_DIR --repo user/name``.

The push uploads ``adapters.safetensors`` + ``adapter_config.json`` with a model card (``README.md``): the
backbone's hub id and revision, the erased concept, η/α/β, the evaluation table with its evaluator's
provenance when one is found, and how to load the adapters. ``attach_adapters(pipe, "user/name")``
(:mod:`unlearn.methods.t2vunlearning.export`) loads them back through ``snapshot_download``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any

from unlearn.evaluation.tables import markdown_table, results_markdown
from unlearn.io import find_run_status, require_finished
from unlearn.methods.t2vunlearning.export import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    backbone_provenance,
    load_adapters,
    read_adapter_config,
)
from unlearn.safe_text import card_safe, py_str

#: files of an adapter folder that go to the Hub
ADAPTER_FILES = (WEIGHTS_NAME, CONFIG_NAME)


def find_metrics(adapters_dir: str | os.PathLike) -> Path | None:
    """The evaluation written next to the adapters by the same run (``<run>/eval/metrics.json`` of the
    ErasureEvaluation callback, or ``results.json`` of ``unlearn evaluate`` in that folder), if any."""
    run = Path(adapters_dir).resolve().parent
    for candidate in (run / "eval" / "metrics.json", run / "eval" / "results.json"):
        if candidate.is_file():
            stale = _not_this_run(adapters_dir, candidate)
            if stale:
                print(
                    f"unlearn push: {candidate} not attached: {stale}. Fix: --metrics FILE attaches a file you checked",
                    file=sys.stderr,
                )
                continue
            return candidate
    return None


def _not_this_run(adapters_dir: str | os.PathLike, metrics: Path) -> str | None:
    """Why ``metrics`` (found beside the adapters) is not the evaluation of the run that wrote them: written
    before that run started (a reused run folder), or of another concept."""
    found = find_run_status(adapters_dir)
    started = (found[1].get("started") if found else None) or ""
    try:
        start = datetime.datetime.fromisoformat(started).timestamp()
    except ValueError:
        start = None
    if start is not None and metrics.stat().st_mtime < start:
        return f"it is older than the run that wrote the adapters (started {started}): an earlier run's result"
    try:
        concept = json.loads(metrics.read_text()).get("concept")
    except (OSError, ValueError, AttributeError):
        return "it is not readable JSON"
    ours = read_adapter_config(adapters_dir).get("concept")
    if concept and ours and concept != ours:
        return f"it evaluates concept {concept!r}, the adapters erase {ours!r}"
    return None


def _flat(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        out = []
        for k, v in d.items():
            out += _flat(v, f"{prefix}{k}.")
        return out
    return [(prefix[:-1], d)]


def _evaluation_section(metrics: dict[str, Any] | None, source: str | None) -> str:
    if metrics is None:
        return (
            "## Evaluation\n\nNo evaluation was attached to these adapters (train with the `ErasureEvaluation` "
            "callback, or run `unlearn evaluate`, then push with `--metrics`).\n"
        )
    if "suite" in metrics and "backbone" in metrics:  # results.json of `unlearn evaluate`
        # the runner's own page, its headings one level down
        page = "\n".join(
            "##" + line if line.startswith("#") else line for line in results_markdown(metrics).splitlines()
        )
        return "## Evaluation\n\n" + page + "\n"
    lines = ["## Evaluation", "", markdown_table(metrics.get("rows", {}), metrics), ""]
    evaluator = metrics.get("evaluator") or {}
    lines += ["Evaluator provenance (as recorded by the run):", ""]
    lines += [f"- `{k}`: `{v}`" for k, v in _flat(evaluator)] or ["- not recorded"]
    facts = [
        ("prompt suite", metrics.get("prompt_suite")),
        ("suite sha256", metrics.get("prompt_suite_hash")),
        ("prompts", metrics.get("num_prompts")),
        ("units", metrics.get("units")),
        ("evaluated at step", metrics.get("global_step")),
        ("file in this repository", f"eval/{Path(source).name}" if source else None),
    ]
    lines += [f"- {k}: `{v}`" for k, v in facts if v is not None]
    return "\n".join(lines) + "\n"


def model_card(adapters_dir: str | os.PathLike, repo_id: str, metrics_path: str | os.PathLike | None = None) -> str:
    """The ``README.md`` of the Hub repository: YAML metadata (base model, tags), then what was erased from
    which model with which settings, the evaluation, and how to load the adapters."""
    from huggingface_hub import ModelCardData

    # text from files is data: escaped where it enters the card (unlearn.safe_text); the snippet quotes it
    config = card_safe(read_adapter_config(adapters_dir))
    backbone = config["backbone"]
    prov = {k: config.get(k) for k in ("backbone_source", "backbone_hub_id", "backbone_revision")}
    if not prov["backbone_hub_id"]:  # adapters written before provenance was recorded
        prov = {**backbone_provenance(backbone, prov["backbone_source"]), **{k: v for k, v in prov.items() if v}}
    hub_id, revision = prov.get("backbone_hub_id"), prov.get("backbone_revision")
    metrics = card_safe(json.loads(Path(metrics_path).read_text())) if metrics_path else None
    concept = config.get("concept") or (metrics or {}).get("concept") or "unknown concept"

    data = ModelCardData(
        base_model=hub_id,
        library_name="diffusers",
        tags=["t2v-unlearn", "t2vunlearning", "concept-erasure", "text-to-video", backbone],
        pipeline_tag="text-to-video",
    )
    revision_text = (
        f"`{revision}`"
        if revision
        else f"not recorded (trained from `{prov.get('backbone_source')}`)"
        if prov.get("backbone_source")
        else "not recorded"
    )
    rows = [
        ("base model", f"`{hub_id}`" if hub_id else f"`{prov.get('backbone_source')}` (not on the Hub)"),
        ("base model revision", revision_text),
        ("backbone (t2v-unlearn name)", f"`{backbone}`"),
        ("concept erased", concept),
        ("concept preserved", config.get("preserve_concept") or "–"),
        ("η (negative guidance)", config.get("eta", "–")),
        ("α (localization loss)", config.get("alpha", "–")),
        ("β (preservation loss)", config.get("beta", "–")),
        ("adapter width", config.get("inner_dim", config.get("adapter_dim", "–"))),
        ("mask threshold", config.get("mask_threshold", "–")),
        ("trained for", f"epoch {config.get('epoch', '–')}, step {config.get('global_step', '–')}"),
        ("attention sites", len(config.get("site_names", []))),
    ]
    table = "\n".join(["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])
    load_revision = f", revision={py_str(revision)}" if revision else ""
    source = py_str(hub_id or prov.get("backbone_source"))
    how = f'''## How to load

```python
import torch
from diffusers import DiffusionPipeline
from unlearn.methods.t2vunlearning import attach_adapters   # pip install t2v-unlearn

pipe = DiffusionPipeline.from_pretrained({source}{load_revision}, torch_dtype=torch.bfloat16)
controller = attach_adapters(pipe, {py_str(repo_id)})   # forward hooks: the pipeline's attention backend stays
video = pipe("your prompt").frames[0]             # generated with "{concept}" erased
with controller.scaled(0.0):                      # the original model, exactly
    original = pipe("your prompt").frames[0]
```
'''
    body = f"""# T2VUnlearning adapters: "{concept}" erased from {backbone}

Adapters trained with t2v-unlearn by T2VUnlearning (Ye et al.): small zero-initialised adapters on the video
tokens after each attention layer where text meets video, trained on pseudo data that the frozen model made
with negative guidance. The base model's weights are not changed; the adapters are `{WEIGHTS_NAME}` with
`{CONFIG_NAME}`.

{table}

{_evaluation_section(metrics, str(metrics_path) if metrics_path else None)}
{how}"""
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


def push(
    adapters_dir: str | os.PathLike,
    repo_id: str,
    metrics_path: str | os.PathLike | None = None,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
) -> Any:
    """Create ``repo_id`` (if needed) and commit the adapters, the model card and the metrics file in one
    commit. Returns huggingface_hub's ``CommitInfo``."""
    from huggingface_hub import CommitOperationAdd, HfApi

    folder = Path(adapters_dir)
    card = model_card(folder, repo_id, metrics_path)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)) for name in ADAPTER_FILES]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")))
    if metrics_path:
        operations.append(
            CommitOperationAdd(path_in_repo=f"eval/{Path(metrics_path).name}", path_or_fileobj=str(metrics_path))
        )
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    return api.create_commit(
        repo_id,
        operations=operations,
        revision=revision,
        commit_message=commit_message or f"t2v-unlearn adapters from {folder}",
    )


def push_main(argv: list[str] | None = None) -> int:
    """``unlearn push ADAPTERS_DIR --repo user/name``: adapters + model card to the Hugging Face Hub."""
    parser = argparse.ArgumentParser(prog="unlearn push", description=push_main.__doc__)
    parser.add_argument("adapters", help="adapter folder (AdapterCheckpoint output or `unlearn export --out`)")
    parser.add_argument("--repo", required=True, help="Hub repository id, user/name (created if missing)")
    parser.add_argument(
        "--metrics",
        help="metrics.json/results.json for the card (default: <run>/eval/metrics.json "
        "next to the adapters, if there is one)",
    )
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", help="branch to commit to (default: main)")
    parser.add_argument("--endpoint", help="Hub endpoint (default: huggingface_hub's, $HF_ENDPOINT)")
    parser.add_argument("--token", help="access token (default: $HF_TOKEN or `hf auth login`)")
    parser.add_argument("--dry-run", action="store_true", help="print the model card and upload nothing")
    parser.add_argument(
        "--allow-unfinished", action="store_true", help="push adapters of a run that failed or was interrupted"
    )
    args = parser.parse_args(argv)
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:  # the same check in a dry run as in a real one
        validate_repo_id(args.repo)
        if args.repo.count("/") != 1:
            raise HFValidationError("it has no owner")
    except HFValidationError as e:
        parser.error(f"--repo {args.repo!r} is not a Hub repository id of the form user/name ({e})")
    load_adapters(args.adapters)  # one clear error for a folder that is not an adapter folder, or NaN weights
    require_finished(args.adapters, "adapters", args.allow_unfinished)  # a failed/interrupted run is not published
    metrics = args.metrics or find_metrics(args.adapters)
    if args.dry_run:
        print(model_card(args.adapters, args.repo, metrics))
        return 0
    info = push(
        args.adapters,
        args.repo,
        metrics_path=metrics,
        private=args.private,
        token=args.token,
        endpoint=args.endpoint,
        revision=args.revision,
    )
    print(f"pushed {args.adapters} to {args.repo} ({info.commit_url})")
    return 0
