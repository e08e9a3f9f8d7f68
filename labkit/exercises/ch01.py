"""Chapter 1 exercises: networks of units.

1.1 a layer of step units; 1.2 the forward pass of a two-layer MLP in torch's shapes;
1.3 a numerically stable log-softmax; 1.4 cross-entropy from logits and integer labels;
1.5 one gradient-descent step of logistic regression; 1.6 weights of a two-layer step network
computing n-bit parity (XOR for n = 2), checked on every input.

Expected values come from torch in float64 (``heaviside``, ``nn.Linear``, ``log_softmax``,
``cross_entropy``, autograd through ``binary_cross_entropy_with_logits``) or, for 1.6, from the
truth table itself: many weight sets are right, so ``_parity_compare`` runs the returned network
on all 2**n inputs.
"""

from __future__ import annotations

import numpy as np

from ..units import truth_table
from . import Case, exercise


def _torch():
    import torch

    return torch


def _t(array):
    """A float64 (or int64) torch tensor from a numpy array."""
    return _torch().from_numpy(np.ascontiguousarray(array))


# --- 1.1 a layer of step units -------------------------------------------------------------------


def _step_layer(X, weight, bias):
    z = X @ weight.T + bias  # (N, out)
    return (z > 0).astype(np.float64)


@exercise(
    "1.1",
    title="A layer of step units",
    points=1,
    function="step_layer",
    reference=_step_layer,
    hints=(
        "z = X @ weight.T + bias has shape (N, out); U(z) is 1 only where z > 0, so "
        "U(0) = 0; return float64.",
    ),
)
def _step_layer_cases():
    torch = _torch()

    def oracle(X, W, b):
        z = torch.nn.functional.linear(_t(X), _t(W), _t(b))
        return torch.heaviside(z, torch.tensor(0.0, dtype=torch.float64)).numpy()

    rng = np.random.default_rng(101)
    table = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    nand_w, nand_b = np.array([[-2.0, -2.0]]), np.array([3.0])
    Xi = rng.integers(-2, 3, size=(12, 3)).astype(
        float
    )  # integers, so z = 0 happens exactly
    Wi = rng.integers(-2, 3, size=(4, 3)).astype(float)
    bi = rng.integers(-2, 3, size=4).astype(float)
    Xf, Wf, bf = rng.normal(size=(9, 5)), rng.normal(size=(3, 5)), rng.normal(size=3)
    X1, W1, b1 = rng.normal(size=(1, 4)), rng.normal(size=(6, 4)), rng.normal(size=6)
    cases = [
        ("a NAND unit on its truth table", (table, nand_w, nand_b)),
        ("12 integer inputs, 4 units, some z exactly 0", (Xi, Wi, bi)),
        ("9 random inputs, 3 units", (Xf, Wf, bf)),
        ("a batch of one sample, 6 units", (X1, W1, b1)),
    ]
    return [Case(label, args, oracle(*args)) for label, args in cases]


# --- 1.2 forward pass of a two-layer MLP ---------------------------------------------------------


def _mlp_forward(X, W1, b1, W2, b2):
    H = np.tanh(X @ W1.T + b1)  # (N, hidden)
    logits = H @ W2.T + b2  # (N, out)
    return H, logits


@exercise(
    "1.2",
    title="Forward pass of a two-layer MLP",
    points=2,
    function="mlp_forward",
    reference=_mlp_forward,
    hints=(
        "Batch first, as torch.nn.Linear: a layer maps (N, in) to (N, out) with "
        "X @ W.T + b, W of shape (out, in). tanh on the hidden layer only.",
    ),
)
def _mlp_forward_cases():
    torch = _torch()
    rng = np.random.default_rng(102)

    def case(label, n, d, hidden, out):
        torch.manual_seed(int(rng.integers(1 << 30)))
        model = torch.nn.Sequential(
            torch.nn.Linear(d, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, out)
        ).double()
        X = rng.normal(size=(n, d))
        with torch.no_grad():
            H = model[1](model[0](_t(X)))
            logits = model[2](H)
        params = [
            p.detach().numpy().copy() for p in model.parameters()
        ]  # W1, b1, W2, b2
        return Case(label, (X, *params), (H.numpy(), logits.numpy()))

    return [
        case("8 samples, 2 -> 5 -> 3", 8, 2, 5, 3),
        case("16 samples, 4 -> 7 -> 1", 16, 4, 7, 1),
        case("one sample, 3 -> 2 -> 4", 1, 3, 2, 4),
        case("5 samples, 6 -> 10 -> 2", 5, 6, 10, 2),
    ]


# --- 1.3 a stable log-softmax --------------------------------------------------------------------


def _log_softmax(Z):
    m = Z.max(axis=1, keepdims=True)  # (N, 1)
    shifted = Z - m
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


@exercise(
    "1.3",
    title="A numerically stable log-softmax",
    points=2,
    function="log_softmax",
    reference=_log_softmax,
    rtol=1e-10,
    atol=1e-12,
    hints=(
        "log softmax(z)_k = z_k - logsumexp(z), and logsumexp(z) = m + log sum exp(z - m) "
        "with m = max_k z_k, so no exp ever overflows. Reduce over axis 1, keepdims.",
    ),
)
def _log_softmax_cases():
    torch = _torch()
    rng = np.random.default_rng(103)
    cases = [
        ("4 rows of 3 standard-normal logits", rng.normal(size=(4, 3))),
        ("6 rows of 10 logits", rng.normal(scale=3.0, size=(6, 10))),
        ("logits near 1000 (a naive exp overflows)", 1000.0 + rng.normal(size=(5, 4))),
        (
            "logits near -1000 (a naive exp underflows to 0)",
            -1000.0 + rng.normal(size=(3, 6)),
        ),
        ("one row of equal logits", np.full((1, 5), 7.0)),
    ]
    return [
        Case(label, (Z,), torch.log_softmax(_t(Z), dim=1).numpy()) for label, Z in cases
    ]


# --- 1.4 cross-entropy from logits ---------------------------------------------------------------


def _cross_entropy(logits, target):
    m = logits.max(axis=1, keepdims=True)  # (N, 1)
    log_probs = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(target)), target].mean())


@exercise(
    "1.4",
    title="Cross-entropy from logits and labels",
    points=2,
    function="cross_entropy",
    reference=_cross_entropy,
    rtol=1e-10,
    atol=1e-12,
    hints=(
        "The loss is the mean over samples of -log softmax(logits)[i, target[i]]; "
        "compute the log-softmax stably and pick one entry per row with "
        "log_probs[np.arange(N), target].",
    ),
)
def _cross_entropy_cases():
    torch = _torch()
    rng = np.random.default_rng(104)

    def case(label, logits, target):
        expected = torch.nn.functional.cross_entropy(_t(logits), _t(target)).item()
        return Case(label, (logits, target), expected)

    return [
        case(
            "10 samples, 3 classes",
            rng.normal(size=(10, 3)),
            rng.integers(0, 3, size=10),
        ),
        case(
            "32 samples, 10 classes",
            rng.normal(scale=2.0, size=(32, 10)),
            rng.integers(0, 10, size=32),
        ),
        case(
            "2 classes (the binary case)",
            rng.normal(size=(7, 2)),
            rng.integers(0, 2, size=7),
        ),
        case(
            "confident logits of size 500 (a naive softmax gives nan or inf)",
            rng.normal(scale=500.0, size=(6, 4)),
            rng.integers(0, 4, size=6),
        ),
        case("a single sample", rng.normal(size=(1, 5)), np.array([3])),
    ]


# --- 1.5 one gradient step of logistic regression ------------------------------------------------


def _logistic_regression_step(X, y, w, b, lr):
    z = X @ w + b  # (N,)
    loss = np.mean(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z))))
    e = np.exp(-np.abs(z))
    p = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))  # sigmoid(z), no overflow
    dz = (p - y) / len(y)  # d loss / d z
    return float(loss), w - lr * (X.T @ dz), float(b - lr * dz.sum())


@exercise(
    "1.5",
    title="One gradient step of logistic regression",
    points=3,
    function="logistic_regression_step",
    reference=_logistic_regression_step,
    rtol=1e-10,
    atol=1e-12,
    hints=(
        "With z = X @ w + b, the mean binary cross-entropy has dL/dz_i = (sigmoid(z_i) - "
        "y_i) / N. Compute the loss as mean(max(z, 0) - z*y + log1p(exp(-|z|))) so that "
        "large |z| does not give inf; return the loss at the old (w, b).",
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

    return [
        case("20 samples, 2 features, lr 0.5", *data(20, 2), 0.5),
        case("50 samples, 5 features, lr 0.1", *data(50, 5), 0.1),
        case(
            "weights of size 300: |z| in the hundreds", *data(12, 3, scale=300.0), 0.01
        ),
        case("one sample, 4 features, lr 1.0", *data(1, 4), 1.0),
    ]


# --- 1.6 a two-layer step network computing parity ----------------------------------------------


def _parity_weights(n):
    W1 = np.ones((n, n))  # hidden unit k sees the count of ones
    b1 = -(np.arange(1, n + 1) - 0.5)  # and fires when the count is >= k
    W2 = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[None, :]  # (1, n): +1, -1, +1, ...
    b2 = np.array([-0.5])
    return W1, b1, W2, b2


def _parity_compare(expected, got):
    """None if the step network ``got = (W1, b1, W2, b2)`` outputs parity on every input."""
    X, labels = expected["inputs"], expected["labels"]
    n = X.shape[1]
    if not isinstance(got, tuple) or len(got) != 4:
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
            return f"{name} should have shape {shape} for {hidden} hidden units, got {value.shape}"
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
        "Let hidden unit k fire when at least k of the n inputs are 1 (all input weights "
        "1, bias -(k - 0.5)); then give the hidden units alternating output weights "
        "+1, -1, +1, ... and pick the output bias so that an odd count gives z > 0.",
    ),
)
def _parity_cases():
    cases = []
    for n in (2, 3, 4, 6):
        X = truth_table(n)
        labels = X.sum(axis=1) % 2  # (2**n,) parity of each row
        name = "n = 2 (XOR)" if n == 2 else f"n = {n}"
        cases.append(Case(name, (n,), {"inputs": X, "labels": labels}))
    return cases
