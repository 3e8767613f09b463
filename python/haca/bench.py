"""Decisions per second through `haca.VectorEnv` with random legal actions picked in numpy,
beside the Rust `VecEnv` stepped by itself in the same run.

    python -m haca.bench [--scenarios haca-small park] [--envs 64 128 256] [--steps 2000]
"""

import argparse
import pathlib
import time

import numpy as np

import haca
from haca import _haca


def python_rate(path, num_envs, steps, seed=0):
    venv = haca.VectorEnv(path, num_envs, autoreset_mode="SameStep")
    obs, _ = venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(steps):
        # A random legal node per env: the argmax of uniform noise over the legal entries.
        noise = rng.random(obs["action_mask"].shape, dtype=np.float32)
        actions = np.argmax(noise * obs["action_mask"], axis=1)
        obs, *_ = venv.step(actions)
    return steps * num_envs / (time.perf_counter() - start)


def median(xs):
    return sorted(xs)[len(xs) // 2]


def main():
    root = pathlib.Path(__file__).resolve().parents[2] / "env" / "scenarios"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", nargs="+", default=["haca-small", "park"])
    ap.add_argument("--envs", nargs="+", type=int, default=[64, 128, 256])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print(f"decisions per second, median of {args.reps} runs of {args.steps} steps")
    print(f"{'scenario':<12} {'envs':>5} {'python':>10} {'rust':>10} {'python/rust':>12}")
    for name in args.scenarios:
        path = str(root / f"{name}.toml")
        for n in args.envs:
            py = median([python_rate(path, n, args.steps) for _ in range(args.reps)])
            rs = median([_haca.rust_decisions_per_s(path, n, args.steps) for _ in range(args.reps)])
            print(f"{name:<12} {n:>5} {py / 1e6:>8.2f} M {rs / 1e6:>8.2f} M {py / rs:>11.0%}")


if __name__ == "__main__":
    main()
