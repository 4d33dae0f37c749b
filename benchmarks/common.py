"""Helpers shared by the benchmarks: the machine's fp32 matmul peak and a JSON printer."""
from __future__ import annotations

import json
import platform
import time

import torch


def matmul_peak_gflops(n: int = 2048, reps: int = 10) -> float:
    """Best fp32 GFLOP/s of an n x n matmul on this machine with torch's current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def machine() -> dict:
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or
            platform.machine(), "python": platform.python_version()}


def emit(result: dict) -> None:
    print(json.dumps(result, indent=2))
