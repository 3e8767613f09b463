"""Ray RLlib PPO on a HACA scenario with `haca.VectorEnv` as each env runner's vector env.

The env is registered with `tune.register_env`; RLlib calls the creator with
`env_config["num_envs"]` (vectorize mode "vector_entry_point"), so each env runner steps its
envs in Rust. Actions are masked by RLlib's action-masking RLModule, which reads the
observation as {"action_mask", "observations"}.

    target/venv/bin/pip install "ray[rllib]" torch
    target/venv/bin/python python/examples/rllib_ppo.py --iterations 3      # a local Ray
    ray start --head                                                        # or a cluster:
    target/venv/bin/python python/examples/rllib_ppo.py --address auto      # on the head node
    (on other machines: ray start --address <head-ip>:6379, with this package installed)
"""

import argparse
import pathlib

from haca.rllib import ppo_config

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(ROOT / "env" / "scenarios" / "haca-small.toml"))
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--env-runners", type=int, default=2)
    ap.add_argument("--envs-per-runner", type=int, default=16)
    ap.add_argument("--address", default=None, help="a running Ray cluster ('auto'), else a local one")
    args = ap.parse_args()

    import ray

    ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    algo = ppo_config(args.scenario, args.env_runners, args.envs_per_runner).build_algo()
    for i in range(args.iterations):
        result = algo.train()
        runners = result.get("env_runners", {})
        print(
            f"iteration {i + 1}: {runners.get('num_env_steps_sampled_lifetime', 0):.0f} env steps, "
            f"episode return mean {runners.get('episode_return_mean', float('nan')):.1f}"
        )
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
