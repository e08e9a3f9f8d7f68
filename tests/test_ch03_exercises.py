"""Chapter 3 exercises: the references pass, and the mistakes learners make are caught.

Each wrong variant below is a plausible slip (a transposed table, a missing boundary factor, the
wrong gate order, no sum over time); the cases must fail it, or they would not test the idea.
"""

import numpy as np
import pytest

from labkit.exercises import chapter_exercises, get
from labkit.exercises.scoring import evaluate


def _status(exercise_id, fn):
    return evaluate(get(exercise_id), fn).status


def test_chapter_3_has_six_exercises_and_every_reference_passes():
    exercises = chapter_exercises(3)
    assert [e.id for e in exercises] == ["3.1", "3.2", "3.3", "3.4", "3.5", "3.6"]
    for e in exercises:
        assert 1 <= e.points <= 4
        assert evaluate(e, e.reference).status == "passed", e.id


def _counts_table(ids, V):
    counts = np.zeros((V, V))
    np.add.at(counts, (ids[:-1], ids[1:]), 1.0)
    return counts


def _bigram_nan_rows(ids, V):
    counts = _counts_table(np.asarray(ids), V)
    with np.errstate(invalid="ignore"):
        return counts / counts.sum(axis=1, keepdims=True)


def _bigram_transposed(ids, V):
    return get("3.1").reference(ids, V).T


def _bigram_zero_rows(ids, V):
    counts = _counts_table(np.asarray(ids), V)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


@pytest.mark.parametrize(
    "wrong", [_bigram_nan_rows, _bigram_transposed, _bigram_zero_rows]
)
def test_bigram_mistakes_fail(wrong):
    assert _status("3.1", wrong) != "passed"


def _log_prob_no_end(counts, sentence, k):
    counts = np.asarray(counts, dtype=np.float64)
    padded = np.concatenate([[0], sentence]).astype(int)
    p = (counts[padded[:-1], padded[1:]] + k) / (
        counts[padded[:-1]].sum(axis=1) + k * len(counts)
    )
    with np.errstate(divide="ignore"):
        return float(np.log(p).sum())


def _log_prob_numerator_only(counts, sentence, k):
    counts = np.asarray(counts, dtype=np.float64)
    padded = np.concatenate([[0], sentence, [0]]).astype(int)
    p = (counts[padded[:-1], padded[1:]] + k) / counts[padded[:-1]].sum(axis=1)
    with np.errstate(divide="ignore"):
        return float(np.log(p).sum())


@pytest.mark.parametrize("wrong", [_log_prob_no_end, _log_prob_numerator_only])
def test_log_prob_mistakes_fail(wrong):
    assert _status("3.2", wrong) != "passed"


def _sample_ignoring_temperature(logits, temperature, u):
    return get("3.3").reference(logits, 1.0, u)


def _sample_multiplying_by_temperature(logits, temperature, u):
    return get("3.3").reference(logits * temperature, 1.0, u)


def _sample_off_by_one(logits, temperature, u):
    return np.maximum(get("3.3").reference(logits, temperature, u) - 1, 0)


@pytest.mark.parametrize(
    "wrong",
    [
        _sample_ignoring_temperature,
        _sample_multiplying_by_temperature,
        _sample_off_by_one,
    ],
)
def test_sampling_mistakes_fail(wrong):
    assert _status("3.3", wrong) != "passed"


def _rnn_untransposed(x, h0, W_ih, W_hh, b_ih, b_hh):
    return get("3.4").reference(x, h0, W_ih, W_hh.T, b_ih, b_hh)


def _rnn_no_recurrence(x, h0, W_ih, W_hh, b_ih, b_hh):
    out = np.tanh(x @ W_ih.T + b_ih + h0 @ W_hh.T + b_hh)  # every step sees h0
    return out, out[-1]


@pytest.mark.parametrize("wrong", [_rnn_untransposed, _rnn_no_recurrence])
def test_rnn_forward_mistakes_fail(wrong):
    assert _status("3.4", wrong) != "passed"


def _bptt_last_step_only(x, h0, W_ih, W_hh, b_ih, b_hh, grad_output):
    g = np.zeros_like(grad_output)
    g[-1] = grad_output[-1]
    return get("3.5").reference(x, h0, W_ih, W_hh, b_ih, b_hh, g)


def _bptt_truncated_to_one_step(x, h0, W_ih, W_hh, b_ih, b_hh, grad_output):
    out, _ = get("3.4").reference(x, h0, W_ih, W_hh, b_ih, b_hh)
    h_prev = np.concatenate([h0[None], out[:-1]])  # (T, N, H)
    a_bar = grad_output * (1 - out**2)  # no gradient from the future
    return (
        np.einsum("tnh,tnf->hf", a_bar, x),
        np.einsum("tnh,tnk->hk", a_bar, h_prev),
        a_bar.sum(axis=(0, 1)),
        a_bar[0] @ W_hh,
    )


@pytest.mark.parametrize("wrong", [_bptt_last_step_only, _bptt_truncated_to_one_step])
def test_bptt_mistakes_fail(wrong):
    assert _status("3.5", wrong) != "passed"


def _blocks(W, order):
    H = W.shape[0] // 4
    return np.concatenate([W[k * H : (k + 1) * H] for k in order])


def _lstm_order_ifog(x, h, c, W_ih, W_hh, b_ih, b_hh):
    order = (0, 1, 3, 2)  # reads g where o is, and back
    return get("3.6").reference(
        x,
        h,
        c,
        _blocks(W_ih, order),
        _blocks(W_hh, order),
        _blocks(b_ih, order),
        _blocks(b_hh, order),
    )


def _lstm_output_without_tanh(x, h, c, W_ih, W_hh, b_ih, b_hh):
    h_new, c_new = get("3.6").reference(x, h, c, W_ih, W_hh, b_ih, b_hh)
    return h_new / np.tanh(c_new) * c_new, c_new


@pytest.mark.parametrize("wrong", [_lstm_order_ifog, _lstm_output_without_tanh])
def test_lstm_mistakes_fail(wrong):
    assert _status("3.6", wrong) != "passed"
