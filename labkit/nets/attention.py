"""Attention: ``scaled_dot_product_attention`` and ``MultiheadAttention``, as in torch.

Two mask conventions meet here, and they are torch's, so they are opposite:

- ``scaled_dot_product_attention(attn_mask=...)`` (torch.nn.functional): a boolean
  mask is True where a query MAY attend to a key;
- ``MultiheadAttention(attn_mask=..., key_padding_mask=...)`` (torch.nn): a boolean
  mask is True where a query may NOT attend (a padded key, a future position).

A float mask is added to the scores in both (``-inf`` forbids, 0 allows).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_grad, check_input, integer, probability
from ..runtime import as_generator
from .init import constant_, xavier_uniform_
from .linear import Linear
from .module import Module, Parameter


def _additive_mask(mask, name: str, allowed_when: bool) -> np.ndarray:
    """A float mask to add to the scores: 0 where attending is allowed, -inf where not.

    A boolean mask allows where it equals ``allowed_when``; a float mask is returned as
    is (finite values or -inf).
    """
    if hasattr(mask, "detach"):  # a torch tensor
        mask = mask.detach().cpu().numpy()
    m = np.asarray(mask)
    if m.dtype == bool:
        return np.where(m == allowed_when, 0.0, -np.inf)
    if not np.issubdtype(m.dtype, np.floating):
        raise ValueError(
            f"{name} must be a boolean or a float array, got dtype {m.dtype}"
        )
    m = m.astype(np.float64)
    if np.isnan(m).any() or (m == np.inf).any():
        raise ValueError(f"{name} contains NaN or +inf (use -inf to forbid attending)")
    return m


def _masked_softmax(scores: np.ndarray) -> np.ndarray:
    """softmax over the last axis; a row of scores all -inf gives zeros (as torch)."""
    row_max = scores.max(axis=-1, keepdims=True)
    dead = np.isneginf(row_max)  # every key of this query is masked
    e = np.exp(scores - np.where(dead, 0.0, row_max))
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=~dead)


class ScaledDotProductAttention(Module):
    """softmax(scale * Q K^T + M) V, the parameter-free core of every attention layer.

    ``forward`` takes the arguments of
    ``torch.nn.functional.scaled_dot_product_attention``: ``attn_mask`` is a boolean
    mask, True where a query MAY attend a key, or a float mask M added to the scores;
    ``is_causal=True`` lets query i attend keys 0..i only (top-left aligned, no
    ``attn_mask`` then); ``scale`` defaults to 1/sqrt(E); ``dropout_p`` drops attention
    weights (inverted dropout, with this module's ``rng``). A query whose keys are all
    masked gets weights 0 and output 0, as torch. The weights of the last forward pass
    (before dropout) are kept in ``attn_weights``.

    With P = softmax(S), S = scale * Q K^T + M, and the dropped weights P' = P * D, the
    backward pass is

        dV = P'^T dO,  dP = (dO V^T) * D,  dS = P * (dP - rowsum(dP * P)),
        dQ = scale * dS K,  dK = scale * dS^T Q.

    Shape:
        - query: ``(*, L, E)``; key: ``(*, S, E)``; value: ``(*, S, Ev)`` (same ``*``)
        - attn_mask: broadcastable to ``(*, L, S)``
        - Output: ``(*, L, Ev)``; attn_weights: ``(*, L, S)``
    """

    def __init__(self, *, rng=None):
        super().__init__()
        self._rng = as_generator(rng)
        self.attn_weights: np.ndarray | None = None

    def forward(
        self,
        query,
        key,
        value,
        attn_mask=None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale=None,
    ):
        q = check_input(query, "query", ndim=None)
        k = check_input(key, "key", ndim=None)
        v = check_input(value, "value", ndim=None)
        for name, a in (("query", q), ("key", k), ("value", v)):
            if a.ndim < 2:
                raise ValueError(
                    f"{name} must have at least 2 dimensions, got {a.shape}"
                )
        if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
            raise ValueError(
                "query, key and value must share their leading dimensions, got "
                f"{q.shape}, {k.shape}, {v.shape}"
            )
        if k.shape[-1] != q.shape[-1]:
            raise ValueError(
                f"key has {k.shape[-1]} features, expected the query's {q.shape[-1]}"
            )
        if v.shape[-2] != k.shape[-2]:
            raise ValueError(
                f"value has {v.shape[-2]} positions, expected the key's {k.shape[-2]}"
            )
        p = probability(dropout_p, "dropout_p")
        if scale is None:
            scale = 1.0 / math.sqrt(q.shape[-1])
        elif isinstance(scale, bool) or not np.isfinite(scale):
            raise ValueError(f"scale must be a finite number or None, got {scale!r}")
        scale = float(scale)
        L, S = q.shape[-2], k.shape[-2]

        scores = scale * (q @ np.swapaxes(k, -1, -2))  # (*, L, S)
        if is_causal:
            if attn_mask is not None:
                raise ValueError("attn_mask must be None when is_causal=True")
            scores = scores + np.where(np.tri(L, S, dtype=bool), 0.0, -np.inf)
        elif attn_mask is not None:
            mask = _additive_mask(attn_mask, "attn_mask", allowed_when=True)
            try:
                scores = scores + mask
            except ValueError as err:
                raise ValueError(
                    f"attn_mask of shape {mask.shape} does not broadcast to the scores "
                    f"{scores.shape}"
                ) from err
            if scores.shape != q.shape[:-1] + (S,):
                raise ValueError(
                    f"attn_mask of shape {mask.shape} does not broadcast to the scores "
                    f"{q.shape[:-1] + (S,)}"
                )
        weights = _masked_softmax(scores)  # (*, L, S)
        drop = None
        if p == 1.0:
            drop = np.zeros_like(weights)
        elif p > 0.0:
            drop = (self._rng.random(weights.shape) >= p) / (1.0 - p)
        used = weights if drop is None else weights * drop
        self.attn_weights = weights
        self._cache = (q, k, v, weights, drop, used, scale)
        return used @ v  # (*, L, Ev)

    def backward(self, grad_out):
        """Returns (dL/dquery, dL/dkey, dL/dvalue) for dL/doutput ``grad_out``."""
        q, k, v, weights, drop, used, scale = self._saved()
        g = check_grad(grad_out, q.shape[:-1] + v.shape[-1:])
        dv = np.swapaxes(used, -1, -2) @ g  # (*, S, Ev)
        dw = g @ np.swapaxes(v, -1, -2)  # (*, L, S)
        if drop is not None:
            dw = dw * drop
        ds = weights * (dw - (dw * weights).sum(axis=-1, keepdims=True))
        return scale * ds @ k, scale * np.swapaxes(ds, -1, -2) @ q, dv


def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale=None,
    *,
    rng=None,
) -> np.ndarray:
    """softmax(scale * Q K^T + M) V with torch.nn.functional's signature.

    A boolean ``attn_mask`` is True where a query MAY attend (the opposite of
    ``MultiheadAttention``'s); see ``ScaledDotProductAttention``, whose forward this is,
    for the details and the backward pass.

    Shape:
        - query: ``(*, L, E)``; key: ``(*, S, E)``; value: ``(*, S, Ev)``
        - Output: ``(*, L, Ev)``
    """
    return ScaledDotProductAttention(rng=rng)(
        query, key, value, attn_mask, dropout_p, is_causal, scale
    )


class MultiheadAttention(Module):
    """Multi-head attention with torch.nn.MultiheadAttention's names and conventions.

    Each of the ``num_heads`` heads attends in its own slice of ``head_dim = embed_dim
    / num_heads`` features of the projected queries, keys and values; the heads'
    outputs are concatenated and mixed by ``out_proj``:

        Q = query W_q^T + b_q,  K = key W_k^T + b_k,  V = value W_v^T + b_v
        head_i = softmax(Q_i K_i^T / sqrt(head_dim) + M) V_i
        output = concat(head_1, ..., head_h) W_o^T + b_o

    where W_q, W_k, W_v are the three row blocks of ``in_proj_weight`` (3E, E) and b_q,
    b_k, b_v those of ``in_proj_bias``. Masks: a boolean ``attn_mask`` or
    ``key_padding_mask`` is True where attending is NOT allowed (the opposite of
    ``scaled_dot_product_attention``); float masks are added to the scores.
    ``is_causal`` is only a hint, as in torch: the causal ``attn_mask`` must be passed
    too. A query whose keys are all masked raises a ValueError (torch returns NaN).
    ``dropout`` drops attention weights in training mode.

    ``forward`` returns ``(attn_output, attn_weights)``; the weights are averaged over
    the heads unless ``average_attn_weights=False``, and None when
    ``need_weights=False``. ``backward(grad_output)`` returns ``(dquery, dkey,
    dvalue)``: for self-attention (query = key = value = x) dL/dx is their sum.
    Initialised like torch: ``in_proj_weight`` Xavier-uniform, biases zero,
    ``out_proj.weight`` ~ U(-1/sqrt(E), 1/sqrt(E)). Only ``kdim = vdim = embed_dim`` and
    no ``add_bias_kv`` / ``add_zero_attn``.

    Shape:
        - query: ``(L, N, E)``, ``(N, L, E)`` with batch_first, or ``(L, E)`` unbatched
        - key, value: ``(S, N, E)``, ``(N, S, E)`` with batch_first, or ``(S, E)``
        - key_padding_mask: ``(N, S)`` or ``(S,)`` unbatched
        - attn_mask: ``(L, S)`` or ``(N * num_heads, L, S)``
        - attn_output: the layout of query; attn_weights: ``(N, L, S)``, or
          ``(N, num_heads, L, S)`` with ``average_attn_weights=False`` (no N unbatched)

    Examples:
        >>> mha = MultiheadAttention(8, 2, batch_first=True, rng=0)
        >>> x = np.ones((3, 5, 8))
        >>> out, w = mha(x, x, x)
        >>> out.shape, w.shape
        ((3, 5, 8), (3, 5, 5))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        batch_first: bool = False,
        *,
        rng=None,
    ):
        super().__init__()
        self.embed_dim = integer(embed_dim, "embed_dim")
        self.num_heads = integer(num_heads, "num_heads")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        self.head_dim = self.embed_dim // self.num_heads
        self.dropout = probability(dropout, "dropout")
        self.batch_first = bool(batch_first)
        rng = as_generator(rng)
        E = self.embed_dim
        self.in_proj_weight = xavier_uniform_(Parameter(np.empty((3 * E, E))), rng=rng)
        self.in_proj_bias = Parameter(np.zeros(3 * E)) if bias else None
        self.out_proj = Linear(E, E, bias=bias, rng=rng)
        if bias:
            constant_(self.out_proj.bias, 0.0)
        self._attention = ScaledDotProductAttention(rng=rng)

    def named_children(self):
        # the attention core holds no parameters; hide it so names equal torch's
        for name, child in super().named_children():
            if child is not self._attention:
                yield name, child

    # -- layout ------------------------------------------------------------------------
    def _inputs(self, query, key, value):
        """query, key, value as (N, L, E), (N, S, E), (N, S, E), and if unbatched."""
        arrays = {}
        for name, a in (("query", query), ("key", key), ("value", value)):
            arrays[name] = check_input(a, name, ndim=(2, 3))
        ndims = {a.ndim for a in arrays.values()}
        if len(ndims) > 1:
            raise ValueError(
                "query, key and value must all be batched (3-D) or all unbatched (2-D)"
            )
        unbatched = ndims == {2}
        for name, a in arrays.items():
            if a.shape[-1] != self.embed_dim:
                raise ValueError(
                    f"{name} has {a.shape[-1]} features in its last dimension "
                    f"(shape {a.shape}), expected embed_dim={self.embed_dim}"
                )
            if unbatched:
                a = a[None]
            elif not self.batch_first:
                a = a.transpose(1, 0, 2)
            arrays[name] = a
        q, k, v = arrays["query"], arrays["key"], arrays["value"]
        if k.shape[:2] != v.shape[:2]:
            raise ValueError(
                f"key and value must have the same batch and length, got {key.shape} "
                f"and {value.shape}"
            )
        if q.shape[0] != k.shape[0]:
            raise ValueError(
                f"query and key must have the same batch size, got {query.shape} and "
                f"{key.shape}"
            )
        return q, k, v, unbatched

    def _outputs(self, a: np.ndarray, unbatched: bool) -> np.ndarray:
        """An (N, L, E) array back in the layout of the inputs."""
        if unbatched:
            return a[0]
        return a if self.batch_first else np.ascontiguousarray(a.transpose(1, 0, 2))

    def _mask(self, attn_mask, key_padding_mask, n: int, L: int, S: int, unbatched):
        """Both masks as one additive (N, num_heads, L, S) float mask, or None."""
        h = self.num_heads
        total = None
        if attn_mask is not None:
            m = _additive_mask(attn_mask, "attn_mask", allowed_when=False)
            if m.shape == (L, S):
                m = m[None, None]
            elif m.shape == (n * h, L, S) or (unbatched and m.shape == (h, L, S)):
                m = m.reshape(n, h, L, S)
            else:
                raise ValueError(
                    f"attn_mask has shape {m.shape}, expected ({L}, {S}) or "
                    f"({n * h}, {L}, {S}) (batch * num_heads, L, S)"
                )
            total = m
        if key_padding_mask is not None:
            m = _additive_mask(key_padding_mask, "key_padding_mask", allowed_when=False)
            expected = (S,) if unbatched else (n, S)
            if m.shape != expected:
                raise ValueError(
                    f"key_padding_mask has shape {m.shape}, expected {expected}"
                )
            m = m.reshape(n, 1, 1, S)
            total = m if total is None else total + m
        if total is not None:
            total = np.broadcast_to(total, (n, h, L, S))
            if np.isneginf(total).all(axis=-1).any():
                raise ValueError(
                    "attn_mask and key_padding_mask leave some query with no key to "
                    "attend to (torch would return NaN there)"
                )
        return total

    def _heads(self, a: np.ndarray) -> np.ndarray:
        n, t, _ = a.shape
        return a.reshape(n, t, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    def _merge(self, a: np.ndarray) -> np.ndarray:
        n, _, t, _ = a.shape
        return a.transpose(0, 2, 1, 3).reshape(n, t, self.embed_dim)

    # -- computation -------------------------------------------------------------------
    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        if is_causal and attn_mask is None:
            raise ValueError(
                "attn_mask: is_causal=True is only a hint, as in torch; pass the "
                "causal mask as attn_mask too"
            )
        q_in, k_in, v_in, unbatched = self._inputs(query, key, value)
        n, L, _ = q_in.shape
        S = k_in.shape[1]
        mask = self._mask(attn_mask, key_padding_mask, n, L, S, unbatched)
        E = self.embed_dim
        w, b = self.in_proj_weight.data, self.in_proj_bias
        projected = []
        for i, a in enumerate((q_in, k_in, v_in)):
            p = a @ w[i * E : (i + 1) * E].T  # (N, L or S, E)
            projected.append(p + b.data[i * E : (i + 1) * E] if b is not None else p)
        q, k, v = (self._heads(p) for p in projected)  # (N, h, L or S, head_dim)
        p_drop = self.dropout if self.training else 0.0
        heads = self._attention(q, k, v, mask, dropout_p=p_drop)  # (N, h, L, head_dim)
        out = self.out_proj(self._merge(heads))  # (N, L, E)
        self._cache = (q_in, k_in, v_in, unbatched)

        weights = None
        if need_weights:
            _, _, _, _, _, used, _ = self._attention._saved()  # (N, h, L, S)
            weights = used.mean(axis=1) if average_attn_weights else used
            weights = weights[0] if unbatched else weights.copy()
        return self._outputs(out, unbatched), weights

    def backward(self, grad_output):
        """dL/dquery, dL/dkey, dL/dvalue from dL/dattn_output (gradients of the returned
        weights are not propagated)."""
        q_in, k_in, v_in, unbatched = self._saved()
        g = check_grad(grad_output, self._outputs(q_in, unbatched).shape, "grad_output")
        if unbatched:
            g = g[None]
        elif not self.batch_first:
            g = g.transpose(1, 0, 2)  # (N, L, E)
        g_heads = self._heads(self.out_proj.backward(g))  # (N, h, L, head_dim)
        dq, dk, dv = (self._merge(d) for d in self._attention.backward(g_heads))
        E = self.embed_dim
        w = self.in_proj_weight.data
        d_w = np.concatenate(
            [
                d.reshape(-1, E).T @ a.reshape(-1, E)
                for d, a in ((dq, q_in), (dk, k_in), (dv, v_in))
            ]
        )
        self.in_proj_weight.accumulate(d_w)
        if self.in_proj_bias is not None:
            self.in_proj_bias.accumulate(
                np.concatenate([d.sum(axis=(0, 1)) for d in (dq, dk, dv)])
            )
        grads = (dq @ w[:E], dk @ w[E : 2 * E], dv @ w[2 * E :])
        return tuple(self._outputs(d, unbatched) for d in grads)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
            f"dropout={self.dropout}, batch_first={self.batch_first}"
        )
