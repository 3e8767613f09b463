"""Trains sb3-contrib's MaskablePPO on a HACA scenario through `haca.make`, then compares its
greedy policy with a heuristic on the same episode seeds.

No `ActionMasker` wrapper is needed: `HacaEnv.action_masks()` is what MaskablePPO calls.

    target/venv/bin/pip install sb3-contrib            # brings stable-baselines3 and torch
    target/venv/bin/python python/examples/sb3_maskable_ppo.py --steps 20000
"""

import argparse
import pathlib
import statistics
import time

import numpy as np
from sb3_contrib import MaskablePPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import haca

ROOT = pathlib.Path(__file__).resolve().parents[2]


def evaluate(env, act, seeds):
    """Mean latency of each episode, routed by `act(obs)`."""
    out = []
    for s in seeds:
        obs, _ = env.reset(seed=s)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(act(obs))
            done = terminated or truncated
        out.append(info["metrics"]["mean_latency_s"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(ROOT / "env" / "scenarios" / "haca-small.toml"))
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--baselines", default="random,sed")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    # Rewards are minus job-seconds: normalized, as PPO needs (the observations already are).
    env = VecNormalize(DummyVecEnv([lambda: haca.make(args.scenario, seed=args.seed)]), norm_obs=False)
    model = MaskablePPO("MultiInputPolicy", env, n_steps=1024, batch_size=256, seed=args.seed, verbose=0)
    start = time.time()
    model.learn(total_timesteps=args.steps)
    print(f"trained {args.steps} steps in {time.time() - start:.0f} s")

    seeds = [10_000 + i for i in range(args.episodes)]  # not seen in training
    masked = lambda obs: obs["action_mask"].astype(bool)  # noqa: E731
    results = {}
    for label, greedy in (("greedy", True), ("sampled", False)):
        results[label] = evaluate(
            haca.make(args.scenario),
            lambda obs: int(model.predict(obs, action_masks=masked(obs), deterministic=greedy)[0]),
            seeds,
        )
        print(f"mean latency over {len(seeds)} unseen episodes, MaskablePPO {label}: "
              f"{statistics.mean(results[label]):.2f} s")
    policy = results["sampled"]
    for name in args.baselines.split(","):
        heuristic_env = haca.make(args.scenario)
        router = haca.Router.heuristic(name)
        baseline = evaluate(heuristic_env, lambda obs: router.route(heuristic_env), seeds)
        diff = np.array(policy) - np.array(baseline)
        half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        print(f"  {name}: {statistics.mean(baseline):.2f} s; sampled MaskablePPO - {name} paired: "
              f"{diff.mean():+.2f} ± {half:.2f} s")


if __name__ == "__main__":
    main()
