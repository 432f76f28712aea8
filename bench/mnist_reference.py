#!/usr/bin/env python3
"""PyTorch side of approxlab's MNIST epoch benchmark.

Trains the same model as

    approxlab train --data mnist:DIR --encoding fourier:N \
        --network mlp:DEPTHxWIDTH:leaky_relu --head softmax --loss cross_entropy \
        --batch B --epochs 1 --lr 1e-3

in PyTorch eager f32 on the CPU and prints one JSON line per Fourier order:

    {"impl":"pytorch","workload":"mnist-fourier-N","epoch_s":..,"samples_per_s":..,
     "test_accuracy":..,"peak_rss_mb":..,...}

Data: the original IDX files (train-images-idx3-ubyte.gz, ...) read with numpy;
pixels / 255. The first --train-count (55,000) training images are the training
set (the last 5,000 are MNIST's usual validation split and are not used); the
10,000 t10k images are the test set.

Model (approxlab's conventions, bench/README.md): pixels in [0,1] mapped
linearly to [-pi, pi], then per pixel the block
[sin(1x)..sin(Nx), cos(1x)..cos(Nx), x], blocks in pixel order, computed
inside every step: 784*(2N+1) features. N = 0 means no encoding: the pixels
mapped to [-1, 1]. Then Linear(F, W), leaky_relu(0.01), (D-1) x
[Linear(W, W), leaky_relu(0.01)], Linear(W, 10); softmax cross-entropy from
the logits; Adam lr 1e-3; f32.

Timing: one epoch = the shuffled training set in batches of B, the last batch
partial (nothing dropped), wall time from the first to the last optimizer
step (data loading, model construction and the test evaluation excluded).
Peak RSS = ru_maxrss of the process that trained that order: with several
orders each one runs in its own child process so the figures do not
accumulate.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
# ru_maxrss right after `import torch`: the PyPI torch build alone maps ~0.5 GB
RSS_AFTER_IMPORT_MB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
DEFAULT_MNIST = HERE.parent.parent / "shared" / "data" / "mnist"

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    dtype_code, ndim = data[2], data[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"{path}: unknown IDX type 0x{dtype_code:02x}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=dtypes[dtype_code], offset=4 + 4 * ndim)
    if arr.size != math.prod(dims):
        raise ValueError(f"{path}: {arr.size} values, header says {dims}")
    return arr.reshape(dims)


def find_file(d: Path, name: str) -> Path:
    for cand in (d / name, d / name[:-3]):  # .gz or already unpacked
        if cand.exists():
            return cand
    raise FileNotFoundError(f"{d / name}: not found (expected the original MNIST IDX files)")


def load_mnist(d: Path, train_count: int):
    """(train_x [n,784] f32 in [0,1], train_y [n] int64, test_x, test_y)."""
    tx = read_idx(find_file(d, FILES["train_images"]))
    ty = read_idx(find_file(d, FILES["train_labels"]))
    vx = read_idx(find_file(d, FILES["test_images"]))
    vy = read_idx(find_file(d, FILES["test_labels"]))
    if train_count > len(tx):
        raise ValueError(f"--train-count {train_count} > {len(tx)} training images")

    def prep(x, y, n=None):
        x = x[:n] if n else x
        y = y[:n] if n else y
        xf = x.reshape(len(x), -1).astype(np.float32)
        xf /= np.float32(255.0)
        xs = torch.from_numpy(xf)
        return xs, torch.from_numpy(y.astype(np.int64))

    return (*prep(tx, ty, train_count), *prep(vx, vy))


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------


def encode(x01: torch.Tensor, order: int) -> torch.Tensor:
    """x01 [B, 784] in [0,1] -> encoded features.

    order 0: identity on [-1, 1].
    order N: x = -pi + 2 pi x01, per pixel [sin(kx) k=1..N, cos(kx) k=1..N, x]."""
    if order == 0:
        return x01 * 2.0 - 1.0
    x = x01 * (2.0 * math.pi) - math.pi
    b, d = x.shape
    k = torch.arange(1, order + 1, dtype=x.dtype)
    kx = x.unsqueeze(-1) * k  # [B, d, N]
    blocks = torch.cat([torch.sin(kx), torch.cos(kx), x.unsqueeze(-1)], dim=-1)
    return blocks.reshape(b, d * (2 * order + 1))


def features(order: int, pixels: int = 784) -> int:
    return pixels if order == 0 else pixels * (2 * order + 1)


class Mlp(nn.Module):
    """Linear(F,W), leaky_relu, (D-1) x [Linear(W,W), leaky_relu], Linear(W,10)."""

    def __init__(self, n_in: int, depth: int, width: int, n_out: int = 10, slope: float = 0.01):
        super().__init__()
        sizes = [n_in] + [width] * depth + [n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.slope = slope

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.leaky_relu(layer(x), self.slope)
        return self.layers[-1](x)


# ---------------------------------------------------------------------------
# machine state
# ---------------------------------------------------------------------------


def read_cpu_busy_s() -> float:
    """System-wide busy CPU seconds (user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = v[:7]
    steal = v[7] if len(v) > 7 else 0
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def self_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def loadavg() -> list[float]:
    try:
        return [float(x) for x in open("/proc/loadavg").read().split()[:3]]
    except OSError:
        return []


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------
# one order
# ---------------------------------------------------------------------------


def run_order(order: int, args, data, rss_after_load: float) -> dict:
    train_x, train_y, test_x, test_y = data
    n = len(train_x)
    torch.manual_seed(args.seed)
    n_in = features(order, train_x.shape[1])
    model = Mlp(n_in, args.depth, args.width)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ncores = args.ncores or os.cpu_count() or 1

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        logits = model(encode(xb, order))
        loss = F.cross_entropy(logits, yb)  # mean of -log_softmax[label]
        loss.backward()
        opt.step()
        return loss.detach()

    if args.warmup:
        # warm-up steps on a throw-away copy, so the measured epoch starts from
        # the same initial parameters and optimizer state
        import copy
        saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
        for i in range(args.warmup):
            step(train_x[i * args.batch:(i + 1) * args.batch], train_y[i * args.batch:(i + 1) * args.batch])
        model.load_state_dict(saved_model)
        opt.load_state_dict(saved_opt)

    results = []
    for epoch in range(args.epochs):
        gen = torch.Generator().manual_seed(args.seed + 1 + epoch)
        perm = torch.randperm(n, generator=gen)
        losses = []
        # windows of about --window seconds for a contention-aware rate
        windows = []  # (wall, samples, foreign_cpu)
        load0 = loadavg()
        busy0, self0 = read_cpu_busy_s(), self_cpu_s()
        t0 = time.perf_counter()
        wb, ws, wt, wsamples = busy0, self0, t0, 0
        for s in range(0, n, args.batch):
            idx = perm[s:s + args.batch]
            losses.append(step(train_x[idx], train_y[idx]))
            wsamples += len(idx)
            t = time.perf_counter()
            if t - wt >= args.window:
                b1, s1 = read_cpu_busy_s(), self_cpu_s()
                windows.append((t - wt, wsamples, max(0.0, (b1 - wb) - (s1 - ws))))
                wb, ws, wt, wsamples = b1, s1, t, 0
        t1 = time.perf_counter()
        busy1, self1 = read_cpu_busy_s(), self_cpu_s()
        epoch_s = t1 - t0
        foreign = max(0.0, (busy1 - busy0) - (self1 - self0))
        clean = [w for w in windows if w[2] <= args.max_foreign * w[0] * ncores]
        use = clean or windows
        rate_median = statistics.median(w[1] / w[0] for w in use) if use else None

        # test accuracy after this epoch (not timed)
        te0 = time.perf_counter()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(test_x), args.eval_batch):
                logits = model(encode(test_x[s:s + args.eval_batch], order))
                correct += int((logits.argmax(dim=1) == test_y[s:s + args.eval_batch]).sum())
        eval_s = time.perf_counter() - te0
        last = torch.stack(losses[-20:]).mean().item()
        results.append({
            "epoch": epoch + 1,
            "epoch_s": round(epoch_s, 3),
            "samples_per_s": round(n / epoch_s, 1),
            "samples_per_s_window_median": round(rate_median, 1) if rate_median else None,
            "clean_windows": len(clean),
            "windows": len(windows),
            "other_cpu_frac": round(foreign / epoch_s, 3),
            "loadavg_before": load0,
            "loadavg_after": loadavg(),
            "test_accuracy": round(correct / len(test_x), 4),
            "train_loss_last20": round(last, 4),
            "eval_s": round(eval_s, 3),
        })

    r = results[-1]
    params = sum(p.numel() for p in model.parameters())
    out = {"impl": "pytorch", "workload": f"mnist-fourier-{order}", "order": order,
           "features": n_in, "params": params,
           "epoch_s": r["epoch_s"], "samples_per_s": r["samples_per_s"],
           "test_accuracy": r["test_accuracy"], "peak_rss_mb": round(peak_rss_mb(), 1),
           "rss_after_import_mb": round(RSS_AFTER_IMPORT_MB, 1),
           "rss_after_load_mb": round(rss_after_load, 1),
           "steps": math.ceil(n / args.batch) * args.epochs, "train_samples": n,
           "batch": args.batch, "depth": args.depth, "width": args.width,
           "epochs": args.epochs, "threads": torch.get_num_threads(),
           **{k: r[k] for k in ("samples_per_s_window_median", "clean_windows", "windows",
                                "other_cpu_frac", "loadavg_before", "loadavg_after",
                                "train_loss_last20", "eval_s")},
           "torch": torch.__version__}
    if args.epochs > 1:
        out["per_epoch"] = [{k: e[k] for k in ("epoch", "epoch_s", "test_accuracy")} for e in results]
    return out


# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST),
                   help="directory with the IDX .gz files (default: ../shared/data/mnist "
                        "relative to the repository root)")
    p.add_argument("--orders", default="0,8,32,64",
                   help="comma-separated Fourier orders; 0 = no encoding (pixels on [-1,1])")
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-count", type=int, default=55000,
                   help="use the first N training images (default 55000)")
    p.add_argument("--eval-batch", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=0,
                   help="untimed warm-up steps before the epoch (parameters restored after)")
    p.add_argument("--window", type=float, default=0.5,
                   help="length of the contention-check windows in seconds")
    p.add_argument("--max-foreign", type=float, default=0.05,
                   help="a window is clean when other processes used <= this fraction of "
                        "wall*ncores CPU")
    p.add_argument("--ncores", type=int, default=None)
    p.add_argument("--in-process", action="store_true",
                   help="run all orders in this process (peak RSS then accumulates)")
    args = p.parse_args(argv)
    orders = [int(o) for o in args.orders.split(",") if o.strip()]
    if any(o < 0 for o in orders):
        p.error("--orders: orders must be >= 0")

    if len(orders) > 1 and not args.in_process:
        # one child per order so that peak RSS is per order
        rc = 0
        base = [a for a in (argv if argv is not None else sys.argv[1:])]
        for o in orders:
            cmd = [sys.executable, str(Path(__file__).resolve()), *base, "--orders", str(o)]
            rc = subprocess.call(cmd) or rc
        return rc

    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)
    data = load_mnist(Path(args.mnist), args.train_count)
    rss_after_load = peak_rss_mb()
    for o in orders:
        print(json.dumps(run_order(o, args, data, rss_after_load), separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
