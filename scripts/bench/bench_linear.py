"""PyTorch side of bench-linear.sh: GFLOP/s of a linear layer in f32 and in bf16 autocast (oneDNN)
on BERT-base shapes, 2,048 rows (batch 32 x 64 tokens), timed as the Rust side times its own."""
import os
import time

import torch

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
ROWS = 2048
for n, k in [(768, 768), (2304, 768), (3072, 768), (768, 3072)]:
    x = torch.randn(ROWS, k)
    lin = torch.nn.Linear(k, n, bias=False)
    lin.weight.data = torch.randn(n, k) * 0.05

    def f32():
        with torch.no_grad():
            lin(x)

    def bf16():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            lin(x)

    def seconds(f):
        f()
        t = time.perf_counter()
        for _ in range(5):
            f()
        return (time.perf_counter() - t) / 5

    flops = 2 * ROWS * n * k
    a, b = seconds(f32), seconds(bf16)
    print(f"({ROWS}x{k}) x ({k}x{n}): torch f32 {flops / a / 1e9:.0f} GFLOP/s, torch bf16 autocast {flops / b / 1e9:.0f} GFLOP/s")
