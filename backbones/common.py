"""Small shared helpers for backbone files: offline tokenizers for tiny models, weights-folder checks."""

from __future__ import annotations

import os
from pathlib import Path

from .base import WeightsFolderError

#: words the tiny tokenizers know as whole pieces; anything else falls back to single characters
TINY_VOCAB_WORDS = """
a an the of and in on at to with by from into across over under through near behind above below between
is are was be being been it its this that these those there here while as very slowly quickly gently
man woman person people child girl boy face portrait body naked nude nudity topless undressed clothed dress
shirt swimsuit beach room bed street city forest park sky sun light dark night day morning evening sunset
red green blue yellow white black orange purple pink gray grey golden silver crimson scarlet azure
ball golf cassette player chain saw church gas pump tench garbage truck english springer parachute french horn
dog cat bird fish car tree flower house water river sea lake mountain field grass snow rain fire smoke
circle ring square triangle cross bar dot shape object small large big tiny huge round
moves move moving rolls rolling drifts flies flying walks walking runs running dances dancing sits standing
left right up down still camera shot slow motion cinematic video scene background wall striped gradient plain
high quality detailed realistic photo film style lighting soft warm cold bright
""".split()


def tiny_t5_tokenizer(max_length: int = 16):
    """A T5 tokenizer (Unigram) built in code: whole-word pieces for common prompt words, characters for the
    rest, so every prompt tokenizes and offsets map back to characters."""
    from transformers import T5TokenizerFast

    words = list(dict.fromkeys(TINY_VOCAB_WORDS))
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.,'-!?:;\"()"
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    vocab += [("▁" + w, -5.0 - 0.01 * i) for i, w in enumerate(words)]
    vocab += [(c, -12.0) for c in chars] + [("▁" + c, -11.0) for c in chars]
    tok = T5TokenizerFast(vocab=vocab, extra_ids=0)
    tok.model_max_length = max_length
    return tok


def check_weights_folder(path: str | os.PathLike, required: dict[str, str], family: str) -> Path:
    """Raise one clear error if ``path`` is not a folder holding every ``required`` component.

    ``required`` maps a sub-folder (or file) name to what it holds, for the message.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise WeightsFolderError(
            f"{family}: weights folder {str(root)!r} does not exist. Fix: pass pretrained=<hub id> on a machine "
            f"with hub access, or download the model (e.g. `huggingface-cli download <id> --local-dir {root}`)."
        )
    missing = [f"{name}/ ({what})" for name, what in required.items() if not (root / name).exists()]
    if missing:
        raise WeightsFolderError(
            f"{family}: weights folder {str(root)!r} is incomplete; missing {', '.join(missing)}. "
            "Fix: download the full diffusers folder (all components), or save one with pipeline.save_pretrained()."
        )
    return root


def is_local_path(pretrained: str) -> bool:
    """A string that looks like a path (not ``org/name``) is a local folder, even if it does not exist yet."""
    p = Path(pretrained).expanduser()
    return p.exists() or pretrained.startswith((".", "/", "~")) or pretrained.count("/") != 1


def hub_load_error(family: str, pretrained: str, err: Exception) -> OSError:
    return OSError(
        f"{family}: could not load {pretrained!r} from the model hub ({type(err).__name__}: {err}). "
        "Without network access, download the weights elsewhere and pass pretrained=<local folder>."
    )
