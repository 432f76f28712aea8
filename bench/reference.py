#!/usr/bin/env python3
"""PyTorch reference side of approxlab.

Two subcommands:

  bench     time the benchmark workloads (W1, W2, W3, W1-infer, sgemm) in
            PyTorch eager on the CPU, f32 or (--precision bf16) under
            torch.autocast('cpu', dtype=torch.bfloat16), and print one JSON
            object per line.
  fixtures  write the float64 reference fixtures that the Rust tests in
            crates/engine/tests read (NAME.safetensors + NAME.json), or with
            --check re-read them and verify them (autograd against finite
            differences, and a full replay of the optimizer steps).

The model conventions (encodings, networks, heads, losses, optimizers) are
documented in bench/README.md; the Rust side implements the same ones.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------
# Model building blocks (shared by bench and fixtures)
# ---------------------------------------------------------------------------


def encoded_dims(encoding: dict, input_dims: int) -> int:
    kind = encoding["type"]
    if kind == "identity":
        return input_dims
    if kind == "fourier":
        return input_dims * (2 * encoding["order"] + 1)
    if kind == "taylor":
        return input_dims * encoding["order"]
    raise ValueError(f"unknown encoding {kind!r}")


def encode(x: torch.Tensor, encoding: dict) -> torch.Tensor:
    """Apply the encoding to already range-mapped inputs x [B, d].

    fourier(n): per dimension block [sin(1x)..sin(nx), cos(1x)..cos(nx), x],
                blocks in dimension order.
    taylor(n):  per dimension block [x, x^2, ..., x^n].
    identity:   x.
    """
    kind = encoding["type"]
    if kind == "identity":
        return x
    n = encoding["order"]
    b, d = x.shape
    k = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    if kind == "fourier":
        kx = x.unsqueeze(-1) * k  # [B, d, n]
        blocks = torch.cat([torch.sin(kx), torch.cos(kx), x.unsqueeze(-1)], dim=-1)
        return blocks.reshape(b, d * (2 * n + 1))
    if kind == "taylor":
        return (x.unsqueeze(-1) ** k).reshape(b, d * n)
    raise ValueError(f"unknown encoding {kind!r}")


def map_domain(x: torch.Tensor, domain: list, input_range: list) -> torch.Tensor:
    """Linear per-dimension map of domain [lo_i, hi_i] onto input_range [a, b]."""
    lo = torch.tensor([d[0] for d in domain], dtype=x.dtype)
    hi = torch.tensor([d[1] for d in domain], dtype=x.dtype)
    a, b = input_range
    return a + (x - lo) / (hi - lo) * (b - a)


def activation_fn(net: dict) -> Callable[[torch.Tensor], torch.Tensor]:
    name = net["activation"]
    if name == "relu":
        return torch.relu
    if name == "leaky_relu":
        slope = net["slope"]
        return lambda z: F.leaky_relu(z, slope)
    if name == "gelu":
        return lambda z: F.gelu(z, approximate="none")
    if name == "tanh":
        return torch.tanh
    if name == "sigmoid":
        return torch.sigmoid
    if name == "sine":
        return torch.sin
    if name == "identity":
        return lambda z: z
    raise ValueError(f"unknown activation {name!r}")


class Mlp(nn.Module):
    """Linear(in,W), act, (D-1) x [Linear(W,W), act], Linear(W,out)."""

    def __init__(self, n_in: int, n_out: int, net: dict):
        super().__init__()
        depth, width = net["depth"], net["width"]
        sizes = [n_in] + [width] * depth + [n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.act = activation_fn(net)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        return self.layers[-1](x)


class Skip(nn.Module):
    """SkipConn: every layer after the first also sees the previous hidden
    state and the (encoded) input: cat([cur, prev, x])."""

    def __init__(self, n_in: int, n_out: int, net: dict):
        super().__init__()
        depth, width = net["depth"], net["width"]
        layers = [nn.Linear(n_in, width)]
        for i in range(1, depth):
            layers.append(nn.Linear(width + n_in if i == 1 else 2 * width + n_in, width))
        layers.append(nn.Linear(width + n_in if depth == 1 else 2 * width + n_in, n_out))
        self.layers = nn.ModuleList(layers)
        self.act = activation_fn(net)

    def forward(self, x):
        cur = self.act(self.layers[0](x))
        prev = x[:, :0]  # empty [B, 0]
        for layer in self.layers[1:-1]:
            combined = torch.cat([cur, prev, x], dim=1)
            prev = cur
            cur = self.act(layer(combined))
        return self.layers[-1](torch.cat([cur, prev, x], dim=1))


class Siren(nn.Module):
    """Hidden layers sin(w0 * (W a + b)); linear output layer.
    Init: first layer W ~ U(-1/in, 1/in); later hidden and output layers
    W ~ U(-sqrt(6/in)/w0, sqrt(6/in)/w0); biases keep PyTorch's default."""

    def __init__(self, n_in: int, n_out: int, net: dict):
        super().__init__()
        depth, width = net["depth"], net["width"]
        self.omega0 = net["omega0"]
        sizes = [n_in] + [width] * depth + [n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                fan_in = layer.in_features
                bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / self.omega0
                layer.weight.uniform_(-bound, bound)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.sin(self.omega0 * layer(x))
        return self.layers[-1](x)


class LinearNet(nn.Module):
    def __init__(self, n_in: int, n_out: int, net: dict):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(n_in, n_out)])

    def forward(self, x):
        return self.layers[0](x)


NETWORKS = {"mlp": Mlp, "skip": Skip, "siren": Siren, "linear": LinearNet}


class Approximator(nn.Module):
    """domain map -> encoding -> network; the head is applied by the loss
    (see apply_head / compute_loss) so that softmax+CE works from logits."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        n_in = encoded_dims(cfg["encoding"], cfg["input_dims"])
        net = cfg["network"]
        network = NETWORKS[net["type"]](n_in, cfg["output_dims"], net)
        # Register only the layer list, so that parameters are named
        # layers.<i>.weight / layers.<i>.bias; the network object (kept in a
        # plain list, not registered) shares the same Linear modules.
        self.layers = network.layers
        self._network = [network]

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        x = map_domain(raw, self.cfg["domain"], self.cfg["input_range"])
        return self._network[0](encode(x, self.cfg["encoding"]))


def apply_head(y: torch.Tensor, head: str) -> torch.Tensor:
    if head == "tanh01":
        return (torch.tanh(y) + 1.0) / 2.0
    if head == "sigmoid":
        return torch.sigmoid(y)
    if head == "linear":
        return y
    if head == "softmax":
        return torch.softmax(y, dim=1)
    raise ValueError(f"unknown head {head!r}")


def compute_loss(raw_out: torch.Tensor, target: torch.Tensor, head: str, loss: dict) -> torch.Tensor:
    kind = loss["type"]
    if kind == "cross_entropy":
        if head != "softmax":
            raise ValueError("cross_entropy requires the softmax head")
        # mean over the batch of -sum(target * log_softmax(logits))
        return -(target * torch.log_softmax(raw_out, dim=1)).sum(dim=1).mean()
    pred = apply_head(raw_out, head)
    if kind == "mse":
        return F.mse_loss(pred, target)
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "huber":
        return F.huber_loss(pred, target, delta=loss.get("delta", 1.0))
    raise ValueError(f"unknown loss {kind!r}")


def make_optimizer(params, opt: dict) -> torch.optim.Optimizer:
    kind = opt["type"]
    if kind == "adam":
        return torch.optim.Adam(params, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]),
                                eps=opt["eps"], weight_decay=opt["weight_decay"])
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]),
                                 eps=opt["eps"], weight_decay=opt["weight_decay"])
    if kind == "sgd":
        return torch.optim.SGD(params, lr=opt["lr"], momentum=opt["momentum"], dampening=0.0,
                               nesterov=False, weight_decay=opt["weight_decay"])
    raise ValueError(f"unknown optimizer {kind!r}")


# ---------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------

BENCH_WORKLOADS = ["W1", "W1-infer", "W2", "W3", "sgemm"]
FULL_RANGE = [-1.0, 1.0]


def bench_config(workload: str) -> tuple[dict, int]:
    """Return (model config, batch) of a training workload."""
    base = "W1" if workload == "W1-infer" else workload
    if base == "W1":
        cfg = {"input_dims": 2, "domain": [FULL_RANGE] * 2, "input_range": [-math.pi, math.pi],
               "encoding": {"type": "fourier", "order": 64},
               "network": {"type": "mlp", "depth": 4, "width": 256, "activation": "leaky_relu",
                           "slope": 0.01},
               "output_dims": 1, "head": "tanh01"}
        batch = 65536 if workload == "W1-infer" else 8192
    elif base == "W2":
        cfg = {"input_dims": 2, "domain": [FULL_RANGE] * 2, "input_range": FULL_RANGE,
               "encoding": {"type": "identity"},
               "network": {"type": "mlp", "depth": 8, "width": 128, "activation": "gelu"},
               "output_dims": 1, "head": "tanh01"}
        batch = 4096
    elif base == "W3":
        cfg = {"input_dims": 258, "domain": [FULL_RANGE] * 258, "input_range": FULL_RANGE,
               "encoding": {"type": "identity"},
               "network": {"type": "mlp", "depth": 3, "width": 512, "activation": "leaky_relu",
                           "slope": 0.01},
               "output_dims": 3, "head": "linear"}
        batch = 16384
    else:
        raise ValueError(f"unknown workload {workload!r}")
    cfg["loss"] = {"type": "mse"}
    return cfg, batch


def nominal_flops_per_step(model: nn.Module, batch: int, train: bool) -> float:
    """Matmul FLOPs: forward 2*B*sum(in*out); training counts 3x that
    (forward, input gradient, weight gradient)."""
    macs = sum(l.in_features * l.out_features for l in model.modules() if isinstance(l, nn.Linear))
    return (6.0 if train else 2.0) * batch * macs


def read_cpu_busy_s() -> float:
    """System-wide busy CPU seconds from /proc/stat (all cores):
    user+nice+system+irq+softirq+steal (guest time is already inside user)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    assert fields[0] == "cpu"
    v = [int(x) for x in fields[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = v[:7]
    steal = v[7] if len(v) > 7 else 0
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def self_cpu_s() -> float:
    """CPU seconds used by this process (all threads), user+system."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Window:
    wall: float
    work: int  # steps (or points) done in the window
    other_cpu: float  # CPU seconds used by everything else on the machine
    clean: bool


def timed_windows(step: Callable[[], None], work_per_step: int, seconds: float,
                  window_s: float, ncores: int, max_foreign: float) -> list[Window]:
    """Run `step` for about `seconds`, in windows of about `window_s` each
    (at least one step per window), and classify each window as clean when
    the CPU time not used by this process stays within
    max_foreign * wall * ncores."""
    windows = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or not windows:
        busy0, self0, t0 = read_cpu_busy_s(), self_cpu_s(), time.perf_counter()
        n = 0
        while True:
            step()
            n += 1
            t = time.perf_counter()
            if t - t0 >= window_s:
                break
        self1, busy1 = self_cpu_s(), read_cpu_busy_s()
        wall = t - t0
        other = max(0.0, (busy1 - busy0) - (self1 - self0))
        windows.append(Window(wall, n * work_per_step, other, other <= max_foreign * wall * ncores))
    return windows


def summarize(windows: list[Window]) -> dict:
    clean = [w for w in windows if w.clean]
    use = clean if clean else windows
    rate = statistics.median(w.work / w.wall for w in use)
    return {"rate": rate, "clean_windows": len(clean), "windows": len(windows),
            "other_cpu_frac_median": round(statistics.median(
                w.other_cpu / w.wall for w in windows), 4)}


def autocast(precision: str):
    """The context a PyTorch user adds for mixed precision on the CPU: bf16
    autocast (matmuls/linear in bf16, f32 weights, losses and reductions kept
    in f32 by autocast's own op lists), or nothing for f32."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def precision_fields(precision: str) -> dict:
    row = {"precision": precision}
    if precision == "bf16":
        try:  # private API: whether oneDNN has native bf16 kernels on this CPU
            row["mkldnn_bf16"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except Exception:  # noqa: BLE001
            pass
    return row


def bench_train(workload: str, args) -> dict:
    cfg, batch = bench_config(workload)
    torch.manual_seed(0)
    model = Approximator(cfg).float()
    raw = torch.rand(batch, cfg["input_dims"]) * 2 - 1
    if cfg["head"] == "linear":
        target = torch.randn(batch, cfg["output_dims"])
    else:
        target = torch.rand(batch, cfg["output_dims"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    head, loss_cfg = cfg["head"], cfg["loss"]

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast(args.precision):
            loss = compute_loss(model(raw), target, head, loss_cfg)
            loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    wins = timed_windows(step, 1, args.seconds, args.window, args.ncores, args.max_foreign)
    s = summarize(wins)
    flops = nominal_flops_per_step(model, batch, train=True)
    return {"impl": "pytorch", "workload": workload, "steps_per_s": round(s["rate"], 4),
            "gflops": round(s["rate"] * flops / 1e9, 2), "batch": batch,
            "clean_windows": s["clean_windows"], "windows": s["windows"],
            "other_cpu_frac_median": s["other_cpu_frac_median"]}


def bench_infer(args) -> dict:
    cfg, batch = bench_config("W1-infer")
    torch.manual_seed(0)
    model = Approximator(cfg).float()
    raw = torch.rand(batch, cfg["input_dims"]) * 2 - 1

    def step():
        with torch.no_grad(), autocast(args.precision):
            apply_head(model(raw), cfg["head"])

    for _ in range(args.warmup):
        step()
    wins = timed_windows(step, batch, args.seconds, args.window, args.ncores, args.max_foreign)
    s = summarize(wins)
    flops = nominal_flops_per_step(model, 1, train=False)
    return {"impl": "pytorch", "workload": "W1-infer", "points_per_s": round(s["rate"], 1),
            "gflops": round(s["rate"] * flops / 1e9, 2), "batch": batch,
            "clean_windows": s["clean_windows"], "windows": s["windows"],
            "other_cpu_frac_median": s["other_cpu_frac_median"]}


def bench_sgemm(args) -> dict:
    m, k, n = 8192, 256, 256
    torch.manual_seed(0)
    a, b = torch.randn(m, k), torch.randn(k, n)
    c = torch.empty(m, n)

    def step():
        torch.mm(a, b, out=c)

    for _ in range(10):
        step()
    wins = timed_windows(step, 1, args.seconds, args.window, args.ncores, args.max_foreign)
    s = summarize(wins)
    return {"impl": "pytorch", "workload": "sgemm", "gflops": round(s["rate"] * 2 * m * k * n / 1e9, 2),
            "shape": [m, k, n], "clean_windows": s["clean_windows"], "windows": s["windows"],
            "other_cpu_frac_median": s["other_cpu_frac_median"]}


def cmd_bench(args) -> int:
    torch.set_num_threads(args.threads)
    if args.ncores is None:
        args.ncores = os.cpu_count() or 1
    names = BENCH_WORKLOADS if args.workload == "all" else [args.workload]
    for name in names:
        if name == "sgemm":
            row = bench_sgemm(args)
            row["precision"] = "f32"  # always f32, whatever --precision says
        elif name == "W1-infer":
            row = bench_infer(args)
        else:
            row = bench_train(name, args)
        if name != "sgemm":
            row.update(precision_fields(args.precision))
        row["torch"] = torch.__version__
        row["threads"] = args.threads
        if row["clean_windows"] == 0:
            print(f"warning: {name}: no clean window; the rate is the median of all windows",
                  file=sys.stderr)
        print(json.dumps(row), flush=True)
    return 0


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

ADAM = {"type": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
BOX = [-1.0, 1.0]


def fixture_configs() -> list[dict]:
    """The fixture definitions (neutral form, also written to NAME.json)."""
    common = {"batch": 64, "steps": 5, "clip_grad_norm": None}
    return [
        {**common, "name": "mlp_fourier_adam", "seed": 1,
         "input_dims": 2, "domain": [BOX, BOX], "input_range": [-math.pi, math.pi],
         "encoding": {"type": "fourier", "order": 4},
         "network": {"type": "mlp", "depth": 3, "width": 32, "activation": "leaky_relu",
                     "slope": 0.01},
         "output_dims": 1, "head": "tanh01", "loss": {"type": "mse"},
         "optimizer": {**ADAM, "lr": 1e-2},
         "target_kind": "uniform01"},
        {**common, "name": "skip_gelu_adamw_huber", "seed": 2,
         "input_dims": 2, "domain": [[-2.0, 1.0], BOX], "input_range": [-1.0, 1.0],
         "encoding": {"type": "identity"},
         "network": {"type": "skip", "depth": 3, "width": 16, "activation": "gelu"},
         "output_dims": 3, "head": "linear", "loss": {"type": "huber", "delta": 1.0},
         "optimizer": {**ADAM, "type": "adamw", "lr": 1e-2, "weight_decay": 0.1},
         "clip_grad_norm": 0.5,
         # targets 3 + N(0, 1.5^2): most residuals beyond delta, some within
         # (both Huber regimes), mostly one sign so the gradient norm stays
         # well above the clip threshold at every step
         "target_kind": "normal", "target_scale": 1.5, "target_offset": 3.0},
        {**common, "name": "softmax_ce_sgd", "seed": 3,
         "input_dims": 6, "domain": [BOX] * 6, "input_range": [-1.0, 1.0],
         "encoding": {"type": "identity"},
         "network": {"type": "mlp", "depth": 2, "width": 16, "activation": "tanh"},
         "output_dims": 4, "head": "softmax", "loss": {"type": "cross_entropy"},
         "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.0,
                       "nesterov": False, "weight_decay": 0.0},
         "target_kind": "one_hot"},
        {**common, "name": "siren_sigmoid_l1", "seed": 4,
         "input_dims": 2, "domain": [BOX, BOX], "input_range": [-1.0, 1.0],
         "encoding": {"type": "identity"},
         "network": {"type": "siren", "depth": 2, "width": 32, "activation": "sine",
                     "omega0": 30.0},
         "output_dims": 1, "head": "sigmoid", "loss": {"type": "l1"},
         "optimizer": {**ADAM, "lr": 1e-3},
         "target_kind": "uniform01"},
        {**common, "name": "taylor_linear_mse", "seed": 5,
         "input_dims": 1, "domain": [[-3.0, 3.0]], "input_range": [-1.0, 1.0],
         "encoding": {"type": "taylor", "order": 5},
         "network": {"type": "linear"},
         "output_dims": 1, "head": "tanh01", "loss": {"type": "mse"},
         "optimizer": {**ADAM, "lr": 1e-2},
         "target_kind": "uniform01"},
        {**common, "name": "mlp_sigmoid_relu_mse", "seed": 6,
         "input_dims": 3, "domain": [BOX] * 3, "input_range": [-1.0, 1.0],
         "encoding": {"type": "identity"},
         "network": {"type": "mlp", "depth": 2, "width": 8, "activation": "sigmoid"},
         "output_dims": 2, "head": "linear", "loss": {"type": "mse"},
         "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.0, "dampening": 0.0,
                       "nesterov": False, "weight_decay": 0.0},
         "target_kind": "normal", "target_scale": 1.0},
    ]


FIXTURE_NOTES = (
    "float64 reference from PyTorch. input holds raw domain coordinates; the model maps "
    "domain -> input_range linearly per dimension, then applies the encoding, network and head. "
    "grad.* = gradients of the loss at the initial parameters (before clipping); "
    "loss[i] = loss before optimizer step i (same batch every step); "
    "final.* = parameters after all steps. "
    "grad_norm_pre_clip[i] = global L2 norm of all gradients before step i (before clipping). "
    "Weights are [out, in] (y = x W^T + b). See bench/README.md for the conventions."
)


def make_data(cfg: dict, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    b, d, o = cfg["batch"], cfg["input_dims"], cfg["output_dims"]
    lo = torch.tensor([r[0] for r in cfg["domain"]], dtype=torch.float64)
    hi = torch.tensor([r[1] for r in cfg["domain"]], dtype=torch.float64)
    raw = lo + (hi - lo) * torch.rand(b, d, dtype=torch.float64, generator=gen)
    kind = cfg["target_kind"]
    if kind == "uniform01":
        # keep away from 0 and 1 so tanh01/sigmoid targets are reachable
        target = 0.05 + 0.9 * torch.rand(b, o, dtype=torch.float64, generator=gen)
    elif kind == "normal":
        target = cfg.get("target_offset", 0.0) + cfg.get("target_scale", 1.0) * torch.randn(
            b, o, dtype=torch.float64, generator=gen)
    elif kind == "one_hot":
        cls = torch.randint(0, o, (b,), generator=gen)
        target = F.one_hot(cls, o).to(torch.float64)
    else:
        raise ValueError(f"unknown target kind {kind!r}")
    return raw, target


def global_grad_norm(params) -> float:
    return float(torch.sqrt(sum((p.grad ** 2).sum() for p in params)))


def run_training(model: Approximator, cfg: dict, raw, target):
    """Returns (step-0 grads, per-step losses, per-step pre-clip grad norms)."""
    params = list(model.parameters())
    opt = make_optimizer(params, cfg["optimizer"])
    losses, norms, grads0 = [], [], None
    for i in range(cfg["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = compute_loss(model(raw), target, cfg["head"], cfg["loss"])
        loss.backward()
        losses.append(loss.item())
        norms.append(global_grad_norm(params))
        if i == 0:
            grads0 = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        if cfg["clip_grad_norm"] is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg["clip_grad_norm"])
        opt.step()
    return grads0, losses, norms


def param_names(model: Approximator) -> list[str]:
    return [n for n, _ in model.named_parameters()]


def build_fixture_model(cfg: dict) -> Approximator:
    model = Approximator(cfg).double()
    # named_parameters() must be layers.<i>.weight / .bias only
    names = param_names(model)
    assert all(n.startswith("layers.") for n in names), names
    return model


def write_fixture(cfg: dict, out: Path) -> dict:
    from safetensors.torch import save_file

    torch.manual_seed(cfg["seed"])
    model = build_fixture_model(cfg)
    gen = torch.Generator().manual_seed(1000 + cfg["seed"])
    raw, target = make_data(cfg, gen)
    names = param_names(model)
    tensors = {"input": raw, "target": target}
    for n, p in model.named_parameters():
        tensors[f"param.{n}"] = p.detach().clone()
    grads0, losses, norms = run_training(model, cfg, raw, target)
    for n in names:
        tensors[f"grad.{n}"] = grads0[n]
    tensors["loss"] = torch.tensor(losses, dtype=torch.float64)
    for n, p in model.named_parameters():
        tensors[f"final.{n}"] = p.detach().clone()
    if cfg["clip_grad_norm"] is not None and not all(g > cfg["clip_grad_norm"] for g in norms):
        raise RuntimeError(f"{cfg['name']}: clipping is not active at every step: {norms}")

    meta = {"name": cfg["name"], **cfg}
    meta["encoded_dims"] = encoded_dims(cfg["encoding"], cfg["input_dims"])
    meta["param_names"] = names
    meta["param_shapes"] = {n: list(p.shape) for n, p in model.named_parameters()}
    meta["grad_norm_pre_clip"] = norms
    meta["dtype"] = "float64"
    meta["torch_version"] = torch.__version__
    meta["tensors"] = sorted(tensors)
    meta["notes"] = FIXTURE_NOTES
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / f"{cfg['name']}.safetensors"),
              metadata={"format": "approxlab-fixture-v1"})
    (out / f"{cfg['name']}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def load_fixture(out: Path, name: str):
    from safetensors.torch import load_file

    cfg = json.loads((out / f"{name}.json").read_text())
    tensors = load_file(str(out / f"{name}.safetensors"))
    return cfg, tensors


def fd_gradient(loss_of: Callable[[], torch.Tensor], params: list[torch.Tensor], h: float):
    """Central finite differences of loss_of() w.r.t. every parameter element."""
    grads = []
    with torch.no_grad():
        for p in params:
            g = torch.empty_like(p)
            flat, gflat = p.view(-1), g.view(-1)
            for i in range(flat.numel()):
                v = float(flat[i])
                flat[i] = v + h
                up = float(loss_of())
                flat[i] = v - h
                down = float(loss_of())
                flat[i] = v
                gflat[i] = (up - down) / (2 * h)
            grads.append(g)
    return grads


def check_fixture(out: Path, name: str) -> list[str]:
    """Verify a fixture file: stored grads == autograd == finite differences,
    and a replay of the optimizer reproduces losses and final parameters."""
    problems = []
    cfg, t = load_fixture(out, name)
    model = build_fixture_model(cfg)
    names = cfg["param_names"]
    if names != param_names(model):
        return [f"param_names {names} != model {param_names(model)}"]
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(t[f"param.{n}"])
    raw, target = t["input"], t["target"]
    params = list(model.parameters())

    def loss_of():
        return compute_loss(model(raw), target, cfg["head"], cfg["loss"])

    model.zero_grad(set_to_none=True)
    loss = loss_of()
    loss.backward()
    if not math.isclose(loss.item(), float(t["loss"][0]), rel_tol=1e-12, abs_tol=1e-14):
        problems.append(f"loss[0] {float(loss)} != stored {float(t['loss'][0])}")
    auto = [p.grad.detach().clone() for p in params]
    fd = fd_gradient(loss_of, params, h=1e-6)
    worst = 0.0
    for n, a, f in zip(names, auto, fd):
        stored = t[f"grad.{n}"]
        if not torch.allclose(a, stored, rtol=1e-10, atol=1e-13):
            problems.append(f"grad.{n}: autograd differs from stored")
        scale = max(1e-6, float(a.abs().max()))
        err = float((a - f).abs().max()) / scale
        worst = max(worst, err)
        if err > 1e-5:
            problems.append(f"grad.{n}: finite differences differ, max rel err {err:.2e}")
    # Replay
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(t[f"param.{n}"])
    _, losses, _ = run_training(model, cfg, raw, target)
    if not torch.allclose(torch.tensor(losses, dtype=torch.float64), t["loss"], rtol=1e-12, atol=0):
        problems.append(f"replayed losses {losses} != stored {t['loss'].tolist()}")
    for n, p in model.named_parameters():
        if not torch.allclose(p.detach(), t[f"final.{n}"], rtol=1e-12, atol=1e-15):
            problems.append(f"final.{n}: replay differs")
    if cfg["clip_grad_norm"] is not None and min(cfg["grad_norm_pre_clip"]) <= cfg["clip_grad_norm"]:
        problems.append("clipping not active")
    print(f"{name}: {sum(p.numel() for p in params)} params, loss {t['loss'].tolist()[0]:.6g} -> "
          f"{t['loss'].tolist()[-1]:.6g}, fd max rel err {worst:.1e}: "
          f"{'ok' if not problems else 'FAILED'}", file=sys.stderr)
    return problems


def cmd_fixtures(args) -> int:
    torch.set_num_threads(1)
    out = Path(args.out)
    configs = fixture_configs()
    if args.only:
        configs = [c for c in configs if c["name"] in args.only]
    if not args.check:
        for cfg in configs:
            meta = write_fixture(cfg, out)
            size = (out / f"{cfg['name']}.safetensors").stat().st_size
            print(f"wrote {out / cfg['name']}.{{safetensors,json}} ({size} bytes; "
                  f"grad norm before clip {meta['grad_norm_pre_clip'][0]:.4g})", file=sys.stderr)
    failed = 0
    for cfg in configs:
        problems = check_fixture(out, cfg["name"])
        for p in problems:
            print(f"  {cfg['name']}: {p}", file=sys.stderr)
        failed += bool(problems)
    if failed:
        print(f"{failed} fixture(s) FAILED the check", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    torch.set_default_dtype(torch.float32)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("bench", help="time the workloads in PyTorch eager (f32 or bf16 autocast)")
    b.add_argument("--workload", default="all", choices=BENCH_WORKLOADS + ["all"])
    b.add_argument("--seconds", type=float, default=20.0,
                   help="measured seconds per workload (after warm-up)")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--precision", default="f32", choices=["f32", "bf16"],
                   help="bf16: the training step's forward, loss and backward (and W1-infer's "
                        "forward) run under torch.autocast('cpu', dtype=torch.bfloat16); the "
                        "optimizer step stays outside; sgemm is always f32")
    b.add_argument("--window", type=float, default=0.5,
                   help="target length of one timing window in seconds (>= one step)")
    b.add_argument("--warmup", type=int, default=3, help="warm-up steps before timing")
    b.add_argument("--max-foreign", type=float, default=0.05,
                   help="a window is clean when CPU time used by other processes "
                        "<= this fraction of wall*ncores")
    b.add_argument("--ncores", type=int, default=None,
                   help="cores of the machine (default: os.cpu_count())")
    b.set_defaults(func=cmd_bench)

    f = sub.add_parser("fixtures", help="write (and verify) the float64 fixtures")
    f.add_argument("--out", default="crates/engine/tests/fixtures")
    f.add_argument("--check", action="store_true",
                   help="only verify existing fixtures (no writing)")
    f.add_argument("--only", nargs="*", help="restrict to these fixture names")
    f.set_defaults(func=cmd_fixtures)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
