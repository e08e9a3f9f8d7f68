"""labkit.ewma held to a plain Python loop, pandas, Adam's bias correction and torch's
AveragedModel."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.ewma import EWMA, ModelEMA, bias_correction_factor, effective_window, ewma


def loop_ewma(x, beta, start="zero", bias_correction=False):
    """The recurrence written out, one sample at a time: the slow readable reference."""
    out, v = [], 0.0
    for t, xt in enumerate(x, start=1):
        v = xt if (start == "first" and t == 1) else beta * v + (1 - beta) * xt
        out.append(v / (1 - beta**t) if bias_correction else v)
    return np.array(out)


@pytest.fixture
def series():
    return np.random.default_rng(7).normal(loc=3.0, size=200)


def test_hand_computed_example():
    # beta = 0.5: v1 = 0.5*2 = 1, v2 = 0.5*1 + 0.5*4 = 2.5, v3 = 0.5*2.5 + 0.5*0 = 1.25
    np.testing.assert_allclose(
        ewma([2.0, 4.0, 0.0], 0.5), [1.0, 2.5, 1.25], rtol=0, atol=1e-15
    )
    # bias-corrected: divide by 1 - 0.5**t = 0.5, 0.75, 0.875
    np.testing.assert_allclose(
        ewma([2.0, 4.0, 0.0], 0.5, bias_correction=True),
        [2.0, 2.5 / 0.75, 1.25 / 0.875],
        rtol=1e-15,
    )
    # first-sample start: v1 = 2, v2 = 0.5*2 + 0.5*4 = 3, v3 = 1.5
    np.testing.assert_allclose(
        ewma([2.0, 4.0, 0.0], 0.5, start="first"), [2.0, 3.0, 1.5], rtol=1e-15
    )


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.999])
@pytest.mark.parametrize(
    "start,bias_correction", [("zero", False), ("zero", True), ("first", False)]
)
def test_equals_the_loop(series, beta, start, bias_correction):
    got = ewma(series, beta, start=start, bias_correction=bias_correction)
    np.testing.assert_allclose(
        got, loop_ewma(series, beta, start, bias_correction), rtol=1e-12
    )


@pytest.mark.parametrize("beta", [0.1, 0.9, 0.98])
def test_bias_corrected_equals_pandas_adjust_true(series, beta):
    expected = pd.Series(series).ewm(alpha=1 - beta, adjust=True).mean().to_numpy()
    np.testing.assert_allclose(
        ewma(series, beta, bias_correction=True), expected, rtol=1e-12
    )


@pytest.mark.parametrize("beta", [0.1, 0.9, 0.98])
def test_first_sample_start_equals_pandas_adjust_false(series, beta):
    expected = pd.Series(series).ewm(alpha=1 - beta, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(ewma(series, beta, start="first"), expected, rtol=1e-12)


def test_bias_corrected_is_the_adjusted_weighted_mean(series):
    beta, t = 0.9, 37
    weights = beta ** np.arange(t)[::-1]  # x_1 gets beta**(t-1), x_t gets 1
    expected = np.sum(weights * series[:t]) / weights.sum()
    assert ewma(series, beta, bias_correction=True)[t - 1] == pytest.approx(
        expected, rel=1e-13
    )


def test_bias_correction_equals_adam_moments():
    # torch.optim.Adam with lr tiny: its exp_avg after t steps is the zero-start EWMA of
    # the grads, and Adam divides it by 1 - beta1**t exactly as bias_correction=True
    # does.
    grads = np.random.default_rng(3).normal(size=12)
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=1e-12, betas=(0.8, 0.99))
    for g in grads:
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
    state = opt.state[p]
    assert state["exp_avg"].item() == pytest.approx(ewma(grads, 0.8)[-1], rel=1e-12)
    assert state["exp_avg_sq"].item() == pytest.approx(
        ewma(grads**2, 0.99)[-1], rel=1e-12
    )
    m_hat = state["exp_avg"].item() / (1 - 0.8 ** len(grads))
    assert m_hat == pytest.approx(ewma(grads, 0.8, bias_correction=True)[-1], rel=1e-12)


def test_bias_correction_of_a_constant_is_exact():
    # a constant series has no bias once corrected: every value equals the constant
    np.testing.assert_allclose(
        ewma(np.full(500, 4.2), 0.999, bias_correction=True), 4.2, rtol=1e-12
    )


def test_bias_correction_factor_keeps_digits_near_one():
    beta = 1 - 1e-12
    assert bias_correction_factor(beta, 1) == pytest.approx(1e-12, rel=1e-6)
    assert bias_correction_factor(0.0, 5) == 1.0


def test_weights_sum_to_one_minus_beta_power():
    # the unit impulse at t = 1 traces the weight (1 - beta) beta**k the first sample
    # keeps
    beta = 0.7
    impulse = np.zeros(10)
    impulse[0] = 1.0
    np.testing.assert_allclose(
        ewma(impulse, beta), (1 - beta) * beta ** np.arange(10), rtol=1e-14
    )
    np.testing.assert_allclose(
        ewma(np.ones(10), beta), 1 - beta ** np.arange(1, 11), rtol=1e-14
    )


def test_effective_window():
    assert effective_window(0.9) == pytest.approx(10.0)
    assert effective_window(0.0) == 1.0


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_axis_averages_each_column_separately(axis):
    X = np.random.default_rng(0).normal(size=(30, 4))
    got = ewma(X, 0.8, start="first", axis=axis)
    other = np.moveaxis(X, axis, 0)
    expected = np.stack(
        [loop_ewma(other[:, j], 0.8, "first") for j in range(other.shape[1])], axis=1
    )
    np.testing.assert_allclose(np.moveaxis(got, 0, axis), expected, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40),
    st.floats(0, 0.999),
    st.sampled_from([("zero", False), ("zero", True), ("first", False)]),
)
def test_streaming_equals_batch(values, beta, options):
    start, bias_correction = options
    stream = EWMA(beta, start=start, bias_correction=bias_correction)
    streamed = [stream.update(v) for v in values]
    np.testing.assert_allclose(
        streamed,
        ewma(values, beta, start=start, bias_correction=bias_correction),
        rtol=1e-9,
        atol=1e-6,
    )


def test_streaming_arrays_and_value():
    X = np.random.default_rng(2).normal(size=(15, 3))
    stream = EWMA(0.9, bias_correction=True)
    rows = [stream.update(row) for row in X]
    np.testing.assert_allclose(rows, ewma(X, 0.9, bias_correction=True), rtol=1e-13)
    np.testing.assert_allclose(stream.value, rows[-1])
    assert stream.t == 15


@pytest.mark.parametrize("beta", [-0.1, 1.0, 1.5, float("nan"), True, "0.9", None])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        ewma([1.0, 2.0], beta)
    with pytest.raises(ValueError, match="beta"):
        EWMA(beta)


@pytest.mark.parametrize(
    "x,match",
    [
        ([], "empty"),
        ([1.0, float("nan")], "NaN"),
        ([np.inf], "infinite"),
        (3.0, "dimension"),
        (["a", "b"], "numbers"),
        (np.zeros((2, 0)), "empty"),
    ],
)
def test_bad_x(x, match):
    with pytest.raises(ValueError, match=match):
        ewma(x, 0.9, axis=-1)


def test_bad_options():
    with pytest.raises(ValueError, match="start"):
        ewma([1.0], 0.9, start="one")
    with pytest.raises(ValueError, match="bias_correction"):
        ewma([1.0], 0.9, start="first", bias_correction=True)
    with pytest.raises(ValueError, match="bias_correction"):
        ewma([1.0], 0.9, bias_correction=1)
    with pytest.raises(ValueError, match="axis"):
        ewma([1.0, 2.0], 0.9, axis=1)
    with pytest.raises(ValueError, match="update"):
        EWMA(0.9).value
    stream = EWMA(0.9)
    stream.update([1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        stream.update([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        stream.update([1.0, np.nan])


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)
    ).double()


def _train_steps(model, steps, callback):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(8, 3, generator=gen, dtype=torch.float64)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        callback(model)


def test_model_ema_matches_torch_averaged_model():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    model = _net()
    ours = ModelEMA(model, decay=0.9)
    theirs = AveragedModel(
        model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True
    )
    theirs.update_parameters(model)  # torch copies on its first update

    def both(m):
        ours.update(m)
        theirs.update_parameters(m)

    _train_steps(model, 20, both)
    for name, value in ours.module.state_dict().items():
        if value.is_floating_point():  # torch also averages integer counters
            torch.testing.assert_close(
                value, theirs.module.state_dict()[name], rtol=1e-12, atol=1e-14
            )
    assert ours.updates == 20
    assert ours.module[1].num_batches_tracked.item() == 20


def test_model_ema_equals_ewma_of_the_weight_trajectory():
    model = _net()
    history = [model[0].weight.detach().clone().numpy()]
    ema = ModelEMA(model, decay=0.8)
    ema_bc = ModelEMA(model, decay=0.8, bias_correction=True)

    def record(m):
        ema.update(m)
        ema_bc.update(m)
        history.append(m[0].weight.detach().clone().numpy())

    _train_steps(model, 10, record)
    history = np.stack(history)  # (11, 4, 3): start, then 10 steps
    np.testing.assert_allclose(
        ema.module[0].weight.numpy(), ewma(history, 0.8, start="first")[-1], rtol=1e-12
    )
    np.testing.assert_allclose(
        ema_bc.module[0].weight.numpy(),
        ewma(history[1:], 0.8, bias_correction=True)[-1],
        rtol=1e-12,
    )
    # integer buffers are copied, not averaged
    assert ema.module[1].num_batches_tracked.item() == 10


def test_model_ema_bad_input():
    with pytest.raises(ValueError, match="torch.nn.Module"):
        ModelEMA(object(), 0.9)
    with pytest.raises(ValueError, match="decay"):
        ModelEMA(_net(), 1.0)
    with pytest.raises(ValueError, match="bias_correction"):
        ModelEMA(_net(), 0.9, bias_correction="yes")
    with pytest.raises(ValueError, match="same parameters"):
        ModelEMA(_net(), 0.9).update(torch.nn.Linear(3, 1))
