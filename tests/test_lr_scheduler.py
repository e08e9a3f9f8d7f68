"""labkit.lr_scheduler sets torch.optim.lr_scheduler's learning rates, epoch by epoch.

References: torch's schedulers driving a torch optimizer with the same parameter groups,
and the closed-form schedules written out independently below.
"""

import math

import numpy as np
import pytest
import torch

from labkit import lr_scheduler, optim
from labkit.nets import Parameter

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning"
)  # torch's step-order hints

EPOCHS = 60
LRS = [0.1, 0.03]  # two parameter groups with their own learning rates


def inverse_time(t):
    return 1 / (1 + 0.3 * t)


CASES = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("StepLR", dict(step_size=1)),
    ("MultiStepLR", dict(milestones=[5, 12, 12, 30], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.93)),
    ("CosineAnnealingLR", dict(T_max=20)),  # 60 epochs: down, back up, down again
    ("CosineAnnealingLR", dict(T_max=13, eta_min=1e-3)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.5, total_iters=17)),
    ("LambdaLR", dict(lr_lambda=inverse_time)),
    ("LambdaLR", dict(lr_lambda=[inverse_time, lambda t: 0.97**t * (t % 3 + 1)])),
]


def case_id(name, kw):
    """A test id without memory addresses: functions appear by name, so that every
    process of ``pytest -n`` collects the same ids."""

    def show(value):
        if callable(value):
            return value.__name__
        if isinstance(value, list):
            return "[" + ", ".join(show(v) for v in value) + "]"
        return repr(value)

    return name + "-" + ",".join(f"{k}={show(v)}" for k, v in kw.items())


IDS = [case_id(name, kw) for name, kw in CASES]


def closed_form(name, kw, group, lr0, t):
    """The schedule's formula at epoch t for a group whose initial lr is lr0."""
    if name == "StepLR":
        return lr0 * kw.get("gamma", 0.1) ** (t // kw["step_size"])
    if name == "MultiStepLR":
        return lr0 * kw.get("gamma", 0.1) ** sum(m <= t for m in kw["milestones"])
    if name == "ExponentialLR":
        return lr0 * kw["gamma"] ** t
    if name == "CosineAnnealingLR":
        eta_min = kw.get("eta_min", 0.0)
        return eta_min + (lr0 - eta_min) * (1 + math.cos(math.pi * t / kw["T_max"])) / 2
    if name == "LinearLR":
        start, end = kw.get("start_factor", 1 / 3), kw.get("end_factor", 1.0)
        n = kw.get("total_iters", 5)
        return lr0 * (start + (end - start) * min(t, n) / n)
    lambdas = (
        kw["lr_lambda"] if isinstance(kw["lr_lambda"], list) else [kw["lr_lambda"]] * 2
    )
    return lr0 * lambdas[group](t)


def make_optimizers(lrs=LRS):
    lab = optim.SGD([{"params": [Parameter(np.ones(2))], "lr": lr} for lr in lrs])
    tor = torch.optim.SGD(
        [{"params": [torch.nn.Parameter(torch.ones(2))], "lr": lr} for lr in lrs]
    )
    return lab, tor


def run(schedulers, optimizer, epochs=EPOCHS):
    """Learning rates (epochs + 1, groups) the optimizer sees, stepping each scheduler
    per epoch."""
    history = [[group["lr"] for group in optimizer.param_groups]]
    for _ in range(epochs):
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
        history.append([group["lr"] for group in optimizer.param_groups])
        assert schedulers[-1].get_last_lr() == history[-1]
    return np.array(history)


def make_both(name, kw, lab_opt, tor_opt, **extra):
    return (
        getattr(lr_scheduler, name)(lab_opt, **kw, **extra),
        getattr(torch.optim.lr_scheduler, name)(tor_opt, **kw, **extra),
    )


@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_lr_sequence_equals_torch(name, kw):
    lab_opt, tor_opt = make_optimizers()
    lab, tor = make_both(name, kw, lab_opt, tor_opt)
    assert lab.get_last_lr() == pytest.approx(tor.get_last_lr(), rel=1e-15)
    np.testing.assert_allclose(
        run([lab], lab_opt), run([tor], tor_opt), rtol=1e-13, atol=1e-18
    )
    assert lab.last_epoch == tor.last_epoch == EPOCHS
    assert lab.base_lrs == tor.base_lrs == LRS
    assert [g["initial_lr"] for g in lab_opt.param_groups] == LRS


@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_lr_sequence_equals_closed_form(name, kw):
    lab_opt, _ = make_optimizers()
    lab = getattr(lr_scheduler, name)(lab_opt, **kw)
    expected = [
        [closed_form(name, kw, i, lr0, t) for i, lr0 in enumerate(LRS)]
        for t in range(EPOCHS + 1)
    ]
    np.testing.assert_allclose(run([lab], lab_opt), expected, rtol=1e-12, atol=1e-15)


def test_inverse_time_decay_by_lambda():
    """The schedule the course calls inverse-time decay: lr0 / (1 + decay_rate * t)."""
    lab_opt, _ = make_optimizers([0.5])
    lrs = run(
        [lr_scheduler.LambdaLR(lab_opt, lambda t: 1 / (1 + 0.1 * t))],
        lab_opt,
        epochs=10,
    )
    np.testing.assert_allclose(
        lrs[:, 0], [0.5 / (1 + 0.1 * t) for t in range(11)], rtol=1e-15
    )
    assert lrs[10, 0] == pytest.approx(
        0.25, rel=1e-15
    )  # half the rate after 1 / decay_rate epochs


def test_step_lr_by_hand():
    lab_opt, _ = make_optimizers([1.0])
    lrs = run([lr_scheduler.StepLR(lab_opt, step_size=2, gamma=0.5)], lab_opt, epochs=5)
    assert lrs[:, 0].tolist() == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_cosine_reaches_eta_min_at_T_max():
    lab_opt, _ = make_optimizers([0.2])
    lrs = run(
        [lr_scheduler.CosineAnnealingLR(lab_opt, T_max=8, eta_min=0.01)],
        lab_opt,
        epochs=8,
    )
    assert lrs[4, 0] == pytest.approx(
        0.105, rel=1e-14
    )  # half way: the mean of 0.2 and 0.01
    assert lrs[8, 0] == pytest.approx(0.01, rel=1e-14)


CHAINS = [
    [
        ("LinearLR", dict(start_factor=0.1, total_iters=10)),
        ("ExponentialLR", dict(gamma=0.95)),
    ],
    [
        ("StepLR", dict(step_size=10, gamma=0.5)),
        ("MultiStepLR", dict(milestones=[15, 35])),
    ],
    [
        ("LinearLR", dict(start_factor=0.2, total_iters=8)),
        ("CosineAnnealingLR", dict(T_max=50)),
    ],
    [("ExponentialLR", dict(gamma=0.9)), ("LambdaLR", dict(lr_lambda=inverse_time))],
]


@pytest.mark.parametrize(
    "chain", CHAINS, ids=["+".join(n for n, _ in c) for c in CHAINS]
)
def test_two_schedulers_on_one_optimizer_compose_like_torch(chain):
    """Factors multiply (a warm-up then a decay); LambdaLR overrides, as in torch."""
    lab_opt, tor_opt = make_optimizers()
    pairs = [make_both(name, kw, lab_opt, tor_opt) for name, kw in chain]
    lab_lrs = run([lab for lab, _ in pairs], lab_opt)
    tor_lrs = run([tor for _, tor in pairs], tor_opt)
    np.testing.assert_allclose(lab_lrs, tor_lrs, rtol=1e-13, atol=1e-18)
    assert [
        g["initial_lr"] for g in lab_opt.param_groups
    ] == LRS  # the first scheduler's


@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_resume_from_last_epoch_like_torch(name, kw):
    """last_epoch=k continues a schedule from the groups' initial_lr and current lr."""
    lab_opt, tor_opt = make_optimizers()
    for opt in (lab_opt, tor_opt):
        for group, lr in zip(opt.param_groups, [0.017, 0.004]):
            group["initial_lr"], group["lr"] = group["lr"], lr
    lab, tor = make_both(name, kw, lab_opt, tor_opt, last_epoch=9)
    assert lab.last_epoch == tor.last_epoch == 10
    np.testing.assert_allclose(
        run([lab], lab_opt, 30), run([tor], tor_opt, 30), rtol=1e-13, atol=1e-18
    )


def test_scheduled_lr_drives_the_optimizer():
    """With a constant gradient 1, SGD moves each epoch by that epoch's learning
    rate."""
    p, tp = (
        Parameter(np.zeros(1)),
        torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)),
    )
    lab_opt, tor_opt = optim.SGD([p], lr=0.1), torch.optim.SGD([tp], lr=0.1)
    lab = lr_scheduler.CosineAnnealingLR(lab_opt, T_max=10)
    tor = torch.optim.lr_scheduler.CosineAnnealingLR(tor_opt, T_max=10)
    used = []
    for _ in range(10):
        used.append(lab.get_last_lr()[0])
        p.grad, tp.grad = np.ones(1), torch.ones(1, dtype=torch.float64)
        lab_opt.step()
        tor_opt.step()
        lab.step()
        tor.step()
    np.testing.assert_allclose(p.data, -np.sum(used), rtol=1e-14)
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-14)


def test_get_last_lr_is_a_copy():
    lab_opt, _ = make_optimizers()
    scheduler = lr_scheduler.ExponentialLR(lab_opt, gamma=0.5)
    scheduler.get_last_lr()[0] = 123.0
    assert scheduler.get_last_lr() == LRS and lab_opt.param_groups[0]["lr"] == LRS[0]


def test_existing_initial_lr_is_kept():
    lab_opt, _ = make_optimizers()
    lab_opt.param_groups[0]["initial_lr"] = 0.5
    scheduler = lr_scheduler.StepLR(lab_opt, step_size=3)
    assert scheduler.base_lrs == [0.5, LRS[1]]


# ---------------------------------------------------------------------------- bad input

BAD = [
    ("StepLR", dict(step_size=0), "step_size"),
    ("StepLR", dict(step_size=2.5), "step_size"),
    ("StepLR", dict(step_size=True), "step_size"),
    ("StepLR", dict(step_size=3, gamma=-0.1), "gamma"),
    ("StepLR", dict(step_size=3, gamma=math.nan), "gamma"),
    ("StepLR", dict(step_size=3, gamma=0.0), "gamma"),
    ("MultiStepLR", dict(milestones=[]), "milestones"),
    ("MultiStepLR", dict(milestones=[5, 3]), "milestones"),
    ("MultiStepLR", dict(milestones=[0, 3]), "milestones"),
    ("MultiStepLR", dict(milestones=[2.5]), "milestones"),
    ("MultiStepLR", dict(milestones=[3], gamma=math.inf), "gamma"),
    ("ExponentialLR", dict(gamma=-0.5), "gamma"),
    ("ExponentialLR", dict(gamma="0.9"), "gamma"),
    ("CosineAnnealingLR", dict(T_max=0), "T_max"),
    ("CosineAnnealingLR", dict(T_max=10.0), "T_max"),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=-1e-3), "eta_min"),
    ("LinearLR", dict(start_factor=0.0), "start_factor"),
    ("LinearLR", dict(start_factor=1.5), "start_factor"),
    ("LinearLR", dict(end_factor=-0.1), "end_factor"),
    ("LinearLR", dict(end_factor=1.1), "end_factor"),
    ("LinearLR", dict(total_iters=0), "total_iters"),
    ("LambdaLR", dict(lr_lambda=0.5), "lr_lambda"),
    ("LambdaLR", dict(lr_lambda=[inverse_time]), "lr_lambda"),
    ("LambdaLR", dict(lr_lambda=[inverse_time, None]), "lr_lambda"),
    ("ExponentialLR", dict(gamma=0.9, last_epoch=-2), "last_epoch"),
    ("ExponentialLR", dict(gamma=0.9, last_epoch=1.0), "last_epoch"),
    ("ExponentialLR", dict(gamma=0.9, last_epoch=5), "initial_lr"),
]


@pytest.mark.parametrize("name, kw, match", BAD, ids=[case_id(n, k) for n, k, _ in BAD])
def test_bad_argument_raises(name, kw, match):
    lab_opt, _ = make_optimizers()
    with pytest.raises(ValueError, match=match):
        getattr(lr_scheduler, name)(lab_opt, **kw)


@pytest.mark.parametrize("optimizer", [None, "sgd", "torch"])
def test_non_labkit_optimizer_raises(optimizer):
    if optimizer == "torch":
        optimizer = make_optimizers()[1]
    with pytest.raises(ValueError, match="optimizer"):
        lr_scheduler.StepLR(optimizer, step_size=3)
    with pytest.raises(ValueError, match="optimizer"):
        lr_scheduler.LambdaLR(optimizer, inverse_time)
