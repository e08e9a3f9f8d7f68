"""labkit.units: step units, NAND logic, the perceptron, linear separability, stable
sigmoid/BCE.

References: torch (heaviside, linear, sigmoid, binary_cross_entropy_with_logits) in
float64, hand-written truth tables and a hand-traced perceptron run, and hand-solved
linear programmes.
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labkit import units

TABLE2 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)


# --- step, unit, layer ----------------------------------------------------------------


def test_step_equals_torch_heaviside_with_zero_at_zero():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(size=50), [0.0, -0.0, 1e-300, -1e-300]])
    expected = torch.heaviside(
        torch.from_numpy(z), torch.tensor(0.0, dtype=torch.float64)
    )
    got = units.step(z)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected.numpy())
    assert units.step(0.0) == 0.0


def test_step_rejects_nan():
    with pytest.raises(ValueError, match="z"):
        units.step([0.0, np.nan])


def test_unit_and_layer_equal_torch_linear():
    rng = np.random.default_rng(1)
    X, W, b = rng.normal(size=(7, 3)), rng.normal(size=(4, 3)), rng.normal(size=4)
    z = F.linear(torch.from_numpy(X), torch.from_numpy(W), torch.from_numpy(b))
    np.testing.assert_allclose(
        units.layer(X, W, b, activation=lambda v: v), z.numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(
        units.layer(X, W, b, activation=units.sigmoid),
        torch.sigmoid(z).numpy(),
        rtol=1e-12,
    )
    np.testing.assert_array_equal(units.layer(X, W, b), (z > 0).double().numpy())
    np.testing.assert_array_equal(
        units.unit(X, W[0], b[0]), (z[:, 0] > 0).double().numpy()
    )


@pytest.mark.parametrize(
    "args, name",
    [
        ((np.ones(3), np.ones(3), 0.0), "X"),  # X not 2-D
        ((np.ones((2, 3)), np.ones(2), 0.0), "w"),  # w length != features
        ((np.ones((2, 3)), np.ones((3, 1)), 0.0), "w"),  # w not 1-D
        ((np.ones((2, 3)), np.ones(3), np.ones(2)), "b"),  # b not scalar
        ((np.full((2, 3), np.nan), np.ones(3), 0.0), "X"),  # NaN
        ((np.ones((0, 3)), np.ones(3), 0.0), "X"),  # empty
    ],
)
def test_unit_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        units.unit(*args)


@pytest.mark.parametrize(
    "args, name",
    [
        (
            (np.ones((2, 3)), np.ones((4, 2)), np.ones(4)),
            "weight",
        ),  # in_features mismatch
        (
            (np.ones((2, 3)), np.ones((4, 3)), np.ones(3)),
            "bias",
        ),  # out_features mismatch
        ((np.ones((2, 3)), np.ones(3), np.ones(1)), "weight"),  # weight not 2-D
    ],
)
def test_layer_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        units.layer(*args)


# --- gates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gate, column",
    [
        (units.nand, [1, 1, 1, 0]),
        (units.and_, [0, 0, 0, 1]),
        (units.or_, [0, 1, 1, 1]),
        (units.xor, [0, 1, 1, 0]),
    ],
)
def test_gates_match_their_truth_tables(gate, column):
    got = gate(TABLE2[:, 0], TABLE2[:, 1])
    np.testing.assert_array_equal(got, np.array(column, dtype=float))


def test_not_is_nand_with_itself():
    np.testing.assert_array_equal(units.not_(np.array([0.0, 1.0])), [1.0, 0.0])


def test_nand_weights_keep_every_input_at_least_one_away_from_zero():
    z = TABLE2 @ units.NAND_WEIGHT + units.NAND_BIAS
    assert np.all(np.abs(z) >= 1.0)


def test_gates_broadcast_and_keep_shape():
    a = np.array([[0, 1], [1, 0]])
    got = units.xor(a, 1)
    np.testing.assert_array_equal(got, [[1.0, 0.0], [0.0, 1.0]])


def test_gates_reject_non_binary_input():
    with pytest.raises(ValueError, match="x1"):
        units.nand(np.array([0.5, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="x2"):
        units.nand(np.array([0.0, 1.0]), np.array([2.0, 1.0]))


def test_xor_two_layer_step_network_and_its_hidden_units():
    hidden, out = units.step_network(TABLE2, units.XOR_STEP_LAYERS, return_hidden=True)
    np.testing.assert_array_equal(hidden, [[0, 1], [1, 1], [1, 1], [1, 0]])  # OR, NAND
    np.testing.assert_array_equal(out[:, 0], [0, 1, 1, 0])
    np.testing.assert_array_equal(
        units.step_network(TABLE2, units.XOR_STEP_LAYERS), out
    )


def test_step_network_rejects_no_layers():
    with pytest.raises(ValueError, match="layers"):
        units.step_network(TABLE2, [])


def test_truth_table_is_binary_counting_order():
    np.testing.assert_array_equal(units.truth_table(2), TABLE2)
    table = units.truth_table(3)
    assert table.shape == (8, 3)
    np.testing.assert_array_equal(table @ [4, 2, 1], np.arange(8))


@pytest.mark.parametrize("n", [0, 21, 2.0, True, "3"])
def test_truth_table_rejects_bad_n(n):
    with pytest.raises(ValueError, match="n"):
        units.truth_table(n)


# --- deep linear networks collapse ----------------------------------------------------


def test_compose_affine_equals_a_torch_stack_of_linear_layers():
    rng = np.random.default_rng(2)
    sizes = [3, 5, 4, 2]
    torch.manual_seed(0)
    stack = torch.nn.Sequential(
        *[torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
    ).double()
    layers = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in stack]
    W, c = units.compose_affine(layers)
    assert W.shape == (2, 3) and c.shape == (2,)
    X = rng.normal(size=(10, 3))
    np.testing.assert_allclose(
        X @ W.T + c, stack(torch.from_numpy(X)).detach().numpy(), rtol=1e-12, atol=1e-14
    )


def test_compose_affine_rejects_mismatched_layers():
    with pytest.raises(ValueError, match=r"layers\[1\]"):
        units.compose_affine(
            [(np.ones((3, 2)), np.ones(3)), (np.ones((2, 4)), np.ones(2))]
        )
    with pytest.raises(ValueError, match=r"layers\[0\] bias"):
        units.compose_affine([(np.ones((3, 2)), np.ones(2))])
    with pytest.raises(ValueError, match="layers"):
        units.compose_affine([])


# --- perceptron and separability ------------------------------------------------------


def test_perceptron_first_epoch_on_and_traced_by_hand():
    # w=0,b=0: (0,0) ok; (0,1) ok; (1,0) ok; (1,1) wrong, y=1 -> w=(1,1), b=1.
    result = units.perceptron(TABLE2, [0, 0, 0, 1], epochs=1)
    np.testing.assert_array_equal(result.weight, [1.0, 1.0])
    assert result.bias == 1.0
    np.testing.assert_array_equal(result.mistakes, [1])


@pytest.mark.parametrize("column", [[0, 0, 0, 1], [0, 1, 1, 1], [1, 1, 1, 0]])
def test_perceptron_learns_and_or_nand(column):
    result = units.perceptron(TABLE2, column, epochs=30)
    assert result.mistakes[-1] == 0
    np.testing.assert_array_equal(
        units.unit(TABLE2, result.weight, result.bias), column
    )
    np.testing.assert_array_equal(result.weights[-1], result.weight)


def test_perceptron_never_stops_erring_on_xor():
    result = units.perceptron(TABLE2, [0, 1, 1, 0], epochs=100)
    assert np.all(result.mistakes > 0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"lr": np.nan}, "lr"),
    ],
)
def test_perceptron_rejects_bad_hyper_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        units.perceptron(TABLE2, [0, 0, 0, 1], **kwargs)


def test_perceptron_rejects_bad_labels():
    with pytest.raises(ValueError, match="y"):
        units.perceptron(TABLE2, [0, 0, 1])
    with pytest.raises(ValueError, match="y"):
        units.perceptron(TABLE2, [0, 0, 2, 1])


def test_separation_margin_hand_solved_cases():
    # 1-D points -1 (class 0) and +1 (class 1): w = 1, b = 0 gives t = 1.
    assert units.separation_margin([[-1.0], [1.0]], [0, 1]) == pytest.approx(
        1.0, abs=1e-9
    )
    # AND: w = (1, 1), b = -1.5 gives t = 0.5, and (1,1) and (1,0) force 2t <= w2 <= 1.
    assert units.separation_margin(TABLE2, [0, 0, 0, 1]) == pytest.approx(0.5, abs=1e-9)
    # XOR: adding the four constraints gives 4t <= 0.
    assert units.separation_margin(TABLE2, [0, 1, 1, 0]) == pytest.approx(0.0, abs=1e-9)


def test_separation_margin_rejects_one_class():
    with pytest.raises(ValueError, match="both classes"):
        units.separation_margin(TABLE2, [1, 1, 1, 1])


# --- stable sigmoid and BCE -----------------------------------------------------------


def test_sigmoid_equals_torch_without_overflow():
    z = np.array([-1000.0, -40.0, -1.5, 0.0, 1e-8, 2.0, 35.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = units.sigmoid(z)
    np.testing.assert_allclose(
        got, torch.sigmoid(torch.from_numpy(z)).numpy(), rtol=1e-15, atol=0
    )


def test_bce_with_logits_equals_torch_on_hard_and_soft_targets():
    rng = np.random.default_rng(3)
    z = np.concatenate([rng.normal(scale=5, size=20), [-800.0, 800.0, 0.0]])
    y = np.concatenate([rng.uniform(size=10), rng.integers(0, 2, size=13)]).astype(
        float
    )
    expected = F.binary_cross_entropy_with_logits(
        torch.from_numpy(z), torch.from_numpy(y)
    )
    got = units.binary_cross_entropy_with_logits(z, y)
    assert isinstance(got, float)
    assert got == pytest.approx(expected.item(), rel=1e-13)


def test_bce_with_logits_rejects_bad_input():
    with pytest.raises(ValueError, match="y"):
        units.binary_cross_entropy_with_logits([0.0, 1.0], [0.0])
    with pytest.raises(ValueError, match="y"):
        units.binary_cross_entropy_with_logits([0.0, 1.0], [0.0, 1.5])
    with pytest.raises(ValueError, match="z"):
        units.binary_cross_entropy_with_logits([np.nan, 1.0], [0.0, 1.0])


# --- BCEWithLogitsLoss module ---------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_module_forward_and_backward_equal_torch(reduction):
    rng = np.random.default_rng(4)
    z = rng.normal(scale=4, size=(9, 1))
    y = rng.integers(0, 2, size=(9, 1)).astype(float)
    zt = torch.from_numpy(z).requires_grad_(True)
    expected = torch.nn.BCEWithLogitsLoss(reduction=reduction)(zt, torch.from_numpy(y))
    expected.backward(torch.tensor(2.5, dtype=torch.float64))
    loss_fn = units.BCEWithLogitsLoss(reduction=reduction)
    assert loss_fn(z, y) == pytest.approx(expected.item(), rel=1e-13)
    np.testing.assert_allclose(
        loss_fn.backward(2.5), zt.grad.numpy(), rtol=1e-12, atol=1e-15
    )


def test_bce_module_gradient_equals_central_differences():
    rng = np.random.default_rng(5)
    z, y = rng.normal(size=6), rng.uniform(size=6)
    loss_fn = units.BCEWithLogitsLoss()
    loss_fn(z, y)
    grad = loss_fn.backward()
    h = 1e-6
    numeric = np.array(
        [
            (
                units.BCEWithLogitsLoss()(z + h * e, y)
                - units.BCEWithLogitsLoss()(z - h * e, y)
            )
            / (2 * h)
            for e in np.eye(6)
        ]
    )
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-10)


def test_bce_module_rejects_bad_input():
    with pytest.raises(ValueError, match="reduction"):
        units.BCEWithLogitsLoss(reduction="none")
    with pytest.raises(ValueError, match="target"):
        units.BCEWithLogitsLoss()(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="target"):
        units.BCEWithLogitsLoss()(np.zeros(3), np.full(3, -0.5))
    with pytest.raises(ValueError, match="input"):
        units.BCEWithLogitsLoss()(np.array([np.inf, 0.0]), np.zeros(2))
    with pytest.raises(ValueError, match="before forward"):
        units.BCEWithLogitsLoss().backward()
