"""Chapter 2 exercises: backpropagation.

2.1 backpropagation through a chain of tanh units; 2.2 the backward of a linear layer
followed by ReLU; 2.3 softmax cross-entropy, loss and gradient; 2.4 backpropagation
through a two-layer network; 2.5 a central-difference gradient; 2.6 fans and
initialisation scales; 2.7 a training loop with gradient clipping.

Every expected value comes from torch autograd in float64 (or from torch's own
``clip_grad_norm_`` and init formulas) on seeded random inputs; the references below are
model solutions in numpy, held to the same cases by the test suite. Each exercise
registers the mistakes the chapter warns about, and its cases keep each of them at a
quarter of the points or less.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from . import Case, Mistake, exercise
from ._oracle import tensor as _t
from ._oracle import to_numpy as _np

# 2.1 ----------------------------------------------------------------------------------


def _tanh_chain(x, y, w, weight_factor=None, input_of=None):
    """Mean squared error of a chain f_l = tanh(w_l f_{l-1}), f_0 = x, and its gradient.

    ``weight_factor(l, f, w)`` and ``input_of(l, f)`` let the mistakes swap a factor.
    """
    f = [x]  # f[l]: (N,) output of layer l, f[0] = x
    for w_l in w:
        f.append(np.tanh(w_l * f[-1]))
    L = len(w)
    loss = float(np.mean((f[L] - y) ** 2))
    delta = 2.0 * (f[L] - y) / len(x) * (1.0 - f[L] ** 2)  # dL/dz_L, (N,)
    grad = np.zeros(L)
    for l in range(L, 0, -1):
        grad[l - 1] = np.sum((input_of or (lambda l, f: f[l - 1]))(l, f) * delta)
        if l > 1:
            factor = (weight_factor or (lambda l, f, w: w[l - 1]))(l, f, w)
            delta = (1.0 - f[l - 1] ** 2) * factor * delta  # dL/dz_{l-1}
    return loss, grad


def _tanh_chain_reference(x, y, w):
    return _tanh_chain(x, y, w)


def _tanh_chain_slope_for_weight(x, y, w):
    return _tanh_chain(x, y, w, weight_factor=lambda l, f, w: 1.0 - f[l] ** 2)


def _tanh_chain_output_for_input(x, y, w):
    return _tanh_chain(x, y, w, input_of=lambda l, f: f[l])


@exercise(
    "2.1",
    title="Backpropagation through a chain of tanh units",
    points=3,
    function="tanh_chain",
    reference=_tanh_chain_reference,
    rtol=1e-10,
    atol=1e-13,
    hints=(
        "Carry the adjoint delta_l = dL/dz_l down the chain; each step crosses one "
        "edge "
        "of the graph, and the edge from f_l to z_{l+1} is the weight (reread 'A tanh "
        "chain, by hand' and its pitfall).",
        "Forward: f_0 = x, f_l = tanh(w_l f_{l-1}); loss = mean((f_L - y)**2). "
        "Backward: "
        "delta_L = 2 (f_L - y) / N * (1 - f_L**2); dL/dw_l = sum over samples of "
        "f_{l-1} delta_l; delta_{l-1} = (1 - f_{l-1}**2) * w_l * delta_l.",
    ),
    mistakes=(
        Mistake(
            "slope-for-weight",
            "The factor for the edge from f_l to z_{l+1} was the tanh slope 1 - "
            "f_{l+1}^2; "
            "that edge is a multiplication by the weight w_{l+1}.",
            "'A tanh chain, by hand' (which derivative is the weight?)",
            _tanh_chain_slope_for_weight,
        ),
        Mistake(
            "output-for-input",
            "dL/dw_l was f_l delta_l; z_l = w_l f_{l-1}, so the factor is the layer's "
            "input f_{l-1}, not its output.",
            "'A tanh chain, by hand'",
            _tanh_chain_output_for_input,
        ),
    ),
)
def _tanh_chain_cases():
    rng = np.random.default_rng(201)

    def case(label, x, y, w):
        x, y, w = (np.asarray(v, dtype=np.float64) for v in (x, y, w))
        wt, h = _t(w, requires_grad=True), _t(x)
        for l in range(len(w)):
            h = torch.tanh(wt[l] * h)
        loss = torch.mean((h - _t(y)) ** 2)
        loss.backward()
        return Case(label, (x, y, w), expected=(loss.item(), _np(wt.grad)))

    return [
        case(
            "the chapter's example: x = 1, y = 0.5, three layers",
            [1.0],
            [0.5],
            [0.8, -1.2, 1.5],
        ),
        case(
            "4 samples, 3 layers",
            rng.normal(size=4),
            rng.normal(size=4),
            rng.normal(size=3),
        ),
        case(
            "16 samples, 6 layers",
            rng.normal(size=16),
            rng.uniform(-1, 1, 16),
            rng.normal(scale=1.5, size=6),
        ),
        case(
            "a deep chain: 20 layers of weight ~2",
            rng.normal(size=5),
            rng.uniform(-1, 1, 5),
            rng.normal(2.0, 0.3, size=20),
        ),
        case(
            "a zero weight in the middle blocks the layers below",
            rng.normal(size=6),
            rng.normal(size=6),
            [1.2, -0.7, 0.0, 1.1],
        ),
        case(
            "an input of 0 among others",
            [0.0, 1.5, -2.0],
            [0.3, -0.2, 0.9],
            [1.3, -0.4, 2.1],
        ),
        case(
            "saturated units: weights of 8",
            rng.normal(size=3),
            [0.1, 0.2, -0.3],
            [8.0, -8.0, 8.0],
        ),
        case("one layer: logistic-like, no recursion", [0.5, -1.0], [1.0, -1.0], [0.7]),
    ]


# 2.2 ----------------------------------------------------------------------------------


def _linear_relu_backward(grad_out, X, W, b):
    """Y = relu(X W^T + b): dZ = dY [Z > 0], dX = dZ W, dW = dZ^T X, db = sum dZ."""
    Z = X @ W.T + b  # (N, out)
    dZ = grad_out * (Z > 0)
    return dZ @ W, dZ.T @ X, dZ.sum(axis=0)


def _linear_relu_backward_slope_one(grad_out, X, W, b):
    dZ = grad_out * (X @ W.T + b >= 0)
    return dZ @ W, dZ.T @ X, dZ.sum(axis=0)


def _linear_relu_backward_divided_twice(grad_out, X, W, b):
    dX, dW, db = _linear_relu_backward(grad_out, X, W, b)
    return dX, dW / len(X), db / len(X)


def _linear_relu_backward_transposed(grad_out, X, W, b):
    dZ = grad_out * (X @ W.T + b > 0)
    return dZ @ W, X.T @ dZ, dZ.sum(axis=0)


@exercise(
    "2.2",
    title="Backward of a linear layer followed by ReLU",
    points=3,
    function="linear_relu_backward",
    reference=_linear_relu_backward,
    hints=(
        "Go through the ReLU first, then the linear map; let the shapes tell you each "
        "product, and remember that grad_out already carries the loss's 1/N (reread "
        "'Whole batches at once' and the pitfall on the ReLU derivative at zero).",
        "Z = X @ W.T + b; dZ = grad_out * (Z > 0) (slope 0 at Z = 0, as torch); dX = "
        "dZ @ W "
        "(N, in); dW = dZ.T @ X (out, in); db = dZ.sum(axis=0) (out,).",
    ),
    mistakes=(
        Mistake(
            "relu-slope-at-zero",
            "The ReLU slope was taken as 1 at Z = 0; torch and labkit use 0 there, and "
            "integer inputs hit Z = 0 exactly.",
            "'Gradient checking' (the ReLU derivative at zero)",
            _linear_relu_backward_slope_one,
        ),
        Mistake(
            "divided-twice",
            "dW and db were divided by N again, although grad_out already holds the "
            "loss's 1/N: every weight gradient is N times too small.",
            "'Whole batches at once' (dividing by the batch size twice)",
            _linear_relu_backward_divided_twice,
        ),
        Mistake(
            "transposed-weight-grad",
            "dW was X^T dZ, of shape (in, out); the weight is (out, in), so dW = dZ^T "
            "X.",
            "'Whole batches at once'",
            _linear_relu_backward_transposed,
        ),
    ),
)
def _linear_relu_cases():
    rng = np.random.default_rng(202)

    def integers(*shape):
        return rng.integers(-2, 3, size=shape).astype(np.float64)

    cases = []
    for label, n, d_in, d_out in [
        ("one sample, 3 -> 3", 1, 3, 3),
        ("6 samples, 4 -> 4", 6, 4, 4),
        ("32 samples, 5 -> 5", 32, 5, 5),
        ("8 samples, 3 -> 3, zero inputs", 8, 3, 3),
        ("10 samples, 6 -> 6", 10, 6, 6),
        ("12 samples, 2 -> 2, every unit off somewhere", 12, 2, 2),
    ]:
        X, W, b = integers(n, d_in), integers(d_out, d_in), integers(d_out)
        if "zero inputs" in label:
            X[: n // 2] = 0.0  # Z = b on those rows
            b[0] = 0.0
        X[0], b[-1] = 0.0, 0.0  # Z = 0 exactly at least once
        grad_out = rng.normal(size=(n, d_out))
        Xt, Wt, bt = (
            _t(X, requires_grad=True),
            _t(W, requires_grad=True),
            _t(b, requires_grad=True),
        )
        F.relu(F.linear(Xt, Wt, bt)).backward(_t(grad_out))
        cases.append(
            Case(
                label,
                (grad_out, X, W, b),
                expected=(_np(Xt.grad), _np(Wt.grad), _np(bt.grad)),
            )
        )
    return cases


# 2.3 ----------------------------------------------------------------------------------


def _softmax_cross_entropy(logits, y):
    """Mean cross-entropy of softmax(logits) against labels y, and its gradient
    (P - onehot(y)) / N."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), largest entry 0
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(n), y].mean()
    grad = np.exp(log_p)
    grad[np.arange(n), y] -= 1.0
    return float(loss), grad / n


def _softmax_ce_diagonal(logits, y):
    loss, grad = _softmax_cross_entropy(logits, y)
    n = logits.shape[0]
    diagonal = np.zeros_like(grad)
    diagonal[np.arange(n), y] = grad[np.arange(n), y]  # -(1 - p_y) / N, nothing else
    return loss, diagonal


def _softmax_ce_log_of_softmax(logits, y):
    _, grad = _softmax_cross_entropy(logits, y)
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return float(-np.log(P[np.arange(len(y)), y]).mean()), grad


def _softmax_ce_gradient_not_averaged(logits, y):
    loss, grad = _softmax_cross_entropy(logits, y)
    return loss, grad * logits.shape[0]


@exercise(
    "2.3",
    title="Softmax cross-entropy: loss and gradient",
    points=3,
    function="softmax_cross_entropy",
    reference=_softmax_cross_entropy,
    hints=(
        "Chain the loss through the whole softmax Jacobian, not only its diagonal: "
        "every logit of a row moves the true class's probability (reread 'Softmax and "
        "cross-entropy' and its pitfall). Keep the loss in log space.",
        "Shift each row by its maximum; log_p = shifted - log(sum(exp(shifted))); loss "
        "= "
        "-mean(log_p[range(N), y]); gradient = (exp(log_p) - onehot(y)) / N.",
    ),
    mistakes=(
        Mistake(
            "diagonal-jacobian",
            "The softmax derivative was taken as p(1 - p), the Jacobian's diagonal: "
            "the "
            "gradient then has -(1 - p_y)/N for the true class and 0 for every other.",
            "'Softmax and cross-entropy' (the softmax derivative is not p(1 - p))",
            _softmax_ce_diagonal,
        ),
        Mistake(
            "log-of-softmax",
            "The loss was the log of a computed probability, which rounds to 0 (log = "
            "-inf) when the true class's logit is far below the maximum.",
            "'Softmax and cross-entropy'",
            _softmax_ce_log_of_softmax,
        ),
        Mistake(
            "gradient-not-averaged",
            "The gradient was P - onehot(y) without the 1/N of the mean loss.",
            "'Softmax and cross-entropy'",
            _softmax_ce_gradient_not_averaged,
        ),
    ),
)
def _softmax_ce_cases():
    rng = np.random.default_rng(203)
    cases = []
    for label, n, c, scale, base in [
        ("N=8, 5 classes", 8, 5, 2.0, 0.0),
        ("N=1, 3 classes, wrong by 800", 1, 3, 1.0, 0.0),
        ("N=6, 4 classes, logits near 1000, wrong by 800", 6, 4, 1.0, 1000.0),
        ("N=64, 10 classes, wrong by 800", 64, 10, 3.0, 0.0),
        ("N=5, 2 classes, wrong by 800", 5, 2, 1.0, -300.0),
        ("N=16, 6 classes, logits near -1000, wrong by 800", 16, 6, 2.0, -1000.0),
        ("N=4, 3 classes, ties at the maximum, wrong by 800", 4, 3, 0.0, 50.0),
        ("N=3, 7 classes, wrong by 800", 3, 7, 5.0, 0.0),
    ]:
        logits = base + rng.normal(scale=scale, size=(n, c))
        y = rng.integers(0, c, size=n).astype(np.int64)
        if "wrong by" in label:
            rows = np.arange(n)
            others = logits.copy()
            others[rows, y] = -np.inf
            logits[rows, y] = others.max(axis=1) - 800.0 - rng.uniform(0, 50, n)
        z = _t(logits, requires_grad=True)
        loss = F.cross_entropy(z, _t(y))
        loss.backward()
        cases.append(Case(label, (logits, y), expected=(loss.item(), _np(z.grad))))
    return cases


# 2.4 ----------------------------------------------------------------------------------


def _mlp_gradients(X, y, W1, b1, W2, b2, slope=None, output_grad=None, divide=1):
    """Loss and gradients of mean CE(softmax(tanh(X W1^T + b1) W2^T + b2), y).

    ``slope``, ``output_grad`` and ``divide`` let the mistakes below change one step.
    """
    n = X.shape[0]
    A = X @ W1.T + b1  # (N, hidden)
    H = np.tanh(A)
    Z = H @ W2.T + b2  # (N, C)
    Z = Z - Z.max(axis=1, keepdims=True)
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    loss = -np.log(P[np.arange(n), y]).mean()
    dZ = P.copy()
    dZ[np.arange(n), y] -= 1.0
    dZ /= n  # (N, C)
    if output_grad is not None:
        dZ = output_grad(dZ, y)
    dH = dZ @ W2  # (N, hidden)
    dA = dH * (slope(A, H) if slope else 1.0 - H**2)  # through tanh
    return {
        "loss": float(loss),
        "W1": dA.T @ X / divide,
        "b1": dA.sum(axis=0) / divide,
        "W2": dZ.T @ H / divide,
        "b2": dZ.sum(axis=0) / divide,
    }


def _mlp_gradients_reference(X, y, W1, b1, W2, b2):
    return _mlp_gradients(X, y, W1, b1, W2, b2)


def _mlp_slope_from_preactivation(X, y, W1, b1, W2, b2):
    return _mlp_gradients(X, y, W1, b1, W2, b2, slope=lambda A, H: 1.0 - A**2)


def _mlp_diagonal_jacobian(X, y, W1, b1, W2, b2):
    def diagonal(dZ, y):
        only = np.zeros_like(dZ)
        only[np.arange(len(y)), y] = dZ[np.arange(len(y)), y]
        return only

    return _mlp_gradients(X, y, W1, b1, W2, b2, output_grad=diagonal)


def _mlp_divided_twice(X, y, W1, b1, W2, b2):
    return _mlp_gradients(X, y, W1, b1, W2, b2, divide=len(X))


@exercise(
    "2.4",
    title="Backpropagation through a two-layer network",
    points=4,
    function="mlp_gradients",
    reference=_mlp_gradients_reference,
    hints=(
        "Go backward one layer at a time, each a rule you have already met: the loss "
        "(softmax and cross-entropy), a linear layer, the tanh, a linear layer (reread "
        "'The whole network: labkit against PyTorch').",
        "dZ = (P - onehot(y)) / N; dW2 = dZ^T H, db2 = sum of dZ over the batch; dH = "
        "dZ W2; "
        "dA = dH * (1 - H**2) with H the tanh's OUTPUT; dW1 = dA^T X, db1 = sum of dA.",
    ),
    mistakes=(
        Mistake(
            "slope-from-preactivation",
            "The tanh slope was computed as 1 - A^2 from the pre-activation A; it is "
            "1 - tanh(A)^2, from the layer's output.",
            "'A tanh chain, by hand'",
            _mlp_slope_from_preactivation,
        ),
        Mistake(
            "diagonal-jacobian",
            "The output gradient kept only the true class's entry, -(1 - p_y)/N: the "
            "softmax Jacobian's diagonal alone.",
            "'Softmax and cross-entropy' (the softmax derivative is not p(1 - p))",
            _mlp_diagonal_jacobian,
        ),
        Mistake(
            "divided-twice",
            "The parameter gradients were divided by N once more, although the loss's "
            "gradient already carries 1/N.",
            "'Whole batches at once' (dividing by the batch size twice)",
            _mlp_divided_twice,
        ),
    ),
)
def _mlp_cases():
    rng = np.random.default_rng(204)
    cases = []
    for n, d_in, hidden, c in [
        (4, 2, 3, 2),
        (16, 5, 8, 3),
        (50, 3, 20, 4),
        (2, 4, 4, 5),
    ]:
        X = rng.normal(size=(n, d_in))
        y = rng.integers(0, c, size=n).astype(np.int64)
        params = {
            "W1": rng.normal(scale=1 / math.sqrt(d_in), size=(hidden, d_in)),
            "b1": rng.normal(scale=0.1, size=hidden),
            "W2": rng.normal(scale=1 / math.sqrt(hidden), size=(c, hidden)),
            "b2": rng.normal(scale=0.1, size=c),
        }
        t = {k: _t(v, requires_grad=True) for k, v in params.items()}
        logits = F.linear(
            torch.tanh(F.linear(_t(X), t["W1"], t["b1"])), t["W2"], t["b2"]
        )
        loss = F.cross_entropy(logits, _t(y))
        loss.backward()
        expected = {"loss": loss.item(), **{k: _np(v.grad) for k, v in t.items()}}
        cases.append(
            Case(
                f"N={n}, in={d_in}, hidden={hidden}, classes={c}",
                (X, y, params["W1"], params["b1"], params["W2"], params["b2"]),
                expected=expected,
            )
        )
    return cases


# 2.5 ----------------------------------------------------------------------------------


def _loss(W, X, Y):
    return np.mean((np.tanh(X @ W.T) - Y) ** 2)


def _central_difference_grad(W, X, Y, eps, restore=True, central=True):
    """Central difference of L(W) = mean((tanh(X W^T) - Y)**2), one entry at a time."""
    W = W.copy()
    grad = np.zeros_like(W)
    for i in np.ndindex(W.shape):
        old = W[i]
        W[i] = old + eps
        plus = _loss(W, X, Y)
        W[i] = old - eps if central else old
        minus = _loss(W, X, Y)
        if restore:
            W[i] = old
        grad[i] = (plus - minus) / (2 * eps if central else eps)
    return grad


def _central_difference_reference(W, X, Y, eps):
    return _central_difference_grad(W, X, Y, eps)


def _one_sided_difference(W, X, Y, eps):
    return _central_difference_grad(W, X, Y, eps, central=False)


def _difference_not_restored(W, X, Y, eps):
    return _central_difference_grad(W, X, Y, eps, restore=False)


@exercise(
    "2.5",
    title="A central-difference numerical gradient",
    points=2,
    function="central_difference_grad",
    reference=_central_difference_reference,
    rtol=1e-6,
    atol=1e-9,
    hints=(
        "Perturb one entry at a time in both directions, and leave W as you found it "
        "before moving to the next entry (reread 'Gradient checking': why central?).",
        "For each index i: save W[i]; set W[i] = old + eps, evaluate L; set W[i] = old "
        "- "
        "eps, evaluate L; put W[i] = old back; grad[i] = (plus - minus) / (2 * eps). "
        "Work "
        "on a copy of W.",
    ),
    mistakes=(
        Mistake(
            "one-sided",
            "The difference was one-sided, (L(W + eps) - L(W)) / eps, whose error is "
            "of "
            "order eps, not eps^2.",
            "'Gradient checking' (why central?)",
            _one_sided_difference,
        ),
        Mistake(
            "not-restored",
            "The perturbed entry was not put back, so every later entry is differenced "
            "around a different W.",
            "'Gradient checking'",
            _difference_not_restored,
        ),
    ),
)
def _central_difference_cases():
    # Expected: torch autograd's exact gradient. The tolerance admits central
    # differences (error about eps**2) and rejects one-sided ones (error about eps).
    rng = np.random.default_rng(205)
    cases = []
    for n, d_in, d_out in [(5, 2, 1), (10, 3, 2), (20, 4, 3), (8, 2, 2)]:
        X = rng.normal(size=(n, d_in))
        Y = rng.normal(scale=0.5, size=(n, d_out))
        W = rng.normal(scale=0.8, size=(d_out, d_in))
        w = _t(W, requires_grad=True)
        torch.mean((torch.tanh(_t(X) @ w.T) - _t(Y)) ** 2).backward()
        cases.append(
            Case(
                f"W of shape {(d_out, d_in)}, N={n}",
                (W, X, Y, 1e-5),
                expected=_np(w.grad),
            )
        )
    return cases


# 2.6 ----------------------------------------------------------------------------------


def _fans(shape, kernel=True):
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 and kernel else 1
    return shape[1] * receptive, shape[0] * receptive


def _init_scales(shape, kernel=True, torch_default=None, xavier=None):
    """Fans and the standard deviations of four initialisations of a weight."""
    fan_in, fan_out = _fans(tuple(shape), kernel)
    return {
        "fan_in": fan_in,
        "fan_out": fan_out,
        "lecun": math.sqrt(1 / fan_in),
        "xavier": xavier(fan_in, fan_out)
        if xavier
        else math.sqrt(2 / (fan_in + fan_out)),
        "he": math.sqrt(2 / fan_in),
        "torch_default": torch_default(fan_in)
        if torch_default
        else math.sqrt(1 / (3 * fan_in)),
    }


def _init_scales_reference(shape):
    return _init_scales(shape)


def _init_scales_kernel_ignored(shape):
    return _init_scales(shape, kernel=False)


def _init_scales_torch_default_is_he(shape):
    return _init_scales(shape, torch_default=lambda fan_in: math.sqrt(2 / fan_in))


def _init_scales_xavier_is_lecun(shape):
    return _init_scales(shape, xavier=lambda fan_in, fan_out: math.sqrt(1 / fan_in))


def _torch_init_scales(shape):
    """The same numbers from torch's own fan computation and gains."""
    w = torch.empty(shape, dtype=torch.float64)
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(w)
    # torch.nn.Linear / Conv reset_parameters: kaiming_uniform_(a=sqrt(5)), whose bound
    # is gain * sqrt(3 / fan_in); a uniform U(-a, a) has standard deviation a / sqrt(3)
    bound = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(
        3.0 / fan_in
    )
    return {
        "fan_in": fan_in,
        "fan_out": fan_out,
        "lecun": 1.0 / math.sqrt(fan_in),
        "xavier": math.sqrt(2.0 / float(fan_in + fan_out)),  # xavier_normal_, gain 1
        "he": torch.nn.init.calculate_gain("relu") / math.sqrt(fan_in),
        "torch_default": bound / math.sqrt(3.0),
    }


@exercise(
    "2.6",
    title="Fans and initialisation scales",
    points=2,
    function="init_scales",
    reference=_init_scales_reference,
    hints=(
        "A unit of a convolution sums over its input channels and its kernel window, "
        "so "
        "the window counts in the fans; and mind which scheme is which (reread "
        "'Initialisation' and its pitfall on PyTorch's default).",
        "kernel = product of shape[2:] (1 for a linear layer); fan_in = shape[1] * "
        "kernel, fan_out = shape[0] * kernel; lecun sqrt(1/fan_in), xavier "
        "sqrt(2/(fan_in + fan_out)), he sqrt(2/fan_in), torch_default: the std of "
        "U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which is 1/sqrt(3 fan_in).",
    ),
    mistakes=(
        Mistake(
            "kernel-ignored",
            "The fans were shape[1] and shape[0] alone; a convolution's unit also sums "
            "over its kernel window, so both are multiplied by the window's size.",
            "'Initialisation'",
            _init_scales_kernel_ignored,
        ),
        Mistake(
            "torch-default-is-he",
            "PyTorch's default was taken to be He's sqrt(2/fan_in); it is uniform on "
            "+-1/sqrt(fan_in), of variance 1/(3 fan_in).",
            "'Initialisation' (PyTorch's default is neither Xavier nor He)",
            _init_scales_torch_default_is_he,
        ),
        Mistake(
            "xavier-is-lecun",
            "Xavier's variance was taken as 1/fan_in, which is LeCun's; Glorot's is "
            "2/(fan_in + fan_out).",
            "'Initialisation' (PyTorch's default is neither Xavier nor He)",
            _init_scales_xavier_is_lecun,
        ),
    ),
)
def _init_cases():
    shapes = [
        ("a conv2d weight (16, 3, 3, 3)", (16, 3, 3, 3)),
        ("a conv1d weight (8, 4, 5)", (8, 4, 5)),
        ("a conv3d weight (6, 2, 3, 3, 3)", (6, 2, 3, 3, 3)),
        ("a conv2d weight (32, 16, 5, 5)", (32, 16, 5, 5)),
        ("a conv2d weight with one input channel (4, 1, 7, 7)", (4, 1, 7, 7)),
        ("a conv2d weight (2, 9, 1, 3)", (2, 9, 1, 3)),
        ("a linear weight (64, 32)", (64, 32)),
        ("a 1x1 convolution (20, 10, 1, 1)", (20, 10, 1, 1)),
    ]
    return [Case(label, (shape,), _torch_init_scales(shape)) for label, shape in shapes]


# 2.7 ----------------------------------------------------------------------------------


def _train_with_clipping(X, y, w, b, lr, max_norm, steps, accumulate=False, clip=None):
    """Gradient descent on mean((X w + b - y)**2) with global-norm clipping.

    ``accumulate`` and ``clip`` let the mistakes below change one step.
    """
    w, b = w.copy(), float(b)
    losses, norms = np.zeros(steps), np.zeros(steps)
    gw, gb = np.zeros_like(w), 0.0
    for t in range(steps):
        r = X @ w + b - y  # (N,) residuals
        losses[t] = np.mean(r**2)
        if not accumulate:
            gw, gb = np.zeros_like(w), 0.0  # zero_grad
        gw = gw + 2.0 * X.T @ r / len(y)
        gb = gb + 2.0 * r.mean()
        norms[t] = math.sqrt(float(gw @ gw) + gb**2)
        cw, cb = (clip or _clip_global)(gw, gb, norms[t], max_norm)
        w, b = w - lr * cw, b - lr * cb
    return w, b, losses, norms


def _clip_global(gw, gb, total, max_norm):
    coef = min(1.0, max_norm / (total + 1e-6))
    return gw * coef, gb * coef


def _clip_each(gw, gb, total, max_norm):
    cw = min(1.0, max_norm / (math.sqrt(float(gw @ gw)) + 1e-6))
    cb = min(1.0, max_norm / (abs(gb) + 1e-6))
    return gw * cw, gb * cb


def _clip_uncapped(gw, gb, total, max_norm):
    coef = max_norm / (total + 1e-6)
    return gw * coef, gb * coef


def _train_with_clipping_reference(X, y, w, b, lr, max_norm, steps):
    return _train_with_clipping(X, y, w, b, lr, max_norm, steps)


def _train_accumulating(X, y, w, b, lr, max_norm, steps):
    return _train_with_clipping(X, y, w, b, lr, max_norm, steps, accumulate=True)


def _train_clip_each(X, y, w, b, lr, max_norm, steps):
    return _train_with_clipping(X, y, w, b, lr, max_norm, steps, clip=_clip_each)


def _train_clip_uncapped(X, y, w, b, lr, max_norm, steps):
    return _train_with_clipping(X, y, w, b, lr, max_norm, steps, clip=_clip_uncapped)


@exercise(
    "2.7",
    title="A training loop with gradient clipping",
    points=3,
    function="train_with_clipping",
    reference=_train_with_clipping_reference,
    rtol=1e-9,
    atol=1e-12,
    hints=(
        "Each step starts from fresh gradients, measures one norm over all the "
        "parameters together, and only ever shrinks the step (reread the pitfall on "
        "resetting gradients in 'Layers that know their own backward', and 'Vanishing "
        "and exploding gradients').",
        "For each step: r = X @ w + b - y; record loss = mean(r**2); gw = 2 X^T r / N, "
        "gb = 2 mean(r); total = sqrt(sum(gw**2) + gb**2), recorded; coef = min(1, "
        "max_norm / (total + 1e-6)); w -= lr * coef * gw; b -= lr * coef * gb.",
    ),
    mistakes=(
        Mistake(
            "gradients-accumulate",
            "The gradients were never reset, so each step used the sum of all the "
            "gradients so far.",
            "'Layers that know their own backward' (forgetting to reset gradients)",
            _train_accumulating,
        ),
        Mistake(
            "clip-each-array",
            "Each parameter's gradient was clipped by its own norm; the global norm is "
            "one norm over all parameters together.",
            "'Vanishing and exploding gradients' (the remedies)",
            _train_clip_each,
        ),
        Mistake(
            "clip-uncapped",
            "The factor max_norm / (total + 1e-6) was not capped at 1, so small "
            "gradients were scaled up to max_norm.",
            "'Vanishing and exploding gradients' (the remedies)",
            _train_clip_uncapped,
        ),
    ),
)
def _clip_cases():
    rng = np.random.default_rng(207)

    def case(label, n, d, lr, max_norm, steps, scale=3.0):
        X = rng.normal(size=(n, d))
        y = X @ rng.normal(scale=scale, size=d) + rng.normal(scale=0.1, size=n)
        w, b = np.zeros(d), float(rng.normal())
        wt = _t(w.copy(), requires_grad=True)
        bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        losses, norms = [], []
        for _ in range(steps):
            wt.grad, bt.grad = None, None
            loss = torch.mean((_t(X) @ wt + bt - _t(y)) ** 2)
            loss.backward()
            losses.append(loss.item())
            norms.append(float(torch.nn.utils.clip_grad_norm_([wt, bt], max_norm)))
            with torch.no_grad():
                wt -= lr * wt.grad
                bt -= lr * bt.grad
        expected = (_np(wt), bt.item(), np.array(losses), np.array(norms))
        return Case(label, (X, y, w, b, lr, max_norm, steps), expected)

    return [
        case("20 samples, 3 features, 40 steps", 20, 3, 0.2, 5.0, 40),
        case("50 samples, 5 features, 40 steps", 50, 5, 0.05, 2.0, 40),
        case("a steep start: max_norm 10, 60 steps", 30, 2, 0.1, 10.0, 60, scale=10.0),
        case("10 samples, 1 feature, 25 steps", 10, 1, 0.3, 1.5, 25),
        case("8 samples, 4 features, 50 steps", 8, 4, 0.1, 3.0, 50, scale=5.0),
        case("max_norm never reached", 15, 3, 0.05, 1e6, 10),
        case("a single step", 12, 3, 0.1, 1.0, 1),
        case("zero steps: nothing changes", 5, 2, 0.1, 1.0, 0),
    ]
