"""Chapter 5 exercises: the cases catch the classic mistakes, and the references agree with labkit."""

import math

import numpy as np

from labkit import optim
from labkit.ewma import ewma
from labkit.exercises import get
from labkit.exercises.scoring import evaluate
from labkit.nets import Parameter


def score(exercise_id, fn):
    return evaluate(get(exercise_id), fn).status


# 5.1 -------------------------------------------------------------------------------------------


def test_ewma_reference_equals_labkit_ewma():
    x = np.random.default_rng(0).normal(size=40)
    np.testing.assert_allclose(
        get("5.1").reference(x, 0.8), ewma(x, 0.8, bias_correction=True), rtol=1e-13
    )


def test_ewma_mistakes_fail():
    def no_correction(x, beta):
        return ewma(x, beta)

    def first_sample_start(x, beta):
        return ewma(x, beta, start="first")

    def corrected_value_fed_back(x, beta):
        v, out = 0.0, []
        for t, x_t in enumerate(x, start=1):
            v = (beta * v + (1 - beta) * x_t) / (1 - beta**t)
            out.append(v)
        return np.array(out)

    def alpha_for_beta(x, beta):
        return (
            ewma(x, 1 - beta, bias_correction=True)
            if beta > 0
            else np.array(x, dtype=float)
        )

    for wrong in (
        no_correction,
        first_sample_start,
        corrected_value_fed_back,
        alpha_for_beta,
    ):
        assert score("5.1", wrong) != "passed", wrong.__name__


# 5.2 -------------------------------------------------------------------------------------------


def test_batchnorm_mistakes_fail():
    def momentum_as_decay(rm, rv, x, momentum):
        return momentum * rm + (1 - momentum) * x.mean(0), momentum * rv + (
            1 - momentum
        ) * x.var(0, ddof=1)

    def biased_variance(rm, rv, x, momentum):
        return (1 - momentum) * rm + momentum * x.mean(0), (
            1 - momentum
        ) * rv + momentum * x.var(0)

    assert score("5.2", momentum_as_decay) == "failed"
    assert (
        score("5.2", biased_variance) == "failed"
    )  # the mean is right, the variance never


# 5.3 -------------------------------------------------------------------------------------------


def test_sgd_reference_equals_labkit_sgd_over_two_steps():
    rng = np.random.default_rng(1)
    p0, g1, g2 = rng.normal(size=(3, 4))
    for nesterov in (False, True):
        p = Parameter(p0)
        opt = optim.SGD([p], lr=0.1, momentum=0.9, nesterov=nesterov)
        param, buf = p0, None
        for g in (g1, g2):
            p.grad = g
            opt.step()
            param, buf = get("5.3").reference(param, g, buf, 0.1, 0.9, nesterov)
        np.testing.assert_allclose(param, p.data, rtol=1e-14)
        np.testing.assert_allclose(buf, opt.state[p]["momentum_buffer"], rtol=1e-14)


def test_sgd_mistakes_fail():
    ref = get("5.3").reference

    def ewma_buffer(param, grad, buf, lr, mu, nesterov):
        buf = (1 - mu) * grad if buf is None else mu * buf + (1 - mu) * grad
        return param - lr * (grad + mu * buf if nesterov else buf), buf

    def nesterov_with_old_buffer(param, grad, buf, lr, mu, nesterov):
        new_param, new_buf = ref(param, grad, buf, lr, mu, False)
        if nesterov:
            old = np.zeros_like(grad) if buf is None else buf
            new_param = param - lr * (grad + mu * old)
        return new_param, new_buf

    def lr_inside_buffer(param, grad, buf, lr, mu, nesterov):
        buf = lr * grad if buf is None else mu * buf + lr * grad
        return param - (lr * grad + mu * buf if nesterov else buf), buf

    assert score("5.3", ewma_buffer) == "failed"
    assert score("5.3", nesterov_with_old_buffer) == "partial"
    assert score("5.3", lr_inside_buffer) != "passed"


# 5.4 -------------------------------------------------------------------------------------------


def test_rmsprop_mistakes_fail():
    def eps_inside_root(param, grad, v, lr, alpha, eps):
        v = alpha * v + (1 - alpha) * grad**2
        return param - lr * grad / np.sqrt(v + eps), v

    def alpha_weights_new_sample(param, grad, v, lr, alpha, eps):
        v = (1 - alpha) * v + alpha * grad**2
        return param - lr * grad / (np.sqrt(v) + eps), v

    def no_eps(param, grad, v, lr, alpha, eps):
        v = alpha * v + (1 - alpha) * grad**2
        with np.errstate(invalid="ignore", divide="ignore"):
            return param - lr * grad / np.sqrt(v), v

    for wrong in (eps_inside_root, alpha_weights_new_sample, no_eps):
        assert score("5.4", wrong) != "passed", wrong.__name__


# 5.5 -------------------------------------------------------------------------------------------


def _adamw(
    param,
    grad,
    m,
    v,
    t,
    lr,
    b1,
    b2,
    eps,
    wd,
    *,
    correct=True,
    eps_where="outside",
    coupled=False,
    return_corrected=False,
):
    if coupled:
        grad = grad + wd * param
    else:
        param = param * (1 - lr * wd)
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    m_hat = m / (1 - b1**t) if correct else m
    v_hat = v / (1 - b2**t) if correct else v
    if eps_where == "outside":
        new = param - lr * m_hat / (np.sqrt(v_hat) + eps)
    elif eps_where == "inside":
        new = param - lr * m_hat / np.sqrt(v_hat + eps)
    else:  # "param": p - lr * m / sqrt(v) + eps, by precedence
        new = param - lr * m_hat / np.sqrt(v_hat) + eps
    return (new, m_hat, v_hat) if return_corrected else (new, m, v)


def test_adamw_reference_equals_labkit_adamw_over_three_steps():
    rng = np.random.default_rng(2)
    p0 = rng.normal(size=5)
    p = Parameter(p0)
    opt = optim.AdamW([p], lr=0.01, weight_decay=0.1)
    param, m, v = p0, np.zeros(5), np.zeros(5)
    for t in (1, 2, 3):
        g = rng.normal(size=5)
        p.grad = g
        opt.step()
        param, m, v = get("5.5").reference(
            param, g, m, v, t, 0.01, 0.9, 0.999, 1e-8, 0.1
        )
    np.testing.assert_allclose(param, p.data, rtol=1e-13)


def test_adamw_mistakes_fail():
    assert score("5.5", _adamw) == "passed"  # the helper itself, with nothing wrong
    mistakes = [
        dict(correct=False),
        dict(eps_where="inside"),
        dict(eps_where="param"),
        dict(coupled=True),
        dict(return_corrected=True),
    ]
    for mistake in mistakes:
        assert (
            score("5.5", lambda *a, mistake=mistake: _adamw(*a, **mistake)) != "passed"
        ), mistake


# 5.6 -------------------------------------------------------------------------------------------


def test_schedule_mistakes_fail():
    ref = get("5.6").reference

    def warmup_from_zero(base_lr, eta_min, warmup, total):
        lrs = ref(base_lr, eta_min, warmup, total)
        lrs[:warmup] = base_lr * np.arange(warmup) / warmup
        return lrs

    def cosine_over_all_steps(base_lr, eta_min, warmup, total):
        lrs = ref(base_lr, eta_min, warmup, total)
        t = np.arange(warmup, total)
        lrs[warmup:] = (
            eta_min + (base_lr - eta_min) * (1 + np.cos(math.pi * t / total)) / 2
        )
        return lrs

    assert (
        score("5.6", warmup_from_zero) == "partial"
    )  # the no-warm-up case still passes
    assert score("5.6", cosine_over_all_steps) == "partial"
