"""labkit.nets is held to torch.nn: same parameter names, same outputs, same gradients.

Every layer is built twice, in numpy and in torch (float64), the torch weights are
copied over with ``load_state_dict``, and forward outputs, input gradients and parameter
gradients from torch autograd must agree to ~1e-10. Central finite differences check the
backward passes without torch; initialisers are checked statistically; every bad input
must raise a ValueError that names the argument.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labkit import nets
from nets_reference import numerical_grad

RTOL, ATOL = 1e-10, 1e-12


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


def close(actual, expected, rtol=RTOL, atol=ATOL):
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def twin(np_module, torch_module):
    """Make the torch module float64 and copy its weights into the numpy one."""
    torch_module.double()
    np_module.load_state_dict(torch_module.state_dict())
    return np_module, torch_module


def leaf(array):
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def same_parameter_grads(np_module, torch_module):
    torch_params = dict(torch_module.named_parameters())
    np_params = dict(np_module.named_parameters())
    assert list(np_params) == list(torch_params)
    for name, p in np_params.items():
        close(p.grad, torch_params[name].grad)


def compare_layer(np_module, torch_module, x, rng):
    """Copy the torch weights over, then ``compare_outputs``."""
    compare_outputs(*twin(np_module, torch_module), x, rng)


def compare_outputs(np_module, torch_module, x, rng):
    """Forward x through both, backprop the same random upstream gradient, compare
    everything."""
    xt = leaf(x)
    yt = torch_module(xt)
    g = rng.normal(size=tuple(yt.shape))
    yt.backward(torch.tensor(g))
    close(np_module(x), yt)
    close(np_module.backward(g), xt.grad)
    same_parameter_grads(np_module, torch_module)


# --------------------------------------------------------------------------------------
# Module machinery
# --------------------------------------------------------------------------------------


class NpNet(nets.Module):
    def __init__(self):
        super().__init__()
        self.features = nets.Sequential(
            nets.Linear(3, 5, rng=0), nets.BatchNorm1d(5), nets.ReLU()
        )
        self.head = nets.Linear(5, 2, rng=1)

    def forward(self, x):
        return self.head(self.features(x))

    def backward(self, grad_out):
        return self.features.backward(self.head.backward(grad_out))


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU()
        )
        self.head = torch.nn.Linear(5, 2)

    def forward(self, x):
        return self.head(self.features(x))


def test_names_and_state_dict_keys_equal_torch():
    model, reference = NpNet(), TorchNet()
    assert [n for n, _ in model.named_parameters()] == [
        n for n, _ in reference.named_parameters()
    ]
    assert list(model.state_dict()) == list(reference.state_dict())
    assert [n for n, _ in model.named_buffers()] == [
        n for n, _ in reference.named_buffers()
    ]
    for name, p in model.named_parameters():
        assert p.shape == tuple(dict(reference.named_parameters())[name].shape)


def test_load_state_dict_from_torch_and_back():
    model, reference = NpNet(), TorchNet().double()
    reference.train()(
        torch.randn(7, 3, dtype=torch.float64)
    )  # move the running statistics
    model.load_state_dict(reference.state_dict())
    for key, value in reference.state_dict().items():
        close(model.state_dict()[key], value, rtol=0, atol=0)
    assert model.state_dict()["features.1.num_batches_tracked"].dtype == np.int64
    fresh = TorchNet().double()
    fresh.load_state_dict(
        {k: torch.as_tensor(v) for k, v in model.state_dict().items()}
    )
    rng = np.random.default_rng(0)
    compare_layer(model.eval(), fresh.eval(), rng.normal(size=(4, 3)), rng)


def test_state_dict_round_trip_copies_and_loads_in_place():
    model = NpNet()
    saved = model.state_dict()
    weight = model.head.weight.data
    saved["head.weight"] += 1.0  # a copy: the model is unchanged
    assert not np.allclose(model.head.weight.data, saved["head.weight"])
    other = NpNet()
    nets.init.zeros_(other.head.weight)
    other.load_state_dict(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key], value)
    model.load_state_dict(saved)
    assert (
        model.head.weight.data is weight
    )  # loaded in place: optimizers keep their references
    np.testing.assert_array_equal(weight, saved["head.weight"])


def test_load_state_dict_non_strict_reports_keys():
    model = nets.Sequential(nets.Linear(2, 2, rng=0))
    state = model.state_dict()
    del state["0.bias"]
    state["extra"] = np.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]


def test_load_state_dict_changes_nothing_when_one_shape_is_wrong():
    model = nets.Sequential(nets.Linear(2, 3, rng=0), nets.Linear(3, 1, rng=1))
    before = model.state_dict()
    bad = {k: v + 1.0 for k, v in before.items()}
    bad["1.weight"] = np.zeros((3, 1))
    with pytest.raises(ValueError, match=r"state_dict\['1.weight'\] has shape"):
        model.load_state_dict(bad)
    for key, value in before.items():
        np.testing.assert_array_equal(model.state_dict()[key], value)


def test_zero_grad_train_eval_and_shared_parameters(rng):
    layer = nets.Linear(2, 2, rng=0)
    model = nets.Sequential(layer, nets.Dropout(0.5, rng=0), layer)
    assert len(list(model.parameters())) == 2  # a shared layer counts once, as in torch
    model(rng.normal(size=(3, 2)))
    model.backward(np.ones((3, 2)))
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert model.eval() is model and not any(m.training for m in model.modules())
    assert all(m.training for m in model.train().modules())


def test_gradients_accumulate_across_backward_calls(rng):
    layer = nets.Linear(3, 2, rng=0)
    x, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    layer(x)
    layer.backward(g)
    once = layer.weight.grad.copy()
    layer.backward(g)
    close(layer.weight.grad, 2 * once)


def test_sequential_indexing_and_repr_match_torch():
    model = nets.Sequential(
        nets.Linear(3, 4, rng=0), nets.ReLU(), nets.Flatten(), nets.Linear(4, 1, rng=1)
    )
    reference = torch.nn.Sequential(
        torch.nn.Linear(3, 4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 1),
    )
    assert repr(model) == repr(reference)
    assert len(model) == 4 and model[-1] is list(model)[3]
    assert isinstance(model[1:3], nets.Sequential) and len(model[1:3]) == 2
    model.append(nets.Sigmoid())
    assert [n for n, _ in model.named_children()] == ["0", "1", "2", "3", "4"]


def test_seeded_initialisation_is_reproducible():
    np.testing.assert_array_equal(
        nets.Linear(4, 3, rng=7).weight.data, nets.Linear(4, 3, rng=7).weight.data
    )
    np.random.seed(3)
    first = nets.Conv2d(2, 3, 3).weight.data
    np.random.seed(3)
    np.testing.assert_array_equal(first, nets.Conv2d(2, 3, 3).weight.data)


# --------------------------------------------------------------------------------------
# Dense layers, activations, losses
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 4)])
def test_linear_matches_torch(rng, bias, shape):
    compare_layer(
        nets.Linear(4, 3, bias=bias),
        torch.nn.Linear(4, 3, bias=bias),
        rng.normal(size=shape),
        rng,
    )


@pytest.mark.parametrize(
    "np_cls, torch_cls",
    [
        (nets.ReLU, torch.nn.ReLU),
        (nets.Tanh, torch.nn.Tanh),
        (nets.Sigmoid, torch.nn.Sigmoid),
        (nets.Identity, torch.nn.Identity),
    ],
)
def test_activations_match_torch(rng, np_cls, torch_cls):
    x = 3 * rng.normal(size=(5, 4, 3))
    x[0, 0] = [0.0, 800.0, -800.0]  # the kink and values where exp overflows
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        compare_layer(np_cls(), torch_cls(), x, rng)


def test_relu_gradient_at_zero_is_zero():
    relu = nets.ReLU()
    relu(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(relu.backward(np.ones(3)), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("start_dim, end_dim", [(1, -1), (0, -1), (1, 2), (-2, -1)])
def test_flatten_matches_torch(rng, start_dim, end_dim):
    compare_layer(
        nets.Flatten(start_dim, end_dim),
        torch.nn.Flatten(start_dim, end_dim),
        rng.normal(size=(2, 3, 4, 5)),
        rng,
    )


def test_mlp_with_cross_entropy_matches_torch(rng):
    model = nets.Sequential(
        nets.Linear(4, 8),
        nets.Tanh(),
        nets.Linear(8, 8),
        nets.ReLU(),
        nets.Linear(8, 3),
    )
    reference = torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 3),
    )
    twin(model, reference)
    x, y = rng.normal(size=(10, 4)), rng.integers(0, 3, size=10)
    loss_fn = nets.CrossEntropyLoss()
    loss = loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    xt = leaf(x)
    loss_t = F.cross_entropy(reference(xt), torch.tensor(y))
    loss_t.backward()
    assert isinstance(loss, float)
    close(loss, loss_t)
    same_parameter_grads(model, reference)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(rng, reduction):
    x, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    loss_fn = nets.MSELoss(reduction=reduction)
    xt = leaf(x)
    loss_t = F.mse_loss(xt, torch.tensor(t), reduction=reduction)
    g = rng.normal(size=(5, 3)) if reduction == "none" else 1.0
    loss_t.backward(torch.tensor(g))
    close(loss_fn(x, t), loss_t)
    close(loss_fn.backward(g if reduction == "none" else None), xt.grad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target_kind", ["indices", "probabilities"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_matches_torch(rng, reduction, target_kind, label_smoothing):
    z = 3 * rng.normal(size=(6, 4))
    if target_kind == "indices":
        target = rng.integers(0, 4, size=6)
    else:
        target = nets.softmax(rng.normal(size=(6, 4)))
    loss_fn = nets.CrossEntropyLoss(
        reduction=reduction, label_smoothing=label_smoothing
    )
    zt = leaf(z)
    loss_t = F.cross_entropy(
        zt, torch.tensor(target), reduction=reduction, label_smoothing=label_smoothing
    )
    g = rng.normal(size=6) if reduction == "none" else np.array(1.0)
    loss_t.backward(torch.tensor(g))
    close(loss_fn(z, target), loss_t)
    close(loss_fn.backward(g if reduction == "none" else None), zt.grad)


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]])
    loss_fn = nets.CrossEntropyLoss()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = loss_fn(z, np.array([1, 1]))
        grad = loss_fn.backward()
    close(loss, F.cross_entropy(torch.tensor(z), torch.tensor([1, 1])))
    close(grad, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]])


def test_softmax_and_log_softmax_match_torch(rng):
    x = 50 * rng.normal(size=(3, 4, 5))
    for axis in (0, 1, -1):
        close(nets.softmax(x, axis=axis), torch.softmax(torch.tensor(x), dim=axis))
        close(
            nets.log_softmax(x, axis=axis), torch.log_softmax(torch.tensor(x), dim=axis)
        )


def test_linear_tanh_chain_matches_finite_differences(rng):
    model = nets.Sequential(
        nets.Linear(3, 4, rng=1), nets.Tanh(), nets.Linear(4, 2, rng=2), nets.Tanh()
    )
    x, w = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))

    def loss():
        return float((model(x) * w).sum())

    loss()
    dx = model.backward(w)
    close(dx, numerical_grad(loss, x), rtol=1e-7, atol=1e-9)
    for p in model.parameters():
        close(p.grad, numerical_grad(loss, p.data), rtol=1e-7, atol=1e-9)


# --------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------


def test_dropout_is_identity_in_eval(rng):
    x, g = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    drop = nets.Dropout(0.7, rng=0).eval()
    np.testing.assert_array_equal(drop(x), x)
    np.testing.assert_array_equal(drop.backward(g), g)


def test_dropout_scales_survivors_and_backward_reuses_the_mask(rng):
    p, shape = 0.3, (400, 500)
    x, g = rng.normal(size=shape) + 5.0, rng.normal(size=shape)  # x is never 0
    drop = nets.Dropout(p, rng=0)
    y = drop(x)
    dropped = y == 0
    close(y[~dropped], x[~dropped] / (1 - p))
    # the fraction dropped is Binomial(n, p) / n: within 5 standard deviations of p
    n = x.size
    assert abs(dropped.mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    dx = drop.backward(g)
    np.testing.assert_array_equal(dx[dropped], 0.0)
    close(dx[~dropped], g[~dropped] / (1 - p))
    assert not np.array_equal(drop(x) == 0, dropped)  # a fresh mask on each forward


def test_dropout_extremes_match_torch(rng):
    x = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(nets.Dropout(0.0, rng=0)(x), x)
    ones = nets.Dropout(1.0, rng=0)
    np.testing.assert_array_equal(
        ones(x), torch.nn.Dropout(1.0)(torch.tensor(x)).numpy()
    )
    np.testing.assert_array_equal(ones.backward(np.ones((3, 4))), 0.0)


# --------------------------------------------------------------------------------------
# BatchNorm1d
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 3), (5, 3, 4)])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_training_steps_and_eval_match_torch(rng, shape, momentum, affine):
    bn, reference = twin(
        nets.BatchNorm1d(3, momentum=momentum, affine=affine),
        torch.nn.BatchNorm1d(3, momentum=momentum, affine=affine),
    )
    if affine:  # non-trivial gamma and beta
        with torch.no_grad():
            reference.weight.copy_(torch.tensor(rng.normal(size=3)))
            reference.bias.copy_(torch.tensor(rng.normal(size=3)))
        bn.load_state_dict(reference.state_dict())
    for step in range(4):
        x = 2 * rng.normal(size=shape) + step
        compare_outputs(bn, reference, x, rng)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            close(getattr(bn, name), getattr(reference, name))
        reference.zero_grad()
        bn.zero_grad()
    bn.eval()
    reference.eval()
    compare_outputs(bn, reference, rng.normal(size=shape), rng)


def test_batchnorm_without_running_stats_matches_torch_in_eval(rng):
    bn = nets.BatchNorm1d(4, track_running_stats=False).eval()
    assert list(bn.state_dict()) == ["weight", "bias"]
    compare_layer(
        bn,
        torch.nn.BatchNorm1d(4, track_running_stats=False).eval(),
        rng.normal(size=(6, 4)),
        rng,
    )


def test_batchnorm_output_is_standardised(rng):
    y = nets.BatchNorm1d(3, eps=1e-12)(5 * rng.normal(size=(50, 3)) + 2)
    close(y.mean(axis=0), np.zeros(3), atol=1e-12)
    close(y.var(axis=0), np.ones(3), rtol=1e-9)


# --------------------------------------------------------------------------------------
# Convolution and pooling
# --------------------------------------------------------------------------------------

CONV_CASES = [  # in, out, kernel, stride, padding, input (N, C, H, W)
    (1, 1, 3, 1, 0, (1, 1, 5, 5)),
    (3, 4, (3, 2), (2, 1), (1, 2), (2, 3, 7, 6)),
    (2, 5, 2, 2, 0, (3, 2, 8, 8)),
    (2, 3, (1, 4), (3, 2), (2, 0), (2, 2, 5, 9)),
    (4, 2, 5, 1, 2, (1, 4, 6, 5)),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, shape", CONV_CASES)
def test_conv2d_matches_torch(rng, c_in, c_out, kernel, stride, padding, shape, bias):
    compare_layer(
        nets.Conv2d(c_in, c_out, kernel, stride, padding, bias=bias),
        torch.nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=bias),
        rng.normal(size=shape),
        rng,
    )


def test_conv2d_is_cross_correlation_by_hand():
    conv = nets.Conv2d(1, 1, 2, bias=False)
    conv.weight.data[...] = [[[[1.0, 2.0], [3.0, 4.0]]]]
    x = np.arange(9.0).reshape(1, 1, 3, 3)  # [[0 1 2] [3 4 5] [6 7 8]]
    # top-left output: 0*1 + 1*2 + 3*3 + 4*4 = 27 (no kernel flip)
    np.testing.assert_array_equal(conv(x), [[[[27.0, 37.0], [57.0, 67.0]]]])


@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, shape", CONV_CASES)
def test_im2col_holds_torch_unfold_patches(
    rng, c_in, c_out, kernel, stride, padding, shape
):
    x = rng.normal(size=shape)
    cols = nets.im2col(x, kernel, stride, padding)
    unfolded = F.unfold(
        torch.tensor(x), kernel, padding=padding, stride=stride
    )  # (N, C*kh*kw, L)
    close(cols, unfolded.transpose(1, 2).reshape(-1, unfolded.shape[1]), rtol=0, atol=0)


@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, shape", CONV_CASES)
def test_col2im_is_the_adjoint_of_im2col(
    rng, c_in, c_out, kernel, stride, padding, shape
):
    x = rng.normal(size=shape)
    cols = nets.im2col(x, kernel, stride, padding)
    c = rng.normal(size=cols.shape)
    # <im2col(x), c> = <x, col2im(c)> for every x and c
    close((cols * c).sum(), (x * nets.col2im(c, shape, kernel, stride, padding)).sum())


def test_conv2d_matches_finite_differences(rng):
    conv = nets.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1, rng=0)
    x = rng.normal(size=(2, 2, 5, 4))
    w = rng.normal(size=conv(x).shape)

    def loss():
        return float((conv(x) * w).sum())

    loss()
    dx = conv.backward(w)
    close(dx, numerical_grad(loss, x), rtol=1e-7, atol=1e-9)
    close(
        conv.weight.grad, numerical_grad(loss, conv.weight.data), rtol=1e-7, atol=1e-9
    )
    close(conv.bias.grad, numerical_grad(loss, conv.bias.data), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    "kernel, stride, padding, shape",
    [
        (2, None, 0, (2, 3, 6, 6)),
        (3, 2, 1, (2, 2, 7, 8)),
        ((2, 3), (1, 2), (1, 1), (1, 3, 5, 7)),
        (3, 1, 0, (2, 1, 5, 5)),  # overlapping windows: gradients add up
    ],
)
def test_maxpool_matches_torch(rng, kernel, stride, padding, shape):
    pool = nets.MaxPool2d(kernel, stride, padding)
    reference = torch.nn.MaxPool2d(kernel, stride, padding)
    compare_layer(pool, reference, rng.normal(size=shape), rng)
    ties = rng.integers(0, 3, size=shape).astype(
        float
    )  # many ties: the first maximum wins
    compare_layer(pool, reference, ties, rng)


# --------------------------------------------------------------------------------------
# Recurrent layers
# --------------------------------------------------------------------------------------


def run_torch_rnn(reference, x, hx, grads):
    """Forward a torch RNN/LSTM, backprop ``grads`` into (output, h_n[, c_n]); return
    outputs and leaf grads."""
    xt = leaf(x)
    hxt = (
        None
        if hx is None
        else (leaf(hx) if isinstance(hx, np.ndarray) else tuple(leaf(h) for h in hx))
    )
    out, state = reference(xt, hxt)
    outputs = [out] + (list(state) if isinstance(state, tuple) else [state])
    torch.autograd.backward(outputs, [torch.tensor(g) for g in grads])
    hx_grads = (
        None
        if hxt is None
        else (hxt.grad if isinstance(hxt, torch.Tensor) else tuple(h.grad for h in hxt))
    )
    return outputs, xt.grad, hx_grads


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_rnn_matches_torch(rng, nonlinearity, with_h0, batch_first, bias):
    t_len, n, f, h = 6, 3, 4, 5
    rnn, reference = twin(
        nets.RNN(f, h, nonlinearity=nonlinearity, bias=bias, batch_first=batch_first),
        torch.nn.RNN(
            f, h, nonlinearity=nonlinearity, bias=bias, batch_first=batch_first
        ),
    )
    x = rng.normal(size=(n, t_len, f) if batch_first else (t_len, n, f))
    h0 = rng.normal(size=(1, n, h)) if with_h0 else None
    grads = [
        rng.normal(size=(n, t_len, h) if batch_first else (t_len, n, h)),
        rng.normal(size=(1, n, h)),
    ]
    (out_t, hn_t), dx_t, dh0_t = run_torch_rnn(reference, x, h0, grads)
    out, h_n = rnn(x, h0)
    close(out, out_t)
    close(h_n, hn_t)
    close(rnn.backward(*grads), dx_t)
    same_parameter_grads(rnn, reference)
    if with_h0:
        close(rnn.grad_hx, dh0_t)


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_matches_torch(rng, with_state, batch_first, bias):
    t_len, n, f, h = 7, 2, 3, 4
    lstm, reference = twin(
        nets.LSTM(f, h, bias=bias, batch_first=batch_first),
        torch.nn.LSTM(f, h, bias=bias, batch_first=batch_first),
    )
    x = rng.normal(size=(n, t_len, f) if batch_first else (t_len, n, f))
    hx = (
        (rng.normal(size=(1, n, h)), rng.normal(size=(1, n, h))) if with_state else None
    )
    grads = [
        rng.normal(size=(n, t_len, h) if batch_first else (t_len, n, h)),
        rng.normal(size=(1, n, h)),
        rng.normal(size=(1, n, h)),
    ]
    (out_t, hn_t, cn_t), dx_t, dhx_t = run_torch_rnn(reference, x, hx, grads)
    out, (h_n, c_n) = lstm(x, hx)
    close(out, out_t)
    close(h_n, hn_t)
    close(c_n, cn_t)
    close(lstm.backward(*grads), dx_t)
    same_parameter_grads(lstm, reference)
    if with_state:
        close(lstm.grad_hx[0], dhx_t[0])
        close(lstm.grad_hx[1], dhx_t[1])


def test_lstm_gradient_from_the_last_hidden_state_only(rng):
    lstm, reference = twin(nets.LSTM(3, 4), torch.nn.LSTM(3, 4))
    x, g = rng.normal(size=(5, 2, 3)), rng.normal(size=(1, 2, 4))
    xt = leaf(x)
    _, (hn_t, _) = reference(xt)
    hn_t.backward(torch.tensor(g))
    lstm(x)
    close(lstm.backward(grad_h_n=g), xt.grad)
    same_parameter_grads(lstm, reference)


def test_lstm_matches_finite_differences(rng):
    lstm = nets.LSTM(2, 3, rng=0)
    x = rng.normal(size=(4, 2, 2))
    h0, c0 = rng.normal(size=(1, 2, 3)), rng.normal(size=(1, 2, 3))
    w_out, w_c = rng.normal(size=(4, 2, 3)), rng.normal(size=(1, 2, 3))

    def loss():
        out, (_, c_n) = lstm(x, (h0, c0))
        return float((out * w_out).sum() + (c_n * w_c).sum())

    loss()
    dx = lstm.backward(w_out, grad_c_n=w_c)
    close(dx, numerical_grad(loss, x), rtol=1e-7, atol=1e-9)
    close(lstm.grad_hx[0], numerical_grad(loss, h0), rtol=1e-7, atol=1e-9)
    close(lstm.grad_hx[1], numerical_grad(loss, c0), rtol=1e-7, atol=1e-9)
    for p in lstm.parameters():
        close(p.grad, numerical_grad(loss, p.data), rtol=1e-7, atol=1e-9)


def run_torch_cell(cell, x, hx, grads):
    """Like ``run_torch_rnn`` for one step of a torch cell; hx grads come back as a
    list."""
    xt = leaf(x)
    hxt = (
        None
        if hx is None
        else (leaf(hx) if isinstance(hx, np.ndarray) else tuple(leaf(h) for h in hx))
    )
    out = cell(xt, hxt)
    outputs = list(out) if isinstance(out, tuple) else [out]
    torch.autograd.backward(outputs, [torch.tensor(g) for g in grads])
    if hxt is None:
        return outputs, xt.grad, None
    return (
        outputs,
        xt.grad,
        [hxt.grad] if isinstance(hxt, torch.Tensor) else [h.grad for h in hxt],
    )


@pytest.mark.parametrize("with_state", [False, True])
def test_cells_match_torch(rng, with_state):
    n, f, h = 3, 4, 5
    x = rng.normal(size=(n, f))
    for np_cell, torch_cell in [
        (
            nets.RNNCell(f, h, nonlinearity="relu"),
            torch.nn.RNNCell(f, h, nonlinearity="relu"),
        ),
        (nets.RNNCell(f, h), torch.nn.RNNCell(f, h)),
    ]:
        twin(np_cell, torch_cell)
        hx = rng.normal(size=(n, h)) if with_state else None
        g = rng.normal(size=(n, h))
        (h_t,), dx_t, dh_t = run_torch_cell(torch_cell, x, hx, [g])
        close(np_cell(x, hx), h_t)
        close(np_cell.backward(g), dx_t)
        same_parameter_grads(np_cell, torch_cell)
        if with_state:
            close(np_cell.grad_hx, dh_t[0])
    cell, torch_cell = twin(nets.LSTMCell(f, h), torch.nn.LSTMCell(f, h))
    hx = (rng.normal(size=(n, h)), rng.normal(size=(n, h))) if with_state else None
    grads = [rng.normal(size=(n, h)), rng.normal(size=(n, h))]
    (h_t, c_t), dx_t, dhx_t = run_torch_cell(torch_cell, x, hx, grads)
    h_new, c_new = cell(x, hx)
    close(h_new, h_t)
    close(c_new, c_t)
    close(cell.backward(*grads), dx_t)
    same_parameter_grads(cell, torch_cell)
    if with_state:
        close(cell.grad_hx[0], dhx_t[0])
        close(cell.grad_hx[1], dhx_t[1])


# --------------------------------------------------------------------------------------
# Initialisation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nonlinearity, param",
    [
        ("linear", None),
        ("conv2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("selu", None),
    ],
)
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert nets.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15
    )


def assert_std(array, std, bound=None):
    """Sample std within 2% of ``std`` (n = 10^5 draws: the relative error is ~0.3%);
    bound respected."""
    assert array.std() == pytest.approx(std, rel=0.02)
    assert abs(array.mean()) < 0.02 * std
    if bound is not None:
        assert np.abs(array).max() <= bound
        assert np.abs(array).max() > 0.99 * bound


def test_initialisers_have_torch_variances():
    shape = (250, 100, 2, 2)  # fan_in = 400, fan_out = 1000
    fan_in, fan_out = 400, 1000
    w = np.empty(shape)
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert_std(nets.xavier_uniform_(w, rng=0), bound / math.sqrt(3), bound)
    assert_std(
        nets.xavier_normal_(w, gain=2.0, rng=1), 2 * math.sqrt(2 / (fan_in + fan_out))
    )
    assert_std(
        nets.kaiming_uniform_(w, rng=2), math.sqrt(2 / fan_in), math.sqrt(6 / fan_in)
    )
    assert_std(nets.kaiming_normal_(w, rng=3), math.sqrt(2 / fan_in))
    assert_std(
        nets.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", rng=4),
        math.sqrt(2 / fan_out),
    )
    assert_std(
        nets.kaiming_uniform_(w, a=math.sqrt(5), rng=5),
        math.sqrt(1 / (3 * fan_in)),
        1 / math.sqrt(fan_in),
    )


def test_initialisers_work_in_place_on_parameters():
    layer = nets.Linear(3, 2, rng=0)
    data = layer.weight.data
    assert nets.zeros_(layer.bias) is layer.bias
    np.testing.assert_array_equal(layer.bias.data, 0.0)
    nets.init.ones_(layer.weight)
    assert layer.weight.data is data and np.all(data == 1.0)
    np.testing.assert_array_equal(
        nets.xavier_uniform_(np.empty((3, 4)), rng=9),
        nets.xavier_uniform_(np.empty((3, 4)), rng=9),
    )


@pytest.mark.parametrize(
    "make, fan_in",
    [
        (lambda: nets.Linear(200, 300, rng=0), 200),
        (lambda: nets.Conv2d(20, 300, (3, 4), rng=0), 240),
    ],
)
def test_default_layer_init_is_torch_uniform(make, fan_in):
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    assert_std(layer.weight.data, bound / math.sqrt(3), bound)
    assert np.abs(layer.bias.data).max() <= bound


def test_recurrent_init_is_uniform_in_one_over_sqrt_hidden():
    lstm = nets.LSTM(30, 100, rng=0)
    for p in lstm.parameters():
        assert np.abs(p.data).max() <= 0.1
    assert_std(lstm.weight_hh_l0.data, 0.1 / math.sqrt(3), 0.1)


# --------------------------------------------------------------------------------------
# Every bad input is a ValueError naming the argument
# --------------------------------------------------------------------------------------


def forwarded(module, *args):
    module(*args)
    return module


BAD_CALLS = {
    "in_features zero": (lambda: nets.Linear(0, 3), "in_features"),
    "out_features float": (lambda: nets.Linear(3, 2.5), "out_features"),
    "in_features bool": (lambda: nets.Linear(True, 3), "in_features"),
    "rng string": (lambda: nets.Linear(3, 2, rng="seed"), "rng"),
    "rng negative": (lambda: nets.Linear(3, 2, rng=-1), "rng"),
    "linear feature count": (
        lambda: nets.Linear(3, 2)(np.ones((4, 5))),
        "x has 5 features",
    ),
    "linear scalar": (lambda: nets.Linear(3, 2)(1.0), "x must have at least 1"),
    "linear NaN": (
        lambda: nets.Linear(3, 2)(np.array([[1.0, np.nan, 0.0]])),
        "x contains NaN",
    ),
    "linear empty": (lambda: nets.Linear(3, 2)(np.ones((0, 3))), "x is empty"),
    "linear strings": (
        lambda: nets.Linear(3, 2)([["a", "b", "c"]]),
        "x must be a numeric",
    ),
    "backward before forward": (
        lambda: nets.Linear(3, 2).backward(np.ones((1, 2))),
        "before forward",
    ),
    "grad_out shape": (
        lambda: forwarded(nets.Linear(3, 2), np.ones((4, 3))).backward(np.ones((4, 3))),
        "grad_out",
    ),
    "grad_out NaN": (
        lambda: forwarded(nets.Tanh(), np.ones(2)).backward(np.array([1.0, np.nan])),
        "grad_out",
    ),
    "relu before forward": (lambda: nets.ReLU().backward(np.ones(2)), "before forward"),
    "flatten dims": (lambda: nets.Flatten(start_dim=3)(np.ones((2, 3))), "start_dim"),
    "flatten type": (lambda: nets.Flatten("1"), "start_dim"),
    "sequential item": (lambda: nets.Sequential(nets.ReLU(), 3), r"modules\[1\]"),
    "dropout p > 1": (lambda: nets.Dropout(1.5), "p must be"),
    "dropout p < 0": (lambda: nets.Dropout(-0.1), "p must be"),
    "dropout p str": (lambda: nets.Dropout("0.5"), "p must be"),
    "bn features": (lambda: nets.BatchNorm1d(0), "num_features"),
    "bn eps": (lambda: nets.BatchNorm1d(3, eps=0), "eps"),
    "bn momentum": (lambda: nets.BatchNorm1d(3, momentum=1.5), "momentum"),
    "bn ndim": (
        lambda: nets.BatchNorm1d(3)(np.ones((2, 3, 4, 5))),
        "x must be a 2-D or 3-D",
    ),
    "bn channels": (lambda: nets.BatchNorm1d(3)(np.ones((4, 2))), "x has 2 features"),
    "bn one sample": (
        lambda: nets.BatchNorm1d(3)(np.ones((1, 3))),
        "more than 1 value",
    ),
    "conv kernel zero": (lambda: nets.Conv2d(1, 1, 0), "kernel_size"),
    "conv kernel triple": (lambda: nets.Conv2d(1, 1, (3,)), "kernel_size"),
    "conv stride": (lambda: nets.Conv2d(1, 1, 3, stride=0), "stride"),
    "conv padding": (lambda: nets.Conv2d(1, 1, 3, padding=-1), "padding"),
    "conv channels": (
        lambda: nets.Conv2d(3, 1, 3)(np.ones((1, 2, 5, 5))),
        "x has 2 channels",
    ),
    "conv ndim": (
        lambda: nets.Conv2d(1, 1, 3)(np.ones((1, 5, 5))),
        r"x must be a 4-D array \(N, C, H, W\)",
    ),
    "conv too small": (
        lambda: nets.Conv2d(1, 1, 5)(np.ones((1, 1, 3, 3))),
        "smaller than the kernel",
    ),
    "pool padding": (lambda: nets.MaxPool2d(2, padding=2), "padding"),
    "pool kernel": (lambda: nets.MaxPool2d(0), "kernel_size"),
    "im2col ndim": (lambda: nets.im2col(np.ones((2, 5, 5)), 3), "x must be a 4-D"),
    "col2im cols": (
        lambda: nets.col2im(np.ones((9, 8)), (1, 1, 5, 5), 3),
        "cols has shape",
    ),
    "col2im x_shape": (lambda: nets.col2im(np.ones((9, 9)), (5, 5), 3), "x_shape"),
    "rnn nonlinearity": (
        lambda: nets.RNN(3, 4, nonlinearity="sigmoid"),
        "nonlinearity",
    ),
    "rnn layers": (lambda: nets.RNN(3, 4, num_layers=2), "num_layers"),
    "rnn hidden": (lambda: nets.RNN(3, 0), "hidden_size"),
    "rnn ndim": (
        lambda: nets.RNN(3, 4)(np.ones((5, 3))),
        r"input must be a 3-D array \(T, N, input_size\)",
    ),
    "rnn features": (
        lambda: nets.RNN(3, 4)(np.ones((5, 2, 4))),
        "input has 4 features",
    ),
    "rnn h0": (
        lambda: nets.RNN(3, 4)(np.ones((5, 2, 3)), np.zeros((2, 4))),
        "hx has shape",
    ),
    "rnn no grads": (
        lambda: forwarded(nets.RNN(3, 4), np.ones((5, 2, 3))).backward(),
        "grad_output",
    ),
    "rnn grad shape": (
        lambda: forwarded(nets.RNN(3, 4), np.ones((5, 2, 3))).backward(
            np.ones((5, 2, 3))
        ),
        "grad_output has shape",
    ),
    "lstm c0": (
        lambda: nets.LSTM(3, 4)(
            np.ones((5, 2, 3)), (np.zeros((1, 2, 4)), np.zeros((1, 3, 4)))
        ),
        r"hx\[1\] has shape",
    ),
    "lstm no grads": (
        lambda: forwarded(nets.LSTM(3, 4), np.ones((5, 2, 3))).backward(),
        "grad_output",
    ),
    "lstm before forward": (
        lambda: nets.LSTM(3, 4).backward(np.ones((5, 2, 4))),
        "before forward",
    ),
    "lstm cell no grads": (
        lambda: forwarded(nets.LSTMCell(3, 4), np.ones((2, 3))).backward(),
        "grad_h",
    ),
    "mse reduction": (lambda: nets.MSELoss(reduction="avg"), "reduction"),
    "mse shapes": (
        lambda: nets.MSELoss()(np.ones((3, 2)), np.ones((2, 3))),
        "target has shape",
    ),
    "mse backward first": (lambda: nets.MSELoss().backward(), "before forward"),
    "ce index range": (
        lambda: nets.CrossEntropyLoss()(np.ones((2, 3)), np.array([0, 3])),
        "target holds",
    ),
    "ce float indices": (
        lambda: nets.CrossEntropyLoss()(np.ones((2, 3)), np.array([0.0, 1.0])),
        "target must be",
    ),
    "ce count": (
        lambda: nets.CrossEntropyLoss()(np.ones((2, 3)), np.array([0, 1, 2])),
        "target has shape",
    ),
    "ce probabilities shape": (
        lambda: nets.CrossEntropyLoss()(np.ones((2, 3)), np.ones((2, 4)) / 4),
        "target has shape",
    ),
    "ce input ndim": (
        lambda: nets.CrossEntropyLoss()(np.ones(3), np.array([0])),
        "input must be a 2-D",
    ),
    "ce smoothing": (
        lambda: nets.CrossEntropyLoss(label_smoothing=2.0),
        "label_smoothing",
    ),
    "load missing": (
        lambda: nets.Linear(2, 2).load_state_dict({"weight": np.zeros((2, 2))}),
        "missing keys",
    ),
    "load unexpected": (
        lambda: nets.Linear(2, 2, bias=False).load_state_dict(
            {"weight": np.zeros((2, 2)), "bias": np.zeros(2)}
        ),
        "unexpected keys",
    ),
    "train mode": (lambda: nets.Linear(2, 2).train("yes"), "mode"),
    "xavier 1-D": (
        lambda: nets.xavier_uniform_(np.zeros(3)),
        "tensor needs at least 2",
    ),
    "kaiming mode": (
        lambda: nets.kaiming_normal_(np.zeros((3, 3)), mode="fan"),
        "mode",
    ),
    "gain name": (lambda: nets.calculate_gain("swish"), "nonlinearity"),
    "gain param": (lambda: nets.calculate_gain("leaky_relu", "0.1"), "param"),
    "init list": (lambda: nets.uniform_([1.0, 2.0]), "tensor must be"),
    "normal std": (lambda: nets.normal_(np.zeros(3), std=-1.0), "std"),
    "uniform bounds": (
        lambda: nets.uniform_(np.zeros(3), 1.0, 0.0),
        "a must be smaller",
    ),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_input_raises_value_error_naming_the_argument(name):
    call, message = BAD_CALLS[name]
    with pytest.raises(ValueError, match=message):
        call()
