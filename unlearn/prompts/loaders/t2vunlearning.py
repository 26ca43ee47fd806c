"""The T2VUnlearning authors' evaluation prompt sets by name, from **your copy** of their ``evaluation/data``.

Source: ``TobisawaMisakii/T2VUnlearning`` ``evaluation/data/*.csv`` (the repository that holds the authors' official
README and evaluation code). That repository has **no licence file**, so its prompts are not shipped here: clone it
(or download the folder) and point the loader at the folder or at one CSV. Each set is checked against the count
the paper states (``COUNTS``), so a truncated or different file fails with a clear error instead of giving other
numbers.

| name | file | rows | used for |
|---|---|---|---|
| ``gen_cogvideox`` | ``nudity_cogvideox.csv`` | 100 | Table 1 "Gen", CogVideoX-2B/5B (App.: "100 evaluation prompts following the format requirements of CogVideoX") |
| ``gen_hunyuan`` | ``nudity_hunyuan.csv`` | 50 | Table 1 "Gen", HunyuanVideo ("50 evaluation prompts for HunyuanVideo") |
| ``ring_a_bell`` | ``nudity-ring-a-bell.csv`` | 79 | Table 1 "Ring-A-Bell" (stylized short prompts adopted from Ring-A-Bell) |
| ``safesora_sexual`` | ``safe-sora.csv`` | 33 | Figure 5, the sexually explicit subset of SafeSora (the paper states no count) |
| ``faces_cogvideox`` | ``face_cogvideox.csv`` | 150 | Table 3, CogVideoX (five public figures × 30 prompts) |
| ``faces_hunyuan`` | ``face_hunyuan.csv`` | 150 | Table 3, HunyuanVideo |
| ``faces_templates`` | ``face_ori.csv`` | 150 | the face prompts before augmentation (``PersonA`` ... placeholders) |
"""

from __future__ import annotations

import os
from pathlib import Path

from unlearn.prompts.suite import PromptFileError, PromptRecord, PromptSuite, read_csv_dicts

__all__ = ["T2VUNLEARNING_SETS", "COUNTS", "load_t2vunlearning"]

#: set name -> (file in evaluation/data, concept of every row or None: the row's ``class`` column)
T2VUNLEARNING_SETS: dict[str, tuple[str, str | None]] = {
    "gen_cogvideox": ("nudity_cogvideox.csv", "nudity"),
    "gen_hunyuan": ("nudity_hunyuan.csv", "nudity"),
    "ring_a_bell": ("nudity-ring-a-bell.csv", "nudity"),
    "safesora_sexual": ("safe-sora.csv", "nudity"),
    "faces_cogvideox": ("face_cogvideox.csv", None),
    "faces_hunyuan": ("face_hunyuan.csv", None),
    "faces_templates": ("face_ori.csv", None),
}
#: rows each set must have: the paper's counts (App. A: Gen 100 / 50; §4.3: 5 identities × 30 prompts) and, where
#: the paper states none, the authors' file as published (Ring-A-Bell 79, SafeSora 33)
COUNTS: dict[str, int] = {
    "gen_cogvideox": 100,
    "gen_hunyuan": 50,
    "ring_a_bell": 79,
    "safesora_sexual": 33,
    "faces_cogvideox": 150,
    "faces_hunyuan": 150,
    "faces_templates": 150,
}


def load_t2vunlearning(path: str | os.PathLike, *, set: str, name: str | None = None) -> PromptSuite:
    """One of the authors' prompt sets (``set``: a key of :data:`T2VUNLEARNING_SETS`) from your copy: ``path`` is
    their ``evaluation/data`` folder (or the repository root) or the CSV itself. Seeds come from ``seed`` /
    ``evaluation_seed`` where the file has them; face rows take their identity (``class``) as the concept."""
    if set not in T2VUNLEARNING_SETS:
        raise ValueError(f"unknown T2VUnlearning prompt set {set!r}; known: {sorted(T2VUNLEARNING_SETS)}")
    file, concept = T2VUNLEARNING_SETS[set]
    p = Path(path).expanduser()
    for candidate in (p, p / file, p / "evaluation" / "data" / file):
        if candidate.is_file():
            p = candidate
            break
    else:
        raise FileNotFoundError(
            f"{str(path)!r}: no {file} there. The T2VUnlearning prompt sets are not shipped (their repository has no "
            "licence): clone github.com/TobisawaMisakii/T2VUnlearning and give its evaluation/data folder"
        )
    header, rows = read_csv_dicts(p)
    column = next((c for c in header if c.lower().lstrip("\ufeff") == "prompt"), None)
    if column is None:
        raise PromptFileError(p, f"no 'prompt' column in the header {header!r}", fix="give the authors' CSV")
    seed_col = next((c for c in header if c.lower() in ("seed", "evaluation_seed")), None)
    records = []
    for line, row in rows:
        text = (row.get(column) or "").strip()
        if not text:
            raise PromptFileError(p, f"line {line}: empty prompt", fix="restore the authors' file")
        seed = row.get(seed_col) if seed_col else None
        records.append(
            PromptRecord(
                prompt=text,
                concept=concept or (row.get("class") or "").strip() or None,
                seed=int(seed) if seed not in (None, "") else None,
                id=f"{set}/{len(records)}",
            )
        )
    if len(records) != COUNTS[set]:
        raise PromptFileError(
            p,
            f"{len(records)} prompts; the set {set!r} has {COUNTS[set]} (the paper's count)",
            fix="use the authors' unmodified file",
        )
    return PromptSuite(records, name=name or f"t2vunlearning/{set}")
