"""scaled_dot_product_attention and MultiheadAttention are held to torch (float64
autograd), to finite differences, and to hand-computed cases of their two opposite mask
conventions."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labkit import nets
from nets_reference import (
    check_parameter_grads_by_differences,
    close,
    leaf,
    numerical_grad,
    same_parameter_grads,
)


@pytest.fixture
def rng():
    return np.random.default_rng(7104)


def as_torch(value):
    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value


# --------------------------------------------------------------------------------------
# scaled_dot_product_attention
# --------------------------------------------------------------------------------------

SDPA_CASES = {
    "plain": ((2, 3), 4, 6, {}),
    "unbatched 2-D": ((), 5, 5, {}),
    "causal, square": ((2,), 5, 5, {"is_causal": True}),
    "causal, more keys than queries": ((2,), 3, 6, {"is_causal": True}),
    "boolean mask broadcast over the batch": ((2, 3), 4, 6, {"attn_mask": "bool"}),
    "float mask with -inf": ((2, 3), 4, 6, {"attn_mask": "float"}),
    "scale given": ((2,), 4, 6, {"scale": 0.37}),
    "a query with every key masked": ((2,), 4, 6, {"attn_mask": "dead row"}),
}


def sdpa_mask(kind, rng, L, S, batch):
    if kind == "bool":
        mask = rng.random((L, S)) < 0.6  # True: may attend
        mask[:, 0] = True
        return mask
    if kind == "float":
        mask = rng.normal(size=batch[-1:] + (L, S))
        mask[..., 1:3, 2] = -np.inf
        return mask
    mask = np.ones((L, S), dtype=bool)
    mask[1] = False  # query 1 may attend nothing: torch returns zeros there
    return mask


@pytest.mark.parametrize("case", list(SDPA_CASES))
def test_sdpa_matches_torch(rng, case):
    batch, L, S, options = SDPA_CASES[case]
    E, Ev = 4, 3
    q, k = rng.normal(size=batch + (L, E)), rng.normal(size=batch + (S, E))
    v = rng.normal(size=batch + (S, Ev))
    if "attn_mask" in options:
        options = {"attn_mask": sdpa_mask(options["attn_mask"], rng, L, S, batch)}
    qt, kt, vt = leaf(q), leaf(k), leaf(v)
    out_t = F.scaled_dot_product_attention(
        qt, kt, vt, **{k_: as_torch(v_) for k_, v_ in options.items()}
    )
    g = rng.normal(size=tuple(out_t.shape))
    out_t.backward(torch.from_numpy(g))
    module = nets.ScaledDotProductAttention()
    close(module(q, k, v, **options), out_t)
    for ours, theirs in zip(module.backward(g), (qt, kt, vt)):
        close(ours, theirs.grad)
    close(nets.scaled_dot_product_attention(q, k, v, **options), out_t)


@pytest.mark.parametrize("options", [{}, {"is_causal": True}, {"dropout_p": 0.4}])
def test_sdpa_matches_finite_differences(rng, options):
    q, k, v = (rng.normal(size=(2, 4, 3)) for _ in range(3))
    g = rng.normal(size=(2, 4, 3))

    def loss():  # a fresh module seeded alike draws the same dropout mask every time
        out = nets.ScaledDotProductAttention(rng=5)(q, k, v, **options)
        return float((out * g).sum())

    module = nets.ScaledDotProductAttention(rng=5)
    module(q, k, v, **options)
    for ours, x in zip(module.backward(g), (q, k, v)):
        np.testing.assert_allclose(ours, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)


def test_sdpa_by_hand_boolean_true_means_may_attend():
    """One query, two keys with scores 0 and ln 3 after scaling: weights 1/4 and 3/4."""
    q = np.array([[1.0, 0.0]])
    k = np.array([[0.0, 0.0], [math.log(3) * math.sqrt(2), 0.0]])
    v = np.array([[10.0], [20.0]])
    close(nets.scaled_dot_product_attention(q, k, v), [[0.25 * 10 + 0.75 * 20]])
    only_first = np.array([[True, False]])  # True: may attend
    close(nets.scaled_dot_product_attention(q, k, v, attn_mask=only_first), [[10.0]])
    as_float = np.array([[0.0, -np.inf]])
    close(nets.scaled_dot_product_attention(q, k, v, attn_mask=as_float), [[10.0]])


def test_sdpa_keeps_the_weights_and_their_rows_sum_to_one(rng):
    module = nets.ScaledDotProductAttention()
    module(*(rng.normal(size=(3, 5, 4)) for _ in range(3)), is_causal=True)
    w = module.attn_weights
    close(w.sum(axis=-1), np.ones((3, 5)))
    assert np.all(np.triu(w[0], k=1) == 0.0)  # causal: nothing above the diagonal


def test_sdpa_dropout_is_inverted_and_unbiased(rng):
    q, k, v = (rng.normal(size=(1, 4, 3)) for _ in range(3))
    exact = nets.scaled_dot_product_attention(q, k, v)
    module = nets.ScaledDotProductAttention(rng=0)
    runs = np.array([module(q, k, v, dropout_p=0.3) for _ in range(4000)])
    assert np.abs(runs.mean(axis=0) - exact).max() < 0.05
    _, _, _, weights, drop, used, _ = module._saved()
    assert set(np.unique(drop)) <= {0.0, 1 / 0.7}
    close(used, weights * drop)
    assert np.all(nets.scaled_dot_product_attention(q, k, v, dropout_p=1.0) == 0.0)


SDPA_BAD_CALLS = {
    "query 1-D": (lambda q, k, v: ((q[0, 0], k, v), {}), "query"),
    "key features": (lambda q, k, v: ((q, k[..., :2], v), {}), "key has 2 features"),
    "value length": (lambda q, k, v: ((q, k, v[:, :2]), {}), "value has 2 positions"),
    "leading dims": (lambda q, k, v: ((q, k[:1], v[:1]), {}), "leading dimensions"),
    "mask and causal": (
        lambda q, k, v: (
            (q, k, v),
            {"attn_mask": np.ones((4, 4), bool), "is_causal": True},
        ),
        "attn_mask must be None",
    ),
    "mask shape": (
        lambda q, k, v: ((q, k, v), {"attn_mask": np.ones((3, 4), bool)}),
        "attn_mask of shape",
    ),
    "mask broadcasts too far": (
        lambda q, k, v: ((q, k, v), {"attn_mask": np.ones((5, 2, 4, 4), bool)}),
        "attn_mask of shape",
    ),
    "mask dtype": (
        lambda q, k, v: ((q, k, v), {"attn_mask": np.ones((4, 4), int)}),
        "attn_mask must be a boolean or a float",
    ),
    "mask +inf": (
        lambda q, k, v: ((q, k, v), {"attn_mask": np.full((4, 4), np.inf)}),
        "attn_mask contains NaN",
    ),
    "dropout": (lambda q, k, v: ((q, k, v), {"dropout_p": 1.5}), "dropout_p"),
    "scale": (lambda q, k, v: ((q, k, v), {"scale": np.nan}), "scale"),
    "nan query": (lambda q, k, v: ((q * np.nan, k, v), {}), "query"),
}


@pytest.mark.parametrize("name", list(SDPA_BAD_CALLS))
def test_sdpa_bad_input_raises_value_error_naming_the_argument(rng, name):
    make, message = SDPA_BAD_CALLS[name]
    args, kwargs = make(*(rng.normal(size=(2, 4, 3)) for _ in range(3)))
    with pytest.raises(ValueError, match=message):
        nets.scaled_dot_product_attention(*args, **kwargs)


def test_sdpa_backward_checks_its_gradient(rng):
    module = nets.ScaledDotProductAttention()
    with pytest.raises(ValueError, match="grad_out"):
        module.backward(np.zeros((4, 3)))
    module(*(rng.normal(size=(4, 3)) for _ in range(3)))
    with pytest.raises(ValueError, match="grad_out"):
        module.backward(np.zeros((3, 3)))


# --------------------------------------------------------------------------------------
# MultiheadAttention
# --------------------------------------------------------------------------------------

E, HEADS, N, L, S = 6, 3, 2, 4, 5


def twin_mha(bias=True, batch_first=False, dropout=0.0):
    torch.manual_seed(0)
    reference = torch.nn.MultiheadAttention(
        E, HEADS, dropout=dropout, bias=bias, batch_first=batch_first
    ).double()
    with torch.no_grad():  # torch starts the biases at zero; make them count
        for p in reference.parameters():
            p.add_(0.1 * torch.randn_like(p))
    layer = nets.MultiheadAttention(
        E, HEADS, dropout=dropout, bias=bias, batch_first=batch_first
    )
    layer.load_state_dict(reference.state_dict())
    return layer, reference


def mha_inputs(rng, batch_first, unbatched):
    def shape(t):
        if unbatched:
            return (t, E)
        return (N, t, E) if batch_first else (t, N, E)

    return (
        rng.normal(size=shape(L)),
        rng.normal(size=shape(S)),
        rng.normal(size=shape(S)),
    )


def mha_masks(rng, kind, unbatched):
    """attn_mask (L, S) or (N * heads, L, S) and key_padding_mask; no query loses
    all."""
    if kind == "none":
        return {}
    padding = rng.random((S,) if unbatched else (N, S)) < 0.4
    padding[..., 0] = False
    per_head = (HEADS,) if unbatched else (N * HEADS,)
    if kind == "bool":
        attn = rng.random((L, S)) < 0.4  # True: may NOT attend
        attn[:, 0] = False
        return {"attn_mask": attn, "key_padding_mask": padding}
    if kind == "float":
        attn = rng.normal(size=per_head + (L, S))
        attn[..., 1, 3] = -np.inf
        return {"attn_mask": attn, "key_padding_mask": np.where(padding, -np.inf, 0.0)}
    causal = ~np.tri(L, S, dtype=bool)
    return {"attn_mask": causal, "is_causal": True}


@pytest.mark.parametrize("masks", ["none", "bool", "float", "causal"])
@pytest.mark.parametrize(
    "batch_first, unbatched", [(False, False), (True, False), (False, True)]
)
@pytest.mark.parametrize("average", [True, False])
def test_mha_matches_torch(rng, masks, batch_first, unbatched, average):
    layer, reference = twin_mha(batch_first=batch_first)
    q, k, v = mha_inputs(rng, batch_first, unbatched)
    options = mha_masks(rng, masks, unbatched)
    qt, kt, vt = leaf(q), leaf(k), leaf(v)
    out_t, w_t = reference(
        qt,
        kt,
        vt,
        average_attn_weights=average,
        **{k_: as_torch(v_) for k_, v_ in options.items()},
    )
    g = rng.normal(size=tuple(out_t.shape))
    out_t.backward(torch.from_numpy(g))
    out, w = layer(q, k, v, average_attn_weights=average, **options)
    close(out, out_t)
    close(w, w_t)
    for ours, theirs in zip(layer.backward(g), (qt, kt, vt)):
        close(ours, theirs.grad)
    same_parameter_grads(layer, reference)


def test_mha_without_bias_and_without_weights_matches_torch(rng):
    layer, reference = twin_mha(bias=False, batch_first=True)
    assert list(layer.state_dict()) == list(reference.state_dict())
    x = rng.normal(size=(N, L, E))
    xt = leaf(x)
    out_t, none_t = reference(xt, xt, xt, need_weights=False)
    out_t.sum().backward()
    out, none = layer(x, x, x, need_weights=False)
    assert none is None and none_t is None
    close(out, out_t)
    dq, dk, dv = layer.backward(np.ones_like(out))
    close(dq + dk + dv, xt.grad)  # self-attention: the three paths add up
    same_parameter_grads(layer, reference)


def test_mha_names_and_initialisation_follow_torch():
    layer, reference = (
        nets.MultiheadAttention(8, 2, rng=0),
        torch.nn.MultiheadAttention(8, 2),
    )
    assert list(layer.state_dict()) == list(reference.state_dict())
    assert [n for n, _ in layer.named_modules()] == [
        n for n, _ in reference.named_modules()
    ]
    bound = math.sqrt(6 / (8 + 24))  # Xavier-uniform over the (24, 8) in_proj_weight
    assert 0.9 * bound < np.abs(layer.in_proj_weight.data).max() <= bound
    assert np.all(layer.in_proj_bias.data == 0) and np.all(
        layer.out_proj.bias.data == 0
    )
    assert np.abs(layer.out_proj.weight.data).max() <= 1 / math.sqrt(8)


def test_mha_matches_finite_differences(rng):
    layer = nets.MultiheadAttention(4, 2, batch_first=True, rng=1)
    for p in layer.parameters():
        p.data += 0.1 * rng.normal(size=p.shape)
    q, k, v = (
        rng.normal(size=(2, 3, 4)),
        rng.normal(size=(2, 5, 4)),
        rng.normal(size=(2, 5, 4)),
    )
    padding = np.array([[False, False, True, False, True], [False] * 5])
    g = rng.normal(size=(2, 3, 4))

    def loss():
        return float((layer(q, k, v, key_padding_mask=padding)[0] * g).sum())

    layer(q, k, v, key_padding_mask=padding)
    grads = layer.backward(g)
    for ours, x in zip(grads, (q, k, v)):
        np.testing.assert_allclose(ours, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    check_parameter_grads_by_differences(layer, loss)


def test_the_two_boolean_conventions_are_opposite(rng):
    """MultiheadAttention's True (may NOT attend) is the functional's False."""
    layer = nets.MultiheadAttention(4, 1, batch_first=True, bias=False, rng=2)
    layer.in_proj_weight.data[:] = np.vstack([np.eye(4)] * 3)
    layer.out_proj.weight.data[:] = np.eye(4)  # every projection is the identity
    x = rng.normal(size=(1, 5, 4))
    future = ~np.tri(5, dtype=bool)  # True above the diagonal: the future
    out, _ = layer(x, x, x, attn_mask=future)
    close(out, nets.scaled_dot_product_attention(x, x, x, attn_mask=~future))
    close(out, nets.scaled_dot_product_attention(x, x, x, is_causal=True))
    close(out[:, 0], x[:, 0])  # the first position sees only itself


def test_mha_dropout_acts_in_training_only(rng):
    layer = nets.MultiheadAttention(4, 2, dropout=0.5, batch_first=True, rng=3)
    plain = nets.MultiheadAttention(4, 2, batch_first=True, rng=3)
    x = rng.normal(size=(2, 3, 4))
    close(layer.eval()(x, x, x)[0], plain(x, x, x)[0])
    assert not np.allclose(layer.train()(x, x, x)[0], plain(x, x, x)[0])


MHA_BAD_CALLS = {
    "heads": (lambda: nets.MultiheadAttention(6, 4), "divisible by num_heads"),
    "embed_dim": (lambda: nets.MultiheadAttention(0, 1), "embed_dim"),
    "dropout": (lambda: nets.MultiheadAttention(4, 2, dropout=-0.1), "dropout"),
    "features": (
        lambda: nets.MultiheadAttention(4, 2)(*[np.zeros((3, 1, 5))] * 3),
        "query has 5",
    ),
    "mixed batching": (
        lambda: nets.MultiheadAttention(4, 2)(
            np.zeros((3, 4)), *[np.zeros((3, 1, 4))] * 2
        ),
        "must all be batched",
    ),
    "key and value": (
        lambda: nets.MultiheadAttention(4, 2)(
            np.zeros((3, 1, 4)), np.zeros((3, 1, 4)), np.zeros((2, 1, 4))
        ),
        "key and value",
    ),
    "batch sizes": (
        lambda: nets.MultiheadAttention(4, 2)(
            np.zeros((3, 1, 4)), *[np.zeros((3, 2, 4))] * 2
        ),
        "batch size",
    ),
    "attn_mask shape": (
        lambda: nets.MultiheadAttention(4, 2)(
            *[np.zeros((3, 1, 4))] * 3, attn_mask=np.zeros((3, 2), bool)
        ),
        "attn_mask has shape",
    ),
    "padding shape": (
        lambda: nets.MultiheadAttention(4, 2)(
            *[np.zeros((3, 1, 4))] * 3, key_padding_mask=np.zeros((1, 2), bool)
        ),
        "key_padding_mask has shape",
    ),
    "everything masked": (
        lambda: nets.MultiheadAttention(4, 2)(
            *[np.zeros((3, 1, 4))] * 3, key_padding_mask=np.ones((1, 3), bool)
        ),
        "no key to attend",
    ),
    "causal hint alone": (
        lambda: nets.MultiheadAttention(4, 2)(
            *[np.zeros((3, 1, 4))] * 3, is_causal=True
        ),
        "attn_mask: is_causal",
    ),
    "backward first": (
        lambda: nets.MultiheadAttention(4, 2).backward(np.zeros((3, 1, 4))),
        "grad_out",
    ),
}


@pytest.mark.parametrize("name", list(MHA_BAD_CALLS))
def test_mha_bad_input_raises_value_error_naming_the_argument(name):
    call, message = MHA_BAD_CALLS[name]
    with pytest.raises(ValueError, match=message):
        call()


def test_mha_backward_checks_the_gradient_layout(rng):
    layer = nets.MultiheadAttention(4, 2, rng=4)
    x = rng.normal(size=(3, 2, 4))
    layer(x, x, x)
    with pytest.raises(ValueError, match="grad_output"):
        layer.backward(np.zeros((2, 3, 4)))
