#!/usr/bin/env python3
"""Writes the MNIST subset kept in this directory: the first 6,000 training and the first
1,000 test images and labels of MNIST, in MNIST's own IDX format, gzip-compressed.

    python3 data/mnist-subset/make_subset.py FULL_MNIST_DIR [OUT_DIR]

FULL_MNIST_DIR holds the four files of the full set (what `cohort data mnist` downloads).
The output is byte-for-byte reproducible (gzip without a timestamp)."""
import gzip, os, struct, sys

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return magic, shape, data[4 + 4 * dims:]

def write_idx(path, magic, shape, body):
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * len(shape), *shape)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(header + body)

def main():
    source = sys.argv[1]
    target = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(__file__))
    for prefix, count in (("train", 6000), ("t10k", 1000)):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{prefix}-{kind}-ubyte.gz"
            magic, shape, body = read_idx(os.path.join(source, name))
            per_item = len(body) // shape[0]
            write_idx(os.path.join(target, name), magic, (count,) + tuple(shape[1:]), body[:count * per_item])
            print(f"{name}: {count} of {shape[0]}")

if __name__ == "__main__":
    main()
