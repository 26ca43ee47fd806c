"""Tokenizers and text encoders for the tiny test models of the backbone families, built in code (no download;
the tokenizers are deterministic, the encoders random under the caller's seed)."""

from __future__ import annotations

#: words the tiny tokenizers know as whole pieces; anything else falls back to single characters
# fmt: off
TINY_VOCAB_WORDS = [
    "a", "an", "the", "of", "and", "in", "on", "at", "to", "with", "by", "from", "into", "across", "over", "under",
    "through", "near", "behind", "above", "below", "between", "is", "are", "was", "be", "being", "been", "it", "its",
    "this", "that", "these", "those", "there", "here", "while", "as", "very", "slowly", "quickly", "gently", "man",
    "woman", "person", "people", "child", "girl", "boy", "face", "portrait", "body", "naked", "nude", "nudity",
    "topless", "undressed", "clothed", "dress", "shirt", "swimsuit", "beach", "room", "bed", "street", "city",
    "forest", "park", "sky", "sun", "light", "dark", "night", "day", "morning", "evening", "sunset", "red", "green",
    "blue", "yellow", "white", "black", "orange", "purple", "pink", "gray", "grey", "golden", "silver", "crimson",
    "scarlet", "azure", "ball", "golf", "cassette", "player", "chain", "saw", "church", "gas", "pump", "tench",
    "garbage", "truck", "english", "springer", "parachute", "french", "horn", "dog", "cat", "bird", "fish", "car",
    "tree", "flower", "house", "water", "river", "sea", "lake", "mountain", "field", "grass", "snow", "rain", "fire",
    "smoke", "circle", "ring", "square", "triangle", "cross", "bar", "dot", "shape", "object", "small", "large",
    "big", "tiny", "huge", "round", "moves", "move", "moving", "rolls", "rolling", "drifts", "flies", "flying",
    "walks", "walking", "runs", "running", "dances", "dancing", "sits", "standing", "left", "right", "up", "down",
    "still", "camera", "shot", "slow", "motion", "cinematic", "video", "scene", "background", "wall", "striped",
    "gradient", "plain", "high", "quality", "detailed", "realistic", "photo", "film", "style", "lighting", "soft",
    "warm", "cold", "bright",
]
# fmt: on


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


def tiny_t5_encoder(tokenizer, model_class: str = "T5EncoderModel"):
    """A random 2-layer T5-family encoder (``T5EncoderModel`` or ``UMT5EncoderModel``) sized for ``tokenizer``."""
    import transformers

    config_class = getattr(transformers, model_class.replace("EncoderModel", "Config"))
    return getattr(transformers, model_class)(
        config_class(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            dropout_rate=0.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
    )


def tiny_clip_text_encoder(tokenizer, hidden_size: int, max_length: int = 77):
    """A random 2-layer ``CLIPTextModel`` of width ``hidden_size`` sized for ``tokenizer``."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=max_length,
            projection_dim=hidden_size,
            hidden_act="gelu",
            layer_norm_eps=1e-5,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


# ---------------------------------------------------------------------------------------------------------------
# BPE tokenizers for tiny models (CLIP for ZeroScope / HunyuanVideo's pooled text, byte-level Llama-3 style for
# HunyuanVideo). Trained in code with `tokenizers` on TINY_VOCAB_WORDS: whole words for the tiny vocabulary,
# characters (and a few learned pieces) for anything else. Deterministic: same vocabulary on every run.

#: special tokens of the tiny Llama-3-style tokenizer (the HunyuanVideo prompt template uses the header/eot ones)
LLAMA_SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|pad|>",
]


def _tiny_bpe_words(pre_tokenizer) -> list[str]:
    """The training words as the tokenizer's pre-tokenizer splits them (e.g. byte-level ``Ġword``)."""
    words = list(dict.fromkeys(TINY_VOCAB_WORDS))
    text = " ".join(words) + " " + " ".join(words).title() + " " + " ".join(chr(c) for c in range(33, 127))
    return list(dict.fromkeys(w for w, _ in pre_tokenizer.pre_tokenize_str(text)))


def _train_bpe(words: list[str], end_of_word_suffix: str = "") -> tuple[list[tuple[str, str]], list[str]]:
    """A deterministic BPE trainer: merge the most frequent adjacent pair (ties: the lexicographically smallest)
    until every training word is one token. Returns ``(merges, alphabet)``; the caller numbers
    the vocabulary. (``tokenizers``' trainer breaks ties in hash order, so its vocabulary changes run to run.)"""
    from tokenizers import pre_tokenizers

    seqs = []
    for w in words:
        syms = list(w)
        syms[-1] += end_of_word_suffix
        seqs.append(syms)
    alphabet = sorted(set(pre_tokenizers.ByteLevel.alphabet()))
    if end_of_word_suffix:
        alphabet += sorted({c + end_of_word_suffix for c in alphabet})
    merges: list[tuple[str, str]] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for syms in seqs:
            for pair in zip(syms, syms[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = max(counts.values())
        pair = min(p for p, c in counts.items() if c == best)
        merges.append(pair)
        joined = pair[0] + pair[1]
        for k, syms in enumerate(seqs):
            if len(syms) < 2:
                continue
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == pair[0] and syms[i + 1] == pair[1]:
                    out.append(joined)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            seqs[k] = out
    return merges, alphabet


def _bpe_vocab(specials: list[str], alphabet: list[str], merges: list[tuple[str, str]]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for tok in [*specials, *alphabet, *(a + b for a, b in merges)]:
        vocab.setdefault(tok, len(vocab))
    return vocab


def tiny_clip_tokenizer(max_length: int = 77):
    """A ``CLIPTokenizer`` (byte-level BPE, ``</w>`` word ends, lower-casing) with a vocabulary trained in code."""
    from tokenizers import Regex, pre_tokenizers
    from transformers import CLIPTokenizer

    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(
                    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
                ),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    merges, alphabet = _cached_bpe("clip", pre, "</w>")
    vocab = _bpe_vocab(["<|startoftext|>", "<|endoftext|>"], alphabet, merges)
    clip = CLIPTokenizer(vocab=vocab, merges=list(merges))
    clip.model_max_length = max_length
    return clip


_BPE_CACHE: dict[str, tuple[list[tuple[str, str]], list[str]]] = {}


def _cached_bpe(kind: str, pre_tokenizer, suffix: str):
    if kind not in _BPE_CACHE:
        words = (
            [w.lower() for w in _tiny_bpe_words(pre_tokenizer)] if kind == "clip" else _tiny_bpe_words(pre_tokenizer)
        )
        _BPE_CACHE[kind] = _train_bpe(list(dict.fromkeys(words)), suffix)
    return _BPE_CACHE[kind]


def tiny_llama_tokenizer(max_length: int = 256):
    """A Llama-3-style tokenizer (byte-level BPE, ``<|begin_of_text|>`` prepended, header/eot special tokens)
    wrapped in ``PreTrainedTokenizerFast``, as HunyuanVideo's real tokenizer is."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    merges, alphabet = _cached_bpe("llama", pre, "")
    vocab = _bpe_vocab(LLAMA_SPECIAL_TOKENS, alphabet, merges)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=list(merges)))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    bos = LLAMA_SPECIAL_TOKENS[0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token="<|end_of_text|>",
        pad_token="<|pad|>",
        additional_special_tokens=LLAMA_SPECIAL_TOKENS[2:5],
        model_max_length=max_length,
        padding_side="right",
    )
