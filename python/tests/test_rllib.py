"""Ray RLlib's PPO completes a training iteration with 2 env runners, each stepping a
`haca.VectorEnv` (python/examples/rllib_ppo.py). Skipped where ray is not installed, as in CI's
virtual environment (ray and torch are gigabytes; see README, Python)."""

import pytest

pytest.importorskip("ray.rllib")


def test_one_ppo_iteration_with_two_env_runners(small):
    import ray

    from haca.rllib import ppo_config

    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        algo = ppo_config(small, env_runners=2, envs_per_runner=4).build_algo()
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 2048
        assert algo.env_runner_group.num_remote_env_runners() == 2
        algo.stop()
    finally:
        ray.shutdown()
