"""PyTorch's speed on the same training steps as `cohort-bench`, for a side-by-side reading.

The machine's speed drifts (a shared VM can be 30 % slower from one minute to the next), so an
absolute samples/s means little alone. Run this next to `cohort-bench` to read Cohort's figures
against PyTorch's on the same machine at the same moment:

    python3 bench/pytorch_reference.py            # LeNet and LSTM, batch 128, 2 threads
    python3 bench/pytorch_reference.py 2 lenet    # threads, then the models to run

    python3 bench/pytorch_reference.py lan        # DDP (gloo) on the simulated LAN of bench/lan.sh
    python3 bench/pytorch_reference.py local --model mnist-lstm --threads 2   # a training loop

The LAN table is DDP with one rank per host on 1, 2 and 4 hosts joined by 1 Gbit/s links (needs
root): the setup of `cohort-bench lan`, which runs this script itself, alternating with Cohort.
It prints JSON lines like cohort-bench. It needs torch (CPU build) and is not part of `make test`.
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

if importlib.util.find_spec("torch") is None:
    print("pytorch_reference.py: torch is not installed (pip install torch)", file=sys.stderr)
    sys.exit(4)

import torch
from torch import nn


def mlp():
    # configs/mnist-mlp.yaml: 784-512-10.
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10))


def lenet():
    # The lecture-001 table, as configs/mnist-lenet.yaml.
    return nn.Sequential(
        nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 50, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(2450, 500), nn.ReLU(), nn.Linear(500, 10))


class LastStep(nn.Module):
    # configs/mnist-lstm.yaml (and mnist-gru.yaml with cell="gru"): 28 steps of 28 pixels,
    # hidden 128, the last step into Linear 10.
    def __init__(self, cell="lstm"):
        super().__init__()
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(28, 128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        out, _ = self.rnn(x.view(-1, 28, 28))
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


def local(argv):
    """A training loop as `cohort train` runs it, for `cohort-bench local`: the config's model and
    optimizer (clipping included), batches drawn from a permutation of samples held in memory,
    wall samples/s over `--steps` steps after five to warm up."""
    p = argparse.ArgumentParser(prog="pytorch_reference.py local")
    p.add_argument("--model", default="mnist-mlp", choices=["mnist-mlp", "mnist-lenet", "mnist-lstm", "mnist-gru"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = {"mnist-mlp": mlp, "mnist-lenet": lenet, "mnist-lstm": LastStep,
             "mnist-gru": lambda: LastStep("gru")}[args.model]()
    if args.model == "mnist-mlp":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    elif args.model == "mnist-lenet":
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=0.002)
    clip = args.model in ("mnist-lstm", "mnist-gru")
    samples = 6000
    data, labels = torch.rand(samples, 1, 28, 28), torch.randint(0, 10, (samples,))
    loss_fn = nn.CrossEntropyLoss()
    order, at = torch.randperm(samples), 0

    def step():
        nonlocal order, at
        if at + args.batch > samples:
            order, at = torch.randperm(samples), 0
        index = order[at:at + args.batch]
        at += args.batch
        opt.zero_grad(set_to_none=True)
        loss_fn(model(data[index]), labels[index]).backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({"bench": "pytorch_local", "config": args.model, "torch": torch.__version__, "threads": args.threads,
                      "batch": args.batch, "steps": args.steps, "samples_per_s": round(args.steps * args.batch / seconds, 1)}),
          flush=True)


def link_bytes():
    # This network namespace's eth0 (ip netns exec mounts its own /sys).
    def read(name):
        with open(f"/sys/class/net/eth0/statistics/{name}") as f:
            return int(f.read())
    return read("tx_bytes"), read("rx_bytes")


def lan_rank(argv):
    """One DDP rank on one simulated host: `batch / world` samples per step, as Cohort's global batch."""
    import torch.distributed as dist
    from datetime import timedelta
    from torch.nn.parallel import DistributedDataParallel

    p = argparse.ArgumentParser()
    p.add_argument("--model", default="mnist-mlp")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clip-norm", type=float, help="clip the averaged gradient to this global L2 norm")
    p.add_argument("--bf16-compress", action="store_true", help="all-reduce gradients in bfloat16 (DDP's bf16_compress_hook)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = DistributedDataParallel(mlp() if args.model == "mnist-mlp" else lenet())
    if args.bf16_compress:
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
        model.register_comm_hook(None, default_hooks.bf16_compress_hook)
    per_rank = args.batch // world
    x, y = torch.rand(per_rank, 1, 28, 28), torch.randint(0, 10, (per_rank,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for step in range(args.steps + 10):
        if step == 10:
            start_bytes = link_bytes()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        if args.clip_norm:
            nn.utils.clip_grad_norm_(model.parameters(), args.clip_norm)
        opt.step()
        times.append(time.perf_counter() - start)
    sent, received = (b - a for a, b in zip(start_bytes, link_bytes()))
    dist.barrier()
    if rank == 0:
        step = statistics.median(times[10:])
        print(json.dumps({"bench": "lan_ddp", "config": args.model, "torch": torch.__version__, "hosts": world,
                          "threads_per_host": args.threads, "batch": args.batch, "clip_norm": args.clip_norm,
                          "bf16_compress": args.bf16_compress, "step_ms": round(step * 1e3, 3),
                          "samples_per_s": round(args.batch / step, 1),
                          "link_sent_per_step": sent / args.steps, "link_received_per_step": received / args.steps}), flush=True)
    dist.destroy_process_group()


def lan(argv):
    """DDP on bench/lan.sh's hosts: rank i on host i+1, rank 0 at 10.79.0.1 (the coordinator's host)."""
    p = argparse.ArgumentParser(prog="pytorch_reference.py lan")
    p.add_argument("--network", help="hosts already made by bench/lan.sh up NAME N (else made here)")
    p.add_argument("--hosts", default="1,2,4", help="comma-separated host counts")
    p.add_argument("--threads", type=int, help="threads per rank (default: cores / hosts, at least 1)")
    p.add_argument("--model", default="mnist-mlp", choices=["mnist-mlp", "mnist-lenet"])
    p.add_argument("--batch", type=int, help="global batch (default 512 for the MLP, 256 for LeNet)")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--clip-norm", type=float, help="clip the averaged gradient to this global L2 norm")
    p.add_argument("--bf16-compress", action="store_true", help="all-reduce gradients in bfloat16 (DDP's bf16_compress_hook)")
    args = p.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    batch = args.batch or (512 if args.model == "mnist-mlp" else 256)
    for hosts in [int(h) for h in args.hosts.split(",")]:
        name = args.network or f"pt{os.getpid() % 100000}"
        if not args.network:
            status = subprocess.call(["bash", os.path.join(here, "lan.sh"), "up", name, str(hosts)])
            if status != 0:
                sys.exit(3 if status == 3 else 1)
        threads = args.threads or max(1, (os.cpu_count() or 1) // hosts)
        try:
            ranks = []
            for rank in range(hosts):
                env = dict(os.environ, GLOO_SOCKET_IFNAME="eth0", TORCH_CPP_LOG_LEVEL="ERROR", MASTER_ADDR="10.79.0.1", MASTER_PORT="29500",
                           RANK=str(rank), WORLD_SIZE=str(hosts))
                ranks.append(subprocess.Popen(["ip", "netns", "exec", f"{name}-h{rank + 1}", sys.executable, __file__, "lan-rank",
                                               "--model", args.model, "--batch", str(batch), "--steps", str(args.steps),
                                               "--threads", str(threads)]
                                              + (["--clip-norm", str(args.clip_norm)] if args.clip_norm else [])
                                              + (["--bf16-compress"] if args.bf16_compress else []), env=env))
            failed = [r for r in ranks if r.wait(timeout=600) != 0]
            if failed:
                sys.exit(1)
        finally:
            if not args.network:
                subprocess.call(["bash", os.path.join(here, "lan.sh"), "down", name])


if __name__ == "__main__":
    if sys.argv[1:2] == ["lan"]:
        lan(sys.argv[2:])
    elif sys.argv[1:2] == ["lan-rank"]:
        lan_rank(sys.argv[2:])
    elif sys.argv[1:2] == ["local"]:
        local(sys.argv[2:])
    else:
        main()
