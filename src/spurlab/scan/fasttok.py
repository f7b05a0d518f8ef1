"""Corpus tokenisation without a per-row Python regex: whitespace chunks in Arrow, the regex on unique chunks only.

The reference tokenizer (``shapes.TOKEN_RE``) never starts a token on whitespace and, with two exceptions, never
lets a token cross whitespace: an HTML tag with attributes or a space before ``/>`` (``<a href=x>``,
``<br />``), and a multi-word lexicon name (``sky blue``). Its lookarounds (``(?!\\w)`` after dates and
numbers) see whitespace and the end of a string alike. So for every row *without* those two exceptions,
``tokenize(row)`` equals the concatenation of ``tokenize(chunk)`` over the row's whitespace-separated chunks,
and a chunk's tokens depend only on the chunk. The fast path therefore

1. converts the texts to an Arrow array and marks, with one RE2 pass (``match_substring_regex``), every row
   that *might* hold a whitespace-crossing token (a superset: an HTML tag name followed by whitespace, or any
   multi-word name in any case, without word-boundary checks); those rows, and rows Arrow cannot hold (lone
   surrogates), go through the reference tokenizer one by one;
2. splits the other rows on whitespace (``utf8_split_whitespace``, same whitespace set as Python's ``\\s``:
   checked once per process, the fast path is off if they ever differ), flattens the chunks and
   dictionary-encodes them;
3. runs the reference regex once per *unique* chunk and expands chunk ids to token ids with numpy.

The result is exactly ``code_rows(tokenize_corpus(texts))``: the same token ids, in the same order of first
occurrence (tests compare the two on a varied corpus and on arbitrary text with hypothesis).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from spurlab.scan.lexicon import multiword_phrases
from spurlab.scan.shapes import TOKEN_RE, alone_flags

# Python's case-insensitive matching also folds these onto a phrase letter; RE2's (?i) does not.
_EXTRA_FOLDS = {"i": "\u0130\u0131"}


def _re2_char(ch: str) -> str:
    """An RE2 class matching ``ch`` in any case Python's ``(?i)`` accepts (used inside ``(?i:...)``)."""
    return f"[{re.escape(ch)}{_EXTRA_FOLDS[ch]}]" if ch in _EXTRA_FOLDS else re.escape(ch)


def _re2_space() -> str:
    """An RE2 class of every character Python's ``re`` treats as ``\\s`` (RE2's own ``\\s`` is ASCII only)."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in python_spaces()) + "]"


@lru_cache(maxsize=1)
def route_pattern() -> str:
    """RE2 pattern of rows that may hold a whitespace-crossing token (a superset of them; see module doc)."""
    space = _re2_space()
    phrases = "|".join("".join(space + "+" if ch == " " else _re2_char(ch) for ch in phrase)
                       for phrase in multiword_phrases())
    return f"</?[A-Za-z][A-Za-z0-9]*{space}|(?i:{phrases})"


#: Code points the whitespace checks cover at run time: the BMP, where every Unicode whitespace character lives
#: (the tests check all of Unicode).
CHECKED_CODE_POINTS = 0x10000


def python_spaces(limit: int = CHECKED_CODE_POINTS) -> list[str]:
    """The characters below ``limit`` that Python's ``re`` matches with ``\\s``."""
    return re.findall(r"\s", "".join(map(chr, range(limit))))


@lru_cache(maxsize=2)
def arrow_whitespace_ok(limit: int = CHECKED_CODE_POINTS) -> bool:
    """Whether Arrow's ``utf8_split_whitespace`` cuts only at characters Python's ``re`` calls ``\\s``, and
    drops them (checked on ``"a" + c + "a"`` for every code point ``c < limit``). A subset of them is fine."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return False
    cps = np.arange(limit, dtype=np.uint32)
    cps = cps[(cps < 0xD800) | (cps > 0xDFFF)]
    probes = np.stack([np.full_like(cps, ord("a")), cps, np.full_like(cps, ord("a"))], axis=1)
    probes = pa.array(np.ascontiguousarray(probes).view("<U3").ravel())
    lists = pc.utf8_split_whitespace(probes)
    lens = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    space = np.zeros(limit, dtype=bool)
    space[[ord(c) for c in python_spaces(limit)]] = True
    if not set(np.unique(lens).tolist()) <= {1, 2} or not space[cps[lens == 2]].all():
        return False
    whole = lists.filter(pa.array(lens == 1)).flatten()
    halves = lists.filter(pa.array(lens == 2)).flatten()
    return bool(pc.all(pc.equal(whole, probes.filter(pa.array(lens == 1)))).as_py() is not False
                and pc.all(pc.equal(halves, "a")).as_py() is not False)


def _arrow_texts(texts: list[str]):
    """(Arrow large_string array, rows that cannot be encoded as UTF-8 and were blanked)."""
    import pyarrow as pa

    try:
        return pa.array(texts, type=pa.large_string()), []
    except (UnicodeEncodeError, pa.ArrowInvalid, pa.ArrowTypeError):
        bad = []
        for i, text in enumerate(texts):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                bad.append(i)
        blank = set(bad)
        return pa.array([("" if i in blank else t) for i, t in enumerate(texts)], type=pa.large_string()), bad


@dataclass
class Chunked:
    """A tokenised corpus kept at the level of chunks (whitespace-separated pieces, or whole rows for rows the
    reference tokenizer handled): row ``r`` is the chunks ``chunk_ids[offsets[r]:offsets[r + 1]]``, and chunk
    ``c`` is the tokens ``token_ids[token_ptr[c]:token_ptr[c + 1]]`` (every listed chunk has at least one).
    Token ids index ``vocab``, numbered in order of first occurrence in the corpus. ``token_alone`` (aligned with
    ``token_ids``) says whether that token has whitespace or the row's edge on both sides: the whole chunk."""

    chunk_ids: np.ndarray
    offsets: np.ndarray
    token_ptr: np.ndarray
    token_ids: np.ndarray
    vocab: list[str]
    token_alone: np.ndarray

    @property
    def n_chunks(self) -> int:
        return len(self.token_ptr) - 1

    @property
    def chunk_len(self) -> np.ndarray:
        return np.diff(self.token_ptr)

    def chunk_matrix(self):
        """Rows x chunks occurrence counts (CSR; a chunk twice in a row may be two entries, they sum)."""
        from scipy import sparse

        n = len(self.offsets) - 1
        # float64: the feature counts built from it feed a float product (expected edge counts) and would
        # otherwise be converted there; every count stays an exact integer
        return sparse.csr_matrix((np.ones(len(self.chunk_ids), dtype=np.float64), self.chunk_ids, self.offsets),
                                 shape=(n, self.n_chunks))

    def token_matrix(self):
        """Chunks x vocab occurrence counts (CSR, duplicates summed; float64 holding integers)."""
        from scipy import sparse

        mat = sparse.csr_matrix((np.ones(len(self.token_ids), dtype=np.float64), self.token_ids, self.token_ptr),
                                shape=(self.n_chunks, len(self.vocab)))
        mat.sum_duplicates()
        return mat

    def lengths(self, chunk_matrix=None) -> np.ndarray:
        """Tokens per row (``chunk_matrix``: this corpus' ``chunk_matrix()``, if already built)."""
        mat = self.chunk_matrix() if chunk_matrix is None else chunk_matrix
        return np.rint(mat @ self.chunk_len.astype(mat.dtype)).astype(np.int64)

    def edge_tokens(self) -> tuple[np.ndarray, np.ndarray]:
        """(first token id, last token id) of every row with at least one token, in row order."""
        nonempty = np.diff(self.offsets) > 0
        first_chunk = self.chunk_ids[self.offsets[:-1][nonempty]]
        last_chunk = self.chunk_ids[self.offsets[1:][nonempty] - 1]
        return self.token_ids[self.token_ptr[first_chunk]], self.token_ids[self.token_ptr[last_chunk + 1] - 1]

    def codes(self) -> np.ndarray:
        """Every token id, row after row (the flat token stream)."""
        return self.token_ids[self._stream()]

    def codes_and_alone(self) -> tuple[np.ndarray, np.ndarray]:
        """``codes()`` and, for every token of that stream, whether it stands alone between whitespace."""
        stream = self._stream()
        return self.token_ids[stream], self.token_alone[stream]

    def _stream(self) -> np.ndarray:
        """Index into ``token_ids`` of every token of the flat stream, row after row."""
        chunk_len = self.chunk_len
        per_occ = chunk_len[self.chunk_ids]
        occ_end = np.cumsum(per_occ)
        total = int(occ_end[-1]) if len(occ_end) else 0
        return np.repeat(self.token_ptr[self.chunk_ids] - (occ_end - per_occ), per_occ) + np.arange(total)


def chunk_texts(texts) -> Chunked | None:
    """The chunk-level tokenisation of ``texts`` (a list of strings, or an Arrow string array without nulls;
    see the module docstring); None without a usable Arrow."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover
        return None
    if not arrow_whitespace_ok():
        return None
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        arr, bad = texts, []
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
        if arr.null_count:
            raise ValueError("texts must not contain nulls")
        if not pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.large_string())
        source = arr

        def text_of(row: int) -> str:
            return source[row].as_py()
    else:
        arr, bad = _arrow_texts(texts)

        def text_of(row: int) -> str:
            return texts[row]
    routed = np.asarray(pc.match_substring_regex(arr, route_pattern()).to_numpy(zero_copy_only=False), dtype=bool)
    routed[bad] = True
    lists = pc.utf8_split_whitespace(arr)
    offsets = lists.offsets.to_numpy().astype(np.int64)
    offsets -= offsets[0]
    encoded = pc.dictionary_encode(lists.flatten())
    chunk_ids = encoded.indices.to_numpy()
    chunk_tokens = [TOKEN_RE.findall(chunk) for chunk in encoded.dictionary.to_pylist()]
    # drop the chunk occurrences of routed rows, and those of chunks without tokens ("" from leading/trailing
    # whitespace); then give every routed row one chunk of its own: its reference tokens
    empty = np.flatnonzero(np.fromiter(map(len, chunk_tokens), dtype=np.int64, count=len(chunk_tokens)) == 0)
    if empty.size:
        drop = [np.flatnonzero(chunk_ids == empty[0] if empty.size == 1 else np.isin(chunk_ids, empty))]
    else:
        drop = [np.zeros(0, dtype=np.int64)]
    slow_rows = np.flatnonzero(routed)
    if slow_rows.size:
        starts, ends = offsets[slow_rows], offsets[slow_rows + 1]
        drop.append(np.repeat(ends - np.cumsum(ends - starts), ends - starts) + np.arange(int((ends - starts).sum())))
    drop_at = np.unique(np.concatenate(drop)) if len(drop) > 1 else drop[0]
    if drop_at.size:
        chunk_ids = np.delete(chunk_ids, drop_at)
        offsets = offsets - np.searchsorted(drop_at, offsets)
    chunk_ids = chunk_ids.astype(np.int32, copy=False)
    pseudo_alone: dict[int, list[bool]] = {}  # routed rows' pseudo-chunks: which tokens stand alone
    if slow_rows.size:
        rows, pseudo = [], []
        for row in slow_rows.tolist():
            text = text_of(row)
            spans = [(m.start(), m.end(), m.group(0)) for m in TOKEN_RE.finditer(text)]
            if spans:
                rows.append(row)
                pseudo.append(len(chunk_tokens))
                pseudo_alone[len(chunk_tokens)] = alone_flags(text, spans)
                chunk_tokens.append([tok for _, _, tok in spans])
        counts = np.diff(offsets)
        chunk_ids = np.insert(chunk_ids, offsets[rows], np.asarray(pseudo, dtype=np.int32))
        counts[rows] += 1
        offsets = np.concatenate([[0], np.cumsum(counts)])
        order = pd.unique(chunk_ids)
        used = np.zeros(len(chunk_tokens), dtype=bool)
        used[order] = True
        for c in np.flatnonzero(~used).tolist():  # chunks seen only in routed rows
            chunk_tokens[c] = []
    else:
        order = range(len(chunk_tokens))  # dictionary_encode numbers chunks in order of first occurrence
    # token ids in order of first occurrence: chunks in order of first occurrence, tokens in chunk order
    ids: dict[str, int] = {}
    for c in order:
        for tok in chunk_tokens[c]:
            if tok not in ids:
                ids[tok] = len(ids)
    token_len = np.fromiter(map(len, chunk_tokens), dtype=np.int64, count=len(chunk_tokens))
    token_ids = np.fromiter((ids[t] for toks in chunk_tokens for t in toks), dtype=np.int32,
                            count=int(token_len.sum()))
    token_ptr = np.concatenate([[0], np.cumsum(token_len)])
    token_alone = np.repeat(token_len == 1, token_len)
    for c, flags in pseudo_alone.items():
        token_alone[token_ptr[c]:token_ptr[c + 1]] = flags
    return Chunked(chunk_ids, offsets, token_ptr, token_ids, list(ids), token_alone)

