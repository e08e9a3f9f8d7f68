"""Chapter 3 exercises: Markov language models, decoding, the recurrent network, BPTT, the LSTM cell.

Expected values come from independent oracles: exact fractions and ``collections.Counter`` for the
counting exercises, torch's softmax and ``searchsorted`` for sampling, ``torch.nn.RNN``,
``torch.nn.LSTMCell`` and torch autograd (all in float64) for the networks.
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np

from . import Case, exercise


def _torch():
    import torch

    return torch


# ---- 3.1 bigram maximum-likelihood table ------------------------------------------------------


def _bigram_probs(ids, num_tokens):
    ids = np.asarray(ids)
    counts = np.zeros((num_tokens, num_tokens))
    np.add.at(counts, (ids[:-1], ids[1:]), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(
        counts, totals, out=np.full_like(counts, 1.0 / num_tokens), where=totals > 0
    )


def _bigram_oracle(ids, num_tokens):
    pairs = Counter(zip(ids[:-1].tolist(), ids[1:].tolist()))
    table = np.empty((num_tokens, num_tokens))
    for a in range(num_tokens):
        total = sum(pairs[(a, b)] for b in range(num_tokens))
        for b in range(num_tokens):
            table[a, b] = (
                float(Fraction(pairs[(a, b)], total)) if total else 1.0 / num_tokens
            )
    return table


@exercise(
    "3.1",
    title="Bigram probabilities by counting",
    points=2,
    function="bigram_probs",
    reference=_bigram_probs,
    hints=(
        "count C[a, b] for every neighbouring pair (ids[t-1], ids[t]), divide each row by its "
        "sum; a row with no counts (a token never followed by anything) becomes uniform 1/V.",
    ),
)
def _cases_3_1():
    rng = np.random.default_rng(301)
    cases = [
        Case(
            "hand example 0 1 1 2 0 1 (token 2 -> 0 only)",
            (np.array([0, 1, 1, 2, 0, 1]), 3),
            _bigram_oracle(np.array([0, 1, 1, 2, 0, 1]), 3),
        )
    ]
    for length, V in ((40, 5), (200, 8), (12, 10)):  # the last leaves empty rows
        ids = rng.integers(0, V - 1 if V == 5 else V, size=length)
        cases.append(
            Case(
                f"random stream of {length} ids, V={V}",
                (ids, V),
                _bigram_oracle(ids, V),
            )
        )
    return cases


# ---- 3.2 log-probability of a sentence with add-k smoothing -----------------------------------


def _sentence_log_prob(counts, sentence, k):
    counts = np.asarray(counts, dtype=np.float64)
    V = counts.shape[0]
    padded = np.concatenate([[0], sentence, [0]]).astype(int)
    prev, nxt = padded[:-1], padded[1:]
    probs = (counts[prev, nxt] + k) / (counts[prev].sum(axis=1) + k * V)
    with np.errstate(divide="ignore"):
        return float(np.log(probs).sum())


def _log_prob_oracle(counts, sentence, k):
    V, kf = len(counts), Fraction(k)
    padded = [0, *sentence.tolist(), 0]
    total = 0.0
    for a, b in zip(padded[:-1], padded[1:]):
        p = (int(counts[a, b]) + kf) / (sum(int(c) for c in counts[a]) + kf * V)
        if p == 0:
            return -math.inf
        total += math.log(p)
    return total


@exercise(
    "3.2",
    title="Log-probability of a sentence under a smoothed bigram model",
    points=2,
    function="sentence_log_prob",
    reference=_sentence_log_prob,
    rtol=1e-10,
    hints=(
        "pad the sentence with the boundary id 0 at both ends, then add "
        "log((C[a, b] + k) / (C[a].sum() + k V)) over every neighbouring pair (a, b); "
        "a zero factor gives -inf (use np.log, not math.log).",
    ),
)
def _cases_3_2():
    rng = np.random.default_rng(302)
    counts = rng.integers(0, 4, size=(6, 6))
    counts[0, 0] = 0
    counts[:, 0] += 1  # every token can end a sentence
    sentence = rng.integers(1, 6, size=7)
    zero_pair = (
        np.argwhere(counts[1:, 1:] == 0)[0] + 1
    )  # a bigram never seen in training
    unseen = np.array([3, *zero_pair, 2])
    cases = []
    for k in (0.0, 0.5, 1.0):
        cases.append(
            Case(
                f"7 tokens, V=6, k={k:g}",
                (counts, sentence, k),
                _log_prob_oracle(counts, sentence, k),
            )
        )
    for k in (0.0, 1.0):
        cases.append(
            Case(
                f"sentence with an unseen bigram, k={k:g}",
                (counts, unseen, k),
                _log_prob_oracle(counts, unseen, k),
            )
        )
    return cases


# ---- 3.3 decoding: sampling with a temperature ------------------------------------------------


def _sample_with_temperature(logits, temperature, u):
    z = logits / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)  # (N, V) softmax(logits / T)
    cdf = np.cumsum(p, axis=1)
    idx = (cdf <= u[:, None]).sum(axis=1)  # first index with u < cdf
    return np.minimum(idx, logits.shape[1] - 1).astype(np.int64)


@exercise(
    "3.3",
    title="Decoding: sampling with a temperature",
    points=2,
    function="sample_with_temperature",
    reference=_sample_with_temperature,
    hints=(
        "p = softmax(logits / temperature) row by row (subtract the row maximum first); the "
        "sample for row n is the first index i whose cumulative sum p[n, 0] + ... + p[n, i] "
        "exceeds u[n].",
    ),
)
def _cases_3_3():
    torch = _torch()
    rng = np.random.default_rng(303)
    cases = []
    for N, V, temperature, scale in (
        (6, 5, 1.0, 2.0),
        (8, 12, 0.5, 3.0),
        (8, 12, 2.0, 3.0),
        (5, 30, 0.1, 40.0),
    ):
        logits, u = rng.normal(size=(N, V)) * scale, rng.uniform(0.0, 0.999, size=N)
        cdf = torch.cumsum(
            torch.softmax(torch.from_numpy(logits) / temperature, dim=1), dim=1
        )
        idx = torch.searchsorted(cdf, torch.from_numpy(u)[:, None], right=True)[:, 0]
        cases.append(
            Case(
                f"N={N}, V={V}, temperature={temperature:g}",
                (logits, temperature, u),
                idx.clamp(max=V - 1).numpy().astype(np.int64),
            )
        )
    return cases


# ---- 3.4 the unrolled RNN forward pass --------------------------------------------------------


def _rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    h, outputs = h0, []
    for x_t in x:  # x_t: (N, F)
        h = np.tanh(x_t @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        outputs.append(h)
    return np.stack(outputs), h  # (T, N, H), (N, H)


def _rnn_weights(rng, F, H):
    scale = 1.0 / math.sqrt(H)
    return (
        rng.uniform(-scale, scale, (H, F)),
        rng.uniform(-scale, scale, (H, H)) * 2,
        rng.uniform(-scale, scale, H),
        rng.uniform(-scale, scale, H),
    )


def _torch_rnn(x, h0, W_ih, W_hh, b_ih, b_hh):
    torch = _torch()
    rnn = torch.nn.RNN(W_ih.shape[1], W_ih.shape[0], dtype=torch.float64)
    rnn.load_state_dict(
        {
            "weight_ih_l0": torch.from_numpy(W_ih),
            "weight_hh_l0": torch.from_numpy(W_hh),
            "bias_ih_l0": torch.from_numpy(b_ih),
            "bias_hh_l0": torch.from_numpy(b_hh),
        }
    )
    return rnn


@exercise(
    "3.4",
    title="Unrolling a recurrent network",
    points=2,
    function="rnn_forward",
    reference=_rnn_forward,
    hints=(
        "loop over time with ONE set of weights: h = tanh(x_t W_ih^T + b_ih + h W_hh^T + b_hh); "
        "collect every h into a (T, N, H) array and also return the last one.",
    ),
)
def _cases_3_4():
    torch = _torch()
    rng = np.random.default_rng(304)
    cases = []
    for T, N, F, H in ((1, 1, 2, 3), (6, 4, 3, 5), (15, 2, 1, 4)):
        x, h0 = rng.normal(size=(T, N, F)), rng.normal(size=(N, H)) * 0.5
        weights = _rnn_weights(rng, F, H)
        with torch.no_grad():
            out, h_n = _torch_rnn(x, h0, *weights)(
                torch.from_numpy(x), torch.from_numpy(h0)[None]
            )
        cases.append(
            Case(
                f"T={T}, N={N}, F={F}, H={H}",
                (x, h0, *weights),
                (out.numpy(), h_n[0].numpy()),
            )
        )
    return cases


# ---- 3.5 backpropagation through time ---------------------------------------------------------


def _rnn_bptt(x, h0, W_ih, W_hh, b_ih, b_hh, grad_output):
    out, _ = _rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh)  # (T, N, H)
    grad_W_ih, grad_W_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    grad_b = np.zeros_like(b_ih)
    grad_h = np.zeros_like(h0)  # dL/dh_t flowing back from t + 1
    for t in reversed(range(len(x))):
        h_prev = out[t - 1] if t > 0 else h0
        grad_h = grad_h + grad_output[t]  # (N, H)
        grad_z = grad_h * (1.0 - out[t] ** 2)  # through tanh
        grad_W_ih += grad_z.T @ x[t]
        grad_W_hh += grad_z.T @ h_prev
        grad_b += grad_z.sum(axis=0)
        grad_h = grad_z @ W_hh  # to h_{t-1}
    return grad_W_ih, grad_W_hh, grad_b, grad_h


@exercise(
    "3.5",
    title="Backpropagation through time by hand",
    points=4,
    function="rnn_bptt",
    reference=_rnn_bptt,
    rtol=1e-9,
    atol=1e-12,
    hints=(
        "run the forward pass and keep every h_t; then walk t = T-1 ... 0 carrying dL/dh_t: add "
        "grad_output[t], multiply by (1 - h_t^2) to get dL/dz_t, accumulate dz_t^T x_t, "
        "dz_t^T h_{t-1} and dz_t summed over the batch, and pass dz_t W_hh back to h_{t-1}.",
    ),
)
def _cases_3_5():
    torch = _torch()
    rng = np.random.default_rng(305)
    cases = []
    for T, N, F, H in ((1, 2, 2, 3), (4, 3, 2, 3), (12, 2, 3, 4)):
        x, h0 = rng.normal(size=(T, N, F)), rng.normal(size=(N, H)) * 0.5
        weights = _rnn_weights(rng, F, H)
        grad_output = rng.normal(size=(T, N, H))
        rnn = _torch_rnn(x, h0, *weights)
        h0_t = torch.tensor(h0[None], requires_grad=True)
        out, _ = rnn(torch.from_numpy(x), h0_t)
        (out * torch.from_numpy(grad_output)).sum().backward()
        expected = (
            rnn.weight_ih_l0.grad.numpy(),
            rnn.weight_hh_l0.grad.numpy(),
            rnn.bias_ih_l0.grad.numpy(),
            h0_t.grad[0].numpy(),
        )
        cases.append(
            Case(
                f"T={T}, N={N}, F={F}, H={H}", (x, h0, *weights, grad_output), expected
            )
        )
    return cases


# ---- 3.6 one LSTM cell step -------------------------------------------------------------------


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (N, 4H)
    zi, zf, zg, zo = np.split(
        z, 4, axis=1
    )  # torch's order: input, forget, cell, output
    i, f, g, o = _sigmoid(zi), _sigmoid(zf), np.tanh(zg), _sigmoid(zo)
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new


@exercise(
    "3.6",
    title="One step of an LSTM cell",
    points=3,
    function="lstm_cell",
    reference=_lstm_cell,
    hints=(
        "z = x W_ih^T + b_ih + h W_hh^T + b_hh has 4H columns in the order i, f, g, o; "
        "i, f, o go through the sigmoid and g through tanh; c' = f*c + i*g and h' = o*tanh(c').",
    ),
)
def _cases_3_6():
    torch = _torch()
    rng = np.random.default_rng(306)
    cases = []
    for N, F, H in ((1, 1, 1), (3, 4, 2), (5, 2, 6)):
        x, h, c = (
            rng.normal(size=(N, F)),
            rng.normal(size=(N, H)) * 0.5,
            rng.normal(size=(N, H)),
        )
        W_ih, W_hh = rng.normal(size=(4 * H, F)), rng.normal(size=(4 * H, H))
        b_ih, b_hh = rng.normal(size=4 * H), rng.normal(size=4 * H)
        cell = torch.nn.LSTMCell(F, H, dtype=torch.float64)
        cell.load_state_dict(
            {
                "weight_ih": torch.from_numpy(W_ih),
                "weight_hh": torch.from_numpy(W_hh),
                "bias_ih": torch.from_numpy(b_ih),
                "bias_hh": torch.from_numpy(b_hh),
            }
        )
        with torch.no_grad():
            h_new, c_new = cell(
                torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c))
            )
        cases.append(
            Case(
                f"N={N}, F={F}, H={H}",
                (x, h, c, W_ih, W_hh, b_ih, b_hh),
                (h_new.numpy(), c_new.numpy()),
            )
        )
    return cases
