"""Chapter 5 exercises: exponentially weighted averages and the optimizers built on
them.

Every expected value comes from an independent oracle on seeded random inputs: pandas
``ewm(adjust=True)`` for the bias-corrected average, ``torch.nn.BatchNorm1d`` for
running statistics, ``torch.optim`` (state loaded, one ``step()``) for the update rules
and ``torch.optim.lr_scheduler`` for the schedule. The references below are model
solutions in numpy, held to the same cases by the test suite.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import Case, Mistake, exercise
from ._oracle import float64_tensor as _t
from ._oracle import to_numpy as _np


def _torch_step(
    optimizer_class, param, grad, state: dict, **hyper
) -> tuple[torch.Tensor, dict]:
    """One ``torch.optim`` step on one parameter whose state is loaded first; (param,
    state) after."""
    p = torch.nn.Parameter(_t(param))
    opt = optimizer_class([p], **hyper)
    opt.state[p].update(
        {
            k: (_t(v) if isinstance(v, np.ndarray) else torch.tensor(float(v)))
            for k, v in state.items()
        }
    )
    p.grad = _t(grad)
    opt.step()
    return p, opt.state[p]


# 5.1 ----------------------------------------------------------------------------------

_START = 'chapter 5, section "The start: bias towards zero and its correction"'
_CONVENTIONS = (
    'chapter 5, section "Two conventions: decay of the past or weight of the new '
    'sample"'
)


def _ewma_bias_corrected(x, beta):
    """v_t = beta v_{t-1} + (1 - beta) x_t from v_0 = 0; returns v_t / (1 - beta**t)."""
    v, out = 0.0, np.empty(len(x))
    for t, x_t in enumerate(x, start=1):
        v = beta * v + (1 - beta) * x_t
        out[t - 1] = v / (1 - beta**t)
    return out


def _ewma_uncorrected(x, beta):
    v, out = 0.0, np.empty(len(x))
    for t, x_t in enumerate(x, start=1):
        v = beta * v + (1 - beta) * x_t
        out[t - 1] = v
    return out


@np.errstate(all="ignore")
def _ewma_corrected_fed_back(x, beta):
    v, out = 0.0, np.empty(len(x))
    for t, x_t in enumerate(x, start=1):
        v = (beta * v + (1 - beta) * x_t) / (1 - beta**t)
        out[t - 1] = v
    return out


def _ewma_first_sample_start(x, beta):
    out = np.empty(len(x))
    v = out[0] = x[0]
    for t in range(1, len(x)):
        v = out[t] = beta * v + (1 - beta) * x[t]
    return out


@np.errstate(all="ignore")
def _ewma_alpha_for_beta(x, beta):
    return _ewma_bias_corrected(x, 1 - beta)


@np.errstate(all="ignore")
def _ewma_alpha_base(x, beta):
    v, out = 0.0, np.empty(len(x))
    for t, x_t in enumerate(x, start=1):
        v = beta * v + (1 - beta) * x_t
        out[t - 1] = v / (1 - (1 - beta) ** t)
    return out


@exercise(
    "5.1",
    title="A bias-corrected exponentially weighted average",
    points=2,
    function="ewma_bias_corrected",
    reference=_ewma_bias_corrected,
    rtol=1e-9,
    hints=(
        "The weights (1 - beta) beta**k of the samples seen so far sum to 1 - beta**t, "
        f"not to 1; the correction renormalises them. Reread {_START}.",
        "Run v = beta * v + (1 - beta) * x_t from v = 0 and store v / (1 - beta**t) "
        "with t = 1 for the first sample; keep the raw v in the recurrence.",
    ),
    mistakes=(
        Mistake(
            "no-correction",
            "The raw zero-start average was returned; its early values are pulled "
            "towards zero by the missing weight beta**t.",
            _START,
            _ewma_uncorrected,
        ),
        Mistake(
            "corrected-value-fed-back",
            "The corrected value was stored and fed back into the recurrence, so it is "
            "inflated again at every step.",
            _START,
            _ewma_corrected_fed_back,
        ),
        Mistake(
            "first-sample-start",
            "The average was started at the first sample (pandas' adjust=False) "
            "instead of at zero with the correction (adjust=True).",
            _START,
            _ewma_first_sample_start,
        ),
        Mistake(
            "alpha-for-beta",
            "beta, the decay of the past, was used as the weight of the new sample.",
            _CONVENTIONS,
            _ewma_alpha_for_beta,
        ),
        Mistake(
            "alpha-base-correction",
            "The correction divided by 1 - alpha**t with alpha = 1 - beta; the weights "
            "sum to 1 - beta**t.",
            _CONVENTIONS,
            _ewma_alpha_base,
        ),
    ),
)
def _ewma_cases():
    """Most cases have beta far from 0 and 0.5 and several samples, so that each mistake
    shows; the edge cases (one sample, beta = 0, beta = 0.5) come once each."""
    import pandas as pd  # here, not at the top: only these cases need it

    rng = np.random.default_rng(501)
    cases = []
    for label, n, beta, shift in [
        ("one sample, beta=0.9", 1, 0.9, 3.0),
        ("10 samples, beta=0 (no memory: the last sample)", 10, 0.0, 1.0),
        ("50 samples, beta=0.5", 50, 0.5, 10.0),
        ("2 samples, beta=0.9", 2, 0.9, 4.0),
        ("20 samples, beta=0.9", 20, 0.9, 5.0),
        ("300 samples, beta=0.98", 300, 0.98, -2.0),
        ("40 samples, beta=0.7", 40, 0.7, 0.0),
        ("1000 samples, beta=0.999 (Adam's beta2)", 1000, 0.999, 1.0),
    ]:
        x = shift + rng.normal(size=n)
        expected = pd.Series(x).ewm(alpha=1 - beta, adjust=True).mean().to_numpy()
        cases.append(Case(label, (x, beta), expected=expected))
    return cases


# 5.2 ----------------------------------------------------------------------------------

_BATCHNORM = 'chapter 5, section "Batch norm\'s running statistics"'


def _batchnorm_track(batches, momentum, x_eval, eps):
    """torch's BatchNorm1d(affine=False): running stats over the batches, then eval."""
    running_mean = np.zeros(batches.shape[2])  # (C,), torch starts the mean at 0
    running_var = np.ones(batches.shape[2])  # (C,), and the variance at 1
    for x in batches:  # x: (N, C)
        n = x.shape[0]
        mean = x.mean(axis=0)
        var_unbiased = ((x - mean) ** 2).sum(axis=0) / (n - 1)
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * var_unbiased
    y = (x_eval - running_mean) / np.sqrt(running_var + eps)  # (M, C)
    return running_mean, running_var, y


def _bn_variant(
    batches,
    momentum,
    x_eval,
    eps,
    *,
    decay=False,
    ddof=1,
    var0=1.0,
    corrected=False,
    eval_batch_stats=False,
):
    """Batch norm's running statistics, or one of the variants the chapter warns
    about."""
    weight = 1 - momentum if decay else momentum
    running_mean, running_var = (
        np.zeros(batches.shape[2]),
        np.full(batches.shape[2], var0),
    )
    for t, x in enumerate(batches, start=1):
        running_mean = (1 - weight) * running_mean + weight * x.mean(axis=0)
        running_var = (1 - weight) * running_var + weight * x.var(axis=0, ddof=ddof)
    if corrected:
        with np.errstate(all="ignore"):
            running_mean = running_mean / (1 - (1 - weight) ** t)
            running_var = running_var / (1 - (1 - weight) ** t)
    if eval_batch_stats:
        y = (x_eval - x_eval.mean(axis=0)) / np.sqrt(x_eval.var(axis=0) + eps)
    else:
        y = (x_eval - running_mean) / np.sqrt(running_var + eps)
    return running_mean, running_var, y


def _bn_mistake(**variant):
    def wrong(batches, momentum, x_eval, eps):
        return _bn_variant(batches, momentum, x_eval, eps, **variant)

    return wrong


def _torch_batchnorm_track(batches, momentum, x_eval, eps):
    bn = torch.nn.BatchNorm1d(
        batches.shape[2], momentum=momentum, eps=eps, affine=False
    ).double()
    bn.train()
    for x in batches:
        bn(_t(x))
    bn.eval()
    with torch.no_grad():
        y = bn(_t(x_eval))
    return _np(bn.running_mean), _np(bn.running_var), _np(y)


@exercise(
    "5.2",
    title="Batch norm's running statistics over a stream of batches",
    points=3,
    function="batchnorm_track",
    reference=_batchnorm_track,
    rtol=1e-10,
    atol=1e-12,
    hints=(
        "torch's momentum is the weight of the NEW batch statistic, the running "
        "statistics start at mean 0 and variance 1 and are never bias-corrected, and "
        f"the variance they average is the unbiased one. Reread {_BATCHNORM}.",
        "running_mean, running_var = zeros(C), ones(C); for each batch x: r = (1 - "
        "momentum) * r + momentum * stat, with x.mean(0) and x.var(0, ddof=1); then "
        "y = (x_eval - running_mean) / sqrt(running_var + eps).",
    ),
    mistakes=(
        Mistake(
            "momentum-as-decay",
            "momentum was read as the decay of the past; in torch it is the weight of "
            "the new batch (alpha = 1 - beta).",
            _BATCHNORM,
            _bn_mistake(decay=True),
        ),
        Mistake(
            "biased-variance",
            "The running variance averaged the biased batch variance (divided by N); "
            "torch averages the unbiased one (divided by N - 1).",
            _BATCHNORM,
            _bn_mistake(ddof=0),
        ),
        Mistake(
            "variance-starts-at-zero",
            "The running variance was started at 0; torch starts it at 1.",
            _BATCHNORM,
            _bn_mistake(var0=0.0),
        ),
        Mistake(
            "bias-corrected",
            "The running statistics were bias-corrected like Adam's averages; torch's "
            "are not (and the variance does not even start at zero).",
            _BATCHNORM,
            _bn_mistake(corrected=True),
        ),
        Mistake(
            "batch-statistics-at-evaluation",
            "The evaluation batch was normalised with its own statistics; evaluation "
            "uses the running statistics.",
            _BATCHNORM,
            _bn_mistake(eval_batch_stats=True),
        ),
    ),
)
def _batchnorm_cases():
    """Momentum 1 and 0 (the edges, where some mistakes coincide with the truth) come
    once each; the other cases stream several batches with a momentum far from 0.5."""
    rng = np.random.default_rng(502)
    cases = []
    for label, n_batches, n, c, momentum, m_eval in [
        ("50 batches of N=16, C=3, momentum 0.1", 50, 16, 3, 0.1, 5),
        ("one batch of N=8, C=2, momentum 0.1", 1, 8, 2, 0.1, 4),
        ("10 batches of N=2 (unbiased factor 2), C=4, momentum 0.3", 10, 2, 4, 0.3, 3),
        ("5 batches of N=64, C=5, momentum 0.01", 5, 64, 5, 0.01, 6),
        ("20 batches, momentum 0.9, one example to evaluate", 20, 6, 3, 0.9, 1),
        ("3 batches, large eps=0.5", 3, 10, 2, 0.2, 4),
        ("4 batches, momentum 1 (the last batch only)", 4, 12, 3, 1.0, 5),
        ("4 batches, momentum 0 (the statistics never move)", 4, 12, 3, 0.0, 5),
    ]:
        loc, scale = rng.normal(size=c) * 3, rng.uniform(0.3, 3.0, size=c)
        batches = loc + scale * rng.normal(size=(n_batches, n, c))
        x_eval = loc + scale * rng.normal(size=(m_eval, c))
        eps = 0.5 if "eps=0.5" in label else 1e-5
        args = (batches, momentum, x_eval, eps)
        cases.append(Case(label, args, expected=_torch_batchnorm_track(*args)))
    return cases


# 5.3 ----------------------------------------------------------------------------------

_MOMENTUM = 'chapter 5, section "Two ways to write momentum, and when they agree"'
_NESTEROV = 'chapter 5, section "Nesterov momentum"'


def _sgd_momentum_step(param, grad, momentum_buffer, lr, momentum, nesterov):
    """torch's SGD: b = g (first step) or mu b + g; d = g + mu b (Nesterov) or b."""
    buf = grad.copy() if momentum_buffer is None else momentum * momentum_buffer + grad
    direction = grad + momentum * buf if nesterov else buf
    return param - lr * direction, buf


def _sgd_ewma_buffer(param, grad, momentum_buffer, lr, momentum, nesterov):
    old = np.zeros_like(grad) if momentum_buffer is None else momentum_buffer
    buf = momentum * old + (1 - momentum) * grad
    direction = grad + momentum * buf if nesterov else buf
    return param - lr * direction, buf


def _sgd_lr_inside_buffer(param, grad, momentum_buffer, lr, momentum, nesterov):
    old = np.zeros_like(grad) if momentum_buffer is None else momentum_buffer
    buf = momentum * old + lr * grad
    direction = lr * grad + momentum * buf if nesterov else buf
    return param - direction, buf


def _sgd_nesterov_old_buffer(param, grad, momentum_buffer, lr, momentum, nesterov):
    buf = grad.copy() if momentum_buffer is None else momentum * momentum_buffer + grad
    old = np.zeros_like(grad) if momentum_buffer is None else momentum_buffer
    direction = grad + momentum * old if nesterov else buf
    return param - lr * direction, buf


@exercise(
    "5.3",
    title="One step of SGD with momentum, torch's convention",
    points=2,
    function="sgd_momentum_step",
    reference=_sgd_momentum_step,
    rtol=1e-10,
    hints=(
        "torch's buffer is a sum with decaying weights, not an average, and the "
        f"learning rate stays outside it. Reread {_MOMENTUM} and {_NESTEROV}.",
        "b = grad on the first step (momentum_buffer is None), else b = momentum * b + "
        "grad; step along b, or along grad + momentum * b with the new b when "
        "nesterov is True; new_param = param - lr * step.",
    ),
    mistakes=(
        Mistake(
            "ewma-buffer",
            "The buffer was an average, b = mu b + (1 - mu) g; torch's is a sum, "
            "b = mu b + g, whose steps are 1 / (1 - mu) times larger.",
            _MOMENTUM,
            _sgd_ewma_buffer,
        ),
        Mistake(
            "lr-inside-buffer",
            "The learning rate was put inside the buffer (u = mu u + lr g); torch "
            "keeps "
            "it outside, b = mu b + g, and multiplies the step by lr.",
            _MOMENTUM,
            _sgd_lr_inside_buffer,
        ),
        Mistake(
            "nesterov-old-buffer",
            "Nesterov's step used the buffer from before the update; torch steps along "
            "g + mu b with the updated b.",
            _NESTEROV,
            _sgd_nesterov_old_buffer,
        ),
    ),
)
def _sgd_cases():
    """Six of the eight cases are Nesterov steps, so that a Nesterov mistake cannot
    collect more than a quarter; each learning rate differs from 1."""
    rng = np.random.default_rng(503)
    cases = []
    for label, shape, first, nesterov, lr, mu in [
        ("first step (no buffer yet), shape (5,)", (5,), True, False, 0.1, 0.9),
        ("a later step, shape (3, 4)", (3, 4), False, False, 0.05, 0.9),
        ("Nesterov, first step, shape (2, 3)", (2, 3), True, True, 0.1, 0.9),
        ("Nesterov, a later step, shape (7,)", (7,), False, True, 0.02, 0.95),
        ("Nesterov, momentum 0.5, shape (6,)", (6,), False, True, 0.3, 0.5),
        ("Nesterov, one parameter, shape (1,)", (1,), False, True, 0.01, 0.99),
        (
            "Nesterov, zero gradient (the buffer coasts), shape (4,)",
            (4,),
            False,
            True,
            0.1,
            0.9,
        ),
        ("Nesterov, lr 2, shape (2, 2)", (2, 2), False, True, 2.0, 0.8),
    ]:
        param, grad = rng.normal(size=shape), rng.normal(size=shape)
        if "zero gradient" in label:
            grad = np.zeros(shape)
        buf = None if first else rng.normal(size=shape) * 3
        state = {} if first else {"momentum_buffer": buf}
        p, st = _torch_step(
            torch.optim.SGD, param, grad, state, lr=lr, momentum=mu, nesterov=nesterov
        )
        cases.append(
            Case(
                label,
                (param, grad, buf, lr, mu, nesterov),
                expected=(_np(p), _np(st["momentum_buffer"])),
            )
        )
    return cases


# 5.4 ----------------------------------------------------------------------------------

_RMSPROP = 'chapter 5, section "RMSprop: forget old squares with an EWMA"'
_RMSPROP_EPS = (
    'chapter 5, box "Common pitfall: no epsilon, or epsilon in the wrong place"'
)


def _rmsprop_variant(
    param,
    curvature,
    lr,
    alpha,
    eps,
    momentum,
    steps,
    *,
    eps_where="outside",
    new_sample_weight=False,
    corrected=False,
    momentum_on_gradient=False,
):
    """torch's RMSprop on f = sum(curvature * p**2) / 2, or a variant the chapter warns
    about; returns the trajectory (steps + 1, *shape) and the final square_avg."""
    decay = 1 - alpha if new_sample_weight else alpha
    p, v, buf = np.array(param, dtype=float), np.zeros(np.shape(param)), 0.0
    path = [p.copy()]
    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            g = curvature * p
            v = decay * v + (1 - decay) * g**2
            v_read = v / (1 - decay**t) if corrected else v
            if eps_where == "outside":
                denominator = np.sqrt(v_read) + eps
            elif eps_where == "inside":
                denominator = np.sqrt(v_read + eps)
            else:  # no epsilon at all
                denominator = np.sqrt(v_read)
            if momentum_on_gradient:
                buf = momentum * buf + g
                p = p - lr * buf / denominator
            elif momentum > 0:
                buf = momentum * buf + g / denominator
                p = p - lr * buf
            else:
                p = p - lr * g / denominator
            path.append(p.copy())
    return np.array(path), v


def _rmsprop_run(param, curvature, lr, alpha, eps, momentum, steps):
    """steps of torch's RMSprop on f(p) = sum(curvature * p**2) / 2 from param."""
    p = np.array(param, dtype=float)
    square_avg = np.zeros_like(p)  # v, zero start, never bias-corrected
    buf = np.zeros_like(p)  # the momentum buffer, of normalised steps
    path = [p.copy()]
    for _ in range(steps):
        grad = curvature * p
        square_avg = alpha * square_avg + (1 - alpha) * grad**2
        step = grad / (np.sqrt(square_avg) + eps)
        if momentum > 0:
            buf = momentum * buf + step
            step = buf
        p = p - lr * step
        path.append(p.copy())
    return np.array(path), square_avg  # (steps + 1, *shape), shape


def _rmsprop_mistake(**variant):
    def wrong(param, curvature, lr, alpha, eps, momentum, steps):
        return _rmsprop_variant(
            param, curvature, lr, alpha, eps, momentum, steps, **variant
        )

    return wrong


def _torch_rmsprop_run(param, curvature, lr, alpha, eps, momentum, steps):
    p = torch.nn.Parameter(_t(param))
    opt = torch.optim.RMSprop([p], lr=lr, alpha=alpha, eps=eps, momentum=momentum)
    path = [_np(p)]
    for _ in range(steps):
        p.grad = _t(curvature) * p.detach()
        opt.step()
        path.append(_np(p))
    square_avg = opt.state[p]["square_avg"] if steps else torch.zeros_like(p)
    return np.array(path), _np(square_avg)


@exercise(
    "5.4",
    title="RMSprop, with momentum, on a quadratic",
    points=3,
    function="rmsprop_run",
    reference=_rmsprop_run,
    rtol=1e-9,
    atol=1e-12,
    hints=(
        "torch's alpha is the DECAY of the past, the average starts at zero without a "
        "correction, epsilon sits outside the root, and momentum averages the "
        f"normalised steps. Reread {_RMSPROP}.",
        "Each step: g = curvature * p; v = alpha * v + (1 - alpha) * g**2; "
        "s = g / (sqrt(v) + eps); with momentum > 0, b = momentum * b + s (b starts "
        "at 0) and s = b; p = p - lr * s. Stack p before the first step and after "
        "each.",
    ),
    mistakes=(
        Mistake(
            "eps-inside-root",
            "eps was added inside the square root: a floor of sqrt(eps) on the "
            "denominator that slows down coordinates with small gradients.",
            _RMSPROP_EPS,
            _rmsprop_mistake(eps_where="inside"),
        ),
        Mistake(
            "no-epsilon",
            "There was no eps, so a coordinate whose gradient is exactly zero gives "
            "0 / 0 = NaN.",
            _RMSPROP_EPS,
            _rmsprop_mistake(eps_where="none"),
        ),
        Mistake(
            "alpha-weights-new-sample",
            "alpha was used as the weight of the new squared gradient; torch's alpha "
            "is the decay of the past.",
            _CONVENTIONS,
            _rmsprop_mistake(new_sample_weight=True),
        ),
        Mistake(
            "bias-corrected",
            "The average of squares was bias-corrected like Adam's; torch's RMSprop "
            "is not, which is why its first steps are large.",
            _RMSPROP,
            _rmsprop_mistake(corrected=True),
        ),
        Mistake(
            "momentum-on-raw-gradient",
            "The momentum buffer summed raw gradients and was divided afterwards; "
            "torch's buffer sums the normalised steps g / (sqrt(v) + eps).",
            _RMSPROP,
            _rmsprop_mistake(momentum_on_gradient=True),
        ),
    ),
)
def _rmsprop_cases():
    """Every parameter has a coordinate at 0 (its gradient stays exactly zero) and one
    of tiny curvature (where eps's place shows); all but two cases use momentum."""
    rng = np.random.default_rng(504)
    cases = []
    for label, shape, steps, lr, alpha, eps, momentum in [
        ("no step at all (steps=0)", (3,), 0, 0.01, 0.99, 1e-8, 0.9),
        ("no momentum, 20 steps, shape (4,)", (4,), 20, 0.01, 0.99, 1e-8, 0.0),
        ("momentum 0.9, 30 steps, shape (5,)", (5,), 30, 0.01, 0.99, 1e-8, 0.9),
        ("two steps, momentum 0.5, shape (3,)", (3,), 2, 0.1, 0.9, 1e-8, 0.5),
        ("alpha=0 (no memory), 10 steps, shape (4,)", (4,), 10, 0.01, 0.0, 1e-8, 0.9),
        ("large eps=0.01, 15 steps, shape (2, 3)", (2, 3), 15, 0.05, 0.9, 1e-2, 0.8),
        ("alpha=0.999, 50 steps, shape (6,)", (6,), 50, 0.001, 0.999, 1e-8, 0.95),
        (
            "lr 0.3 on a steep valley, 25 steps, shape (3,)",
            (3,),
            25,
            0.3,
            0.9,
            1e-6,
            0.3,
        ),
    ]:
        param = rng.normal(size=shape)
        curvature = 10.0 ** rng.uniform(-1, 2, size=shape)
        param.flat[0] = 0.0  # its gradient is exactly zero at every step
        curvature.flat[1] = 1e-12  # gradients around 1e-12: eps decides
        args = (param, curvature, lr, alpha, eps, momentum, steps)
        cases.append(Case(label, args, expected=_torch_rmsprop_run(*args)))
    return cases


# 5.5 ----------------------------------------------------------------------------------

_ADAM = 'chapter 5, section "Adam: momentum, RMSprop, and both corrected"'
_ADAM_EPS = 'chapter 5, box "Common pitfall: where epsilon goes in Adam"'
_ADAMW = 'chapter 5, section "AdamW: weight decay that is not divided away"'


def _adam_variant(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    step,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    *,
    coupled=False,
    correct=True,
    eps_where="outside",
    return_corrected=False,
):
    """AdamW, or one of the variants the chapter warns about."""
    if coupled:  # Adam with L2: the decay term goes through m and v
        grad = grad + weight_decay * param
    else:
        param = param * (1 - lr * weight_decay)
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad**2
    m_hat = exp_avg / (1 - beta1**step) if correct else exp_avg
    v_hat = exp_avg_sq / (1 - beta2**step) if correct else exp_avg_sq
    with np.errstate(all="ignore"):
        if eps_where == "outside":
            new = param - lr * m_hat / (np.sqrt(v_hat) + eps)
        elif eps_where == "inside":
            new = param - lr * m_hat / np.sqrt(v_hat + eps)
        else:  # "parameter": p - lr * m / sqrt(v) + eps, operator precedence
            new = param - lr * m_hat / np.sqrt(v_hat) + eps
    return (new, m_hat, v_hat) if return_corrected else (new, exp_avg, exp_avg_sq)


def _adamw_step(
    param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay
):
    """Decay p by (1 - lr wd), update m and v, then p - lr m_hat / (sqrt(v_hat) +
    eps)."""
    param = param * (1 - lr * weight_decay)
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad**2
    m_hat = exp_avg / (1 - beta1**step)
    v_hat = exp_avg_sq / (1 - beta2**step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), exp_avg, exp_avg_sq


def _adam_mistake(**variant):
    def wrong(*args):
        return _adam_variant(*args, **variant)

    return wrong


@exercise(
    "5.5",
    title="One AdamW step with bias correction",
    points=3,
    function="adamw_step",
    reference=_adamw_step,
    rtol=1e-9,
    atol=1e-12,
    hints=(
        "AdamW shrinks the weights directly instead of adding weight_decay * param to "
        "the gradient, and both averages are corrected for their zero start. Reread "
        f"{_ADAMW} and {_ADAM}.",
        "param *= 1 - lr * weight_decay; m and v updated with beta1 and beta2 (return "
        "these raw averages); m_hat = m / (1 - beta1**step), v_hat likewise; "
        "new_param = param - lr * m_hat / (sqrt(v_hat) + eps).",
    ),
    mistakes=(
        Mistake(
            "adam-with-l2",
            "weight_decay * param was added to the gradient (Adam with L2), so the "
            "decay is divided by sqrt(v_hat); AdamW shrinks the weights directly.",
            _ADAMW,
            _adam_mistake(coupled=True),
        ),
        Mistake(
            "no-bias-correction",
            "m and v were used without dividing by 1 - beta**t, so early steps are "
            "mis-sized.",
            _ADAM,
            _adam_mistake(correct=False),
        ),
        Mistake(
            "eps-inside-root",
            "eps was added inside the square root; it belongs outside, sqrt(v_hat) + "
            "eps, which matters for small gradients.",
            _ADAM_EPS,
            _adam_mistake(eps_where="inside"),
        ),
        Mistake(
            "eps-added-to-parameter",
            "eps was added to the parameter (a missing pair of parentheses) instead of "
            "to the denominator.",
            _ADAM_EPS,
            _adam_mistake(eps_where="parameter"),
        ),
        Mistake(
            "corrected-state-returned",
            "The bias-corrected averages were returned as the state; the state keeps "
            "the raw m and v, corrected afresh at every step.",
            _START,
            _adam_mistake(return_corrected=True),
        ),
    ),
)
def _adamw_cases():
    """Every case but one decays the weights, every case has an early step where the
    correction matters, and every parameter has a coordinate with a tiny gradient
    (where eps's place shows) and one whose gradient has always been zero."""
    rng = np.random.default_rng(505)
    cases = []
    for label, shape, step, wd, lr in [
        ("the first step (t=1) from zero state, shape (6,)", (6,), 1, 0.1, 0.1),
        ("the second step, shape (3, 2)", (3, 2), 2, 0.01, 0.01),
        ("t=5, shape (4, 4)", (4, 4), 5, 0.05, 0.001),
        ("t=20, shape (2, 5)", (2, 5), 20, 0.01, 0.003),
        ("t=100, strong decay 0.5, shape (5,)", (5,), 100, 0.5, 0.01),
        ("t=3, no weight decay, shape (4,)", (4,), 3, 0.0, 0.01),
        ("t=1000, shape (3,)", (3,), 1000, 0.1, 0.001),
        ("t=2, lr 1, shape (2, 3)", (2, 3), 2, 0.02, 1.0),
    ]:
        param, grad = rng.normal(size=shape), rng.normal(size=shape)
        grad.flat[0] = 0.0  # a coordinate whose gradient has always been zero
        grad.flat[1] *= 1e-7  # a coordinate with tiny gradients
        scale = np.abs(grad) + (grad == 0)
        if step == 1:
            m, v = np.zeros(shape), np.zeros(shape)
        else:
            m = scale * rng.normal(size=shape) * 0.5
            v = (scale * rng.normal(size=shape)) ** 2 + m**2
            m.flat[0] = v.flat[0] = 0.0
        betas = (0.9, 0.999)
        state = {"step": step - 1, "exp_avg": m, "exp_avg_sq": v}
        p, st = _torch_step(
            torch.optim.AdamW,
            param,
            grad,
            state,
            lr=lr,
            betas=betas,
            eps=1e-8,
            weight_decay=wd,
        )
        cases.append(
            Case(
                label,
                (param, grad, m, v, step, lr, betas[0], betas[1], 1e-8, wd),
                expected=(_np(p), _np(st["exp_avg"]), _np(st["exp_avg_sq"])),
            )
        )
    return cases


# 5.6 ----------------------------------------------------------------------------------


def _warmup_cosine(base_lr, eta_min, warmup, total):
    """lr_t = base_lr (t+1)/warmup for t < warmup, then eta_min + (base_lr - eta_min)(1
    + cos(pi s/S))/2."""
    lrs = np.empty(total)
    for t in range(total):
        if t < warmup:
            lrs[t] = base_lr * (t + 1) / warmup
        else:
            progress = (t - warmup) / (total - warmup)
            lrs[t] = (
                eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * progress)) / 2
            )
    return lrs


def _torch_warmup_cosine(base_lr, eta_min, warmup, total):
    """The same schedule from torch's schedulers: LinearLR then CosineAnnealingLR."""
    sched = torch.optim.lr_scheduler
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    cosine = sched.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=eta_min)
    if warmup:
        linear = sched.LinearLR(
            opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1
        )
        schedule = sched.SequentialLR(opt, [linear, cosine], milestones=[warmup])
    else:
        schedule = cosine
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return np.array(lrs)


_SCHEDULES = 'chapter 5, section "Learning-rate schedules"'


def _warmup_from_zero(base_lr, eta_min, warmup, total):
    lrs = _warmup_cosine(base_lr, eta_min, warmup, total)
    lrs[:warmup] = base_lr * np.arange(warmup) / max(warmup, 1)
    return lrs


def _cosine_over_all_steps(base_lr, eta_min, warmup, total):
    lrs = _warmup_cosine(base_lr, eta_min, warmup, total)
    t = np.arange(warmup, total)
    lrs[warmup:] = eta_min + (base_lr - eta_min) * (1 + np.cos(math.pi * t / total)) / 2
    return lrs


@exercise(
    "5.6",
    title="Linear warm-up, then cosine annealing",
    points=2,
    function="warmup_cosine",
    reference=_warmup_cosine,
    rtol=1e-10,
    hints=(
        "Two pieces, each with its own clock: a linear rise that reaches base_lr at "
        "the "
        "last warm-up step, then a cosine that starts at base_lr when the warm-up "
        "ends. "
        f"Reread {_SCHEDULES}.",
        "lr = base_lr * (t + 1) / warmup while t < warmup; afterwards eta_min + "
        "(base_lr - eta_min) * (1 + cos(pi * (t - warmup) / (total - warmup))) / 2.",
    ),
    mistakes=(
        Mistake(
            "warmup-from-zero",
            "The warm-up started at zero (base_lr * t / warmup): the first step then "
            "does nothing, and the rise ends one step before base_lr.",
            _SCHEDULES,
            _warmup_from_zero,
        ),
        Mistake(
            "cosine-over-all-steps",
            "The cosine ran over all total steps, from t = 0, instead of over the "
            "total - warmup steps after the warm-up.",
            _SCHEDULES,
            _cosine_over_all_steps,
        ),
    ),
)
def _schedule_cases():
    rng = np.random.default_rng(506)
    cases = []
    for label, warmup, total in [
        ("no warm-up, 10 steps", 0, 10),
        ("warm-up of one step, 6 steps", 1, 6),
        ("warm-up 3, then a single cosine step", 3, 4),
        ("warm-up 5 of 40 steps", 5, 40),
        ("warm-up 2 of 7 steps", 2, 7),
        ("warm-up 100 of 1000 steps", 100, 1000),
    ]:
        base_lr = float(rng.choice([0.1, 0.01, 3e-4])) * float(rng.uniform(0.5, 2.0))
        eta_min = base_lr * float(rng.choice([0.0, 0.01, 0.1]))
        cases.append(
            Case(
                label,
                (base_lr, eta_min, warmup, total),
                expected=_torch_warmup_cosine(base_lr, eta_min, warmup, total),
            )
        )
    return cases
