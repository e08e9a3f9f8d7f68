r"""A small training loop for torch classifiers, with the regularisers that live in the
loop: early stopping and data augmentation. (Weight decay lives in the optimizer,
dropout and batch normalisation in the model.)

Early stopping
--------------
Watch a validation metric once per epoch. An epoch *improves* when its value beats the
best so far by more than ``min_delta``: ``value < best - min_delta`` for a loss
(``mode="min"``), or ``value > best + min_delta`` for a score such as accuracy
(``mode="max"``); the first value always improves. Count the epochs since the last
improvement; stop when the count reaches ``patience``. So with ``patience = k`` training
stops ``k`` epochs after the last improvement, and the weights to keep are those of that
last improving epoch (``restore_best``). A NaN value never improves (a diverged run runs
out of patience instead of crashing). ``patience = 1`` stops at the first epoch that
does not improve, which on a noisy validation curve is usually far too early. These are
the rules of Keras' and PyTorch Lightning's ``EarlyStopping``.

``fit``
-------
``fit(model, optimizer, train=(X, y), val=(X, y), epochs=..., batch_size=...)`` trains a
``torch.nn.Module`` classifier (logits ``(N, classes)``, integer labels) with
mini-batches in a seeded order and records, after every epoch, the loss and accuracy on
the *clean* training set and on the validation set, both in evaluation mode (dropout
off, batch norm on its running statistics). Those are the two curves whose gap measures
overfitting; the mini-batch losses the optimizer saw (with augmentation and dropout) are
recorded too, as ``batch_loss``. Data stay numpy arrays until a batch is sent to the
model's device, in the model's dtype; ``augment(X_batch, rng)`` receives and returns
numpy arrays (see ``labkit.augment``).
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Callable

import numpy as np

from .data import batches
from .runtime import as_generator

__all__ = ["EarlyStopping", "evaluate", "fit"]


class EarlyStopping:
    """Stop once the monitored value has not improved by more than min_delta for
    patience epochs.

    Call ``step(value, model)`` after each epoch; it returns True when training should
    stop. ``best``, ``best_epoch`` and (given a model) ``best_state`` describe the last
    improving epoch; ``stopped_epoch`` is the epoch at which ``step`` first returned
    True (None before). Epochs are numbered by call, from 0, unless ``step`` is given
    its own ``epoch`` label.
    """

    def __init__(
        self,
        patience: int = 10,
        min_delta: float = 0.0,
        mode: str = "min",
        restore_best: bool = True,
    ):
        if (
            isinstance(patience, bool)
            or not isinstance(patience, numbers.Integral)
            or patience < 1
        ):
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if (
            isinstance(min_delta, bool)
            or not isinstance(min_delta, numbers.Real)
            or not 0.0 <= float(min_delta) < math.inf
        ):
            raise ValueError(
                f"min_delta must be a finite number >= 0, got {min_delta!r}"
            )
        if mode not in ("min", "max"):
            raise ValueError(
                f"mode must be 'min' (a loss) or 'max' (a score), got {mode!r}"
            )
        self.patience, self.min_delta, self.mode = int(patience), float(min_delta), mode
        self.restore_best = bool(restore_best)
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self._calls = 0

    def improves(self, value: float) -> bool:
        """value < best - min_delta (mode 'min') or value > best + min_delta (mode
        'max')."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value, model=None, epoch: int | None = None) -> bool:
        """Record one epoch's value (and the model's weights if it improves); True means
        stop."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(
                f"value must be a real number (the epoch's metric), got {value!r}"
            )
        epoch = self._calls if epoch is None else int(epoch)
        self._calls += 1
        if self.improves(float(value)):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            if model is not None:
                self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.wait += 1
        if self.wait >= self.patience:
            if self.stopped_epoch is None:
                self.stopped_epoch = epoch
            return True
        return False

    def restore(self, model) -> None:
        """Load the weights of the best epoch into ``model`` (torch or labkit)."""
        if self.best_state is None:
            raise ValueError(
                "model: no weights were recorded; pass the model to step()"
            )
        model.load_state_dict(self.best_state)

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
            f"mode={self.mode!r}, best={self.best:.6g}, best_epoch={self.best_epoch})"
        )


def _check_data(data, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) with X a finite float array and y integer labels of the same length."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"{name} must be a pair (X, y), got {type(data).__name__}")
    X, y = np.asarray(data[0], dtype=np.float64), np.asarray(data[1])
    if X.ndim == 0 or len(X) == 0:
        raise ValueError(
            f"{name}: X must be a non-empty batch-first array, got shape {X.shape}"
        )
    if not np.isfinite(X).all():
        raise ValueError(f"{name}: X contains NaN or infinite values")
    if y.shape != (len(X),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"{name}: y must hold {len(X)} integer labels, got dtype {y.dtype}, shape "
            f"{y.shape}"
        )
    return X, y.astype(np.int64)


def _placement(model, device):
    """(device, dtype) of ``model``'s parameters, the model first moved to ``device``
    (``model.to(device)``, in place) when one is given."""
    if next(iter(model.parameters()), None) is None:
        raise ValueError("model has no parameters to train")
    if device is not None:
        model.to(device)
    param = next(iter(model.parameters()))
    return param.device, param.dtype


def evaluate(model, X, y, loss_fn=None, device=None) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` on (X, y) in evaluation mode, without
    gradients; ``device``, when given, moves the model there first (as in ``fit``)."""
    import torch

    X, y = _check_data((X, y), "data")
    loss_fn = torch.nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    device, dtype = _placement(model, device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.as_tensor(X, dtype=dtype, device=device))
            target = torch.as_tensor(y, device=device)
            loss = float(loss_fn(logits, target))
            accuracy = float((logits.argmax(dim=1) == target).double().mean())
    finally:
        model.train(was_training)
    return loss, accuracy


def fit(
    model,
    optimizer,
    train,
    val,
    *,
    epochs: int,
    batch_size: int | None = None,
    loss_fn=None,
    augment: Callable | None = None,
    early_stopping: EarlyStopping | None = None,
    rng=0,
    device=None,
) -> dict:
    """Train ``model`` with ``optimizer`` on ``train`` for up to ``epochs`` epochs; the
    history.

    ``batch_size=None`` uses the whole training set as one batch. The history holds
    numpy arrays ``epoch`` (1, 2, ...), ``train_loss``, ``train_acc``, ``val_loss``,
    ``val_acc`` (evaluation mode, clean data) and ``batch_loss`` (the mean mini-batch
    loss in training mode), plus ``best_epoch`` and ``stopped_epoch`` (None without
    early stopping). With early stopping on the validation loss and ``restore_best``,
    the model ends with the weights of ``best_epoch``.

    ``device`` (e.g. ``labkit.device()``) moves the model there first, in place, and
    every batch with it; ``None`` trains where the model's parameters are. Moving keeps
    the parameter objects, so an optimizer made before ``fit`` still updates them.
    """
    import torch

    X, y = _check_data(train, "train")
    X_val, y_val = _check_data(val, "val")
    if (
        isinstance(epochs, bool)
        or not isinstance(epochs, numbers.Integral)
        or epochs < 1
    ):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    batch_size = len(X) if batch_size is None else batch_size
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(
            f"batch_size must be a positive integer or None, got {batch_size!r}"
        )
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise ValueError(
            "early_stopping must be an EarlyStopping, got "
            f"{type(early_stopping).__name__}"
        )
    loss_fn = torch.nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    device, dtype = _placement(model, device)
    g = as_generator(rng)
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "batch_loss")
    history: dict = {k: [] for k in keys}
    for epoch in range(1, int(epochs) + 1):
        model.train()
        seen = []
        for xb, yb in batches(X, y, int(batch_size), rng=g):
            if augment is not None:
                xb = _augmented(augment, xb, g)
            optimizer.zero_grad()
            loss = loss_fn(
                model(torch.as_tensor(xb, dtype=dtype, device=device)),
                torch.as_tensor(yb, device=device),
            )
            loss.backward()
            optimizer.step()
            seen.append((loss.item(), len(yb)))
        train_loss, train_acc = evaluate(model, X, y, loss_fn)  # on the model's device
        val_loss, val_acc = evaluate(model, X_val, y_val, loss_fn)
        batch_loss = sum(v * n for v, n in seen) / len(X)
        for key, value in zip(
            keys, (epoch, train_loss, train_acc, val_loss, val_acc, batch_loss)
        ):
            history[key].append(value)
        if early_stopping is not None and early_stopping.step(
            val_loss, model, epoch=epoch
        ):
            break
    history = {k: np.asarray(v) for k, v in history.items()}
    history["best_epoch"] = history["stopped_epoch"] = None
    if early_stopping is not None:
        history["best_epoch"], history["stopped_epoch"] = (
            early_stopping.best_epoch,
            early_stopping.stopped_epoch,
        )
        if early_stopping.restore_best and early_stopping.best_state is not None:
            early_stopping.restore(model)
    return history


def _augmented(augment: Callable, xb: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """augment(xb, g), checked to be a finite array of the batch's shape."""
    out = np.asarray(augment(xb, g), dtype=np.float64)
    if out.shape != xb.shape:
        raise ValueError(
            f"augment must return an array of the batch's shape {xb.shape}, got "
            f"{out.shape}"
        )
    if not np.isfinite(out).all():
        raise ValueError("augment returned NaN or infinite values")
    return out
