"""Chapter 6 exercises: the cases catch the classic mistakes, and the references agree
with labkit."""

import numpy as np

from labkit import nets
from labkit.exercises import get
from labkit.exercises.scoring import evaluate


def score(exercise_id, fn):
    return evaluate(get(exercise_id), fn).status


# 6.1 ----------------------------------------------------------------------------------


def test_penalty_convention_mistakes_fail():
    ref = get("6.1").reference

    def l2_gradient_doubled(w, b, X, y, l1, l2):  # "the gradient of L2 is 2 lambda w"
        J, dw, db = ref(w, b, X, y, l1, l2)
        return J, dw + l2 / len(X) * w, db

    def bias_penalised(w, b, X, y, l1, l2):
        J, dw, db = ref(w, b, X, y, l1, l2)
        return J + l2 / (2 * len(X)) * b**2, dw, db + l2 / len(X) * b

    def l1_halved(w, b, X, y, l1, l2):  # lambda / (2m) in front of the L1 norm
        return ref(w, b, X, y, l1 / 2, l2)

    def no_half_on_the_data_term(w, b, X, y, l1, l2):
        J, dw, db = ref(w, b, X, y, l1, l2)
        r = X @ w + b - y
        return J + r @ r / (2 * len(X)), dw + X.T @ r / len(X), 2 * db

    def sign_zero_is_one(w, b, X, y, l1, l2):  # treats 0 as positive
        J, dw, db = ref(w, b, X, y, l1, l2)
        return J, dw + l1 / len(X) * (w == 0), db

    for wrong in (
        l2_gradient_doubled,
        bias_penalised,
        l1_halved,
        no_half_on_the_data_term,
        sign_zero_is_one,
    ):
        assert score("6.1", wrong) != "passed", wrong.__name__


# 6.2 ----------------------------------------------------------------------------------


def test_dropout_mistakes_fail():
    def keep_prob_read_as_p(
        x, u, p, g, training
    ):  # keeps where u < p: keeps a fraction p
        if not training:
            return x, g
        mask = (u < p) / (1 - p) if p < 1 else np.zeros_like(x)
        return x * mask, g * mask

    def no_rescaling(x, u, p, g, training):
        mask = (u >= p) if training else np.ones_like(x)
        return x * mask, g * mask

    def scale_at_test_time(x, u, p, g, training):  # the old, non-inverted dropout
        mask = (u >= p) * 1.0 if training else np.full_like(x, 1 - p)
        return x * mask, g * mask

    def nan_at_p_one(x, u, p, g, training):
        if not training:
            return x, g
        with np.errstate(divide="ignore", invalid="ignore"):
            mask = (u >= p) / (1 - p)
        return x * mask, g * mask

    def unmasked_backward(x, u, p, g, training):
        y, _ = get("6.2").reference(x, u, p, g, training)
        return y, g

    for wrong in (
        keep_prob_read_as_p,
        no_rescaling,
        scale_at_test_time,
        nan_at_p_one,
        unmasked_backward,
    ):
        assert score("6.2", wrong) != "passed", wrong.__name__


def test_dropout_reference_equals_labkit_dropout_with_the_same_draws():
    x, g = np.random.default_rng(1).normal(size=(2, 50, 3))
    layer = nets.Dropout(0.3, rng=4)
    y = layer(x)
    u = np.random.default_rng(4).random(x.shape)  # the draws nets.Dropout made
    y_ref, dx_ref = get("6.2").reference(x, u, 0.3, g, True)
    np.testing.assert_allclose(y, y_ref, rtol=1e-15)
    np.testing.assert_allclose(layer.backward(g), dx_ref, rtol=1e-15)


# 6.3 ----------------------------------------------------------------------------------


def test_early_stopping_mistakes_fail():
    ref = get("6.3").reference

    def strict_patience(losses, patience, min_delta):  # waits one epoch too many
        return ref(losses, patience + 1, min_delta)

    def best_is_the_minimum(losses, patience, min_delta):
        stop, _ = ref(losses, patience, min_delta)
        return stop, int(np.argmin(losses[: stop + 1]))

    def ties_improve(losses, patience, min_delta):
        best, best_epoch, wait = np.inf, 0, 0
        for epoch, loss in enumerate(losses):
            if loss <= best - min_delta:
                best, best_epoch, wait = loss, epoch, 0
            else:
                wait += 1
                if wait >= patience:
                    return epoch, best_epoch
        return len(losses) - 1, best_epoch

    def none_when_not_stopped(losses, patience, min_delta):
        stop, best = ref(losses, patience, min_delta)
        return (None if stop == len(losses) - 1 else stop), best

    for wrong in (
        strict_patience,
        best_is_the_minimum,
        ties_improve,
        none_when_not_stopped,
    ):
        assert score("6.3", wrong) != "passed", wrong.__name__


# 6.4 ----------------------------------------------------------------------------------


def test_batchnorm_forward_mistakes_fail():
    def normalise_with_unbiased(x, gamma, beta, rm, rv, training, momentum, eps):
        n = x.shape[0]
        if not training:
            return gamma * (x - rm) / np.sqrt(rv + eps) + beta, rm, rv
        mean, var = x.mean(0), x.var(0, ddof=1) if n > 1 else x.var(0)
        return (
            gamma * (x - mean) / np.sqrt(var + eps) + beta,
            (1 - momentum) * rm + momentum * mean,
            (1 - momentum) * rv + momentum * var,
        )

    def running_with_biased(x, gamma, beta, rm, rv, training, momentum, eps):
        y, rm2, _ = get("6.4").reference(
            x, gamma, beta, rm, rv, training, momentum, eps
        )
        return y, rm2, ((1 - momentum) * rv + momentum * x.var(0)) if training else rv

    def momentum_weights_the_past(x, gamma, beta, rm, rv, training, momentum, eps):
        return get("6.4").reference(x, gamma, beta, rm, rv, training, 1 - momentum, eps)

    def batch_stats_in_eval(x, gamma, beta, rm, rv, training, momentum, eps):
        return (
            get("6.4").reference(x, gamma, beta, rm, rv, True, momentum, eps)
            if len(x) > 1
            else get("6.4").reference(x, gamma, beta, rm, rv, training, momentum, eps)
        )

    for wrong in (
        normalise_with_unbiased,
        running_with_biased,
        momentum_weights_the_past,
        batch_stats_in_eval,
    ):
        assert score("6.4", wrong) != "passed", wrong.__name__


def test_batchnorm_forward_reference_equals_labkit_over_several_batches():
    rng = np.random.default_rng(2)
    layer = nets.BatchNorm1d(3, momentum=0.2)
    layer.weight.data[:] = rng.uniform(0.5, 2, 3)
    layer.bias.data[:] = rng.normal(size=3)
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(4):
        x = rng.normal(size=(7, 3)) * 2 + 1
        y, rm, rv = get("6.4").reference(
            x, layer.weight.data, layer.bias.data, rm, rv, True, 0.2, 1e-5
        )
        np.testing.assert_allclose(layer(x), y, rtol=1e-12)
    np.testing.assert_allclose(layer.running_mean, rm, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, rv, rtol=1e-12)


# 6.5 ----------------------------------------------------------------------------------


def test_batchnorm_backward_mistakes_fail():
    def statistics_as_constants(x, gamma, g, eps):
        xhat = (x - x.mean(0)) / np.sqrt(x.var(0) + eps)
        return g * gamma / np.sqrt(x.var(0) + eps), (g * xhat).sum(0), g.sum(0)

    def forgets_gamma(x, gamma, g, eps):
        return get("6.5").reference(x, np.ones_like(gamma), g, eps)[0], *get(
            "6.5"
        ).reference(x, gamma, g, eps)[1:]

    def mean_not_sum_for_params(x, gamma, g, eps):
        dx, dgamma, dbeta = get("6.5").reference(x, gamma, g, eps)
        return dx, dgamma / len(x), dbeta / len(x)

    for wrong in (statistics_as_constants, forgets_gamma, mean_not_sum_for_params):
        assert score("6.5", wrong) != "passed", wrong.__name__


def test_batchnorm_backward_reference_equals_labkit():
    rng = np.random.default_rng(3)
    x, g = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    layer = nets.BatchNorm1d(4)
    layer.weight.data[:] = rng.normal(size=4)
    layer(x)
    dx = layer.backward(g)
    ref = get("6.5").reference(x, layer.weight.data, g, 1e-5)
    for got, want in zip((dx, layer.weight.grad, layer.bias.grad), ref):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
