"""Chapter 3 exercises: Markov language models, decoding, the recurrent network, BPTT,
the LSTM cell.

Expected values come from independent oracles: exact fractions and
``collections.Counter`` for the counting exercises, torch's softmax and ``searchsorted``
for sampling, ``torch.nn.RNN``, ``torch.nn.LSTMCell`` and torch autograd (all in
float64) for the networks. Each exercise registers the mistakes the chapter warns about,
and its cases keep each of them at a quarter of the points or less.
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np

from . import Case, Mistake, exercise


def _torch():
    import torch

    return torch


# ---- 3.1 bigram maximum-likelihood table ---------------------------------------------


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


def _bigram_counts(ids, num_tokens):
    ids = np.asarray(ids)
    counts = np.zeros((num_tokens, num_tokens))
    np.add.at(counts, (ids[:-1], ids[1:]), 1.0)
    return counts, counts.sum(axis=1, keepdims=True)


def _bigram_empty_rows_nan(ids, num_tokens):
    counts, totals = _bigram_counts(ids, num_tokens)
    with np.errstate(invalid="ignore"):
        return counts / totals


def _bigram_empty_rows_zero(ids, num_tokens):
    counts, totals = _bigram_counts(ids, num_tokens)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def _bigram_transposed(ids, num_tokens):
    return _bigram_probs(ids, num_tokens).T


@exercise(
    "3.1",
    title="Bigram probabilities by counting",
    points=2,
    function="bigram_probs",
    reference=_bigram_probs,
    hints=(
        "Row a of the table is the distribution of the token that follows a; a row "
        "with "
        "nothing to count still has to be a distribution (reread 'Language models by "
        "counting').",
        "Count C[a, b] for every neighbouring pair (ids[t-1], ids[t]), divide each row "
        "by "
        "its sum; a row with no counts becomes uniform, 1 / num_tokens everywhere.",
    ),
    mistakes=(
        Mistake(
            "empty-row-nan",
            "A token never followed by anything got the row 0 / 0 = nan; its row must "
            "still sum to one, so it is uniform.",
            "'Language models by counting'",
            _bigram_empty_rows_nan,
        ),
        Mistake(
            "empty-row-zeros",
            "A token never followed by anything got a row of zeros, which is not a "
            "distribution; it is uniform.",
            "'Language models by counting'",
            _bigram_empty_rows_zero,
        ),
        Mistake(
            "transposed",
            "The table was transposed: P[a, b] is the probability that b follows a, so "
            "rows, not columns, sum to one.",
            "'Language models by counting'",
            _bigram_transposed,
        ),
    ),
)
def _cases_3_1():
    rng = np.random.default_rng(301)
    streams = [
        ("hand example 0 1 1 2 0 1, V=4 (token 3 never seen)", [0, 1, 1, 2, 0, 1], 4),
        ("one token repeated, V=3", [2, 2, 2, 2], 3),
        ("a stream of a single id: no pairs, every row uniform", [1], 3),
    ]
    for length, V in ((40, 5), (200, 8), (12, 10), (30, 6)):
        ids = rng.integers(
            0, V - 1, size=length
        )  # the last id never occurs: an empty row
        streams.append((f"random stream of {length} ids, V={V}", ids, V))
    streams.append(("the last token occurs only at the end", [0, 1, 0, 1, 0, 2], 3))
    return [
        Case(label, (np.asarray(ids), V), _bigram_oracle(np.asarray(ids), V))
        for label, ids, V in streams
    ]


# ---- 3.2 log-probability of a sentence with add-k smoothing --------------------------


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


def _log_prob_numerator_only(counts, sentence, k):
    counts = np.asarray(counts, dtype=np.float64)
    padded = np.concatenate([[0], sentence, [0]]).astype(int)
    prev, nxt = padded[:-1], padded[1:]
    with np.errstate(divide="ignore"):
        return float(np.log((counts[prev, nxt] + k) / counts[prev].sum(axis=1)).sum())


def _log_prob_no_end(counts, sentence, k):
    counts = np.asarray(counts, dtype=np.float64)
    V = counts.shape[0]
    padded = np.concatenate([[0], sentence]).astype(int)
    prev, nxt = padded[:-1], padded[1:]
    probs = (counts[prev, nxt] + k) / (counts[prev].sum(axis=1) + k * V)
    with np.errstate(divide="ignore"):
        return float(np.log(probs).sum())


@exercise(
    "3.2",
    title="Log-probability of a sentence under a smoothed bigram model",
    points=2,
    function="sentence_log_prob",
    reference=_sentence_log_prob,
    rtol=1e-10,
    hints=(
        "Every row of the smoothed table must still sum to one, and a sentence is "
        "bracketed by the boundary token on both sides (reread 'Smoothing' and its "
        "pitfall).",
        "Pad the sentence with the boundary id 0 at both ends, then add "
        "log((C[a, b] + k) / (C[a].sum() + k V)) over every neighbouring pair (a, b); "
        "a zero factor gives -inf (use np.log, not math.log).",
    ),
    mistakes=(
        Mistake(
            "numerator-only",
            "k was added to the count but not k V to the row total, so the smoothed "
            "rows "
            "sum to more than one.",
            "'Smoothing' (smoothing only the numerator)",
            _log_prob_numerator_only,
        ),
        Mistake(
            "no-end-boundary",
            "The end of the sentence was not predicted: the last factor, P(boundary | "
            "last token), is part of the sentence's probability.",
            "'Language models by counting'",
            _log_prob_no_end,
        ),
    ),
)
def _cases_3_2():
    rng = np.random.default_rng(302)
    counts = rng.integers(0, 4, size=(6, 6))
    counts[0, 0] = 0
    counts[:, 0] += 1  # every token can end a sentence
    zero_pair = np.argwhere(counts[1:, 1:] == 0)[0] + 1  # a bigram never seen
    unseen = np.array([3, *zero_pair, 2])
    big = rng.integers(0, 50, size=(12, 12))
    big[:, 0] += 5
    cases = []
    for label, table, sentence, k in [
        ("7 tokens, V=6, k=0.5", counts, rng.integers(1, 6, size=7), 0.5),
        ("7 tokens, V=6, k=1", counts, rng.integers(1, 6, size=7), 1.0),
        ("a sentence with an unseen bigram, k=1", counts, unseen, 1.0),
        ("a sentence with an unseen bigram, k=0: -inf", counts, unseen, 0.0),
        ("one token, V=6, k=2", counts, np.array([4]), 2.0),
        (
            "the empty sentence: boundary to boundary, k=0.1",
            counts,
            np.array([], int),
            0.1,
        ),
        ("30 tokens, V=12, k=0.01", big, rng.integers(1, 12, size=30), 0.01),
        ("20 tokens, V=12, k=5", big, rng.integers(1, 12, size=20), 5.0),
    ]:
        expected = _log_prob_oracle(table, sentence, k)
        cases.append(Case(label, (table, sentence, k), expected))
    return cases


# ---- 3.3 decoding: sampling with a temperature ---------------------------------------


def _sample_with_temperature(logits, temperature, u):
    z = logits / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)  # (N, V) softmax(logits / T)
    cdf = np.cumsum(p, axis=1)
    idx = (cdf <= u[:, None]).sum(axis=1)  # first index with u < cdf
    return np.minimum(idx, logits.shape[1] - 1).astype(np.int64)


def _sample_times_temperature(logits, temperature, u):
    return _sample_with_temperature(logits * temperature * temperature, temperature, u)


def _sample_inclusive(logits, temperature, u):
    z = logits / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    idx = (np.cumsum(p, axis=1) < u[:, None]).sum(axis=1)  # first index with u <= cdf
    return np.minimum(idx, logits.shape[1] - 1).astype(np.int64)


def _sample_greedy(logits, temperature, u):
    return logits.argmax(axis=1).astype(np.int64)


@exercise(
    "3.3",
    title="Decoding: sampling with a temperature",
    points=2,
    function="sample_with_temperature",
    reference=_sample_with_temperature,
    hints=(
        "The temperature divides the logits before the softmax, and a sample is read "
        "off the cumulative distribution with a strict inequality (reread 'Decoding: "
        "sampling sentences from the model').",
        "p = softmax(logits / temperature) row by row (subtract the row maximum "
        "first); "
        "the sample for row n is the first index i whose cumulative sum p[n, 0] + ... "
        "+ "
        "p[n, i] is greater than u[n].",
    ),
    mistakes=(
        Mistake(
            "temperature-multiplies",
            "The logits were multiplied by the temperature; dividing by it is what "
            "makes "
            "low temperatures sharpen the distribution.",
            "'Decoding: sampling sentences from the model'",
            _sample_times_temperature,
        ),
        Mistake(
            "inclusive-cdf",
            "The sample was the first index whose cumulative sum reaches u (>=); it is "
            "the first that exceeds u (>), which differs when u falls on a boundary.",
            "'Decoding: sampling sentences from the model'",
            _sample_inclusive,
        ),
        Mistake(
            "greedy",
            "The most likely token was returned, ignoring u: that is temperature zero, "
            "not a sample.",
            "'A character-level language model' (greedy decoding)",
            _sample_greedy,
        ),
    ),
)
def _cases_3_3():
    torch = _torch()
    rng = np.random.default_rng(303)
    cases = []
    for N, V, temperature, scale in (
        (6, 8, 1.0, 2.0),
        (8, 16, 0.5, 3.0),
        (8, 16, 2.0, 3.0),
        (5, 32, 0.1, 40.0),
        (4, 4, 3.0, 1.0),
        (6, 8, 0.7, 1.0),
        (3, 2, 1.5, 5.0),
        (7, 64, 1.2, 2.0),
    ):
        logits, u = rng.normal(size=(N, V)) * scale, rng.uniform(0.0, 0.999, size=N)
        logits[0], u[0] = 3.0, 0.5  # a tie across the row: u on a boundary of the cdf
        logits[1], u[1] = 0.0, 0.0  # and u = 0
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


# ---- 3.4 the unrolled RNN forward pass -----------------------------------------------


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


def _rnn_state_not_carried(x, h0, W_ih, W_hh, b_ih, b_hh):
    out = np.tanh(x @ W_ih.T + b_ih + h0 @ W_hh.T + b_hh)  # every step sees h0
    return out, out[-1]


def _rnn_untransposed(x, h0, W_ih, W_hh, b_ih, b_hh):
    return _rnn_forward(x, h0, W_ih, W_hh.T, b_ih, b_hh)


def _rnn_states_before_update(x, h0, W_ih, W_hh, b_ih, b_hh):
    out, h = _rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh)
    return np.concatenate([h0[None], out[:-1]]), h  # h_0 .. h_{T-1}


@exercise(
    "3.4",
    title="Unrolling a recurrent network",
    points=2,
    function="rnn_forward",
    reference=_rnn_forward,
    hints=(
        "One set of weights serves every step, and the state each step writes is the "
        "one the next step reads and the one it outputs (reread 'Recurrent networks').",
        "Loop over time: h = tanh(x_t W_ih^T + b_ih + h W_hh^T + b_hh), starting from "
        "h0; collect every new h into a (T, N, H) array and also return the last one.",
    ),
    mistakes=(
        Mistake(
            "state-not-carried",
            "Every step read h0 instead of the previous step's state, so nothing is "
            "remembered.",
            "'Recurrent networks'",
            _rnn_state_not_carried,
        ),
        Mistake(
            "untransposed-recurrent",
            "The state was multiplied by W_hh instead of W_hh^T; torch's layout stores "
            "weights as (out, in), as for a linear layer.",
            "'Recurrent networks'",
            _rnn_untransposed,
        ),
        Mistake(
            "states-before-update",
            "The output stacked the state each step read (h_0 .. h_{T-1}), one step "
            "behind; it is the state each step writes, h_1 .. h_T.",
            "'Unrolling and backpropagation through time'",
            _rnn_states_before_update,
        ),
    ),
)
def _cases_3_4():
    torch = _torch()
    rng = np.random.default_rng(304)
    cases = []
    for T, N, F, H in (
        (1, 1, 2, 3),
        (6, 4, 3, 5),
        (15, 2, 1, 4),
        (4, 3, 2, 2),
        (30, 1, 2, 3),
        (5, 2, 3, 4),
    ):
        x, h0 = rng.normal(size=(T, N, F)), rng.normal(size=(N, H)) * 0.5
        if T == 5:
            h0 = np.zeros((N, H))  # the default start
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


# ---- 3.5 backpropagation through time ------------------------------------------------


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


def _bptt(x, h0, W_ih, W_hh, b_ih, b_hh, grad_output, carry=True, previous=True):
    out, _ = _rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh)  # (T, N, H)
    grad_W_ih, grad_W_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    grad_b, grad_h = np.zeros_like(b_ih), np.zeros_like(h0)
    for t in reversed(range(len(x))):
        h_prev = out[t - 1] if t > 0 else h0
        grad_h = (grad_h if carry else 0.0) + grad_output[t]
        grad_z = grad_h * (1.0 - out[t] ** 2)
        grad_W_ih += grad_z.T @ x[t]
        grad_W_hh += grad_z.T @ (h_prev if previous else out[t])
        grad_b += grad_z.sum(axis=0)
        grad_h = grad_z @ W_hh
    return grad_W_ih, grad_W_hh, grad_b, grad_h


def _bptt_truncated(x, h0, W_ih, W_hh, b_ih, b_hh, grad_output):
    return _bptt(x, h0, W_ih, W_hh, b_ih, b_hh, grad_output, carry=False)


def _bptt_current_state(x, h0, W_ih, W_hh, b_ih, b_hh, grad_output):
    return _bptt(x, h0, W_ih, W_hh, b_ih, b_hh, grad_output, previous=False)


def _bptt_last_step_only(x, h0, W_ih, W_hh, b_ih, b_hh, grad_output):
    last = np.zeros_like(grad_output)
    last[-1] = grad_output[-1]
    return _rnn_bptt(x, h0, W_ih, W_hh, b_ih, b_hh, last)


@exercise(
    "3.5",
    title="Backpropagation through time by hand",
    points=4,
    function="rnn_bptt",
    reference=_rnn_bptt,
    rtol=1e-9,
    atol=1e-12,
    hints=(
        "The same weights act at every step, so their gradients sum over time, and the "
        "gradient reaching h_t collects both its own output's and what flows back from "
        "h_{t+1} (reread 'Unrolling and backpropagation through time').",
        "Run the forward pass and keep every h_t; then walk t = T-1 ... 0 carrying "
        "dL/dh_t: "
        "add grad_output[t], multiply by (1 - h_t^2) to get dL/dz_t, accumulate "
        "dz_t^T x_t, dz_t^T h_{t-1} and dz_t summed over the batch, and pass dz_t W_hh "
        "back to h_{t-1}.",
    ),
    mistakes=(
        Mistake(
            "truncated",
            "No gradient flowed back from h_{t+1} to h_t: each step saw only its own "
            "output's gradient, which is backpropagation through one step, not time.",
            "'Unrolling and backpropagation through time'",
            _bptt_truncated,
        ),
        Mistake(
            "off-by-one-state",
            "grad_W_hh used the state a step writes, h_t, where W_hh multiplies the "
            "state "
            "it reads, h_{t-1} (h0 at the first step).",
            "'Unrolling and backpropagation through time'",
            _bptt_current_state,
        ),
        Mistake(
            "last-step-only",
            "Only the last output's gradient was used; every output h_t contributes to "
            "the loss, L = sum(output * grad_output).",
            "'Unrolling and backpropagation through time'",
            _bptt_last_step_only,
        ),
    ),
)
def _cases_3_5():
    torch = _torch()
    rng = np.random.default_rng(305)
    cases = []
    for T, N, F, H in (
        (1, 2, 2, 3),
        (4, 3, 2, 3),
        (12, 2, 3, 4),
        (6, 1, 1, 2),
        (8, 4, 2, 5),
    ):
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


# ---- 3.6 one LSTM cell step ----------------------------------------------------------


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


def _swap_blocks(W):
    """The four gate blocks with the candidate and the output block swapped."""
    i, f, g, o = np.split(W, 4, axis=0)
    return np.concatenate([i, f, o, g], axis=0)


def _lstm_gate_order(x, h, c, W_ih, W_hh, b_ih, b_hh):
    swapped = (_swap_blocks(w) for w in (W_ih, W_hh, b_ih, b_hh))
    return _lstm_cell(x, h, c, *swapped)


def _lstm_no_tanh_on_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    h_new, c_new = _lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)
    o = _sigmoid(np.split(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4, axis=1)[3])
    return o * c_new, c_new


def _lstm_old_cell_in_output(x, h, c, W_ih, W_hh, b_ih, b_hh):
    _, c_new = _lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)
    o = _sigmoid(np.split(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4, axis=1)[3])
    return o * np.tanh(c), c_new


@exercise(
    "3.6",
    title="One step of an LSTM cell",
    points=3,
    function="lstm_cell",
    reference=_lstm_cell,
    hints=(
        "Four blocks of pre-activations, in PyTorch's order; three gates squash to (0, "
        "1), "
        "the candidate to (-1, 1); the new visible state reads the NEW memory through "
        "a "
        "tanh (reread 'The long short-term memory (LSTM)' and its pitfall on the "
        "order).",
        "z = x W_ih^T + b_ih + h W_hh^T + b_hh has 4H columns in the order i, f, g, o; "
        "i, f, o go through the sigmoid and g through tanh; c' = f*c + i*g and "
        "h' = o*tanh(c').",
    ),
    mistakes=(
        Mistake(
            "gate-order",
            "The blocks were read in the order i, f, o, g; PyTorch stacks input, "
            "forget, "
            "candidate, output.",
            "'The long short-term memory (LSTM)' (the order of the four gate blocks)",
            _lstm_gate_order,
        ),
        Mistake(
            "no-tanh-on-cell",
            "The output was o * c'; the memory passes through a tanh first, "
            "h' = o * tanh(c').",
            "'The long short-term memory (LSTM)'",
            _lstm_no_tanh_on_cell,
        ),
        Mistake(
            "old-cell-in-output",
            "The output read the old memory, o * tanh(c); it reads the new one, "
            "o * tanh(c').",
            "'The long short-term memory (LSTM)'",
            _lstm_old_cell_in_output,
        ),
    ),
)
def _cases_3_6():
    torch = _torch()
    rng = np.random.default_rng(306)
    cases = []
    for N, F, H, scale in (
        (1, 1, 1, 1.0),
        (3, 4, 2, 1.0),
        (5, 2, 6, 1.0),
        (2, 3, 3, 10.0),
        (4, 2, 2, 0.0),
    ):
        x, h, c = (
            rng.normal(size=(N, F)),
            rng.normal(size=(N, H)) * 0.5,
            rng.normal(size=(N, H)) * 2,
        )
        W_ih, W_hh = rng.normal(size=(4 * H, F)), rng.normal(size=(4 * H, H))
        b_ih, b_hh = rng.normal(size=4 * H), rng.normal(size=4 * H)
        if scale != 1.0:  # saturated gates, or all-zero weights (every gate 0.5, g = 0)
            W_ih, W_hh, b_ih, b_hh = (scale * w for w in (W_ih, W_hh, b_ih, b_hh))
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
                f"N={N}, F={F}, H={H}"
                + {1.0: "", 10.0: ", saturated gates", 0.0: ", all weights zero"}[
                    scale
                ],
                (x, h, c, W_ih, W_hh, b_ih, b_hh),
                (h_new.numpy(), c_new.numpy()),
            )
        )
    return cases
