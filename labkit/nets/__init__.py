"""From-scratch neural-network layers in numpy that mirror ``torch.nn``.

Laid out like ``torch.nn.modules``, one concept a file, everything re-exported here so
that ``from labkit import nets; nets.Conv2d`` works:

========================  ==========================================================
``nets.module``           ``Parameter``, ``Module`` (the base of every layer)
``nets.linear``           ``Linear``, ``Identity``
``nets.activation``       ``ReLU``, ``Tanh``, ``Sigmoid``; ``softmax``, ``log_softmax``
``nets.flatten``          ``Flatten``
``nets.container``        ``Sequential``
``nets.dropout``          ``Dropout``
``nets.normalization``    ``BatchNorm1d``, ``LayerNorm``
``nets.conv``             ``Conv2d``, ``MaxPool2d``, ``im2col``, ``col2im``
``nets.rnn``              ``RNNCell``, ``LSTMCell``, ``RNN``, ``LSTM``
``nets.gru``              ``GRUCell``, ``GRU``
``nets.sparse``           ``Embedding``
``nets.attention``        ``scaled_dot_product_attention``,
                          ``ScaledDotProductAttention``, ``MultiheadAttention``
``nets.loss``             ``MSELoss``, ``CrossEntropyLoss``
``nets.init``             initialisers with ``torch.nn.init``'s names
========================  ==========================================================

Conventions
-----------
- Batch first: ``X`` is ``(N, in_features)``; images are ``(N, C, H, W)``; ``RNN`` and
  ``LSTM`` take sequences ``(T, N, F)`` like torch's default ``batch_first=False``. Each
  layer's docstring states its shapes in a ``Shape:`` block.
- Parameter names and shapes equal torch's (``Linear.weight`` is ``(out_features,
  in_features)``), so ``load_state_dict`` can take a torch model's ``state_dict()`` and
  outputs and gradients can be compared entry by entry.
- Float64 throughout.
- ``forward(x)`` caches what ``backward`` needs; ``backward(grad_out)`` returns
  dLoss/dInput and *accumulates* dLoss/dParameter into each ``Parameter.grad`` (call
  ``zero_grad()`` between steps, as in torch).
- Random initialisation takes ``rng``: an int seed, a ``np.random.Generator``, or
  ``None`` (a seed is drawn from numpy's global state, so ``labkit.seed(n)`` makes the
  model reproducible). Layers are initialised with torch's distributions, not torch's
  random numbers: copy weights with ``load_state_dict`` to compare with torch.
- Losses are modules too: ``loss = loss_fn(input, target)`` returns a float and
  ``loss_fn.backward()`` returns dLoss/dInput.
"""

from . import init
from .attention import (
    MultiheadAttention,
    ScaledDotProductAttention,
    scaled_dot_product_attention,
)
from .activation import ReLU, Sigmoid, Tanh, log_softmax, softmax
from .container import Sequential
from .conv import Conv2d, MaxPool2d, col2im, im2col
from .dropout import Dropout
from .flatten import Flatten
from .init import (
    calculate_gain,
    constant_,
    kaiming_normal_,
    kaiming_uniform_,
    normal_,
    ones_,
    uniform_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)
from .linear import Identity, Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module, Parameter
from .normalization import BatchNorm1d, LayerNorm
from .gru import GRU, GRUCell
from .rnn import LSTM, RNN, LSTMCell, RNNCell
from .sparse import Embedding

__all__ = [
    "Parameter",
    "Module",
    "Linear",
    "Identity",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "softmax",
    "log_softmax",
    "Flatten",
    "Sequential",
    "Dropout",
    "BatchNorm1d",
    "LayerNorm",
    "Conv2d",
    "MaxPool2d",
    "im2col",
    "col2im",
    "RNNCell",
    "LSTMCell",
    "RNN",
    "LSTM",
    "GRUCell",
    "GRU",
    "Embedding",
    "scaled_dot_product_attention",
    "ScaledDotProductAttention",
    "MultiheadAttention",
    "MSELoss",
    "CrossEntropyLoss",
    "init",
    "calculate_gain",
    "uniform_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
]
