"""labkit.optim follows torch.optim step for step, on any CPU.

Reference: torch.optim in float64, on a non-quadratic loss (a Rosenbrock valley, a
log-sum-exp coupling several parameters of different shapes, a double well on a 0-d
parameter), gradients by torch autograd.

torch picks its vector kernels by CPU (``ATEN_CPU_CAPABILITY``: default, AVX2,
AVX-512), each rounding the last bit of a step its own way; so two kinds of comparison:

- Teacher forcing, the tight check. At every step of torch's trajectory, labkit is
  given torch's weights, optimizer state and gradient, takes one step, and must land on
  torch's next weights and state to ``STEP_RTOL``. One step is well conditioned: the two
  differ by rounding only, a few units in the last place, whatever the CPU.
- Free running, the end-to-end check. Both optimizers run on their own for ``STEPS``
  steps. Where a coordinate oscillates about a minimum, last-bit differences grow
  exponentially, so the tolerance is measured from the conditioning, not guessed:
  torch runs again with a relative perturbation of ``ROUNDING`` (the size of one step's
  rounding difference) injected into the weights at every step, and at each step labkit
  may differ from torch by ``MARGIN`` times the spread this has produced so far (or by
  ``FLOOR``, where that is larger). On this grid labkit's own divergence is at
  most a quarter of that spread (measured with the default and AVX2 kernels); a wrong
  update rule is off by ~1e-3 after a step and fails both checks.
"""

import math

import numpy as np
import pytest
import torch

from labkit import optim
from labkit.nets import Parameter

NAMES = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"]
STEPS = 200
# One step from the same state: float64 rounding is 1.1e-16; torch's fused multiply-adds
# and vector kernels differ from numpy's by a few of those per operation (8e-16 relative
# measured on AVX-512); 1e-13 leaves 100x room for the few operations of a step.
STEP_RTOL = 1e-13
ROUNDING = (
    4 * np.finfo(np.float64).eps
)  # the perturbation injected per free-running step
MARGIN = 100.0
FLOOR = 1e-12  # the free-running tolerance is never tighter

_rng = np.random.default_rng(0)
INIT = [
    np.array([-0.8, 1.3, 0.4]),  # x: Rosenbrock variables
    0.5 * _rng.standard_normal((4, 3)),  # W
    0.5 * _rng.standard_normal(4),  # b
    np.array(0.3),  # s: a 0-d parameter in a double well
]
U = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)


def loss_fn(x, W, b, s):
    """Rosenbrock(x) + logsumexp(W (x + u) + b) + |W|^2/2 + |b|^2/2 + (s^2 - 1)^2."""
    rosenbrock = (10 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
    coupling = torch.logsumexp(W @ (x + U) + b, dim=0)
    return (
        rosenbrock
        + coupling
        + 0.5 * (W**2).sum()
        + 0.5 * (b**2).sum()
        + (s**2 - 1) ** 2
    )


def torch_grads(arrays, sign=1.0):
    """Gradients of sign * loss at numpy arrays, by torch autograd in float64."""
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    (sign * loss_fn(*tensors)).backward()
    return [t.grad.numpy() for t in tensors]


def loss_at(params):
    return loss_fn(
        *[torch.tensor(p if isinstance(p, np.ndarray) else p.data) for p in params]
    ).item()


def make_pair(name, groups=None, **kwargs):
    """Same weights and options: (labkit params, opt, torch params, torch opt)."""
    lab = [Parameter(a) for a in INIT]
    tor = [torch.nn.Parameter(torch.tensor(a)) for a in INIT]
    if groups is None:
        lab_arg, tor_arg = lab, tor
    else:  # groups: list of (indices, options)
        lab_arg = [{"params": [lab[i] for i in idx], **opts} for idx, opts in groups]
        tor_arg = [{"params": [tor[i] for i in idx], **opts} for idx, opts in groups]
    lab_opt = getattr(optim, name)(lab_arg, **kwargs)
    tor_opt = getattr(torch.optim, name)(tor_arg, **kwargs)
    return lab, lab_opt, tor, tor_opt


def torch_step(tor, tor_opt, sign=1.0, no_grad=()):
    """One torch step on sign * loss; parameters in ``no_grad`` get no gradient."""
    tor_opt.zero_grad()
    (sign * loss_fn(*tor)).backward()
    for i in no_grad:
        tor[i].grad = None
    tor_opt.step()


def run_pair(lab, lab_opt, tor, tor_opt, sign=1.0, steps=STEPS, no_grad=()):
    """Step both optimizers ``steps`` times; return both trajectories, each of shape
    (steps + 1, n_weights)."""
    lab_traj, tor_traj = [flat(lab)], [flat(tor)]
    for _ in range(steps):
        lab_opt.zero_grad()
        for i, (p, g) in enumerate(zip(lab, torch_grads([p.data for p in lab], sign))):
            p.grad = None if i in no_grad else g
        lab_opt.step()
        torch_step(tor, tor_opt, sign, no_grad)
        lab_traj.append(flat(lab))
        tor_traj.append(flat(tor))
    return np.array(lab_traj), np.array(tor_traj)


def perturbed_torch_run(name, groups=None, sign=1.0, steps=STEPS, **kwargs):
    """Torch's trajectory with a relative ``ROUNDING`` perturbation of the weights at
    every step (fixed seed): how far rounding-sized differences carry on this run."""
    _, _, tor, tor_opt = make_pair(name, groups, **kwargs)
    noise = np.random.default_rng(1)
    traj = [flat(tor)]
    for _ in range(steps):
        torch_step(tor, tor_opt, sign)
        with torch.no_grad():
            for p in tor:
                jitter = noise.uniform(-ROUNDING, ROUNDING, size=tuple(p.shape))
                p.mul_(1 + torch.from_numpy(jitter))
        traj.append(flat(tor))
    return np.array(traj)


def assert_trajectories_close(lab_traj, tor_traj, perturbed_traj):
    """Step by step, labkit within ``MARGIN`` times the rounding spread torch's own
    trajectory has reached by then (relative to the largest weight, plus one)."""
    scale = np.abs(tor_traj).max(axis=1, keepdims=True) + 1.0
    spread = np.maximum.accumulate(
        (np.abs(perturbed_traj - tor_traj) / scale).max(axis=1, keepdims=True)
    )
    tol = np.maximum(FLOOR, MARGIN * spread)
    bad = np.abs(lab_traj - tor_traj) > tol * scale
    assert not bad.any(), (
        f"first off at step {np.argwhere(bad)[0][0]}: labkit {lab_traj[bad][0]!r}, "
        f"torch {tor_traj[bad][0]!r}, tolerance {tol[bad.any(axis=1)][0, 0]:.1e}"
    )


def flat(params):
    return np.concatenate(
        [
            np.ravel(p.data.detach().numpy() if torch.is_tensor(p) else p.data)
            for p in params
        ]
    )


def assert_close_to_step(actual, expected, scale, err_msg=""):
    """|actual - expected| <= STEP_RTOL * (|expected| + scale), elementwise.

    ``scale`` is the largest magnitude the quantity has had so far: a buffer that has
    decayed by cancellation (a momentum near a minimum) carries the rounding of its
    larger inputs."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected)
    if not np.all(np.abs(actual - expected) <= STEP_RTOL * (np.abs(expected) + scale)):
        np.testing.assert_allclose(
            actual, expected, rtol=STEP_RTOL, atol=STEP_RTOL * scale, err_msg=err_msg
        )


def assert_states_match(lab, lab_opt, tor, tor_opt, scales):
    """Same state names for every parameter, same values (step counts and buffers);
    ``scales`` maps (parameter index, name) to the largest magnitude seen so far."""
    for i, (p, tp) in enumerate(zip(lab, tor)):
        lab_state, tor_state = (
            dict(lab_opt.state).get(p, {}),
            dict(tor_opt.state).get(tp, {}),
        )
        assert set(lab_state) == set(tor_state)
        for key, value in tor_state.items():
            expected = value.numpy()
            scale = scales[i, key] = max(
                scales.get((i, key), 0.0), np.abs(expected).max()
            )
            assert_close_to_step(lab_state[key], expected, scale, err_msg=key)


def load_from_torch(lab, lab_opt, tor, tor_opt):
    """Teacher forcing: give labkit torch's weights and optimizer state (copies)."""
    for p, tp in zip(lab, tor):
        p.data[...] = tp.detach().numpy()
        tor_state = dict(tor_opt.state).get(tp)
        if tor_state is None:
            lab_opt.state.pop(p, None)
            continue
        lab_opt.state[p] = {
            key: int(value.item()) if key == "step" else value.numpy().copy()
            for key, value in tor_state.items()
        }


def teacher_forced(lab, lab_opt, tor, tor_opt, sign=1.0, steps=STEPS, no_grad=()):
    """Every step of torch's trajectory, retaken by labkit from torch's weights and
    state with torch's gradient, must land on torch's next weights and state."""
    scales = {}
    for step in range(steps):
        load_from_torch(lab, lab_opt, tor, tor_opt)
        torch_step(tor, tor_opt, sign, no_grad)
        lab_opt.zero_grad()
        for i, (p, tp) in enumerate(zip(lab, tor)):
            p.grad = None if i in no_grad else tp.grad.numpy().copy()
        lab_opt.step()
        for i, (p, tp) in enumerate(zip(lab, tor)):
            expected = tp.detach().numpy()
            scale = scales[i] = max(scales.get(i, 0.0), np.abs(expected).max())
            assert_close_to_step(p.data, expected, scale, f"step {step}, param {i}")
        assert_states_match(lab, lab_opt, tor, tor_opt, scales)


# Learning rates keep most runs where the dynamics contract; where a coordinate
# oscillates about its minimum (sign-like RMSprop steps, large SGD momentum), the
# free-running tolerance grows with the measured rounding spread; teacher forcing's not.
GRID = {
    "SGD": [
        dict(lr=0.01),
        dict(lr=0.002, momentum=0.9),
        dict(lr=0.004, momentum=0.9, dampening=0.5),
        dict(lr=0.002, momentum=0.9, nesterov=True),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.005, momentum=0.8, weight_decay=0.05, nesterov=True),
        dict(lr=0.01, maximize=True),
        dict(lr=0.002, momentum=0.9, maximize=True, weight_decay=0.01),
    ],
    "Adam": [
        dict(lr=0.01),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, betas=(0.85, 0.995)),
        dict(lr=0.01, eps=1e-3),
        dict(lr=0.01, maximize=True),
        dict(lr=0.01, amsgrad=True, weight_decay=0.1, maximize=True),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    ],
    "AdamW": [
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, maximize=True, betas=(0.95, 0.98)),
    ],
    "RMSprop": [
        dict(lr=1e-4),
        dict(lr=1e-4, momentum=0.9),
        dict(lr=3e-5, centered=True),
        dict(lr=1e-4, centered=True, momentum=0.5),
        dict(lr=1e-4, weight_decay=0.1),
        dict(lr=1e-4, maximize=True),
        dict(lr=3e-3, alpha=0.9, eps=1e-4),
    ],
    "Adagrad": [
        dict(lr=0.1),
        dict(lr=0.1, lr_decay=0.01),
        dict(lr=0.1, weight_decay=0.1),
        dict(lr=0.1, initial_accumulator_value=0.1),
        dict(lr=0.1, eps=1e-6),
        dict(lr=0.1, maximize=True),
    ],
    "Adadelta": [
        dict(),
        dict(rho=0.95),
        dict(weight_decay=0.1),
        dict(eps=1e-4),
        dict(maximize=True),
        dict(lr=0.5),
    ],
}
CASES = [(name, opts) for name in NAMES for opts in GRID[name]]


IDS = [f"{n}-{o}" for n, o in CASES]


def _sign(opts):
    """maximize climbs -loss: the same valley, climbed."""
    return -1.0 if opts.get("maximize") else 1.0


@pytest.mark.parametrize("name, opts", CASES, ids=IDS)
def test_each_step_matches_torch(name, opts):
    """Each of 200 steps, taken from torch's weights and state, lands on torch's."""
    teacher_forced(*make_pair(name, **opts), sign=_sign(opts))


@pytest.mark.parametrize("name, opts", CASES, ids=IDS)
def test_trajectory_matches_torch(name, opts):
    """200 free steps follow torch's trajectory within its own rounding spread."""
    sign = _sign(opts)
    lab, lab_opt, tor, tor_opt = make_pair(name, **opts)
    lab_traj, tor_traj = run_pair(lab, lab_opt, tor, tor_opt, sign)
    assert np.all(np.isfinite(tor_traj))
    assert (
        np.abs(tor_traj[-1] - tor_traj[0]).max() > 1e-2
    )  # the weights really moved ...
    assert loss_at(lab) < loss_at(INIT)  # ... downhill (maximize climbs -loss)
    assert_trajectories_close(
        lab_traj, tor_traj, perturbed_torch_run(name, sign=sign, **opts)
    )


GROUP_OPTIONS = {
    "SGD": ({"lr": 0.004, "momentum": 0.5}, {"lr": 0.02, "nesterov": True}),
    "Adam": ({"lr": 0.03, "betas": (0.8, 0.9)}, {"lr": 0.003, "amsgrad": True}),
    "AdamW": ({"lr": 0.03}, {"lr": 0.003, "weight_decay": 0.5}),
    "RMSprop": ({"lr": 3e-3, "centered": True}, {"lr": 1e-3, "momentum": 0.0}),
    "Adagrad": ({"lr": 0.2}, {"lr": 0.05, "lr_decay": 0.1}),
    "Adadelta": ({"lr": 2.0}, {"lr": 0.5, "rho": 0.8}),
}
DEFAULTS_FOR_GROUPS = {
    "SGD": dict(lr=0.01, momentum=0.9),
    "Adam": {},
    "AdamW": {},
    "RMSprop": dict(momentum=0.9),
    "Adagrad": {},
    "Adadelta": {},
}


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_with_own_options_match_torch(name):
    """Groups override some options and inherit the rest from the constructor, as in
    torch."""
    first, second = GROUP_OPTIONS[name]
    groups = [([0, 3], first), ([1, 2], second)]
    lab, lab_opt, tor, tor_opt = make_pair(name, groups, **DEFAULTS_FOR_GROUPS[name])
    for lab_group, tor_group in zip(lab_opt.param_groups, tor_opt.param_groups):
        assert {
            k: v for k, v in lab_group.items() if k != "params"
        }.items() <= tor_group.items()
    teacher_forced(lab, lab_opt, tor, tor_opt)
    lab, lab_opt, tor, tor_opt = make_pair(name, groups, **DEFAULTS_FOR_GROUPS[name])
    lab_traj, tor_traj = run_pair(lab, lab_opt, tor, tor_opt)
    assert_trajectories_close(
        lab_traj,
        tor_traj,
        perturbed_torch_run(name, groups, **DEFAULTS_FOR_GROUPS[name]),
    )


def test_changing_group_lr_mid_run_matches_torch():
    """Writing ``group["lr"]`` between steps (what a scheduler does) acts at the next
    step."""
    lab, lab_opt, tor, tor_opt = make_pair("SGD", lr=0.01, momentum=0.9)
    teacher_forced(lab, lab_opt, tor, tor_opt, steps=50)
    lab_opt.param_groups[0]["lr"] = tor_opt.param_groups[0]["lr"] = 0.002
    teacher_forced(lab, lab_opt, tor, tor_opt, steps=50)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_equal_torch(name):
    """Every default hyper-parameter equals torch 2.13's, and the group keys are
    torch's."""
    lab_group = getattr(optim, name)([Parameter(np.ones(2))]).param_groups[0]
    tor_group = getattr(torch.optim, name)(
        [torch.nn.Parameter(torch.ones(2))]
    ).param_groups[0]
    options = {k: v for k, v in lab_group.items() if k != "params"}
    assert options.items() <= tor_group.items()
    torch_only = {"foreach", "fused", "capturable", "differentiable"}
    assert set(tor_group) - set(lab_group) <= torch_only


def test_documented_defaults():
    """The defaults the course quotes, by hand."""
    p = [Parameter(np.ones(2))]
    assert optim.SGD(p).defaults["lr"] == 1e-3
    assert (
        optim.Adam(p).defaults["betas"] == (0.9, 0.999)
        and optim.Adam(p).defaults["eps"] == 1e-8
    )
    assert optim.AdamW(p).defaults["weight_decay"] == 1e-2
    assert (
        optim.RMSprop(p).defaults["alpha"] == 0.99
        and optim.RMSprop(p).defaults["lr"] == 1e-2
    )
    assert optim.Adagrad(p).defaults["eps"] == 1e-10
    assert (
        optim.Adadelta(p).defaults["lr"] == 1.0
        and optim.Adadelta(p).defaults["eps"] == 1e-6
    )


# The state each optimizer keeps, by name, with the options that create every buffer.
EXPECTED_STATE = {
    "SGD": (dict(momentum=0.9), {"momentum_buffer"}),
    "Adam": (dict(amsgrad=True), {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
    "AdamW": (dict(), {"step", "exp_avg", "exp_avg_sq"}),
    "RMSprop": (
        dict(momentum=0.9, centered=True),
        {"step", "square_avg", "momentum_buffer", "grad_avg"},
    ),
    "Adagrad": (dict(), {"step", "sum"}),
    "Adadelta": (dict(), {"step", "square_avg", "acc_delta"}),
}


@pytest.mark.parametrize("name", NAMES)
def test_state_names_are_torchs(name):
    opts, expected = EXPECTED_STATE[name]
    lab, lab_opt, tor, tor_opt = make_pair(name, **opts)
    run_pair(lab, lab_opt, tor, tor_opt, steps=3)
    for p, tp in zip(lab, tor):
        assert set(lab_opt.state[p]) == set(tor_opt.state[tp]) == expected
        if "step" in expected:
            assert lab_opt.state[p]["step"] == 3


@pytest.mark.parametrize("name, opts", [("SGD", {}), ("RMSprop", {}), ("Adam", {})])
def test_buffers_absent_without_their_option(name, opts):
    """No momentum, no momentum_buffer; no amsgrad, no max_exp_avg_sq; as in torch."""
    lab, lab_opt, tor, tor_opt = make_pair(name, **opts)
    run_pair(lab, lab_opt, tor, tor_opt, steps=2)
    for p, tp in zip(lab, tor):
        assert set(dict(lab_opt.state).get(p, {})) == set(
            dict(tor_opt.state).get(tp, {})
        )
    assert not {"momentum_buffer", "max_exp_avg_sq", "grad_avg"} & set(
        lab_opt.state[lab[0]]
    )


@pytest.mark.parametrize("name", NAMES)
def test_params_without_grad_are_skipped(name):
    """A parameter whose grad is None is not moved and gets no state (Adagrad's is from
    init)."""
    lab, lab_opt, tor, tor_opt = make_pair(name, **EXPECTED_STATE[name][0])
    teacher_forced(lab, lab_opt, tor, tor_opt, steps=30, no_grad=(2, 3))
    lab, lab_opt, tor, tor_opt = make_pair(name, **EXPECTED_STATE[name][0])
    run_pair(lab, lab_opt, tor, tor_opt, steps=30, no_grad=(2, 3))
    np.testing.assert_array_equal(lab[2].data, INIT[2])
    np.testing.assert_array_equal(lab[3].data, INIT[3])
    if name == "Adagrad":
        assert lab_opt.state[lab[3]]["step"] == 0
    else:
        assert lab[3] not in lab_opt.state


@pytest.mark.parametrize("name", NAMES)
def test_step_updates_in_place_and_keeps_grad(name):
    p = Parameter(np.array([1.0, -2.0]))
    data = p.data
    grad = np.array([0.5, 0.25])
    p.grad = grad.copy()
    getattr(optim, name)([p], lr=0.1).step()
    assert p.data is data
    assert not np.array_equal(p.data, [1.0, -2.0])
    np.testing.assert_array_equal(
        p.grad, grad
    )  # the optimizer never edits the gradient


def test_sgd_by_hand():
    """Two steps of SGD with momentum 0.9, dampening 0.5, lr 0.1, on g = 1 then g =
    2."""
    p = Parameter(np.array([0.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    p.grad = np.array([1.0])
    opt.step()  # b = g = 1 (no dampening on the first step); p = -0.1
    p.grad = np.array([2.0])
    opt.step()  # b = 0.9 * 1 + 0.5 * 2 = 1.9; p = -0.1 - 0.19
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], [1.9], rtol=1e-15)
    np.testing.assert_allclose(p.data, [-0.29], rtol=1e-15)


def test_adam_first_step_is_lr_times_sign():
    """With bias correction, Adam's first step is lr * g / (|g| + eps), about lr *
    sign(g)."""
    p = Parameter(np.array([0.0, 0.0]))
    p.grad = np.array([3.0, -1e-3])
    optim.Adam([p], lr=0.01, eps=1e-8).step()
    np.testing.assert_allclose(
        p.data, -0.01 * p.grad / (np.abs(p.grad) + 1e-8), rtol=1e-12
    )


def test_zero_grad_sets_to_none_like_torch():
    lab, lab_opt, tor, tor_opt = make_pair("SGD", lr=0.1)
    for p, g in zip(lab, torch_grads(INIT)):
        p.grad = g
    loss_fn(*tor).backward()
    lab_opt.zero_grad()
    tor_opt.zero_grad()
    assert all(p.grad is None for p in lab) and all(p.grad is None for p in tor)


def test_zero_grad_set_to_none_false_zeros_in_place():
    lab, lab_opt, tor, tor_opt = make_pair("SGD", lr=0.1)
    grads = torch_grads(INIT)
    for p, g in zip(lab, grads):
        p.grad = g
    lab[3].grad = None
    lab_opt.zero_grad(set_to_none=False)
    for p, g in zip(lab[:3], grads):
        assert p.grad is g and not g.any()
    assert lab[3].grad is None


def test_step_returns_closure_loss():
    p = Parameter(np.array([2.0]))
    opt = optim.SGD([p], lr=0.25)
    calls = []

    def closure():
        opt.zero_grad()
        p.grad = 2 * p.data  # d/dp p^2
        calls.append(1)
        return float(p.data[0] ** 2)

    assert opt.step(closure) == 4.0
    assert len(calls) == 1
    np.testing.assert_allclose(p.data, [1.0], rtol=1e-15)
    assert opt.step() is None


def test_add_param_group_later_matches_torch():
    lab, lab_opt, tor, tor_opt = make_pair("Adam", [([0, 1], {})], lr=0.01)
    lab_opt.add_param_group({"params": [lab[2], lab[3]], "lr": 0.05})
    tor_opt.add_param_group({"params": [tor[2], tor[3]], "lr": 0.05})
    teacher_forced(lab, lab_opt, tor, tor_opt, steps=50)


def test_accepts_generators_and_a_single_parameter_per_group():
    params = [Parameter(np.ones(3)), Parameter(np.ones(2))]
    opt = optim.SGD(p for p in params)
    assert opt.param_groups[0]["params"] == params
    opt = optim.SGD([{"params": params[0]}, {"params": params[1], "lr": 0.5}])
    assert [g["params"] for g in opt.param_groups] == [[params[0]], [params[1]]]


def test_repr_lists_groups():
    text = repr(optim.SGD([Parameter(np.ones(1))], lr=0.5))
    assert (
        text.startswith("SGD (") and "Parameter Group 0" in text and "lr: 0.5" in text
    )


# ---------------------------------------------------------------------------- bad input


def _p():
    return [Parameter(np.ones(2))]


BAD_HYPER = [
    ("SGD", dict(lr=-0.1), "lr"),
    ("SGD", dict(lr=math.nan), "lr"),
    ("SGD", dict(lr=math.inf), "lr"),
    ("SGD", dict(lr="0.1"), "lr"),
    ("SGD", dict(momentum=-0.5), "momentum"),
    ("SGD", dict(dampening=1.5), "dampening"),
    ("SGD", dict(weight_decay=-1e-4), "weight_decay"),
    ("SGD", dict(nesterov=True), "nesterov"),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1), "nesterov"),
    ("SGD", dict(maximize="yes"), "maximize"),
    ("SGD", dict(nesterov=1), "nesterov"),
    ("Adam", dict(lr=-1e-3), "lr"),
    ("Adam", dict(eps=-1e-8), "eps"),
    ("Adam", dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    ("Adam", dict(betas=(-0.1, 0.999)), r"betas\[0\]"),
    ("Adam", dict(betas=(0.9, 1.0)), r"betas\[1\]"),
    ("Adam", dict(betas=(0.9, math.nan)), r"betas\[1\]"),
    ("Adam", dict(betas=0.9), "betas"),
    ("Adam", dict(betas=(0.9, 0.99, 0.999)), "betas"),
    ("Adam", dict(weight_decay=-0.1), "weight_decay"),
    ("Adam", dict(amsgrad=None), "amsgrad"),
    ("AdamW", dict(lr=-1e-3), "lr"),
    ("AdamW", dict(betas=(0.9, 1.5)), r"betas\[1\]"),
    ("AdamW", dict(weight_decay=-1e-2), "weight_decay"),
    ("AdamW", dict(eps=-1.0), "eps"),
    ("RMSprop", dict(lr=-0.01), "lr"),
    ("RMSprop", dict(alpha=-0.1), "alpha"),
    ("RMSprop", dict(alpha=1.5), "alpha"),
    ("RMSprop", dict(eps=-1e-8), "eps"),
    ("RMSprop", dict(momentum=-0.9), "momentum"),
    ("RMSprop", dict(weight_decay=-1.0), "weight_decay"),
    ("RMSprop", dict(centered="no"), "centered"),
    ("Adagrad", dict(lr=-0.01), "lr"),
    ("Adagrad", dict(lr_decay=-0.1), "lr_decay"),
    ("Adagrad", dict(weight_decay=-0.1), "weight_decay"),
    ("Adagrad", dict(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    ("Adagrad", dict(eps=-1e-10), "eps"),
    ("Adadelta", dict(lr=-1.0), "lr"),
    ("Adadelta", dict(rho=1.1), "rho"),
    ("Adadelta", dict(rho=-0.1), "rho"),
    ("Adadelta", dict(eps=-1e-6), "eps"),
    ("Adadelta", dict(weight_decay=-0.1), "weight_decay"),
]


@pytest.mark.parametrize(
    "name, kwargs, match", BAD_HYPER, ids=[f"{n}-{k}" for n, k, _ in BAD_HYPER]
)
def test_bad_hyper_parameter_raises(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(optim, name)(_p(), **kwargs)


@pytest.mark.parametrize(
    "name, kwargs, match", BAD_HYPER, ids=[f"group-{n}-{k}" for n, k, _ in BAD_HYPER]
)
def test_bad_hyper_parameter_in_a_group_raises(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(optim, name)([{"params": _p()}, {"params": _p(), **kwargs}])


@pytest.mark.parametrize(
    "params, match",
    [
        ([], "empty parameter list"),
        (Parameter(np.ones(2)), "iterable"),
        (5, "iterable"),
        ({"params": _p()}, "iterable"),
        ([np.ones(2)], "Parameter"),
        ([torch.ones(2, requires_grad=True)], "Parameter"),
        ([{"lr": 0.1}], "'params' key"),
        ([{"params": []}], "empty"),
        ([{"params": _p()}, _p()[0]], "dict"),
    ],
    ids=[
        "empty",
        "single-parameter",
        "int",
        "bare-dict",
        "ndarray",
        "torch-tensor",
        "group-without-params",
        "empty-group",
        "mixed-list",
    ],
)
def test_bad_params_raise(params, match):
    with pytest.raises(ValueError, match=match):
        optim.SGD(params)


def test_parameter_twice_raises():
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p])
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": [p]}, {"params": [p]}])
    opt = optim.Adam([p])
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [p]})


def test_grad_of_wrong_shape_raises():
    p = Parameter(np.ones((2, 3)))
    p.grad = np.ones(6)
    with pytest.raises(ValueError, match="grad"):
        optim.SGD([p], lr=0.1).step()
