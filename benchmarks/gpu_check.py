"""One-command GPU check of the rules that attach to any model: `python benchmarks/gpu_check.py`.

For every attachable rule (and dfa with a weight mirror), on the MLP, cnn1d and lenet5 (random
data of the right shape): attach on CUDA, check that every rule buffer lives on the GPU, that one
backward pass of the rule's loss gives the same `.grad` as on the CPU (float32, to 1e-4
relative), that 50 AdamW steps lower the loss, and time the steps (CUDA-synchronised median)
against bp. Exits 1 if a
check fails; prints one line per (model, rule). Then runs the test suite's CUDA tests.

Needs a CUDA GPU; writes nothing.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from plasticity.models import build_cnn1d, build_lenet5
from plasticity.nets import build_mlp
from plasticity.rules import attach

RULES = {"bp": {}, "fa": {}, "sign": {}, "dfa": {}, "dfa-mirror": {"mirror_rate": 0.04}, "workspace": {}, "pc": {}, "ff": {}, "softhebb": {}}
MODELS = {
    "mlp": (lambda: build_mlp(784, 10, (256, 256), "tanh", seed=0), 784),
    "cnn1d": (lambda: build_cnn1d(40, 10, seed=0), 40),
    "lenet5": (lambda: build_lenet5(784, 10, seed=0), 784),
}


def grads(rule, model, x, y):
    model.zero_grad()
    rule.loss(model, x, y).backward()
    return [p.grad.detach().cpu().clone() for p in rule.trained(model)]


def check(model_name: str, label: str) -> tuple[bool, str, float]:
    build, width = MODELS[model_name]
    options = RULES[label]
    rule_name = label.split("-")[0]
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, width, generator=generator), torch.randint(0, 10, (128,), generator=generator)
    cpu_model, gpu_model = build(), build().cuda()
    cpu_rule, gpu_rule = attach(cpu_model, rule_name, **options), attach(gpu_model, rule_name, **options)
    xg, yg = x.cuda(), y.cuda()
    gpu_rule.to("cuda")
    expected, got = grads(cpu_rule, cpu_model, x, y), grads(gpu_rule, gpu_model, xg, yg)
    problems = []
    if not all(b.is_cuda for b in gpu_rule.buffers() if b.is_floating_point()):
        problems.append("a rule buffer is not on the GPU")
    if not all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(got, expected, strict=True)):
        worst = max(float((a - b).abs().max() / (b.abs().max() + 1e-12)) for a, b in zip(got, expected, strict=True))
        problems.append(f"GPU and CPU grads differ (worst relative {worst:.2e})")
    optimizer = torch.optim.AdamW(gpu_rule.trained(gpu_model), lr=1e-3)
    with torch.no_grad():
        first = float(F.cross_entropy(gpu_rule.logits(gpu_model, xg), yg))
    seconds = []
    for _ in range(50):
        torch.cuda.synchronize()
        began = time.perf_counter()
        optimizer.zero_grad()
        loss, info = gpu_rule.loss_and_info(gpu_model, xg, yg)
        loss.backward()
        if info.applied:
            optimizer.step()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - began)
    with torch.no_grad():
        last = float(F.cross_entropy(gpu_rule.logits(gpu_model, xg), yg))
    if not last < first:
        problems.append(f"loss did not fall ({first:.3f} → {last:.3f})")
    del cpu_rule
    return not problems, "; ".join(problems) or "ok", statistics.median(seconds[5:])


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to check")
        return 1
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    failed = False
    for model_name in MODELS:
        base = None
        for label in RULES:
            ok, message, seconds = check(model_name, label)
            base = base or seconds
            failed |= not ok
            print(f"{model_name:7s} {label:11s} {'PASS' if ok else 'FAIL'}  {1e3 * seconds:7.3f} ms/step  {seconds / base:5.2f}× bp  {message}")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-k", "cuda", "tests/test_attach.py"], check=False)
    return int(failed or tests.returncode != 0)


if __name__ == "__main__":
    sys.exit(main())
