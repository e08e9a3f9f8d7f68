"""labkit.nets.Conv2d (im2col + one matrix product) against the naive loop of
labkit.conv.conv2d and against torch.nn.functional.conv2d in float64, on the same data,
forward pass only.

Targets: im2col at least 20x faster than the four-loop reference; within 10x of torch's
float64 convolution on the CPU (torch uses a tuned native kernel, we use numpy's
matmul).
"""

import numpy as np
import torch
import torch.nn.functional as F

from labkit.conv import conv2d
from labkit.nets import Conv2d

from .timing import best_times, report

CASES = [  # (N, C_in, C_out, H, W, kernel_size, stride, padding)
    (4, 3, 8, 32, 32, 3, 1, 1),
    (8, 16, 32, 16, 16, 3, 1, 1),
    (8, 8, 16, 28, 28, 5, 2, 2),
]


def main() -> None:
    rng = np.random.default_rng(0)
    for N, C_in, C_out, H, W, k, s, p in CASES:
        x = rng.normal(size=(N, C_in, H, W))
        layer = Conv2d(C_in, C_out, k, stride=s, padding=p, rng=rng)
        weight, bias = layer.weight.data, layer.bias.data
        x_t, w_t, b_t = (torch.from_numpy(a) for a in (x, weight, bias))

        def run_torch():
            with torch.no_grad():
                return F.conv2d(x_t, w_t, b_t, stride=s, padding=p)

        y_loop = conv2d(x, weight, bias, stride=s, padding=p)
        diff = max(
            np.abs(layer(x) - y_loop).max(), np.abs(run_torch().numpy() - y_loop).max()
        )
        t_loop = best_times(
            {"loop": lambda: conv2d(x, weight, bias, stride=s, padding=p)}, repeat=1
        )["loop"]
        t = best_times({"im2col": lambda: layer(x), "torch": run_torch}, repeat=20)
        print(
            f"  x {(N, C_in, H, W)}, weight {(C_out, C_in, k, k)}, stride {s}, padding "
            f"{p}; "
            f"max |difference| {diff:.1e}"
        )
        report(
            "speed-up of im2col Conv2d over the naive loop",
            t_loop / t["im2col"],
            ">= 20x",
            t_loop / t["im2col"] >= 20,
        )
        report(
            "im2col Conv2d time / torch conv2d time (float64)",
            t["im2col"] / t["torch"],
            "<= 10x",
            t["im2col"] / t["torch"] <= 10,
        )


if __name__ == "__main__":
    main()
