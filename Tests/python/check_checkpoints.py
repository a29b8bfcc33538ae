"""Loads Cohort checkpoints with the PyTorch-free `safetensors` and `numpy` packages and checks
their names, shapes and dtypes against what PyTorch's nn.Sequential would hold for the same
configs (state_dict of the modules listed in each config, in order).

Run by `make test` after the Swift tests: python3 Tests/python/check_checkpoints.py
"""
import hashlib, json, os, subprocess, sys, tempfile

import numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COHORT = os.path.join(ROOT, ".build", "release", "cohort")
# The full MNIST when COHORT_DATA names it, else the subset shipped with the repository.
MNIST = os.environ.get("COHORT_DATA") or os.path.join(ROOT, "data", "mnist-subset")

# nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10)).state_dict()
MLP = {"0.weight": (512, 784), "0.bias": (512,), "2.weight": (10, 512), "2.bias": (10,)}
# nn.Sequential(nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
#               nn.Conv2d(20, 50, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
#               nn.Linear(2450, 500), nn.ReLU(), nn.Linear(500, 10)).state_dict()
LENET = {"0.weight": (20, 1, 5, 5), "0.bias": (20,), "3.weight": (50, 20, 5, 5), "3.bias": (50,),
         "7.weight": (500, 2450), "7.bias": (500,), "9.weight": (10, 500), "9.bias": (10,)}


def train(config, run_dir, extra):
    cmd = [COHORT, "train", config, "--run-dir", run_dir, "--quiet", "--workers", "1",
           "--set", "training.steps=2", "--set", "evaluation.at_end=false",
           "--set", "checkpoint.every_steps=1", "--set", f"data.path={MNIST}"] + extra
    subprocess.run(cmd, cwd=ROOT, check=True)


def check(config, expected, extra=()):
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        train(config, run, list(extra))
        final = load_file(os.path.join(run, "final.safetensors"))
        assert {k: v.shape for k, v in final.items()} == expected, (config, {k: v.shape for k, v in final.items()})
        assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in final.values())
        ckpt = os.path.join(run, "checkpoints", "step-2.safetensors")
        with safe_open(ckpt, framework="numpy") as f:
            meta = f.metadata()
            names = set(f.keys())
            weights = {k: f.get_tensor(k) for k in expected}
        assert meta["step"] == "2" and len(meta["config_hash"]) == 64, meta
        assert set(expected) <= names, names
        # SGD with momentum keeps one buffer per parameter, under the parameter's name.
        assert {f"optimizer.{k}.momentum_buffer" for k in expected} <= names, names
        for k, v in weights.items():
            assert np.array_equal(v, final[k]), k
        # Every tensor carries the SHA-256 of its little-endian bytes, computed here independently.
        for k in names:
            with safe_open(ckpt, framework="numpy") as f:
                data = f.get_tensor(k).astype("<f4").tobytes()
            assert meta[f"sha256:{k}"] == hashlib.sha256(data).hexdigest(), k
        print(f"ok: {config}: {len(final)} tensors match nn.Sequential's state_dict, checkpoint has step {meta['step']}")


if __name__ == "__main__":
    check("configs/mnist-mlp.yaml", MLP, ["--set", "optimizer.nesterov=false"])
    check("configs/mnist-lenet.yaml", LENET, ["--set", "training.batch_size=16"])
    print("python checkpoint checks: 2 configs ok")
