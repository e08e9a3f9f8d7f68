"""Chapter 7 exercises: attention, masks, multi-head attention, positions, LayerNorm.

Expected values come from torch (float64): ``F.scaled_dot_product_attention``,
``torch.nn.MultiheadAttention`` and ``F.layer_norm``; the positional encoding from its
formula evaluated in exact-enough float64 with ``math``. Every registered mistake is a
slip the chapter warns about; the cases are built so that none earns more than a quarter
of the points.
"""

from __future__ import annotations

import math

import numpy as np

from . import Case, Mistake, exercise


def _torch():
    import torch

    return torch


def _softmax(s):
    """Row softmax; a row that is all -inf gives zeros."""
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isneginf(m), 0.0, m)
    e = np.exp(s - m)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _plain_softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


SECTION_SCALE = "Scaled dot-product attention, and why the scale"
SECTION_MASKS = "Masks: padding and the future"
SECTION_HEADS = "Multi-head attention"
SECTION_POSITIONS = "Positional encodings"
SECTION_BLOCK = "The transformer block"


# ---- 7.1 scaled dot-product attention with a boolean mask ----------------------------


def _attention(q, k, v, mask):
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)  # (..., L, S)
    weights = _softmax(np.where(mask, scores, -np.inf))
    return weights @ v, weights


def _attention_no_scale(q, k, v, mask):
    weights = _softmax(np.where(mask, q @ np.swapaxes(k, -1, -2), -np.inf))
    return weights @ v, weights


def _attention_mask_after_softmax(q, k, v, mask):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    weights = _plain_softmax(scores) * mask
    return weights @ v, weights


def _attention_inverted_mask(q, k, v, mask):
    return _attention(q, k, v, ~np.asarray(mask))


def _sdpa_oracle(q, k, v, mask):
    torch = _torch()
    t = [torch.from_numpy(np.ascontiguousarray(a)) for a in (q, k, v)]
    m = torch.from_numpy(mask)
    out = torch.nn.functional.scaled_dot_product_attention(*t, attn_mask=m)
    scores = t[0] @ t[1].transpose(-1, -2) / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores.masked_fill(~m, -math.inf), dim=-1)
    weights = torch.nan_to_num(weights, nan=0.0)  # a query with no key: zeros, as torch
    return out.numpy(), weights.numpy()


@exercise(
    "7.1",
    title="Scaled dot-product attention with a mask",
    points=3,
    function="attention",
    reference=_attention,
    hints=(
        f"Scores are query-key dot products divided by sqrt(d); forbidden keys must be "
        f"removed BEFORE the softmax (reread '{SECTION_SCALE}' and '{SECTION_MASKS}').",
        "scores = q @ k.swapaxes(-1, -2) / sqrt(d); set scores to -inf where mask is "
        "False; softmax over the last axis (subtract the row maximum; a row that is "
        "all "
        "-inf gives zeros); return (weights @ v, weights).",
    ),
    mistakes=(
        Mistake(
            "no-scale",
            "the scores were not divided by sqrt(d), so for large d the softmax "
            "saturates towards one key.",
            SECTION_SCALE,
            _attention_no_scale,
        ),
        Mistake(
            "mask-after-softmax",
            "the mask was applied to the weights after the softmax, so the rows no "
            "longer sum to 1 and the forbidden keys still shaped the normaliser.",
            SECTION_MASKS,
            _attention_mask_after_softmax,
        ),
        Mistake(
            "inverted-mask",
            "True was read as 'may not attend' (torch.nn.MultiheadAttention's "
            "convention); here, as in F.scaled_dot_product_attention, True means 'may "
            "attend'.",
            SECTION_MASKS,
            _attention_inverted_mask,
        ),
    ),
)
def _cases_7_1():
    rng = np.random.default_rng(701)
    cases = []
    for label, batch, L, S, d, dv in (
        ("one sequence, d = 16", (), 4, 6, 16, 3),
        ("batch of 2, d = 64", (2,), 5, 7, 64, 4),
        ("batch of 2 x 3 heads, d = 8", (2, 3), 3, 5, 8, 2),
        ("self-attention, d = 32", (), 6, 6, 32, 5),
    ):
        q = rng.normal(size=batch + (L, d))
        k = rng.normal(size=batch + (S, d))
        v = rng.normal(size=batch + (S, dv))
        mask = rng.random(batch + (L, S)) < 0.6
        mask[..., 0] = True  # every query keeps a key
        mask[..., 0, 1:] = False  # and one query sees only the first key
        cases.append(Case(label, (q, k, v, mask), _sdpa_oracle(q, k, v, mask)))
    q = rng.normal(size=(3, 16))
    k = np.repeat(rng.normal(size=(1, 16)), 4, axis=0)  # four equal keys: a tie
    v, mask = rng.normal(size=(4, 2)), np.ones((3, 4), dtype=bool)
    mask[1, 2:] = False
    cases.append(
        Case("four identical keys (ties)", (q, k, v, mask), _sdpa_oracle(q, k, v, mask))
    )
    mask = np.ones((3, 4), dtype=bool)
    mask[2] = False  # query 2 may attend nothing
    q, k, v = rng.normal(size=(3, 9)), rng.normal(size=(4, 9)), rng.normal(size=(4, 2))
    cases.append(
        Case(
            "a query with every key masked (weights and output 0)",
            (q, k, v, mask),
            _sdpa_oracle(q, k, v, mask),
        )
    )
    return cases


# ---- 7.2 causal self-attention -------------------------------------------------------


def _causal_self_attention(x, W_q, W_k, W_v):
    q, k, v = x @ W_q.T, x @ W_k.T, x @ W_v.T  # (T, d_k), (T, d_k), (T, d_v)
    T = x.shape[0]
    scores = q @ k.T / np.sqrt(q.shape[-1])
    allowed = np.tril(np.ones((T, T), dtype=bool))  # key j <= query i
    return _plain_softmax(np.where(allowed, scores, -np.inf)) @ v


def _causal_sees_next(x, W_q, W_k, W_v):
    q, k, v = x @ W_q.T, x @ W_k.T, x @ W_v.T
    T = x.shape[0]
    allowed = np.tril(np.ones((T, T), dtype=bool), k=1)
    return (
        _plain_softmax(np.where(allowed, q @ k.T / np.sqrt(q.shape[-1]), -np.inf)) @ v
    )


def _causal_sees_future_only(x, W_q, W_k, W_v):
    q, k, v = x @ W_q.T, x @ W_k.T, x @ W_v.T
    T = x.shape[0]
    allowed = np.triu(np.ones((T, T), dtype=bool))  # torch's True = forbidden, misread
    return (
        _plain_softmax(np.where(allowed, q @ k.T / np.sqrt(q.shape[-1]), -np.inf)) @ v
    )


def _causal_no_mask(x, W_q, W_k, W_v):
    q, k, v = x @ W_q.T, x @ W_k.T, x @ W_v.T
    return _plain_softmax(q @ k.T / np.sqrt(q.shape[-1])) @ v


def _causal_oracle(x, W_q, W_k, W_v):
    torch = _torch()
    x_t = torch.from_numpy(x)
    q, k, v = (x_t @ torch.from_numpy(W).T for W in (W_q, W_k, W_v))
    out = torch.nn.functional.scaled_dot_product_attention(
        q[None], k[None], v[None], is_causal=True
    )
    return out[0].numpy()


@exercise(
    "7.2",
    title="Causal self-attention",
    points=3,
    function="causal_self_attention",
    reference=_causal_self_attention,
    hints=(
        f"Position i may attend positions 0..i and nothing later: the token it must "
        f"predict is at i + 1 (reread '{SECTION_MASKS}').",
        "q, k, v = x @ W_q.T, x @ W_k.T, x @ W_v.T; scores = q @ k.T / sqrt(d_k); set "
        "scores[i, j] = -inf where j > i (np.triu(..., k=1)); softmax each row; "
        "return weights @ v.",
    ),
    mistakes=(
        Mistake(
            "sees-next-token",
            "the mask lets position i also see position i + 1, the very token it is "
            "trained to predict: training loss falls, generation fails.",
            SECTION_MASKS,
            _causal_sees_next,
        ),
        Mistake(
            "future-instead-of-past",
            "the mask keeps the future and hides the past, as happens when a mask "
            "meant as 'True = forbidden' is used as 'True = allowed'.",
            SECTION_MASKS,
            _causal_sees_future_only,
        ),
        Mistake(
            "no-mask",
            "no causal mask at all: every position sees the whole sequence.",
            SECTION_MASKS,
            _causal_no_mask,
        ),
    ),
)
def _cases_7_2():
    rng = np.random.default_rng(702)
    cases = []
    for T, d_model, d_k, d_v in (
        (5, 8, 4, 4),
        (9, 6, 6, 3),
        (3, 4, 2, 5),
        (12, 16, 8, 8),
    ):
        x = rng.normal(size=(T, d_model))
        Ws = (
            rng.normal(size=(d_k, d_model)) / math.sqrt(d_model),
            rng.normal(size=(d_k, d_model)) / math.sqrt(d_model),
            rng.normal(size=(d_v, d_model)),
        )
        args = (x, *Ws)
        cases.append(Case(f"T = {T}, d_k = {d_k}", args, _causal_oracle(*args)))
    x = rng.normal(size=(1, 4))
    Ws = (rng.normal(size=(2, 4)), rng.normal(size=(2, 4)), rng.normal(size=(3, 4)))
    cases.append(
        Case("one position (it sees itself)", (x, *Ws), _causal_oracle(x, *Ws))
    )
    return cases


# ---- 7.3 attention weights with padded keys ------------------------------------------


def _padded_attention_weights(scores, lengths):
    S = scores.shape[-1]
    valid = np.arange(S)[None, :] < lengths[:, None]  # (N, S)
    return _plain_softmax(np.where(valid[:, None, :], scores, -np.inf))


def _padding_zero_score(scores, lengths):
    valid = np.arange(scores.shape[-1])[None, :] < lengths[:, None]
    return _plain_softmax(np.where(valid[:, None, :], scores, 0.0))


def _padding_after_softmax(scores, lengths):
    valid = np.arange(scores.shape[-1])[None, :] < lengths[:, None]
    return _plain_softmax(scores) * valid[:, None, :]


def _padding_off_by_one(scores, lengths):
    valid = np.arange(scores.shape[-1])[None, :] <= lengths[:, None]
    return _plain_softmax(np.where(valid[:, None, :], scores, -np.inf))


def _padding_oracle(scores, lengths):
    torch = _torch()
    N, _, S = scores.shape
    padding = torch.arange(S)[None, :] >= torch.from_numpy(lengths)[:, None]  # (N, S)
    s = torch.from_numpy(scores).masked_fill(padding[:, None, :], -math.inf)
    return torch.softmax(s, dim=-1).numpy()


@exercise(
    "7.3",
    title="Attention weights with padded keys",
    points=2,
    function="padded_attention_weights",
    reference=_padded_attention_weights,
    hints=(
        f"A padded key must get weight exactly 0 and the rest must still sum to 1: "
        f"remove it before the softmax, with -inf, not 0 (reread '{SECTION_MASKS}').",
        "valid[n, j] = j < lengths[n]; scores where valid, -inf elsewhere (broadcast "
        "valid to (N, 1, S)); softmax over the last axis.",
    ),
    mistakes=(
        Mistake(
            "zero-score",
            "padded keys got the score 0 instead of -inf; exp(0) = 1, so they still "
            "take weight.",
            SECTION_MASKS,
            _padding_zero_score,
        ),
        Mistake(
            "mask-after-softmax",
            "the padded keys were zeroed after the softmax, so the weights of the real "
            "keys no longer sum to 1.",
            SECTION_MASKS,
            _padding_after_softmax,
        ),
        Mistake(
            "keeps-one-pad",
            "the first padded key (j == length) was kept: the comparison should be "
            "j < length.",
            SECTION_MASKS,
            _padding_off_by_one,
        ),
    ),
)
def _cases_7_3():
    rng = np.random.default_rng(703)
    cases = []
    for N, L, S, lengths in (
        (3, 4, 6, [6, 3, 1]),
        (2, 2, 5, [2, 4]),
        (4, 3, 8, [5, 8, 1, 7]),
        (2, 5, 4, [3, 2]),
    ):
        scores = 2.0 * rng.normal(size=(N, L, S))
        lengths = np.array(lengths)
        cases.append(
            Case(
                f"N = {N}, S = {S}, lengths {lengths.tolist()}",
                (scores, lengths),
                _padding_oracle(scores, lengths),
            )
        )
    scores, lengths = rng.normal(size=(2, 3, 5)), np.array([5, 5])
    cases.append(
        Case(
            "no padding at all (lengths = S)",
            (scores, lengths),
            _padding_oracle(scores, lengths),
        )
    )
    return cases


# ---- 7.4 multi-head self-attention with torch's parameters ---------------------------


def _mha(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads):
    N, L, E = x.shape
    d = E // num_heads
    qkv = x @ in_proj_weight.T + in_proj_bias  # (N, L, 3E)
    q, k, v = (
        a.reshape(N, L, num_heads, d).transpose(0, 2, 1, 3)  # (N, h, L, d)
        for a in np.split(qkv, 3, axis=-1)
    )
    weights = _plain_softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(d))  # (N, h, L, L)
    heads = (weights @ v).transpose(0, 2, 1, 3).reshape(N, L, E)
    return heads @ out_proj_weight.T + out_proj_bias


def _mha_scale_by_embed_dim(x, w_in, b_in, w_out, b_out, num_heads):
    N, L, E = x.shape
    d = E // num_heads
    q, k, v = (
        a.reshape(N, L, num_heads, d).transpose(0, 2, 1, 3)
        for a in np.split(x @ w_in.T + b_in, 3, axis=-1)
    )
    weights = _plain_softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(E))
    return (weights @ v).transpose(0, 2, 1, 3).reshape(N, L, E) @ w_out.T + b_out


def _mha_reshape_without_transpose(x, w_in, b_in, w_out, b_out, num_heads):
    N, L, E = x.shape
    d = E // num_heads
    q, k, v = (
        a.reshape(N, num_heads, L, d) for a in np.split(x @ w_in.T + b_in, 3, axis=-1)
    )
    weights = _plain_softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(d))
    return (weights @ v).reshape(N, L, E) @ w_out.T + b_out


def _mha_one_head(x, w_in, b_in, w_out, b_out, num_heads):
    return _mha(x, w_in, b_in, w_out, b_out, 1)


def _mha_oracle(x, w_in, b_in, w_out, b_out, num_heads):
    torch = _torch()
    E = x.shape[-1]
    layer = torch.nn.MultiheadAttention(E, num_heads, batch_first=True).double()
    layer.load_state_dict(
        {
            "in_proj_weight": torch.from_numpy(w_in),
            "in_proj_bias": torch.from_numpy(b_in),
            "out_proj.weight": torch.from_numpy(w_out),
            "out_proj.bias": torch.from_numpy(b_out),
        }
    )
    with torch.no_grad():
        x_t = torch.from_numpy(x)
        return layer(x_t, x_t, x_t, need_weights=False)[0].numpy()


@exercise(
    "7.4",
    title="Multi-head self-attention with torch's parameters",
    points=3,
    function="multihead_self_attention",
    reference=_mha,
    hints=(
        f"Project once with in_proj_weight, split the features into num_heads slices "
        f"of head_dim = E / num_heads, attend in each slice with the scale "
        f"1/sqrt(head_dim), put the slices back side by side, project with out_proj "
        f"(reread '{SECTION_HEADS}').",
        "qkv = x @ in_proj_weight.T + in_proj_bias, split in three along the last "
        "axis; "
        "each (N, L, E) -> reshape (N, L, h, d) -> transpose to (N, h, L, d); "
        "softmax(q @ k^T / sqrt(d)) @ v; transpose back to (N, L, h, d), reshape "
        "(N, L, E); @ out_proj_weight.T + out_proj_bias.",
    ),
    mistakes=(
        Mistake(
            "scale-by-embed-dim",
            "the scores were divided by sqrt(embed_dim); each head's dot products have "
            "head_dim terms, so the scale is 1/sqrt(head_dim).",
            SECTION_HEADS,
            _mha_scale_by_embed_dim,
        ),
        Mistake(
            "reshape-without-transpose",
            "(N, L, E) was reshaped straight to (N, h, L, d): that cuts the sequence, "
            "not the features, into heads. Reshape to (N, L, h, d), then transpose.",
            SECTION_HEADS,
            _mha_reshape_without_transpose,
        ),
        Mistake(
            "one-head",
            "num_heads was ignored: one head over all E features is a different model.",
            SECTION_HEADS,
            _mha_one_head,
        ),
    ),
)
def _cases_7_4():
    rng = np.random.default_rng(704)
    cases = []
    for N, L, E, h in ((2, 5, 8, 2), (1, 6, 12, 3), (3, 4, 8, 4), (2, 3, 6, 2)):
        args = (
            rng.normal(size=(N, L, E)),
            rng.normal(size=(3 * E, E)) / math.sqrt(E) * 2.0,
            0.3 * rng.normal(size=3 * E),
            rng.normal(size=(E, E)) / math.sqrt(E),
            0.3 * rng.normal(size=E),
            h,
        )
        cases.append(
            Case(f"N = {N}, L = {L}, E = {E}, {h} heads", args, _mha_oracle(*args))
        )
    args = (
        rng.normal(size=(2, 4, 6)),
        rng.normal(size=(18, 6)),
        rng.normal(size=18),
        rng.normal(size=(6, 6)),
        rng.normal(size=6),
        1,
    )
    cases.append(Case("one head (plain attention)", args, _mha_oracle(*args)))
    return cases


# ---- 7.5 sinusoidal positional encoding ----------------------------------------------


def _sinusoidal(T, d):
    pos = np.arange(T)[:, None]  # (T, 1)
    freq = 10000.0 ** (-np.arange(0, d, 2) / d)  # (d/2,): 1 / 10000^(2i/d)
    pe = np.empty((T, d))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq)
    return pe


def _sinusoidal_exponent_i(T, d):
    pos = np.arange(T)[:, None]
    freq = 10000.0 ** (-np.arange(d // 2) / d)  # 1 / 10000^(i/d): too slow a decay
    pe = np.empty((T, d))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq)
    return pe


def _sinusoidal_halves(T, d):
    pos = np.arange(T)[:, None]
    freq = 10000.0 ** (-np.arange(0, d, 2) / d)
    return np.concatenate([np.sin(pos * freq), np.cos(pos * freq)], axis=1)


def _sinusoidal_oracle(T, d):
    table = [
        [
            (math.sin if j % 2 == 0 else math.cos)(p / 10000 ** ((j - j % 2) / d))
            for j in range(d)
        ]
        for p in range(T)
    ]
    return np.array(table, dtype=np.float64).reshape(T, d)


@exercise(
    "7.5",
    title="Sinusoidal positional encodings",
    points=2,
    function="sinusoidal_encoding",
    reference=_sinusoidal,
    hints=(
        f"Column pair (2i, 2i + 1) holds sin and cos of the same angle pos / "
        f"10000^(2i/d) (reread '{SECTION_POSITIONS}').",
        "pos = np.arange(T)[:, None]; freq = 10000 ** (-np.arange(0, d, 2) / d); "
        "pe[:, 0::2] = sin(pos * freq); pe[:, 1::2] = cos(pos * freq).",
    ),
    mistakes=(
        Mistake(
            "exponent-i-over-d",
            "the pair index i was used as i/d in the exponent instead of 2i/d, so the "
            "wavelengths stop far short of 10000 * 2 pi.",
            SECTION_POSITIONS,
            _sinusoidal_exponent_i,
        ),
        Mistake(
            "sin-then-cos-halves",
            "all sines were put in the first half and all cosines in the second; the "
            "formula here interleaves them (sin in even, cos in odd columns).",
            SECTION_POSITIONS,
            _sinusoidal_halves,
        ),
    ),
)
def _cases_7_5():
    cases = [
        Case(f"T = {T}, d = {d}", (T, d), _sinusoidal_oracle(T, d))
        for T, d in ((10, 8), (50, 16), (7, 6), (128, 32))
    ]
    cases.append(Case("d = 2 (one sine, one cosine)", (6, 2), _sinusoidal_oracle(6, 2)))
    return cases


# ---- 7.6 layer normalisation ---------------------------------------------------------


def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)  # biased: divide by D
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _layer_norm_over_batch(x, gamma, beta, eps):
    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) * gamma + beta


def _layer_norm_unbiased(x, gamma, beta, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, ddof=1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _layer_norm_eps_outside(x, gamma, beta, eps):
    mean = x.mean(axis=-1, keepdims=True)
    return (x - mean) / (x.std(axis=-1, keepdims=True) + eps) * gamma + beta


def _layer_norm_oracle(x, gamma, beta, eps):
    torch = _torch()
    return torch.nn.functional.layer_norm(
        torch.from_numpy(x),
        (x.shape[-1],),
        torch.from_numpy(gamma),
        torch.from_numpy(beta),
        eps,
    ).numpy()


@exercise(
    "7.6",
    title="Layer normalisation",
    points=2,
    function="layer_norm",
    reference=_layer_norm,
    hints=(
        f"Each example is standardised over its own features (the last axis), with "
        f"the biased variance and eps inside the square root (reread "
        f"'{SECTION_BLOCK}').",
        "mean and var (ddof=0) over axis=-1 with keepdims=True; "
        "(x - mean) / sqrt(var + eps) * gamma + beta.",
    ),
    mistakes=(
        Mistake(
            "batch-statistics",
            "the statistics were taken over the batch (axis 0), which is batch "
            "normalisation; layer normalisation uses each example's own features.",
            SECTION_BLOCK,
            _layer_norm_over_batch,
        ),
        Mistake(
            "unbiased-variance",
            "the variance was divided by D - 1; torch's LayerNorm divides by D.",
            SECTION_BLOCK,
            _layer_norm_unbiased,
        ),
        Mistake(
            "eps-outside-sqrt",
            "eps was added to the standard deviation instead of to the variance "
            "under the square root.",
            SECTION_BLOCK,
            _layer_norm_eps_outside,
        ),
    ),
)
def _cases_7_6():
    rng = np.random.default_rng(706)
    cases = []
    for label, shape, eps in (
        ("batch of 4, D = 6", (4, 6), 1e-5),
        ("batch 2 x 3 positions, D = 5", (2, 3, 5), 1e-5),
        ("small features, eps = 0.1", (5, 4), 0.1),
        ("D = 2", (3, 2), 1e-3),
    ):
        x = rng.normal(loc=2.0, scale=0.5, size=shape)
        gamma, beta = rng.normal(size=shape[-1]), rng.normal(size=shape[-1])
        cases.append(
            Case(label, (x, gamma, beta, eps), _layer_norm_oracle(x, gamma, beta, eps))
        )
    x = np.vstack([np.full(4, 3.0), rng.normal(size=4)])  # a constant row: var = 0
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    cases.append(
        Case(
            "a constant example (output beta)",
            (x, gamma, beta, 1e-5),
            _layer_norm_oracle(x, gamma, beta, 1e-5),
        )
    )
    return cases
