"""TransformersSource with tiny random causal LMs and tokenizers built offline, saved and loaded by path.

Random models write garbage, so these tests check the plumbing: loading by folder, chat template vs plain
few-shot text, seeded sampling, parsing, the concept check dropping garbage and re-asking a bounded number
of times, the clear error, and caching. A test that needs real text forces the model's tokens through
``generate_kwargs`` (``prefix_allowed_tokens_fn``), so generation, decoding and parsing still run for real.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from unlearn.prompts.augment import AugmentationError, PromptAugmenter, TransformersSource  # noqa: E402

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

CORPUS = [
    "You write prompts for a text-to-video generation model.",
    "1. A golf ball rolls across a sunlit green, slow motion.",
    "2. A golf ball sits on a tee at dawn.",
    "A vintage bicycle leaning against a brick wall. Golden hour lighting, Calm mood.",
    "Write 3 different prompts about: golf ball. Each prompt must contain the words",
    "Request: Prompts: numbered list, one prompt per line, nothing else.",
] * 3


def _tokenizer(chat: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    return fast


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny_lm")
    gpt_dir, llama_dir = root / "gpt2", root / "llama"
    tok = _tokenizer(chat=False)
    gpt = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tok),
            n_positions=4096,
            n_embd=16,
            n_layer=1,
            n_head=2,
            eos_token_id=tok.eos_token_id,
            bos_token_id=tok.eos_token_id,
        )
    )
    gpt.save_pretrained(gpt_dir)
    tok.save_pretrained(gpt_dir)
    ctok = _tokenizer(chat=True)
    llama = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(ctok),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=4096,
            eos_token_id=ctok.eos_token_id,
            pad_token_id=ctok.eos_token_id,
        )
    )
    llama.save_pretrained(llama_dir)
    ctok.save_pretrained(llama_dir)
    return {"gpt2": gpt_dir, "llama": llama_dir}


class ForceText:
    """``prefix_allowed_tokens_fn`` that makes the model emit the given texts, one per generation, then EOS.

    The last text repeats once the list is used up.
    """

    def __init__(self, tokenizer, *texts):
        self.seqs = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        self.eos = tokenizer.eos_token_id
        self.start, self.last, self.gen = None, -1, -1

    def __call__(self, batch_id, input_ids):
        n = input_ids.shape[-1]
        if self.start is None or n <= self.last:  # a new generation started
            self.start, self.gen = n, self.gen + 1
        self.last = n
        ids = self.seqs[min(self.gen, len(self.seqs) - 1)]
        k = n - self.start
        return [ids[k]] if k < len(ids) else [self.eos]


def test_loads_by_path_uses_chat_template_and_is_seeded(tiny_models):
    src = TransformersSource(str(tiny_models["llama"]), device="cpu", max_new_tokens=24, local_files_only=True)
    a = src.generate("golf ball", 2, "zeroscope", seed=0)
    raw_a = src.last_raw_output
    b = src.generate("golf ball", 2, "zeroscope", seed=0)
    assert src.last_raw_output == raw_a and a == b  # same seed, same sample
    src.generate("golf ball", 2, "zeroscope", seed=1)
    assert src.last_raw_output != raw_a
    assert src.calls == 3 and src.model_id == str(tiny_models["llama"])
    # the chat template was applied: the prompt text contains its role markers
    tok = src._tokenizer
    text, enc, prefix = src._encode(tok, "golf ball", 2, "zeroscope", [])
    assert text.startswith("<|system|>") and text.endswith("<|assistant|>\n") and prefix == ""
    # the caller's RNG state is untouched by seeded sampling
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    src.generate("golf ball", 1, "zeroscope", seed=5)
    assert torch.equal(torch.rand(1), expected)


def test_plain_fewshot_mode_and_forced_output_is_parsed(tiny_models):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    assert not tok.chat_template
    force = ForceText(
        tok,
        " A golf ball rolls across a sunlit green, slow motion.\n2. a vintage bicycle\n3. A golf ball sits on a tee.",
    )
    src = TransformersSource(
        tiny_models["gpt2"], device="cpu", max_new_tokens=80, generate_kwargs={"prefix_allowed_tokens_fn": force}
    )
    out = src.generate("golf ball", 3, "hunyuanvideo", seed=0)
    # plain mode: the few-shot text ends in "1." and the continuation is parsed as a numbered list
    assert out == [
        "A golf ball rolls across a sunlit green, slow motion.",
        "a vintage bicycle",
        "A golf ball sits on a tee.",
    ]
    text, _, prefix = src._encode(src._tokenizer, "golf ball", 3, "hunyuanvideo", [])
    assert prefix == "1." and text.endswith("Prompts:\n1.")


def test_augmenter_drops_off_concept_lines_and_reasks(tiny_models):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    force = ForceText(
        tok,
        " A golf ball rolls.\n2. a vintage bicycle\n3. A golf ball  rolls.",  # 1 ok, 1 off, 1 dup
        " Golf balls on a table.\n2. junk words",  # 1 ok (plural), 1 off
        " A golfball in the rain.",
    )  # ok through the synonym
    src = TransformersSource(
        tiny_models["gpt2"], device="cpu", max_new_tokens=40, generate_kwargs={"prefix_allowed_tokens_fn": force}
    )
    aug = PromptAugmenter(src, max_rounds=3)
    s = aug.augment("golf ball", 3, "hunyuanvideo", seed=0, synonyms=["golfball"])
    assert s.prompts == ["A golf ball rolls.", "Golf balls on a table.", "A golfball in the rain."]
    assert [r.concept_words for r in s] == [("golf ball",), ("Golf balls",), ("golfball",)]
    st = aug.last_stats
    assert (st.rounds, st.source_calls, st.dropped_no_concept, st.dropped_duplicate) == (3, 3, 2, 1)


def test_garbage_is_dropped_and_bounded_reasking_ends_in_a_clear_error(tiny_models, tmp_path):
    src = TransformersSource(tiny_models["llama"], device="cpu", max_new_tokens=12, prompts_per_call=2)
    aug = PromptAugmenter(src, cache_dir=tmp_path, max_rounds=3)
    with pytest.raises(AugmentationError) as e:
        aug.augment("golf ball", 2, "zeroscope", seed=0)
    msg = str(e.value)
    assert "transformers source" in msg and str(tiny_models["llama"]) in msg
    assert "only 0 valid prompts of 2" in msg and "after 3 round(s)" in msg
    assert src.calls == 3  # one model call per round (2 prompts per call), no more
    assert list(tmp_path.iterdir()) == []


def test_augmenter_caches_model_output(tiny_models, tmp_path):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_models["llama"])
    force = ForceText(tok, "1. A golf ball at dawn.\n2. A golf ball in the rain.")
    src = TransformersSource(
        tiny_models["llama"], device="cpu", max_new_tokens=40, generate_kwargs={"prefix_allowed_tokens_fn": force}
    )
    s1 = PromptAugmenter(src, cache_dir=tmp_path).augment("golf ball", 2, "zeroscope", seed=0)
    assert s1.prompts == ["A golf ball at dawn.", "A golf ball in the rain."]
    assert src.calls == 1
    s2 = PromptAugmenter(src, cache_dir=tmp_path).augment("golf ball", 2, "zeroscope", seed=0)
    assert s2 == s1 and src.calls == 1
    # different generation settings -> a different cache entry (the instructions text covers them)
    other = TransformersSource(tiny_models["llama"], device="cpu", temperature=0.5)
    assert PromptAugmenter(other).cache_key("golf ball", 2, "zeroscope", 0) != PromptAugmenter(src).cache_key(
        "golf ball", 2, "zeroscope", 0
    )


def test_missing_model_folder_is_a_clear_error(tmp_path):
    src = TransformersSource(str(tmp_path / "nope"), local_files_only=True)
    with pytest.raises(AugmentationError, match=r"cannot load the tokenizer from .*nope"):
        src.generate("golf ball", 1, "plain", seed=0)
