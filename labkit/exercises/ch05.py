"""Chapter 5 exercises: exponentially weighted averages and the optimizers built on them.

Every expected value comes from an independent oracle on seeded random inputs: pandas
``ewm(adjust=True)`` for the bias-corrected average, ``torch.nn.BatchNorm1d`` for running
statistics, ``torch.optim`` (state loaded, one ``step()``) for the update rules and
``torch.optim.lr_scheduler`` for the schedule. The references below are model solutions in numpy,
held to the same cases by the test suite.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from . import Case, exercise
from ._oracle import float64_tensor as _t, to_numpy as _np


def _torch_step(
    optimizer_class, param, grad, state: dict, **hyper
) -> tuple[torch.Tensor, dict]:
    """One ``torch.optim`` step on one parameter whose state is loaded first; (param, state) after."""
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


# 5.1 -------------------------------------------------------------------------------------------


def _ewma_bias_corrected(x, beta):
    """v_t = beta v_{t-1} + (1 - beta) x_t from v_0 = 0; returns v_t / (1 - beta**t) for t = 1..T."""
    v, out = 0.0, np.empty(len(x))
    for t, x_t in enumerate(x, start=1):
        v = beta * v + (1 - beta) * x_t
        out[t - 1] = v / (1 - beta**t)
    return out


@exercise(
    "5.1",
    title="A bias-corrected exponentially weighted average",
    points=2,
    function="ewma_bias_corrected",
    reference=_ewma_bias_corrected,
    rtol=1e-9,
    hints=(
        "Keep the raw average v in the recurrence (start at v = 0) and divide a copy "
        "of it "
        "by 1 - beta**t when you store the output, with t = 1 for the first sample. "
        "Feeding "
        "the corrected value back into the recurrence is a different (wrong) average.",
    ),
)
def _ewma_cases():
    rng = np.random.default_rng(501)
    cases = []
    for label, n, beta, shift in [
        ("one sample, beta=0.9", 1, 0.9, 3.0),
        ("20 samples, beta=0.9", 20, 0.9, 5.0),
        ("300 samples, beta=0.98", 300, 0.98, -2.0),
        ("50 samples, beta=0.5", 50, 0.5, 10.0),
        ("10 samples, beta=0 (no memory)", 10, 0.0, 1.0),
    ]:
        x = shift + rng.normal(size=n)
        expected = pd.Series(x).ewm(alpha=1 - beta, adjust=True).mean().to_numpy()
        cases.append(Case(label, (x, beta), expected=expected))
    return cases


# 5.2 -------------------------------------------------------------------------------------------


def _batchnorm_running_stats(running_mean, running_var, x, momentum):
    """r <- (1 - momentum) r + momentum * batch statistic; the variance statistic is unbiased."""
    n = x.shape[0]
    mean = x.mean(axis=0)  # (C,)
    var_unbiased = ((x - mean) ** 2).sum(axis=0) / (n - 1)  # (C,)
    return (
        (1 - momentum) * running_mean + momentum * mean,
        (1 - momentum) * running_var + momentum * var_unbiased,
    )


@exercise(
    "5.2",
    title="Batch norm's running statistics",
    points=2,
    function="batchnorm_running_stats",
    reference=_batchnorm_running_stats,
    rtol=1e-10,
    hints=(
        "In torch, momentum is the weight of the NEW batch statistic (alpha = 1 - "
        "beta): "
        "r = (1 - momentum) * r + momentum * stat. The running variance uses the "
        "unbiased "
        "batch variance (divide by N - 1), although the layer normalises with the "
        "biased one.",
    ),
)
def _batchnorm_cases():
    rng = np.random.default_rng(502)
    cases = []
    for label, n, c, momentum in [
        ("N=8, C=3, momentum=0.1", 8, 3, 0.1),
        ("N=2, C=4, momentum=0.3", 2, 4, 0.3),
        ("N=64, C=5, momentum=0.01", 64, 5, 0.01),
        ("N=16, C=1, momentum=1.0", 16, 1, 1.0),
    ]:
        x = rng.normal(
            loc=rng.normal(size=c) * 3, scale=rng.uniform(0.5, 2.0, size=c), size=(n, c)
        )
        running_mean = rng.normal(size=c)
        running_var = rng.uniform(0.5, 2.0, size=c)
        bn = torch.nn.BatchNorm1d(c, momentum=momentum).double().train()
        bn.running_mean.copy_(_t(running_mean))
        bn.running_var.copy_(_t(running_var))
        bn(_t(x))
        cases.append(
            Case(
                label,
                (running_mean, running_var, x, momentum),
                expected=(_np(bn.running_mean), _np(bn.running_var)),
            )
        )
    return cases


# 5.3 -------------------------------------------------------------------------------------------


def _sgd_momentum_step(param, grad, momentum_buffer, lr, momentum, nesterov):
    """torch's SGD: b = g (first step) or mu b + g; step d = g + mu b (Nesterov) or b; p - lr d."""
    buf = grad.copy() if momentum_buffer is None else momentum * momentum_buffer + grad
    direction = grad + momentum * buf if nesterov else buf
    return param - lr * direction, buf


@exercise(
    "5.3",
    title="One step of SGD with momentum, torch's convention",
    points=2,
    function="sgd_momentum_step",
    reference=_sgd_momentum_step,
    rtol=1e-10,
    hints=(
        "torch keeps b = momentum * b + grad (no 1 - momentum factor, learning rate "
        "outside "
        "the buffer); on the first step (momentum_buffer is None) the buffer is the "
        "gradient "
        "itself. Nesterov steps along grad + momentum * b with the already updated b.",
    ),
)
def _sgd_cases():
    rng = np.random.default_rng(503)
    cases = []
    for label, shape, first, nesterov, lr, mu in [
        ("first step (no buffer yet), shape (5,)", (5,), True, False, 0.1, 0.9),
        ("a later step, shape (3, 4)", (3, 4), False, False, 0.05, 0.9),
        ("a later step, momentum 0.5, shape (6,)", (6,), False, False, 0.3, 0.5),
        ("Nesterov, first step, shape (2, 3)", (2, 3), True, True, 0.1, 0.9),
        ("Nesterov, a later step, shape (7,)", (7,), False, True, 0.02, 0.95),
    ]:
        param, grad = rng.normal(size=shape), rng.normal(size=shape)
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


# 5.4 -------------------------------------------------------------------------------------------


def _rmsprop_step(param, grad, square_avg, lr, alpha, eps):
    """v = alpha v + (1 - alpha) g^2 (alpha is the decay); p - lr g / (sqrt(v) + eps)."""
    square_avg = alpha * square_avg + (1 - alpha) * grad**2
    return param - lr * grad / (np.sqrt(square_avg) + eps), square_avg


@exercise(
    "5.4",
    title="One RMSprop step",
    points=2,
    function="rmsprop_step",
    reference=_rmsprop_step,
    rtol=1e-10,
    hints=(
        "torch's RMSprop calls the decay of the past alpha (default 0.99): v = alpha * "
        "v + "
        "(1 - alpha) * grad**2. Epsilon is added after the square root, sqrt(v) + eps, "
        "not "
        "inside it; check the case with tiny gradients.",
    ),
)
def _rmsprop_cases():
    rng = np.random.default_rng(504)
    cases = []
    for label, shape, first, lr, alpha, eps, scale in [
        ("first step (square_avg = 0), shape (6,)", (6,), True, 0.01, 0.99, 1e-8, 1.0),
        ("a later step, shape (3, 3)", (3, 3), False, 0.001, 0.9, 1e-8, 1.0),
        (
            "tiny gradients (eps matters), shape (5,)",
            (5,),
            False,
            0.01,
            0.99,
            1e-8,
            1e-7,
        ),
        ("large eps, alpha=0.5, shape (4, 2)", (4, 2), False, 0.1, 0.5, 1e-2, 0.1),
    ]:
        param, grad = rng.normal(size=shape), scale * rng.normal(size=shape)
        square_avg = np.zeros(shape) if first else (scale * rng.normal(size=shape)) ** 2
        grad.flat[0] = 0.0  # a coordinate with zero gradient
        state = {"step": 0 if first else 10, "square_avg": square_avg}
        p, st = _torch_step(
            torch.optim.RMSprop, param, grad, state, lr=lr, alpha=alpha, eps=eps
        )
        cases.append(
            Case(
                label,
                (param, grad, square_avg, lr, alpha, eps),
                expected=(_np(p), _np(st["square_avg"])),
            )
        )
    return cases


# 5.5 -------------------------------------------------------------------------------------------


def _adamw_step(
    param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay
):
    """Decay p by (1 - lr wd), update m and v, then p - lr m_hat / (sqrt(v_hat) + eps) at step t."""
    param = param * (1 - lr * weight_decay)
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad**2
    m_hat = exp_avg / (1 - beta1**step)
    v_hat = exp_avg_sq / (1 - beta2**step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), exp_avg, exp_avg_sq


@exercise(
    "5.5",
    title="One AdamW step with bias correction",
    points=3,
    function="adamw_step",
    reference=_adamw_step,
    rtol=1e-9,
    atol=1e-12,
    hints=(
        "Shrink the parameter by (1 - lr * weight_decay) first; update the two raw "
        "averages "
        "m and v (return those, not the corrected ones); divide by 1 - beta**step with "
        "step = t of this update (1 on the first); add eps to sqrt(v_hat), outside the "
        "root.",
    ),
)
def _adamw_cases():
    rng = np.random.default_rng(505)
    cases = []
    for label, shape, step, wd, scale, lr in [
        ("the first step (t=1) from zero state, shape (6,)", (6,), 1, 0.0, 1.0, 0.1),
        ("the second step, shape (3, 2)", (3, 2), 2, 0.0, 1.0, 0.01),
        ("t=50, shape (4, 4)", (4, 4), 50, 0.0, 1.0, 0.001),
        ("t=3, tiny gradients (eps matters), shape (5,)", (5,), 3, 0.0, 1e-7, 0.01),
        ("t=1, weight_decay=0.1, shape (6,)", (6,), 1, 0.1, 1.0, 0.1),
        ("t=20, weight_decay=0.01, shape (2, 5)", (2, 5), 20, 0.01, 1.0, 0.003),
    ]:
        param, grad = rng.normal(size=shape), scale * rng.normal(size=shape)
        if step == 1:
            m, v = np.zeros(shape), np.zeros(shape)
        else:
            m = scale * rng.normal(size=shape) * 0.5
            v = (scale * rng.normal(size=shape)) ** 2 + m**2
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


# 5.6 -------------------------------------------------------------------------------------------


def _warmup_cosine(base_lr, eta_min, warmup, total):
    """lr_t = base_lr (t+1)/warmup for t < warmup, then eta_min + (base_lr - eta_min)(1 + cos(pi s/S))/2."""
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


@exercise(
    "5.6",
    title="Linear warm-up, then cosine annealing",
    points=2,
    function="warmup_cosine",
    reference=_warmup_cosine,
    rtol=1e-10,
    hints=(
        "Two pieces: lr = base_lr * (t + 1) / warmup while t < warmup; afterwards the "
        "cosine "
        "runs over the remaining total - warmup steps, starting at base_lr (progress 0 "
        "at "
        "t = warmup) and heading to eta_min. Return a float array of length total.",
    ),
)
def _schedule_cases():
    rng = np.random.default_rng(506)
    cases = []
    for label, warmup, total in [
        ("no warm-up, 10 steps", 0, 10),
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
