"""PyTorch's speed on the same training steps as `cohort-bench`, for a side-by-side reading.

The machine's speed drifts (a shared VM can be 30 % slower from one minute to the next), so an
absolute samples/s means little alone. Run this next to `cohort-bench` to read Cohort's figures
against PyTorch's on the same machine at the same moment:

    python3 bench/pytorch_reference.py            # LeNet and LSTM, batch 128, 2 threads
    python3 bench/pytorch_reference.py 2 lenet    # threads, then the models to run

It prints JSON lines like cohort-bench. It needs torch (CPU build) and is not part of `make test`.
"""
import json
import sys
import time

import torch
from torch import nn


def lenet():
    # The lecture-001 table, as configs/mnist-lenet.yaml.
    return nn.Sequential(
        nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 50, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(2450, 500), nn.ReLU(), nn.Linear(500, 10))


class LastStep(nn.Module):
    # configs/mnist-lstm.yaml: 28 steps of 28 pixels, hidden 128, the last step into Linear 10.
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        out, _ = self.lstm(x.view(-1, 28, 28))
        return self.head(out[:, -1])


def measure(model, batch, trials=3, minimum=1.0):
    torch.manual_seed(0)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    best = float("inf")
    for _ in range(trials):
        calls, start = 0, time.perf_counter()
        while True:
            step()
            calls += 1
            if time.perf_counter() - start >= minimum:
                break
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    models = sys.argv[2:] or ["lenet", "lstm"]
    for name, make in (("lenet", lenet), ("lstm", LastStep)):
        if name not in models:
            continue
        seconds = measure(make(), 128)
        print(json.dumps({"bench": f"pytorch_{name}_train_step", "torch": torch.__version__, "batch": 128,
                          "threads": threads, "step_ms": round(seconds * 1e3, 2),
                          "samples_per_s": round(128 / seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
