"""Chapter 6 exercises: regularisation.

Expected values come from independent oracles on seeded random inputs: torch autograd in
float64 for the penalised loss, the dropout backward and the batch-norm backward;
``torch.nn.functional.batch_norm`` (which updates running statistics in place, torch's
way) for the batch-norm forward; and ``labkit.training.EarlyStopping`` (a streaming
implementation with Keras' rules, itself tested on hand-worked curves) for the
early-stopping rule. The references below are model numpy solutions written the way a
learner would; the test suite holds them to the cases.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..training import EarlyStopping
from . import Case, Mistake, exercise
from ._oracle import float64_tensor as _t
from ._oracle import to_numpy as _np

# 6.1 ----------------------------------------------------------------------------------


def _regularized_loss_and_grad(w, b, X, y, l1, l2):
    """J = |Xw + b - y|^2/(2m) + l2/(2m) |w|^2 + l1/m |w|_1; returns J, dJ/dw, dJ/db."""
    m = X.shape[0]
    r = X @ w + b - y  # (m,) residuals
    J = (r @ r) / (2 * m) + l2 / (2 * m) * (w @ w) + l1 / m * np.abs(w).sum()
    dw = X.T @ r / m + l2 / m * w + l1 / m * np.sign(w)  # sign(0) = 0
    db = r.sum() / m
    return float(J), dw, float(db)


def _torch_regularized(w, b, X, y, l1, l2):
    wt, bt = _t(w, requires_grad=True), _t(b, requires_grad=True)
    m = X.shape[0]
    J = (
        ((_t(X) @ wt + bt - _t(y)) ** 2).sum() / (2 * m)
        + l2 / (2 * m) * (wt**2).sum()
        + l1 / m * wt.abs().sum()
    )
    J.backward()
    return float(J.detach()), _np(wt.grad), float(bt.grad)


_FACTOR_TWO = 'chapter 6, box "Common pitfall: the factor 2"'
_PENALTIES = 'chapter 6, section "Three ways of writing the same penalty"'
_EACH_PENALTY = 'chapter 6, section "What each penalty does to a weight"'


def _penalty_variant(
    w,
    b,
    X,
    y,
    l1,
    l2,
    *,
    l2_grad=1.0,
    l1_scale=1.0,
    data_half=True,
    penalise_bias=False,
    sign_zero=0.0,
):
    m = X.shape[0]
    r = X @ w + b - y
    data = (r @ r) / (2 * m if data_half else m)
    J = data + l2 / (2 * m) * (w @ w) + l1_scale * l1 / m * np.abs(w).sum()
    sign = np.where(w == 0, sign_zero, np.sign(w))
    dw = X.T @ r / (m if data_half else m / 2) + l2_grad * l2 / m * w
    dw = dw + l1_scale * l1 / m * sign
    db = r.sum() / (m if data_half else m / 2)
    if penalise_bias:
        J, db = J + l2 / (2 * m) * b**2, db + l2 / m * b
    return float(J), dw, float(db)


def _penalty_mistake(**variant):
    def wrong(w, b, X, y, l1, l2):
        return _penalty_variant(w, b, X, y, l1, l2, **variant)

    return wrong


@exercise(
    "6.1",
    title="An L1 + L2 penalised squared-error loss and its gradient",
    points=2,
    function="regularized_loss_and_grad",
    reference=_regularized_loss_and_grad,
    rtol=1e-10,
    hints=(
        "In the divide-by-m convention the 1/2 in front of the L2 term cancels the 2 "
        "of the derivative, |w| has the derivative sign(w) with sign(0) = 0, and the "
        f"bias is not penalised. Reread {_PENALTIES} and {_FACTOR_TWO}.",
        "With r = Xw + b - y: J = r @ r / (2m) + l2 / (2m) * w @ w + l1 / m * "
        "sum(|w|); dJ/dw = X.T @ r / m + (l2 / m) * w + (l1 / m) * np.sign(w); "
        "dJ/db = sum(r) / m.",
    ),
    mistakes=(
        Mistake(
            "l2-gradient-doubled",
            "The L2 gradient was taken as 2 * (l2 / m) * w; the 1/2 in l2 / (2m) "
            "cancels the 2, leaving (l2 / m) * w.",
            _FACTOR_TWO,
            _penalty_mistake(l2_grad=2.0),
        ),
        Mistake(
            "l1-halved",
            "The L1 term was written l1 / (2m) * sum(|w|), copying the L2 term's 1/2; "
            "it is l1 / m * sum(|w|).",
            _PENALTIES,
            _penalty_mistake(l1_scale=0.5),
        ),
        Mistake(
            "no-half-on-the-data-term",
            "The squared error was divided by m instead of 2m, doubling the data term "
            "and its gradient.",
            _PENALTIES,
            _penalty_mistake(data_half=False),
        ),
        Mistake(
            "bias-penalised",
            "The bias was penalised too; the penalty applies to the weights only.",
            _PENALTIES,
            _penalty_mistake(penalise_bias=True),
        ),
        Mistake(
            "sign-of-zero-is-one",
            "The derivative of |w| at w = 0 was taken as 1; use sign(0) = 0 (np.sign).",
            _EACH_PENALTY,
            _penalty_mistake(sign_zero=1.0),
        ),
    ),
)
def _regularized_cases():
    rng = np.random.default_rng(601)
    cases = []
    for label, m, d, l1, l2, zeros in [
        ("m=20, d=3, L1 and L2", 20, 3, 0.4, 0.7, False),
        ("m=15, d=5, L1 and L2", 15, 5, 0.1, 3.0, False),
        ("m=30, d=6, L1 and L2", 30, 6, 0.3, 2.0, False),
        ("half the weights exactly 0, L1 and L2", 12, 6, 1.5, 0.5, True),
        ("one example (m=1), d=4", 1, 4, 0.2, 0.9, False),
        ("m=8, d=2, strong L1", 8, 2, 5.0, 0.1, False),
        ("m=10, d=3, L2 only", 10, 3, 0.0, 0.7, False),
        ("m=9, d=4, L1 only", 9, 4, 0.4, 0.0, False),
    ]:
        X, y = rng.normal(size=(m, d)), rng.normal(size=m)
        w, b = rng.normal(size=d), float(rng.normal())
        w[0] = 0.0  # every case has a weight exactly at 0
        if zeros:
            w[::2] = 0.0
        cases.append(
            Case(
                label,
                (w, b, X, y, l1, l2),
                expected=_torch_regularized(w, b, X, y, l1, l2),
            )
        )
    return cases


# 6.2 ----------------------------------------------------------------------------------


def _inverted_dropout(x, u, p, grad_out, training):
    """Training: keep where u >= p, y = x * keep / (1 - p), dx = grad_out * keep / (1 -
    p); eval: identity."""
    if not training:
        return x.copy(), grad_out.copy()
    if p == 1.0:
        return np.zeros_like(x), np.zeros_like(grad_out)
    mask = (u >= p) / (1.0 - p)
    return x * mask, grad_out * mask


def _torch_dropout(x, u, p, grad_out, training):
    xt = _t(x, requires_grad=True)
    if not training:
        y = F.dropout(xt, p, training=False)
    elif p == 1.0:
        y = F.dropout(xt, 1.0, training=True)  # torch's p = 1: all zeros
    else:
        y = torch.where(_t(u) >= p, xt / (1.0 - p), torch.zeros_like(xt))
    y.backward(_t(grad_out))
    return _np(y), _np(xt.grad)


_DROPOUT = 'chapter 6, section "Dropout"'
_DROPPED = 'chapter 6, box "Common pitfall: which draws are dropped"'


def _dropout_variant(
    x,
    u,
    p,
    grad_out,
    training,
    *,
    keep_below_p=False,
    rescale=True,
    scale_at_eval=False,
    mask_backward=True,
):
    if not training:
        factor = (1 - p) if scale_at_eval else 1.0
        return x * factor, grad_out * factor
    keep = (u < p) if keep_below_p else (u >= p)
    with np.errstate(all="ignore"):
        mask = keep / (1 - p) if rescale and p < 1 else keep * 1.0
    if p == 1:
        mask = np.zeros_like(x)
    return x * mask, (grad_out * mask if mask_backward else grad_out.copy())


def _dropout_mistake(**variant):
    def wrong(x, u, p, grad_out, training):
        return _dropout_variant(x, u, p, grad_out, training, **variant)

    return wrong


@exercise(
    "6.2",
    title="Inverted dropout, forward and backward",
    points=2,
    function="inverted_dropout",
    reference=_inverted_dropout,
    rtol=1e-12,
    hints=(
        "p is the probability of dropping a unit, the survivors are scaled up during "
        "training so that nothing changes at evaluation, and the backward pass goes "
        f"through the same mask. Reread {_DROPOUT} and {_DROPPED}.",
        "Training: mask = (u >= p) / (1 - p) (zeros when p = 1); return x * mask and "
        "grad_out * mask. Evaluation: return x and grad_out unchanged.",
    ),
    mistakes=(
        Mistake(
            "keep-below-p",
            "The units with u < p were kept, so a fraction p survives; p is the "
            "probability of DROPPING a unit, and u >= p is kept.",
            _DROPPED,
            _dropout_mistake(keep_below_p=True),
        ),
        Mistake(
            "scaled-at-evaluation",
            "The old, non-inverted dropout: unscaled at training time, multiplied by "
            "1 - p at evaluation; inverted dropout scales during training and leaves "
            "evaluation alone.",
            _DROPOUT,
            _dropout_mistake(rescale=False, scale_at_eval=True),
        ),
        Mistake(
            "no-rescaling",
            "The kept units were not divided by 1 - p at training time, so the layer's "
            "output shrinks by 1 - p on average and evaluation sees other scales.",
            _DROPOUT,
            _dropout_mistake(rescale=False),
        ),
        Mistake(
            "unmasked-backward",
            "The gradient was passed back unmasked; dropped units get no gradient, "
            "kept ones the same 1 / (1 - p) factor as in the forward pass.",
            _DROPOUT,
            _dropout_mistake(mask_backward=False),
        ),
    ),
)
def _dropout_cases():
    rng = np.random.default_rng(602)
    cases = []
    for label, shape, p, training in [
        ("p=0.5, shape (4, 6)", (4, 6), 0.5, True),
        ("p=0.2, shape (10, 3)", (10, 3), 0.2, True),
        ("p=0.9, shape (3, 2, 5)", (3, 2, 5), 0.9, True),
        ("p=0.1, shape (8, 8)", (8, 8), 0.1, True),
        ("p=0.3, shape (5,)", (5,), 0.3, True),
        ("p=0.7, shape (2, 3, 4)", (2, 3, 4), 0.7, True),
        ("p=0.45, shape (6, 2)", (6, 2), 0.45, True),
        ("p=0.6, shape (3, 3)", (3, 3), 0.6, True),
        ("p=0.25, shape (7, 3)", (7, 3), 0.25, True),
        ("p=0 keeps everything, shape (5,)", (5,), 0.0, True),
        ("p=1 drops everything, shape (2, 4)", (2, 4), 1.0, True),
        ("evaluation mode, p=0.5, shape (4, 4)", (4, 4), 0.5, False),
    ]:
        x, u, g = rng.normal(size=shape), rng.random(size=shape), rng.normal(size=shape)
        cases.append(
            Case(
                label,
                (x, u, p, g, training),
                expected=_torch_dropout(x, u, p, g, training),
            )
        )
    return cases


# 6.3 ----------------------------------------------------------------------------------


def _early_stopping(val_losses, patience, min_delta):
    """Indices (stop, best): stop once `patience` epochs pass without loss < best -
    min_delta."""
    best, best_epoch, wait = np.inf, 0, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best - min_delta:
            best, best_epoch, wait = loss, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
    return len(val_losses) - 1, best_epoch


def _oracle_early_stopping(val_losses, patience, min_delta):
    es = EarlyStopping(patience=patience, min_delta=min_delta)
    for epoch, loss in enumerate(val_losses):
        if es.step(float(loss)):
            return epoch, es.best_epoch
    return len(val_losses) - 1, es.best_epoch


def _noisy_u_curve(rng, n: int, noise: float) -> np.ndarray:
    """A validation-loss-like curve: falls, bottoms out, rises, with noise."""
    t = np.arange(n) / n
    return 1.0 / (1.0 + 8 * t) + 0.6 * t**2 + noise * rng.normal(size=n)


_NOISY_GRIDS = [
    ("noisy curve of 60 epochs on a 0.05 grid, patience 5", 60, 0.02, 5, 0.0, 0.05),
    ("noisy curve of 200 epochs on a 0.05 grid, patience 20", 200, 0.03, 20, 0.0, 0.05),
    (
        "noisy curve on a 0.02 grid, patience 10, min_delta 0.01",
        150,
        0.02,
        10,
        0.01,
        0.02,
    ),
    ("noisy curve of 80 epochs on a 0.05 grid, patience 4", 80, 0.015, 4, 0.0, 0.05),
]

_EARLY = 'chapter 6, section "Early stopping"'
_UPTICK = 'chapter 6, box "Common pitfall: stopping at the first uptick"'


def _stopping_variant(
    val_losses,
    patience,
    min_delta,
    *,
    improves=None,
    against_previous=False,
    keep_last=False,
    late=0,
):
    improves = improves or (lambda loss, ref: loss < ref - min_delta)
    best, best_epoch, wait, previous = np.inf, 0, 0, np.inf
    for epoch, loss in enumerate(val_losses):
        ref = previous if against_previous else best
        if improves(loss, ref):
            best, best_epoch, wait = loss, epoch, 0
        else:
            wait += 1
            if wait >= patience + late:
                return epoch, (epoch if keep_last else best_epoch)
        previous = loss
    last = len(val_losses) - 1
    return last, (last if keep_last else best_epoch)


def _stop_at_first_uptick(val_losses, patience, min_delta):
    return _stopping_variant(val_losses, 1, min_delta)


def _stop_ties_improve(val_losses, patience, min_delta):
    return _stopping_variant(
        val_losses,
        patience,
        min_delta,
        improves=lambda loss, ref: loss <= ref - min_delta,
    )


def _stopping_mistake(**variant):
    def wrong(val_losses, patience, min_delta):
        return _stopping_variant(val_losses, patience, min_delta, **variant)

    return wrong


@exercise(
    "6.3",
    title="The early-stopping rule",
    points=2,
    function="early_stopping",
    reference=_early_stopping,
    hints=(
        "Only an improvement on the best loss so far, by more than min_delta, resets "
        "the count, and the weights to keep are those of the best epoch, not of the "
        f"last. Reread {_EARLY} and {_UPTICK}.",
        "Keep best, best_epoch and a counter; if loss < best - min_delta, update both "
        "and reset the counter, else add one and stop at this epoch when it reaches "
        "patience; without a stop, return the last index. Return Python ints.",
    ),
    mistakes=(
        Mistake(
            "stop-at-first-uptick",
            "Training stopped at the first epoch that did not improve, ignoring the "
            "patience.",
            _UPTICK,
            _stop_at_first_uptick,
        ),
        Mistake(
            "keep-the-last-weights",
            "The epoch at which training stopped was returned as the one to keep; the "
            "best weights are patience epochs older.",
            _UPTICK,
            _stopping_mistake(keep_last=True),
        ),
        Mistake(
            "compared-with-the-previous-epoch",
            "Improvement was judged against the previous epoch's loss; it must beat "
            "the best loss so far.",
            _EARLY,
            _stopping_mistake(against_previous=True),
        ),
        Mistake(
            "one-epoch-too-late",
            "Training stopped one epoch after the count reached patience.",
            _EARLY,
            _stopping_mistake(late=1),
        ),
        Mistake(
            "ties-improve",
            "A loss equal to the best (loss <= best - min_delta) was counted as an "
            "improvement; it must be strictly lower.",
            _EARLY,
            _stop_ties_improve,
        ),
    ),
)
def _early_stopping_cases():
    """Losses on a coarse grid make ties with the best loss common, and noise makes
    wobbles (lower than the previous epoch, not than the best) common: most cases show
    every mistake. Two edge cases (one epoch, patience never running out) come once."""
    rng = np.random.default_rng(603)
    fixed = [
        (
            "a tie with the best and a wobble, patience 3",
            [1.0, 0.8, 0.9, 0.85, 0.8, 0.95, 0.97, 0.99],
            3,
            0.0,
        ),
        (
            "min_delta=0.25: a gain of exactly 0.25 is not enough, patience 2",
            [2.0, 1.5, 1.75, 1.25, 1.6, 1.7, 1.8],
            2,
            0.25,
        ),
        (
            "a tie that ends the patience, patience 2",
            [1.0, 0.5, 0.6, 0.5, 0.7, 0.8, 0.9],
            2,
            0.0,
        ),
        (
            "a wobble, then a tie, patience 4",
            [1.0, 0.5, 0.7, 0.6, 0.8, 0.5, 0.9, 1.0, 1.1],
            4,
            0.0,
        ),
        (
            "improving at first, a wobble and a tie, patience 3",
            [4.0, 3.0, 2.5, 2.0, 2.75, 2.25, 2.0, 3.0, 3.5, 3.25],
            3,
            0.0,
        ),
        (
            "a tie at exactly min_delta=0.5, patience 5",
            [3.0, 2.0, 2.5, 2.25, 1.5, 2.0, 1.75, 2.5, 3.0, 3.5, 4.0],
            5,
            0.5,
        ),
        ("patience never runs out", [3.0, 2.0, 1.0, 1.1, 0.9], 2, 0.0),
        ("one epoch only", [0.7], 5, 0.0),
    ]
    cases = [
        Case(
            label,
            (losses, patience, delta),
            expected=_oracle_early_stopping(losses, patience, delta),
        )
        for label, losses, patience, delta in fixed
    ]
    for label, n, noise, patience, delta, grid in _NOISY_GRIDS:
        losses = (np.round(_noisy_u_curve(rng, n, noise) / grid) * grid).tolist()
        cases.append(
            Case(
                label,
                (losses, patience, delta),
                expected=_oracle_early_stopping(losses, patience, delta),
            )
        )
    return cases


# 6.4 ----------------------------------------------------------------------------------


def _batchnorm_forward(
    x, gamma, beta, running_mean, running_var, training, momentum, eps
):
    """Batch statistics (biased var) in training, running ones in eval; running stats as
    torch."""
    if training:
        n = x.shape[0]
        mean, var = x.mean(axis=0), x.var(axis=0)  # (C,), biased
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    else:
        mean, var = running_mean, running_var
    y = gamma * (x - mean) / np.sqrt(var + eps) + beta  # (N, C)
    return y, running_mean.copy(), running_var.copy()


def _torch_batchnorm_forward(
    x, gamma, beta, running_mean, running_var, training, momentum, eps
):
    rm, rv = _t(running_mean), _t(running_var)
    y = F.batch_norm(
        _t(x),
        rm,
        rv,
        weight=_t(gamma),
        bias=_t(beta),
        training=training,
        momentum=momentum,
        eps=eps,
    )
    return _np(y), _np(rm), _np(rv)


_BATCH_NORM = 'chapter 6, section "Batch normalisation"'
_RUNNING_VAR = 'chapter 6, box "Common pitfall: the variance in the running estimate"'
_BY_VARIANCE = 'chapter 6, box "Common pitfall: dividing by the variance"'


def _bn_forward_variant(
    x,
    gamma,
    beta,
    running_mean,
    running_var,
    training,
    momentum,
    eps,
    *,
    ddof_norm=0,
    ddof_running=1,
    decay=False,
    by_var=False,
):
    weight = 1 - momentum if decay else momentum
    if training:
        mean = x.mean(axis=0)
        var = x.var(axis=0, ddof=ddof_norm)
        running_mean = (1 - weight) * running_mean + weight * mean
        running_var = (1 - weight) * running_var + weight * x.var(
            axis=0, ddof=ddof_running
        )
    else:
        mean, var = running_mean, running_var
    scale = (var + eps) if by_var else np.sqrt(var + eps)
    return gamma * (x - mean) / scale + beta, running_mean.copy(), running_var.copy()


def _bn_forward_mistake(**variant):
    def wrong(x, gamma, beta, running_mean, running_var, training, momentum, eps):
        return _bn_forward_variant(
            x,
            gamma,
            beta,
            running_mean,
            running_var,
            training,
            momentum,
            eps,
            **variant,
        )

    return wrong


@exercise(
    "6.4",
    title="Batch norm forward, training and evaluation mode",
    points=3,
    function="batchnorm_forward",
    reference=_batchnorm_forward,
    rtol=1e-10,
    atol=1e-12,
    hints=(
        "Training normalises with the batch's own statistics and folds them into the "
        "running ones, torch's way; evaluation uses only the running ones. Reread "
        f"{_BATCH_NORM} and {_RUNNING_VAR}.",
        "Training: mean, var = x.mean(0), x.var(0) (biased); y = gamma * (x - mean) / "
        "sqrt(var + eps) + beta; running = (1 - momentum) * running + momentum * stat, "
        "with x.var(0, ddof=1) for running_var. Evaluation: the same y with the "
        "running statistics, returned unchanged.",
    ),
    mistakes=(
        Mistake(
            "normalised-with-unbiased-variance",
            "The batch was normalised with the unbiased variance (divided by N - 1); "
            "the layer uses the biased one, and the unbiased one only for running_var.",
            _RUNNING_VAR,
            _bn_forward_mistake(ddof_norm=1),
        ),
        Mistake(
            "running-variance-biased",
            "running_var averaged the biased batch variance; torch averages the "
            "unbiased one (times N / (N - 1)).",
            _RUNNING_VAR,
            _bn_forward_mistake(ddof_running=0),
        ),
        Mistake(
            "momentum-as-decay",
            "momentum was read as the decay of the past; in torch it is the weight of "
            "the new batch statistic.",
            'chapter 6, section "The running statistics are an EWMA"',
            _bn_forward_mistake(decay=True),
        ),
        Mistake(
            "divided-by-the-variance",
            "x - mean was divided by var + eps instead of its square root.",
            _BY_VARIANCE,
            _bn_forward_mistake(by_var=True),
        ),
    ),
)
def _batchnorm_forward_cases():
    rng = np.random.default_rng(604)
    cases = []
    for label, n, c, training, momentum, eps in [
        ("training, N=8, C=3", 8, 3, True, 0.1, 1e-5),
        ("training, N=2 (the N/(N-1) factor is 2)", 2, 4, True, 0.1, 1e-5),
        ("training, N=64, C=5, momentum 0.3", 64, 5, True, 0.3, 1e-5),
        ("training, large eps=0.5", 6, 2, True, 0.1, 0.5),
        ("training, N=3, C=6, momentum 0.01", 3, 6, True, 0.01, 1e-5),
        ("training, momentum 1 (the batch's statistics)", 12, 2, True, 1.0, 1e-5),
        ("evaluation mode, N=5, C=3", 5, 3, False, 0.1, 1e-5),
        ("evaluation mode, one example", 1, 4, False, 0.1, 1e-3),
    ]:
        x = rng.normal(
            loc=rng.normal(size=c) * 3, scale=rng.uniform(0.5, 3.0, size=c), size=(n, c)
        )
        gamma, beta = rng.uniform(0.5, 2.0, size=c), rng.normal(size=c)
        running_mean, running_var = rng.normal(size=c), rng.uniform(0.5, 2.0, size=c)
        args = (x, gamma, beta, running_mean, running_var, training, momentum, eps)
        cases.append(Case(label, args, expected=_torch_batchnorm_forward(*args)))
    return cases


# 6.5 ----------------------------------------------------------------------------------


def _batchnorm_backward(x, gamma, grad_out, eps):
    """Training-mode gradients: dx = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) /
    sqrt(var + eps)."""
    mean, var = x.mean(axis=0), x.var(axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)  # (C,)
    xhat = (x - mean) * inv_std  # (N, C)
    dgamma = (grad_out * xhat).sum(axis=0)
    dbeta = grad_out.sum(axis=0)
    dxhat = grad_out * gamma
    dx = inv_std * (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0))
    return dx, dgamma, dbeta


def _torch_batchnorm_backward(x, gamma, grad_out, eps):
    xt, gt, bt = (
        _t(x, requires_grad=True),
        _t(gamma, requires_grad=True),
        _t(np.zeros_like(gamma), requires_grad=True),
    )
    y = F.batch_norm(xt, None, None, weight=gt, bias=bt, training=True, eps=eps)
    y.backward(_t(grad_out))
    return _np(xt.grad), _np(gt.grad), _np(bt.grad)


def _bn_backward_constants(x, gamma, grad_out, eps):
    std = np.sqrt(x.var(axis=0) + eps)
    xhat = (x - x.mean(axis=0)) / std
    return grad_out * gamma / std, (grad_out * xhat).sum(axis=0), grad_out.sum(axis=0)


def _bn_backward_without_gamma(x, gamma, grad_out, eps):
    dx = _batchnorm_backward(x, np.ones_like(gamma), grad_out, eps)[0]
    return (dx, *_batchnorm_backward(x, gamma, grad_out, eps)[1:])


def _bn_backward_means(x, gamma, grad_out, eps):
    dx, dgamma, dbeta = _batchnorm_backward(x, gamma, grad_out, eps)
    return dx, dgamma / len(x), dbeta / len(x)


@exercise(
    "6.5",
    title="Batch norm backward in training mode",
    points=4,
    function="batchnorm_backward",
    reference=_batchnorm_backward,
    rtol=1e-9,
    atol=1e-11,
    hints=(
        "The batch mean and variance depend on every example, so each x_i reaches the "
        "loss through every output of its feature, not only through y_i. Reread "
        f"{_BATCH_NORM}.",
        "dbeta = grad_out.sum(0), dgamma = (grad_out * xhat).sum(0); with dxhat = "
        "grad_out * gamma, dx = (dxhat - dxhat.mean(0) - xhat * (dxhat * "
        "xhat).mean(0)) "
        "/ sqrt(var + eps), var the biased batch variance.",
    ),
    mistakes=(
        Mistake(
            "statistics-as-constants",
            "The batch mean and variance were treated as constants, so dx lacks the "
            "two terms through them (it then does not sum to zero over the batch).",
            _BATCH_NORM,
            _bn_backward_constants,
        ),
        Mistake(
            "gamma-forgotten",
            "dx was computed as if gamma were 1; the upstream gradient reaches xhat "
            "multiplied by gamma.",
            _BATCH_NORM,
            _bn_backward_without_gamma,
        ),
        Mistake(
            "parameter-gradients-averaged",
            "dgamma and dbeta were averaged over the batch; they are sums, as every "
            "example's output depends on them.",
            _BATCH_NORM,
            _bn_backward_means,
        ),
    ),
)
def _batchnorm_backward_cases():
    rng = np.random.default_rng(605)
    cases = []
    for label, n, c, eps in [
        ("N=4, C=3", 4, 3, 1e-5),
        ("N=2, C=1", 2, 1, 1e-5),
        ("N=64, C=5", 64, 5, 1e-5),
        ("N=10, C=2, large eps=1.0", 10, 2, 1.0),
    ]:
        x = rng.normal(
            loc=rng.normal(size=c) * 2, scale=rng.uniform(0.5, 2.0, size=c), size=(n, c)
        )
        gamma, grad_out = rng.normal(size=c), rng.normal(size=(n, c))
        cases.append(
            Case(
                label,
                (x, gamma, grad_out, eps),
                expected=_torch_batchnorm_backward(x, gamma, grad_out, eps),
            )
        )
    x = rng.normal(size=(6, 3))
    const = np.tile(rng.normal(size=3), (6, 1))  # same gradient for all rows
    cases.append(
        Case(
            "a gradient constant over the batch (dx = 0)",
            (x, np.ones(3), const, 1e-5),
            expected=_torch_batchnorm_backward(x, np.ones(3), const, 1e-5),
        )
    )
    return cases
