"""labkit.training: the early-stopping rule on hand-worked curves, and the fit loop
(seeded, records clean train/validation curves, restores the best weights, applies
augmentation)."""

import math

import numpy as np
import pytest
import torch

from labkit import nets
from labkit.data import blobs, two_moons
from labkit.training import EarlyStopping, evaluate, fit


def run(values, **kw):
    """Feed values to a fresh EarlyStopping; (index where it said stop or None,
    best_epoch)."""
    es = EarlyStopping(**kw)
    for i, v in enumerate(values):
        if es.step(v):
            return i, es.best_epoch
    return None, es.best_epoch


# ------------------------------------------------------------------------ EarlyStopping


def test_patience_counts_epochs_since_the_last_improvement():
    losses = [1.0, 0.8, 0.85, 0.9, 0.7, 0.75, 0.76, 0.77, 0.5]
    assert run(losses, patience=1) == (2, 1)  # the first uptick stops it
    assert run(losses, patience=2) == (
        3,
        1,
    )  # two epochs without improvement after epoch 1
    assert run(losses, patience=3) == (7, 4)  # epoch 4 improves, then 5, 6, 7 do not
    assert run(losses, patience=4) == (
        None,
        8,
    )  # never runs out; the last value is the best


def test_min_delta_requires_a_large_enough_improvement():
    losses = [1.0, 0.95, 0.92, 0.91, 0.85, 0.84]
    assert run(losses, patience=2, min_delta=0.1) == (
        2,
        0,
    )  # 0.95, 0.92 are within 0.1 of 1.0
    assert run(losses, patience=3, min_delta=0.1) == (3, 0)
    assert run(losses, patience=4, min_delta=0.1) == (None, 4)  # 0.85 < 1.0 - 0.1
    assert run(losses, patience=2, min_delta=0.0) == (None, 5)


def test_best_is_the_last_improvement_not_the_minimum():
    # 0.89 is lower than 0.9 but not by more than min_delta: 0.9 stays the reference
    es = EarlyStopping(patience=5, min_delta=0.05)
    for v in [1.0, 0.9, 0.89, 0.88]:
        es.step(v)
    assert es.best == 0.9 and es.best_epoch == 1 and es.wait == 2


def test_mode_max_for_scores():
    accuracies = [0.5, 0.7, 0.69, 0.72, 0.71, 0.70]
    assert run(accuracies, patience=2, mode="max") == (5, 3)


def test_nan_never_improves():
    assert run([1.0, float("nan"), float("nan")], patience=2) == (2, 0)


def test_stopped_epoch_and_custom_epoch_labels():
    es = EarlyStopping(patience=1)
    for epoch, v in zip([10, 20, 30, 40], [3.0, 2.0, 2.5, 2.6]):
        stop = es.step(v, epoch=epoch)
    assert stop and es.best_epoch == 20 and es.stopped_epoch == 30


def test_best_state_is_a_snapshot_and_restore_loads_it():
    model = torch.nn.Linear(2, 1).double()
    es = EarlyStopping(patience=3)
    with torch.no_grad():
        model.weight.fill_(1.0)
    es.step(0.5, model)
    with torch.no_grad():
        model.weight.fill_(7.0)  # changed after the snapshot
    es.step(0.9, model)
    assert torch.all(es.best_state["weight"] == 1.0)
    es.restore(model)
    assert torch.all(model.weight == 1.0)


def test_restore_works_for_labkit_modules():
    layer = nets.Linear(3, 2, rng=0)
    es = EarlyStopping(patience=2)
    es.step(1.0, layer)
    saved = layer.weight.data.copy()
    layer.weight.data += 5.0
    es.restore(layer)
    np.testing.assert_array_equal(layer.weight.data, saved)


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(patience=0), "patience must be a positive integer"),
        (dict(patience=2.5), "patience must be a positive integer"),
        (dict(min_delta=-0.1), "min_delta must be a finite number"),
        (dict(min_delta=float("nan")), "min_delta must be a finite number"),
        (dict(mode="lowest"), "mode must be 'min'"),
    ],
)
def test_bad_arguments(kw, fragment):
    with pytest.raises(ValueError) as info:
        EarlyStopping(**kw)
    assert fragment in str(info.value)


def test_bad_step_and_restore():
    es = EarlyStopping()
    with pytest.raises(ValueError, match="value must be a real number"):
        es.step("0.3")
    with pytest.raises(ValueError, match="no weights were recorded"):
        es.restore(torch.nn.Linear(1, 1))


# ----------------------------------------------------------------------------- fit


def mlp(seed=0, width=16):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(2, width), torch.nn.ReLU(), torch.nn.Linear(width, 2)
    ).double()


@pytest.fixture(scope="module")
def moons():
    return two_moons(40, noise=0.3, rng=1), two_moons(200, noise=0.3, rng=2)


def test_fit_is_seeded_and_records_clean_curves(moons):
    train, val = moons
    histories = []
    for _ in range(2):
        model = mlp()
        h = fit(
            model,
            torch.optim.Adam(model.parameters(), lr=1e-2),
            train,
            val,
            epochs=5,
            batch_size=8,
            rng=3,
        )
        histories.append(h)
    for key in ("train_loss", "val_loss", "train_acc", "val_acc", "batch_loss"):
        np.testing.assert_array_equal(histories[0][key], histories[1][key])
        assert histories[0][key].shape == (5,)
    np.testing.assert_array_equal(histories[0]["epoch"], np.arange(1, 6))
    loss, acc = evaluate(model, *val)
    assert loss == pytest.approx(histories[1]["val_loss"][-1], rel=1e-12)
    assert acc == histories[1]["val_acc"][-1]
    assert histories[0]["best_epoch"] is None and histories[0]["stopped_epoch"] is None


def test_full_batch_equals_manual_gradient_descent(moons):
    (X, y), val = moons
    model, twin = mlp(), mlp()
    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), (X, y), val, epochs=3)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            twin(torch.tensor(X)), torch.tensor(y)
        ).backward()
        opt.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_fit_learns_an_easy_problem():
    train, val = (
        blobs(120, centers=2, std=0.3, rng=0),
        blobs(100, centers=2, std=0.3, rng=1),
    )
    model = mlp()
    h = fit(
        model,
        torch.optim.Adam(model.parameters(), lr=1e-2),
        train,
        val,
        epochs=30,
        batch_size=16,
    )
    assert h["train_acc"][-1] == 1.0 and h["val_acc"][-1] >= 0.98
    assert h["train_loss"][-1] < 0.1 * h["train_loss"][0]


def test_early_stopping_restores_the_best_epoch(moons):
    train, val = moons
    model = mlp(width=64)
    es = EarlyStopping(patience=5)
    h = fit(
        model,
        torch.optim.Adam(model.parameters(), lr=0.05),
        train,
        val,
        epochs=300,
        batch_size=8,
        early_stopping=es,
    )
    assert h["stopped_epoch"] == h["epoch"][-1] < 300  # it did stop early
    assert h["stopped_epoch"] - h["best_epoch"] == 5
    best = h["best_epoch"] - 1  # history index of the best epoch
    assert h["val_loss"][best] == h["val_loss"].min()
    assert evaluate(model, *val)[0] == pytest.approx(h["val_loss"][best], rel=1e-12)


def test_augment_is_applied_to_training_batches_only(moons):
    train, val = moons
    calls = []

    def erase(xb, g):
        calls.append((xb.shape, isinstance(g, np.random.Generator)))
        return np.zeros_like(xb)

    model = mlp()
    h = fit(
        model,
        torch.optim.Adam(model.parameters(), lr=1e-2),
        train,
        val,
        epochs=3,
        batch_size=10,
        augment=erase,
    )
    assert len(calls) == 3 * 4 and all(shape == (10, 2) and ok for shape, ok in calls)
    clean = evaluate(model, *train)[0]
    blank = evaluate(model, np.zeros_like(train[0]), train[1])[0]
    assert (
        h["train_loss"][-1] == pytest.approx(clean, rel=1e-12)
        and abs(clean - blank) > 1e-3
    )
    # the model saw only blank inputs: an identity augmentation gives a different run
    twin = mlp()
    h_twin = fit(
        twin,
        torch.optim.Adam(twin.parameters(), lr=1e-2),
        train,
        val,
        epochs=3,
        batch_size=10,
        augment=lambda xb, g: xb,
    )
    plain = mlp()
    h_plain = fit(
        plain,
        torch.optim.Adam(plain.parameters(), lr=1e-2),
        train,
        val,
        epochs=3,
        batch_size=10,
    )
    np.testing.assert_array_equal(h_twin["train_loss"], h_plain["train_loss"])
    assert not np.allclose(h["train_loss"], h_plain["train_loss"])


def test_batch_norm_and_dropout_are_evaluated_in_eval_mode(moons):
    train, val = moons
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(16, 2),
    ).double()
    h = fit(
        model,
        torch.optim.Adam(model.parameters(), lr=1e-2),
        train,
        val,
        epochs=2,
        batch_size=8,
    )
    assert model.training  # fit leaves it in training mode...
    first, second = evaluate(model, *val), evaluate(model, *val)
    assert first == second and first[0] == pytest.approx(h["val_loss"][-1], rel=1e-12)


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(epochs=2, batch_size=0), "batch_size must be a positive integer"),
        (
            dict(epochs=2, train=(np.zeros((3, 2)), np.zeros(4, dtype=int))),
            "train: y must hold 3 integer labels",
        ),
        (
            dict(epochs=2, train=(np.zeros((3, 2)), np.zeros(3))),
            "train: y must hold 3 integer labels",
        ),
        (
            dict(epochs=2, val=(np.full((3, 2), np.nan), np.zeros(3, dtype=int))),
            "val: X contains NaN",
        ),
        (dict(epochs=2, val=np.zeros((3, 2))), "val must be a pair"),
        (
            dict(epochs=2, augment=lambda x, g: x[:1]),
            "augment must return an array of the batch's shape",
        ),
        (dict(epochs=2, early_stopping=3), "early_stopping must be an EarlyStopping"),
    ],
)
def test_fit_bad_input(moons, kw, fragment):
    train, val = moons
    model = mlp()
    args = dict(train=train, val=val)
    args.update(kw)
    with pytest.raises(ValueError) as info:
        fit(model, torch.optim.SGD(model.parameters(), lr=0.1), **args)
    assert fragment in str(info.value)


def test_evaluate_needs_parameters():
    with pytest.raises(ValueError, match="model has no parameters"):
        evaluate(torch.nn.ReLU(), np.zeros((2, 2)), np.zeros(2, dtype=int))
    assert math.isfinite(evaluate(mlp(), np.zeros((2, 2)), np.zeros(2, dtype=int))[0])


class RecordsMoves(torch.nn.Sequential):
    """An MLP that records every ``to()`` call."""

    def __init__(self):
        super().__init__(*mlp())
        self.moves = []

    def to(self, *args, **kwargs):
        self.moves.append(args or tuple(kwargs.values()))
        return super().to(*args, **kwargs)


def test_fit_moves_the_model_to_the_device(moons):
    train, val = moons
    model = RecordsMoves()
    fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        train,
        val,
        epochs=1,
        device=torch.device("cpu"),
    )
    assert model.moves and all(m == (torch.device("cpu"),) for m in model.moves)
    model = RecordsMoves()
    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), train, val, epochs=1)
    assert model.moves == []  # no device: the model trains where it is


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"
)
def test_fit_on_cuda_moves_the_model_and_matches_the_cpu(moons):
    """A CPU model trained with device='cuda' ends on the GPU with the CPU's curves."""
    train, val = moons
    histories, models = [], []
    for device in ("cpu", "cuda"):
        model = mlp()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        histories.append(
            fit(model, optimizer, train, val, epochs=3, batch_size=8, device=device)
        )
        models.append(model)
    assert all(p.device.type == "cuda" for p in models[1].parameters())
    for key in ("train_loss", "val_loss", "batch_loss"):
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-9)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-9, atol=1e-12)
