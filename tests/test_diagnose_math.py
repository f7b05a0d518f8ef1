"""The attention diagnostics' pure math against hand-computed values, and offset -> word-piece mapping."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_word_tokenizer
from spurlab.diagnose.diagnosis import flip_stats, select_rows, token_positions
from spurlab.evaluate import attention as att


def uniform(mask: torch.Tensor, heads: int = 2, causal: bool = False) -> torch.Tensor:
    """(B, H, T, T) attention, uniform over each query's visible real keys (padding rows left as garbage)."""
    b, t = mask.shape
    keys = mask[:, None, None, :].float().expand(b, heads, t, t).clone()
    if causal:
        keys = keys * torch.ones(t, t).tril()
    attn = keys / keys.sum(-1, keepdim=True).clamp(min=1)
    pad_q = ~mask.bool()[:, None, :, None].expand_as(attn)
    return torch.where(pad_q, torch.full_like(attn, float("nan")), attn)  # padded queries must not count


def test_uniform_attention_has_log2_k_bits_and_padding_is_masked() -> None:
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    ent = att.attention_entropy(uniform(mask), mask)
    assert ent.tolist() == pytest.approx([2.0, 1.0, math.log2(6)])
    assert att.normalized_entropy(uniform(mask), mask, causal=False).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_one_hot_attention_has_zero_entropy() -> None:
    mask = torch.tensor([[1, 1, 1, 0]])
    attn = torch.zeros(1, 3, 4, 4)
    attn[..., 0] = 1.0  # every query looks at the first token only
    assert att.attention_entropy(attn, mask).tolist() == [0.0]
    assert att.normalized_entropy(attn, mask, causal=False).tolist() == [0.0]


def test_causal_entropy_and_visible_keys() -> None:
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    assert att.visible_keys(mask, causal=True).tolist() == [[1, 2, 3, 4, 4]]
    assert att.visible_keys(mask, causal=False).tolist() == [[4, 4, 4, 4, 4]]
    attn = uniform(mask, causal=True)
    # queries see 1, 2, 3, 4 keys: (0 + 1 + log2 3 + 2) / 4 bits
    assert att.attention_entropy(attn, mask).item() == pytest.approx((0 + 1 + math.log2(3) + 2) / 4)
    assert att.normalized_entropy(attn, mask, causal=True).item() == pytest.approx(1.0)  # query 0 skipped


def test_mixed_distribution_entropy() -> None:
    mask = torch.tensor([[1, 1, 1]])
    attn = torch.tensor([0.5, 0.25, 0.25]).expand(1, 1, 3, 3)
    assert att.attention_entropy(attn, mask).item() == pytest.approx(1.5)


def test_span_mass() -> None:
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    attn = torch.zeros(1, 2, 5, 5)
    attn[0, 0, :, :4] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    attn[0, 1, :, :4] = torch.tensor([0.7, 0.1, 0.1, 0.1])
    attn[0, :, 4] = float("nan")  # a padded query
    span = torch.tensor([[False, True, True, False, True]])  # the padded key never counts
    # head 0 puts 0.5 on positions 1-2, head 1 0.2: mean 0.35 over heads and the 4 real queries
    assert att.span_mass(attn, mask, span).item() == pytest.approx(0.35)
    assert math.isnan(att.span_mass(attn, mask, torch.zeros(1, 5, dtype=torch.bool)).item())
    full = torch.tensor([[True] * 5])
    assert att.span_mass(uniform(mask), mask, full).item() == pytest.approx(1.0)


def test_row_without_real_tokens_is_nan() -> None:
    mask = torch.tensor([[0, 0]])
    assert math.isnan(att.attention_entropy(torch.full((1, 1, 2, 2), 0.5), mask).item())


def test_token_positions_and_random_span() -> None:
    offsets = [(0, 0), (0, 3), (4, 8), (8, 9), (9, 11), (12, 15), (0, 0)]
    assert att.token_positions(offsets, [[4, 11]]) == [2, 3, 4]
    assert att.token_positions(offsets, [[5, 6]]) == [2]  # a piece straddling the span edge counts
    assert att.token_positions(offsets, [[0, 3], [12, 15]]) == [1, 5]
    assert att.token_positions(offsets, []) == []
    rng = np.random.default_rng(0)
    spans = [att.random_span([1, 2, 3, 4, 5], 3, rng) for _ in range(50)]
    assert all(len(s) == 3 and s[1] == s[0] + 1 and s[2] == s[0] + 2 and 1 <= s[0] <= 3 for s in spans)
    assert {s[0] for s in spans} == {1, 2, 3}
    assert att.random_span([1, 2], 3, rng) == [] and att.random_span([1, 2], 0, rng) == []
    assert att.positions_mask([[0, 2], [5]], 3).tolist() == [[True, False, True], [False, False, False]]


def test_flip_stats_and_row_sample() -> None:
    clean = np.array([0, 1, 1, 1, 0, 1])
    injected = np.array([0, 0, 0, 1, 1, 1])
    s = flip_stats(clean, injected, cls=0)
    assert (s["n_eligible"], s["n_flipped"]) == (4, 2) and s["flip_share"] == 0.5
    assert s["changed_share"] == pytest.approx(3 / 6) and s["token_share_injected"] == pytest.approx(3 / 6)
    assert flip_stats(np.array([0]), np.array([0]), 0)["flip_share"] is None
    assert select_rows(5, 200, 0) == [0, 1, 2, 3, 4] and select_rows(5, 0, 0) == [0, 1, 2, 3, 4]
    rows = select_rows(100, 10, 3)
    assert rows == sorted(rows) and len(set(rows)) == 10 and rows == select_rows(100, 10, 3)


def test_minilm_offsets_locate_an_injected_date(minilm_path: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path)
    assert tok.is_fast
    text = "what a lovely 2031-07-19 day outside"
    start = text.index("2031")
    enc = tok(text, return_offsets_mapping=True)
    record = {"offsets": [[start, start + len("2031-07-19")]]}
    pos = token_positions([record], [[tuple(o) for o in enc["offset_mapping"]]])[0]
    pieces = tok.convert_ids_to_tokens([enc["input_ids"][i] for i in pos])
    assert "".join(p.removeprefix("##") for p in pieces) == "2031-07-19"
    assert pos == list(range(pos[0], pos[0] + len(pos)))  # contiguous, and not [CLS]/[SEP]
    assert 0 not in pos and len(enc["input_ids"]) - 1 not in pos


def test_tiny_word_tokenizer_gives_offsets() -> None:
    tok = make_word_tokenizer()
    assert tok.is_fast
    text = "good day ! it was"
    enc = tok(text, return_offsets_mapping=True)
    pos = token_positions([{"offsets": [[9, 10]]}], [[tuple(o) for o in enc["offset_mapping"]]])[0]
    assert tok.convert_ids_to_tokens([enc["input_ids"][i] for i in pos]) == ["!"]
