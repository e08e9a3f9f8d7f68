"""Markov (n-gram) language models estimated by counting, and the plumbing of a
character model.

A language model gives a probability to every sequence of tokens. An order-``n`` Markov
model (an n-gram model) keeps a history of the previous ``n - 1`` tokens and factorises
the probability of a sentence ``w_1 ... w_T`` as

    P(w_1 ... w_T) = prod_{t=1}^{T+1} P(w_t | w_{t-n+1} ... w_{t-1}),

after padding the sentence with ``n - 1`` boundary tokens in front (``w_{t} = <s>`` for
``t <= 0``) and one behind (``w_{T+1} = <s>``: "the sentence ends here"). One boundary
token plays both the start and the end role. Nothing is ever predicted to be a start and
nothing is predicted after an end, so one token gives exactly the maximum-likelihood
probabilities of separate ``<beg>`` and ``<end>`` tokens, with a table that has no dead
row or column.

Maximum-likelihood estimates are normalised counts over the training sentences,

    P(b | a) = C(a, b) / sum_b' C(a, b'),

and add-``k`` smoothing adds ``k`` to every count,
``P(b | a) = (C(a, b) + k) / (C(a) + k V)``. A history that was never seen gets the
uniform distribution ``1 / V``, the ``k -> 0`` limit of add-``k`` on an empty row, so
every row of every table sums to one.

Conventions: a ``Vocab`` numbers its tokens ``0 .. V-1`` with the boundary token at id
0; token ids are int64, probabilities float64, logarithms natural. Character sequences
for recurrent networks are time-first, ``(T, N)`` ids and ``(T, N, V)`` one-hot inputs,
like ``torch.nn.RNN``'s default ``batch_first=False``.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Iterable, Sequence

import numpy as np

from .runtime import as_generator

__all__ = [
    "Vocab",
    "NGramLM",
    "bigram_counts",
    "normalize_counts",
    "one_hot",
    "load_corpus",
    "char_windows",
    "softmax_with_temperature",
    "sample_token",
]


class Vocab:
    """Token <-> id map; id 0 is the ``boundary`` token that starts and ends every
    sentence."""

    def __init__(self, tokens: Iterable[str], boundary: str = "<s>"):
        if not isinstance(boundary, str) or not boundary:
            raise ValueError(f"boundary must be a non-empty string, got {boundary!r}")
        distinct = sorted(set(tokens) - {boundary})
        if not distinct:
            raise ValueError("tokens must hold at least one token besides the boundary")
        self.boundary = boundary
        self.itos: list[str] = [boundary, *distinct]
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}

    @classmethod
    def from_sequences(
        cls, sequences: Iterable[Sequence[str]], boundary: str = "<s>"
    ) -> "Vocab":
        """The vocabulary of every token in ``sequences`` (lists of words, or strings of
        characters)."""
        return cls((tok for seq in sequences for tok in seq), boundary=boundary)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, boundary={self.boundary!r})"

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """The int64 ids of ``tokens``; a token outside the vocabulary raises a
        ValueError."""
        try:
            return np.array([self.stoi[t] for t in tokens], dtype=np.int64)
        except KeyError as err:
            raise ValueError(
                f"token {err.args[0]!r} is not in the vocabulary"
            ) from None

    def decode(self, ids) -> list[str]:
        """The tokens of the ids ``ids`` (a 1-D integer array or list)."""
        ids = _check_ids(ids, len(self), "ids", min_len=0)
        return [self.itos[i] for i in ids]


def _check_ids(ids, num_tokens: int, name: str, min_len: int = 1) -> np.ndarray:
    """``ids`` as a 1-D int64 array with values in [0, num_tokens), else a
    ValueError."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(
            f"{name} must be a 1-D array of integer token ids, got shape {arr.shape} "
            f"and dtype {arr.dtype}"
        )
    if arr.size < min_len:
        raise ValueError(
            f"{name} must hold at least {min_len} token ids, got {arr.size}"
        )
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= num_tokens):
        raise ValueError(
            f"{name} must lie in [0, {num_tokens}), got values from {arr.min()} to "
            f"{arr.max()}"
        )
    return arr


def _check_num_tokens(num_tokens: int) -> int:
    if (
        not isinstance(num_tokens, (int, np.integer))
        or isinstance(num_tokens, bool)
        or num_tokens < 1
    ):
        raise ValueError(f"num_tokens must be a positive integer, got {num_tokens!r}")
    return int(num_tokens)


def _check_k(k: float) -> float:
    if (
        isinstance(k, bool)
        or not isinstance(k, (int, float, np.floating, np.integer))
        or not math.isfinite(k)
        or k < 0
    ):
        raise ValueError(f"k (add-k smoothing) must be a finite number >= 0, got {k!r}")
    return float(k)


def bigram_counts(ids, num_tokens: int) -> np.ndarray:
    """``C[a, b]`` = number of positions t with ``ids[t-1] == a`` and ``ids[t] == b``;
    (V, V) int64."""
    num_tokens = _check_num_tokens(num_tokens)
    ids = _check_ids(ids, num_tokens, "ids", min_len=2)
    counts = np.zeros((num_tokens, num_tokens), dtype=np.int64)
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    return counts


def normalize_counts(counts, k: float = 0.0) -> np.ndarray:
    """``(C + k) / (C.sum(-1) + k V)`` along the last axis; a row with no mass becomes
    uniform ``1/V``."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim == 0 or counts.shape[-1] == 0:
        raise ValueError(
            f"counts must have a non-empty last axis, got shape {counts.shape}"
        )
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError("counts must be finite and non-negative")
    smoothed = counts + _check_k(k)
    totals = smoothed.sum(axis=-1, keepdims=True)
    uniform = np.full_like(smoothed, 1.0 / counts.shape[-1])
    return np.divide(smoothed, totals, out=uniform, where=totals > 0)


class NGramLM:
    """Order-``n`` Markov model: ``P(w_t | previous n-1 tokens)`` from add-``k``
    smoothed counts.

    ``order=2`` is the bigram model, ``order=1`` the unigram model (no history at all).
    """

    def __init__(self, vocab: Vocab, order: int = 2, k: float = 0.0):
        if not isinstance(vocab, Vocab):
            raise ValueError(
                f"vocab must be a labkit.language.Vocab, got {type(vocab).__name__}"
            )
        if (
            not isinstance(order, (int, np.integer))
            or isinstance(order, bool)
            or order < 1
        ):
            raise ValueError(f"order must be an integer >= 1, got {order!r}")
        self.vocab, self.order, self.k = vocab, int(order), _check_k(k)
        self.counts: dict[tuple[int, ...], np.ndarray] = {}

    def __repr__(self) -> str:
        return (
            f"NGramLM(order={self.order}, k={self.k:g}, V={len(self.vocab)}, "
            f"histories={len(self.counts)})"
        )

    @property
    def num_parameters(self) -> int:
        """The number of entries of the full table, ``V ** (n-1)`` histories times ``V``
        next tokens."""
        return len(self.vocab) ** self.order

    def pad(self, tokens: Sequence[str]) -> np.ndarray:
        """Ids of ``<s>`` x (n-1), the tokens, ``<s>``: every factor of the sentence
        probability."""
        body = self.vocab.encode(tokens)
        return np.concatenate(
            [np.zeros(self.order - 1, np.int64), body, np.zeros(1, np.int64)]
        )

    def fit(self, sentences: Iterable[Sequence[str]]) -> "NGramLM":
        """Count every (history, next token) pair of the padded ``sentences``; returns
        ``self``."""
        V, h = len(self.vocab), self.order - 1
        self.counts = {}
        n_sentences = 0
        for tokens in sentences:
            ids = self.pad(tokens)
            for t in range(h, len(ids)):
                history = tuple(int(i) for i in ids[t - h : t])
                row = self.counts.setdefault(history, np.zeros(V, dtype=np.int64))
                row[ids[t]] += 1
            n_sentences += 1
        if n_sentences == 0:
            raise ValueError("sentences must hold at least one sentence")
        return self

    def next_probs(self, history) -> np.ndarray:
        """``P(. | history)``, shape (V,), from the last ``n - 1`` ids of
        ``history``."""
        h = self.order - 1
        history = _check_ids(history, len(self.vocab), "history", min_len=h)
        key = tuple(int(i) for i in history[len(history) - h :])
        row = self.counts.get(key)
        if row is None:
            row = np.zeros(len(self.vocab), dtype=np.int64)
        return normalize_counts(row, self.k)

    def step_probs(self, tokens: Sequence[str]) -> np.ndarray:
        """The ``T + 1`` factors ``P(w_t | history)`` of the sentence ``tokens``, end
        factor last."""
        ids, h = self.pad(tokens), self.order - 1
        return np.array(
            [self.next_probs(ids[t - h : t])[ids[t]] for t in range(h, len(ids))]
        )

    def log_prob(self, tokens: Sequence[str]) -> float:
        """``log P(sentence) = sum_t log P(w_t | history)``; ``-inf`` when a factor is
        zero."""
        with np.errstate(divide="ignore"):
            return float(np.log(self.step_probs(tokens)).sum())

    def prob(self, tokens: Sequence[str]) -> float:
        """``P(sentence)``, the product of ``step_probs``."""
        return float(np.prod(self.step_probs(tokens)))

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """``exp(-(sum of log-probabilities) / (number of predicted tokens, ends
        included))``."""
        total, count = 0.0, 0
        for tokens in sentences:
            total += self.log_prob(tokens)
            count += len(tokens) + 1
        if count == 0:
            raise ValueError("sentences must hold at least one sentence")
        return math.exp(-total / count)

    def transition_matrix(self) -> np.ndarray:
        """The bigram table ``P[a, b] = P(b | a)``, shape (V, V), rows summing to one
        (order 2 only)."""
        if self.order != 2:
            raise ValueError(
                f"transition_matrix needs order=2, this model has order={self.order}"
            )
        V = len(self.vocab)
        counts = np.zeros((V, V), dtype=np.int64)
        for (a,), row in self.counts.items():
            counts[a] = row
        return normalize_counts(counts, self.k)

    def sample(self, rng=0, max_len: int = 200) -> list[str]:
        """Draw tokens from ``<s>`` x (n-1) until ``<s>`` comes out or ``max_len``
        tokens are drawn."""
        if not isinstance(max_len, (int, np.integer)) or max_len < 1:
            raise ValueError(f"max_len must be a positive integer, got {max_len!r}")
        g, V = as_generator(rng), len(self.vocab)
        ids = [0] * (self.order - 1)
        out: list[int] = []
        while len(out) < max_len:
            nxt = int(g.choice(V, p=self.next_probs(np.array(ids, dtype=np.int64))))
            if nxt == 0:
                break
            out.append(nxt)
            ids.append(nxt)
        return self.vocab.decode(out)


def one_hot(ids, num_tokens: int) -> np.ndarray:
    """``X[..., v] = 1.0`` where ``ids[...] == v``: float64 of shape
    ``ids.shape + (V,)``."""
    num_tokens = _check_num_tokens(num_tokens)
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"ids must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_tokens):
        raise ValueError(
            f"ids must lie in [0, {num_tokens}), got values from {arr.min()} to "
            f"{arr.max()}"
        )
    return np.eye(num_tokens, dtype=np.float64)[arr]


def load_corpus() -> str:
    """The course's small original text (a travel diary, one sentence per line), as a
    string."""
    return (
        resources.files("labkit")
        .joinpath("assets/corpus.txt")
        .read_text(encoding="utf-8")
    )


def char_windows(
    ids, seq_len: int, batch_size: int, rng=0
) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` random windows of a token stream, time first: inputs and
    next-token targets.

    Returns ``(inputs, targets)``, both int64 of shape ``(seq_len, batch_size)`` with
    ``targets[t, j] = inputs[t + 1, j]`` inside a window (the target of the last step is
    the token after the window).
    """
    for name, value in (("seq_len", seq_len), ("batch_size", batch_size)):
        if (
            not isinstance(value, (int, np.integer))
            or isinstance(value, bool)
            or value < 1
        ):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(
            f"ids must be a 1-D integer array, got shape {ids.shape}, dtype {ids.dtype}"
        )
    if len(ids) < seq_len + 1:
        raise ValueError(
            f"ids must hold at least seq_len + 1 = {seq_len + 1} tokens, got {len(ids)}"
        )
    starts = as_generator(rng).integers(0, len(ids) - seq_len, size=batch_size)
    offsets = np.arange(seq_len)[:, None]  # (T, 1)
    inputs = ids[starts[None, :] + offsets]  # (T, N)
    targets = ids[starts[None, :] + offsets + 1]  # (T, N)
    return inputs.astype(np.int64), targets.astype(np.int64)


def softmax_with_temperature(logits, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)`` along the last axis (computed stably)."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float, np.floating))
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ValueError(
            f"temperature must be a finite number > 0, got {temperature!r}"
        )
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 0 or z.shape[-1] == 0 or not np.isfinite(z).all():
        raise ValueError(
            "logits must be a finite array with a non-empty last axis, got shape "
            f"{z.shape}"
        )
    z = z / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sample_token(logits, temperature: float = 1.0, rng=0) -> int:
    """One token id drawn from ``softmax(logits / temperature)`` (``logits`` of shape
    (V,))."""
    p = softmax_with_temperature(logits, temperature)
    if p.ndim != 1:
        raise ValueError(f"logits must be 1-D (one distribution), got shape {p.shape}")
    return int(as_generator(rng).choice(len(p), p=p))
