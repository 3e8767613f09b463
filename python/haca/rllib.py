"""RLlib support: `haca.VectorEnv` as an RLlib env runner's vector env, with the observation
RLlib's action-masking RLModule expects. Importable by Ray's workers (an env creator defined in
a script would not be). Needs `ray[rllib]` and torch, which the package does not depend on.

    from haca.rllib import ppo_config
    algo = ppo_config("env/scenarios/haca-small.toml", env_runners=2).build_algo()
"""

import gymnasium as gym
import numpy as np

import haca


class MaskedVectorEnv(gym.vector.VectorEnv):
    """`haca.VectorEnv` with the observation RLlib's action-masking module expects: the mask
    (float) and every feature flattened into one vector."""

    def __init__(self, scenario, num_envs, seed=None):
        self._venv = haca.VectorEnv(scenario, num_envs, seed=seed)
        self.num_envs = num_envs
        self.metadata = self._venv.metadata
        inner = self._venv.single_observation_space
        n = inner["action_mask"].shape[0]
        width = int(np.prod(inner["nodes"].shape) + inner["job"].shape[0] + inner["global"].shape[0])
        inf = np.float32(np.inf)
        self.single_observation_space = gym.spaces.Dict(
            {
                "action_mask": gym.spaces.Box(0.0, 1.0, (n,), np.float32),
                "observations": gym.spaces.Box(-inf, inf, (width,), np.float32),
            }
        )
        self.single_action_space = gym.spaces.Discrete(n)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.spaces.MultiDiscrete(np.full(num_envs, n))

    def _convert(self, obs):
        flat = np.concatenate(
            [obs["nodes"].reshape(self.num_envs, -1), obs["job"], obs["global"]], axis=1
        )
        return {"action_mask": obs["action_mask"].astype(np.float32), "observations": flat}

    def reset(self, *, seed=None, options=None):
        obs, info = self._venv.reset(seed=seed, options=options)
        return self._convert(obs), info

    def step(self, actions):
        obs, rewards, terminated, truncated, info = self._venv.step(actions)
        return self._convert(obs), rewards.copy(), terminated.copy(), truncated.copy(), info


def make_env(config):
    return MaskedVectorEnv(config["scenario"], config.get("num_envs", 1), config.get("seed"))


def ppo_config(scenario, env_runners=2, envs_per_runner=16, seed=0):
    """A PPO config whose env runners each step `envs_per_runner` envs of `scenario` in Rust."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule
    from ray.tune import register_env

    register_env("haca", make_env)
    config = (
        PPOConfig()
        .environment("haca", env_config={"scenario": str(scenario), "seed": seed})
        .env_runners(
            num_env_runners=env_runners,
            num_envs_per_env_runner=envs_per_runner,
            gym_env_vectorize_mode="vector_entry_point",
        )
        .training(train_batch_size_per_learner=2048, minibatch_size=256, num_epochs=4)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=ActionMaskingTorchRLModule))
        .debugging(seed=seed)
    )
    return config
