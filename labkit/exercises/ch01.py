"""Chapter 1 exercises: networks of units.

1.1 the perceptron learning rule, epoch by epoch; 1.2 a dense layer in torch's shapes,
its output and the local slope of its activation; 1.3 a numerically stable log-softmax;
1.4 cross-entropy from logits and integer labels; 1.5 one gradient-descent step of
logistic regression; 1.6 weights of a two-layer step network computing n-bit parity (XOR
for n = 2), checked on every input.

Expected values come from independent oracles: the perceptron rule in plain Python,
torch in float64 (``linear``, the activations and autograd for their slopes,
``log_softmax``, ``cross_entropy``, autograd through
``binary_cross_entropy_with_logits``) or, for 1.6, the truth table itself: many weight
sets are right, so ``_parity_compare`` runs the returned network on all 2**n inputs.

Each exercise registers the mistakes the chapter warns about (``Mistake``), and its
cases are built so that none of them earns more than a quarter of the points.
"""

from __future__ import annotations

import numpy as np

from ..units import truth_table
from . import Case, Mistake, exercise
from ._oracle import tensor as _t


def _torch():
    import torch

    return torch


# --- 1.1 the perceptron ---------------------------------------------------------------


def _perceptron(X, y, epochs, lr):
    w, b = np.zeros(X.shape[1]), 0.0
    mistakes = np.zeros(epochs, dtype=np.int64)
    for epoch in range(epochs):
        for x_i, y_i in zip(X, y):
            error = y_i - float(x_i @ w + b > 0)  # U(0) = 0
            if error:
                w = w + lr * error * x_i
                b = b + lr * error
                mistakes[epoch] += 1
    return w, float(b), mistakes


def _perceptron_fires_at_zero(X, y, epochs, lr):
    w, b = np.zeros(X.shape[1]), 0.0
    mistakes = np.zeros(epochs, dtype=np.int64)
    for epoch in range(epochs):
        for x_i, y_i in zip(X, y):
            error = y_i - float(x_i @ w + b >= 0)
            if error:
                w, b = w + lr * error * x_i, b + lr * error
                mistakes[epoch] += 1
    return w, float(b), mistakes


def _perceptron_batch(X, y, epochs, lr):
    w, b = np.zeros(X.shape[1]), 0.0
    mistakes = np.zeros(epochs, dtype=np.int64)
    for epoch in range(epochs):
        errors = y - (
            X @ w + b > 0
        )  # every answer from the weights of the epoch's start
        w, b = w + lr * errors @ X, b + lr * errors.sum()
        mistakes[epoch] = np.count_nonzero(errors)
    return w, float(b), mistakes


def _perceptron_oracle(X, y, epochs, lr):
    """Rosenblatt's rule in plain Python floats, one sample at a time."""
    rows, labels = X.tolist(), y.tolist()
    w, b, counts = [0.0] * X.shape[1], 0.0, []
    for _ in range(epochs):
        count = 0
        for x, target in zip(rows, labels):
            z = sum(w_j * x_j for w_j, x_j in zip(w, x)) + b
            error = target - (1.0 if z > 0 else 0.0)
            if error != 0:
                w = [w_j + lr * error * x_j for w_j, x_j in zip(w, x)]
                b += lr * error
                count += 1
        counts.append(count)
    return np.array(w), float(b), np.array(counts, dtype=np.int64)


@exercise(
    "1.1",
    title="The perceptron learning rule",
    points=3,
    function="perceptron",
    reference=_perceptron,
    hints=(
        "Visit the samples one at a time and correct the weights right after each "
        "wrong "
        "answer; a unit fires only when its weighted sum is strictly positive (reread "
        "'What one unit cannot do: XOR' and the step function in 'The unit').",
        "Start from w = 0, b = 0. For each epoch, for each row: y_hat = 1.0 if "
        "x @ w + b > 0 else 0.0; if y_hat != y, then w += lr * (y - y_hat) * x, "
        "b += lr * (y - y_hat) and count one mistake. Return (w, b, counts) with "
        "counts "
        "an integer array of one count per epoch.",
    ),
    mistakes=(
        Mistake(
            "fires-at-zero",
            "The unit fired at z = 0, but in this course U(0) = 0: from w = 0 and b = "
            "0 "
            "the first answer is 0, not 1.",
            "'The unit: a linear classifier with a non-linearity'",
            _perceptron_fires_at_zero,
        ),
        Mistake(
            "batch-update",
            "All answers of an epoch were computed with the weights of its start and "
            "applied together; the perceptron corrects its weights after each sample.",
            "'What one unit cannot do: XOR' (the perceptron rule)",
            _perceptron_batch,
        ),
    ),
)
def _perceptron_cases():
    rng = np.random.default_rng(101)
    table = truth_table(2)
    plane = rng.normal(size=3)
    Xr = rng.normal(size=(30, 3))
    yr = (Xr @ plane > 0.2).astype(float)
    Xi = rng.integers(-3, 4, size=(20, 2)).astype(float)
    yi = (Xi[:, 0] - Xi[:, 1] > 0).astype(float)  # some rows sit on the line: label 0
    cases = [
        ("AND on its truth table, 6 epochs", table, [0, 0, 0, 1], 6, 1.0),
        ("XOR on its truth table: it never settles", table, [0, 1, 1, 0], 8, 1.0),
        ("OR with lr 0.5, 5 epochs", table, [0, 1, 1, 1], 5, 0.5),
        ("20 integer points, some on the boundary", Xi, yi, 10, 1.0),
        ("30 random points in 3-D, lr 0.1", Xr, yr, 15, 0.1),
        (
            "zero inputs: only the bias can learn",
            np.array([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]),
            [1, 0, 1],
            4,
            1.0,
        ),
        ("one sample of class 0", np.array([[2.0, -1.0]]), [0], 3, 1.0),
        ("zero epochs: the starting point", table, [0, 1, 1, 1], 0, 1.0),
    ]
    out = []
    for label, X, y, epochs, lr in cases:
        args = (X, np.asarray(y, dtype=np.float64), epochs, lr)
        out.append(Case(label, args, _perceptron_oracle(*args)))
    return out


# --- 1.2 a dense layer: output and local slope ----------------------------------------

_SLOPE = 0.01  # leaky ReLU's negative slope, as torch's default


def _activate(Z, activation, slope_at_zero_one=False):
    """g(Z) and g'(Z) for the chapter's activations (g'(0) as torch: 0 for ReLU)."""
    if activation == "relu":
        A = np.maximum(Z, 0.0)
        return A, ((Z >= 0) if slope_at_zero_one else (Z > 0)).astype(np.float64)
    if activation == "leaky_relu":
        positive = (Z >= 0) if slope_at_zero_one else (Z > 0)
        return np.where(Z > 0, Z, _SLOPE * Z), np.where(positive, 1.0, _SLOPE)
    if activation == "sigmoid":
        A = 0.5 * (1.0 + np.tanh(0.5 * Z))
        return A, A * (1.0 - A)
    if activation == "tanh":
        A = np.tanh(Z)
        return A, 1.0 - A**2
    raise ValueError(f"unknown activation {activation!r}")


def _dense_forward(X, weight, bias, activation):
    Z = X @ weight.T + bias  # (N, out)
    return _activate(Z, activation)


def _dense_column_convention(X, weight, bias, activation):
    return _activate(X @ weight + bias, activation)


def _dense_bias_as_column(X, weight, bias, activation):
    return _activate(X @ weight.T + bias[:, None], activation)


def _dense_relu_slope_one(X, weight, bias, activation):
    return _activate(X @ weight.T + bias, activation, slope_at_zero_one=True)


@exercise(
    "1.2",
    title="A dense layer: output and local slope",
    points=2,
    function="dense_forward",
    reference=_dense_forward,
    rtol=1e-10,
    atol=1e-12,
    hints=(
        "One sample per row and weight of shape (out, in), as torch.nn.Linear; the "
        "slope "
        "of each activation is in the table of 'Activation functions', and its value "
        "at "
        "z = 0 in the pitfall box after it.",
        "Z = X @ weight.T + bias, shape (N, out). relu: A = max(Z, 0), slope 1 where "
        "Z > 0 else 0; leaky_relu: A = Z where Z > 0 else 0.01 Z, slope 1 where Z > 0 "
        "else 0.01; sigmoid: A = 1 / (1 + exp(-Z)), slope A (1 - A); tanh: A = "
        "tanh(Z), "
        "slope 1 - A**2.",
    ),
    mistakes=(
        Mistake(
            "column-convention",
            "The layer computed X @ weight, the column convention's product, on "
            "batch-first data: right only for a symmetric weight.",
            "'Feed-forward networks: layers, notation and shapes' (mixing the two "
            "conventions)",
            _dense_column_convention,
        ),
        Mistake(
            "bias-as-column",
            "The bias was stored as a column (out, 1), so it broadcast over the rows "
            "of "
            "the batch instead of its columns.",
            "'Feed-forward networks: layers, notation and shapes' (mixing the two "
            "conventions)",
            _dense_bias_as_column,
        ),
        Mistake(
            "relu-slope-at-zero",
            "The ReLU slope was taken as 1 at z = 0; torch and labkit use 0 there "
            "(and the negative slope for leaky ReLU).",
            "'Activation functions' (the derivative of ReLU at zero)",
            _dense_relu_slope_one,
        ),
    ),
)
def _dense_cases():
    torch = _torch()
    F = torch.nn.functional
    functions = {
        "relu": F.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, _SLOPE),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
    }
    rng = np.random.default_rng(102)

    def case(label, X, W, b, activation):
        Z = F.linear(_t(X), _t(W), _t(b)).detach().requires_grad_(True)
        A = functions[activation](Z)
        A.sum().backward()  # elementwise, so the gradient of the sum is g'(Z)
        expected = (A.detach().numpy(), Z.grad.numpy())
        return Case(label, (X, W, b, activation), expected)

    def integers(*shape):
        return rng.integers(-2, 3, size=shape).astype(np.float64)

    cases = []
    for activation, n in (("relu", 4), ("leaky_relu", 3), ("relu", 5)):
        X, W, b = integers(n, n), integers(n, n), integers(n)
        label = f"{activation}, {n} integer samples, {n} units, many z = 0"
        cases.append(case(label, X, W, b, activation))
    X, W, b = integers(6, 3), integers(2, 3), integers(2)
    X[0], b[0] = 0.0, 0.0  # so that z = 0 at least once
    cases.append(case("relu, 6 samples, 3 -> 2, some z = 0", X, W, b, "relu"))
    X, W = integers(1, 4), integers(4, 4)
    cases.append(
        case("leaky_relu, one sample, zero bias", X, W, np.zeros(4), "leaky_relu")
    )
    X, W, b = integers(3, 3), np.zeros((3, 3)), np.array([0.0, 1.0, -1.0])
    cases.append(case("relu, a zero weight: z is the bias", X, W, b, "relu"))
    X, W, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4)), rng.normal(size=4)
    cases.append(case("tanh, 4 samples, 4 units", X, W, b, "tanh"))
    X, W, b = (
        rng.normal(size=(5, 5)),
        rng.normal(scale=20, size=(5, 5)),
        rng.normal(size=5),
    )
    cases.append(case("sigmoid, saturated units (|z| up to ~100)", X, W, b, "sigmoid"))
    return cases


# --- 1.3 a stable log-softmax ---------------------------------------------------------


def _log_softmax(Z):
    m = Z.max(axis=1, keepdims=True)  # (N, 1)
    shifted = Z - m
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _naive_log_softmax(Z):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        E = np.exp(Z)
        return np.log(E / E.sum(axis=1, keepdims=True))


def _log_softmax_not_normalised(Z):
    return Z - Z.max(axis=1, keepdims=True)  # the shift, without the log of the sum


@exercise(
    "1.3",
    title="A numerically stable log-softmax",
    points=2,
    function="log_softmax",
    reference=_log_softmax,
    rtol=1e-10,
    atol=1e-12,
    hints=(
        "Adding a constant to every logit of a row leaves its softmax unchanged; "
        "choose "
        "the constant so that no exponential can overflow (reread 'Log-sum-exp' in "
        "'Softmax and cross-entropy').",
        "With m the row maximum (keepdims), out = (Z - m) - log(sum(exp(Z - m), "
        "axis=1, "
        "keepdims=True)); never form the probabilities.",
    ),
    mistakes=(
        Mistake(
            "naive-log-softmax",
            "The log was taken of exp(z) / sum(exp(z)): exp overflows to inf for "
            "logits "
            "above about 709, underflows to 0 far below the maximum, and inf / inf or "
            "log(0) follow.",
            "'Softmax and cross-entropy' (log-sum-exp)",
            _naive_log_softmax,
        ),
        Mistake(
            "not-normalised",
            "Only the row maximum was subtracted; the log of the sum of the shifted "
            "exponentials is missing, so the probabilities do not sum to one.",
            "'Softmax and cross-entropy' (a softmax that does not sum to one)",
            _log_softmax_not_normalised,
        ),
    ),
)
def _log_softmax_cases():
    torch = _torch()
    rng = np.random.default_rng(103)
    spread = np.array([[0.0, -800.0, 3.0, 1.0], [5.0, 2.0, -900.0, 0.0]])
    mixed = rng.normal(size=(4, 5))
    mixed[2] += 2000.0
    cases = [
        ("4 rows of 3 standard-normal logits", rng.normal(size=(4, 3))),
        ("all logits zero: log(1/C)", np.zeros((2, 5))),
        ("logits near 1000 (exp overflows)", 1000.0 + rng.normal(size=(5, 4))),
        ("logits near -1000 (exp underflows to 0)", -1000.0 + rng.normal(size=(3, 6))),
        ("logits 800 apart in one row (a probability underflows)", spread),
        ("a tie: one row of equal logits at 800", np.full((1, 5), 800.0)),
        ("a single class, logit 1000: log-softmax is 0", np.full((3, 1), 1000.0)),
        ("one row near 2000 among ordinary rows", mixed),
        ("logits of scale 500", rng.normal(scale=500.0, size=(6, 8))),
    ]
    return [
        Case(label, (Z,), torch.log_softmax(_t(Z), dim=1).numpy()) for label, Z in cases
    ]


# --- 1.4 cross-entropy from logits ----------------------------------------------------


def _cross_entropy(logits, target):
    m = logits.max(axis=1, keepdims=True)  # (N, 1)
    log_probs = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(target)), target].mean())


def _cross_entropy_softmax_then_log(logits, target):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        E = np.exp(logits)
        P = E / E.sum(axis=1, keepdims=True)
        return float(-np.log(P[np.arange(len(target)), target]).mean())


def _cross_entropy_log_of_stable_softmax(logits, target):
    E = np.exp(logits - logits.max(axis=1, keepdims=True))
    P = E / E.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return float(-np.log(P[np.arange(len(target)), target]).mean())


def _cross_entropy_summed(logits, target):
    return _cross_entropy(logits, target) * len(target)


@exercise(
    "1.4",
    title="Cross-entropy from logits and labels",
    points=2,
    function="cross_entropy",
    reference=_cross_entropy,
    rtol=1e-10,
    atol=1e-12,
    hints=(
        "Work with log-probabilities from the start: -log softmax(z)_y = logsumexp(z) "
        "- "
        "z_y never forms a probability that could round to 0 (reread 'Cross-entropy' "
        "in 'Softmax and cross-entropy').",
        "Compute a stable log-softmax of the logits (shift each row by its maximum), "
        "pick one entry per row with log_probs[np.arange(N), target], and return minus "
        "their mean as a float.",
    ),
    mistakes=(
        Mistake(
            "softmax-then-log",
            "The softmax was computed as exp(z) / sum(exp(z)) and then logged: exp "
            "overflows for large logits and a probability far below the maximum rounds "
            "to 0, whose log is -inf.",
            "'Softmax and cross-entropy' (log-sum-exp)",
            _cross_entropy_softmax_then_log,
        ),
        Mistake(
            "log-of-softmax",
            "A stable softmax was computed and then logged: the true class's "
            "probability "
            "rounds to 0 when its logit is far below the maximum, and log(0) = -inf.",
            "'Softmax and cross-entropy' (log-sum-exp)",
            _cross_entropy_log_of_stable_softmax,
        ),
        Mistake(
            "summed-loss",
            "The per-sample losses were summed; torch's cross_entropy "
            "(reduction='mean') "
            "averages them.",
            "'Logistic regression: the one-unit network, learned' (summing the loss "
            "instead of averaging it)",
            _cross_entropy_summed,
        ),
    ),
)
def _cross_entropy_cases():
    torch = _torch()
    rng = np.random.default_rng(104)

    def case(label, logits, target):
        target = np.asarray(target, dtype=np.int64)
        expected = torch.nn.functional.cross_entropy(_t(logits), _t(target)).item()
        return Case(label, (logits, target), expected)

    def far_below(n, c, scale, base=0.0):
        """Logits where each row's label sits at least 800 below the row maximum."""
        logits = base + rng.normal(scale=scale, size=(n, c))
        target = rng.integers(0, c, size=n)
        rows = np.arange(n)
        others = logits.copy()
        others[rows, target] = -np.inf
        logits[rows, target] = others.max(axis=1) - 800.0 - rng.uniform(0, 100, n)
        return logits, target

    return [
        case("10 samples, 3 classes", rng.normal(size=(10, 3)), rng.integers(0, 3, 10)),
        case(
            "confident and wrong: labels 800 below the maximum", *far_below(6, 4, 3.0)
        ),
        case("the same near logit 1000 (exp overflows)", *far_below(5, 3, 1.0, 1000.0)),
        case("the same near logit -1000", *far_below(4, 5, 1.0, -1000.0)),
        case("32 samples, 10 classes, scale 300", *far_below(32, 10, 300.0)),
        case("2 classes (the binary case), wrong by 900", *far_below(7, 2, 1.0)),
        case("a single sample, wrong by 850", *far_below(1, 5, 2.0, 500.0)),
        case(
            "a tie: equal logits at 1000, loss log(C)",
            np.full((3, 4), 1000.0),
            [0, 3, 1],
        ),
    ]


# --- 1.5 one gradient step of logistic regression -------------------------------------


def _logistic_regression_step(X, y, w, b, lr):
    z = X @ w + b  # (N,)
    loss = np.mean(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z))))
    e = np.exp(-np.abs(z))
    p = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))  # sigmoid(z), no overflow
    dz = (p - y) / len(y)  # d loss / d z
    return float(loss), w - lr * (X.T @ dz), float(b - lr * dz.sum())


def _logistic_loss_from_probabilities(X, y, w, b, lr):
    z = X @ w + b
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        p = 1.0 / (1.0 + np.exp(-z))
        loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    dz = (p - y) / len(y)
    return float(loss), w - lr * (X.T @ dz), float(b - lr * dz.sum())


def _logistic_summed(X, y, w, b, lr):
    loss, w_new, b_new = _logistic_regression_step(X, y, w, b, lr * len(y))
    return loss * len(y), w_new, b_new


@exercise(
    "1.5",
    title="One gradient step of logistic regression",
    points=3,
    function="logistic_regression_step",
    reference=_logistic_regression_step,
    rtol=1e-10,
    atol=1e-12,
    hints=(
        "Compute the loss from the logit z, never from p = sigmoid(z), which rounds to "
        "exactly 0 or 1 for large |z| (reread 'A loss that never overflows' in "
        "'Logistic regression: the one-unit network, learned'); the gradient is the "
        "one derived there, averaged.",
        "z = X @ w + b; loss = mean(max(z, 0) - z*y + log1p(exp(-|z|))); p = "
        "sigmoid(z) "
        "computed without overflow; dz = (p - y) / N; return (loss, w - lr * X.T @ dz, "
        "b - lr * sum(dz)), the loss at the old parameters.",
    ),
    mistakes=(
        Mistake(
            "loss-from-probabilities",
            "The loss was computed from p = sigmoid(z): for |z| above about 37, p "
            "rounds "
            "to 0 or 1 and log(0) gives inf or nan.",
            "'Logistic regression: the one-unit network, learned' (a loss that "
            "never overflows)",
            _logistic_loss_from_probabilities,
        ),
        Mistake(
            "summed-loss",
            "The loss was the sum over samples, so it and its gradient are N times the "
            "mean's and every step is N times too long.",
            "'Logistic regression: the one-unit network, learned' (summing the loss "
            "instead of averaging it)",
            _logistic_summed,
        ),
    ),
)
def _logistic_cases():
    torch = _torch()
    rng = np.random.default_rng(105)

    def case(label, X, y, w, b, lr):
        wt = _t(w).clone().requires_grad_(True)
        bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            _t(X) @ wt + bt, _t(y)
        )
        loss.backward()
        with torch.no_grad():
            expected = (
                loss.item(),
                (wt - lr * wt.grad).numpy(),
                (bt - lr * bt.grad).item(),
            )
        return Case(label, (X, y, w, b, lr), expected)

    def data(n, d, scale=1.0):
        X = rng.normal(size=(n, d))
        y = rng.integers(0, 2, size=n).astype(float)
        return X, y, rng.normal(scale=scale, size=d), float(rng.normal())

    X, _, w, b = data(8, 3, scale=200.0)
    return [
        case("20 samples, 2 features, lr 0.5", *data(20, 2), 0.5),
        case(
            "weights of size 300: |z| in the hundreds", *data(12, 3, scale=300.0), 0.01
        ),
        case("|z| in the hundreds, 50 samples, lr 0.1", *data(50, 5, scale=100.0), 0.1),
        case("every label 0, |z| in the hundreds", X, np.zeros(8), w, b, 0.05),
        case(
            "lr 0: the parameters stay, the loss is still reported",
            *data(8, 3, 50.0),
            0.0,
        ),
        case(
            "one sample, z = -800 and label 1 (p rounds to 0)",
            np.array([[4.0, -4.0]]),
            np.array([1.0]),
            np.array([-100.0, 100.0]),
            0.0,
            0.5,
        ),
    ]


# --- 1.6 a two-layer step network computing parity ------------------------------------


def _parity_weights(n):
    W1 = np.ones((n, n))  # hidden unit k sees the count of ones
    b1 = -(np.arange(1, n + 1) - 0.5)  # and fires when the count is >= k
    W2 = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[None, :]  # (1, n): +1, -1, +1, ...
    b2 = np.array([-0.5])
    return W1, b1, W2, b2


def _parity_on_the_threshold(n):
    """The same construction with every threshold at z = 0: right only if U(0) = 1."""
    W1 = np.ones((n, n))
    b1 = -np.arange(1.0, n + 1)
    W2 = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[None, :]
    return W1, b1, W2, np.array([-1.0])


def _parity_compare(expected, got):
    """None if the step network ``got = (W1, b1, W2, b2)`` is right on every input."""
    X, labels = expected["inputs"], expected["labels"]
    n = X.shape[1]
    if not isinstance(got, (tuple, list)) or len(got) != 4:
        return "return a tuple (W1, b1, W2, b2) of four numpy arrays"
    names = ("W1", "b1", "W2", "b2")
    for name, value in zip(names, got):
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            return (
                f"{name} should be a numpy array of numbers, got {type(value).__name__}"
            )
        if not np.all(np.isfinite(value)):
            return f"{name} contains NaN or inf"
    W1, b1, W2, b2 = (v.astype(np.float64) for v in got)
    if W1.ndim != 2 or W1.shape[1] != n:
        return f"W1 should have shape (hidden, {n}), got {W1.shape}"
    hidden = W1.shape[0]
    for name, value, shape in (
        ("b1", b1, (hidden,)),
        ("W2", W2, (1, hidden)),
        ("b2", b2, (1,)),
    ):
        if value.shape != shape:
            return (
                f"{name} should have shape {shape} for {hidden} hidden units, "
                f"got {value.shape}"
            )
    H = (X @ W1.T + b1 > 0).astype(np.float64)  # (2**n, hidden)
    out = (H @ W2.T + b2 > 0).astype(np.float64)[:, 0]  # (2**n,)
    wrong = np.flatnonzero(out != labels)
    if wrong.size:
        i = wrong[0]
        bits = "".join(str(int(v)) for v in X[i])
        return (
            f"wrong on {wrong.size} of {len(labels)} inputs; first on {bits}: "
            f"the network outputs {int(out[i])}, the parity is {int(labels[i])}"
        )
    return None


@exercise(
    "1.6",
    title="A two-layer step network for n-bit parity",
    points=3,
    function="parity_weights",
    reference=_parity_weights,
    compare=_parity_compare,
    hints=(
        "Parity depends only on how many inputs are 1; let the hidden layer report "
        "that "
        "count, and let the output unit read it off. Keep every input away from z = 0 "
        "(reread 'Two layers compute XOR' and the pitfall on weights at the "
        "threshold).",
        "Hidden unit k (k = 1 .. n) has all input weights 1 and bias -(k - 0.5), so it "
        "fires when at least k inputs are 1; the output unit weighs them +1, -1, +1, "
        "... "
        "and has bias -0.5, so an odd count gives z = 0.5 and an even one z = -0.5.",
    ),
    mistakes=(
        Mistake(
            "on-the-threshold",
            "Every threshold sat exactly at z = 0 (biases -k and -1): the network is "
            "right only if U(0) = 1, and this course's U(0) is 0.",
            "'Step units compute logic' (weights that sit exactly on the threshold)",
            _parity_on_the_threshold,
        ),
    ),
)
def _parity_cases():
    cases = []
    for n in (1, 2, 3, 4, 6):
        X = truth_table(n)
        labels = X.sum(axis=1) % 2  # (2**n,) parity of each row
        name = {1: "n = 1 (the identity)", 2: "n = 2 (XOR)"}.get(n, f"n = {n}")
        cases.append(Case(name, (n,), {"inputs": X, "labels": labels}))
    return cases
