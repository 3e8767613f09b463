"""`haca.VectorEnv`: many envs of one scenario stepped together in Rust (rayon, GIL released), writing
straight into numpy arrays allocated once."""

import numpy as np
import gymnasium as gym
from gymnasium.vector.utils import batch_space

from haca._haca import RustVecEnv
from haca.env import GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES, LegalNodes, observation_space

try:
    from gymnasium.vector import AutoresetMode

    _MODES = {"NextStep": AutoresetMode.NEXT_STEP, "SameStep": AutoresetMode.SAME_STEP}
except ImportError:  # Gymnasium 1.0 names the mode in metadata only
    _MODES = {"NextStep": "NextStep", "SameStep": "SameStep"}


class VectorEnv(gym.vector.VectorEnv):
    """`num_envs` copies of a scenario. Env `e` of `reset(seed=s)` runs the episodes of the Rust
    `VecEnv` seeded with `s` (seed `derive_seed(s, e)`), so the numbers are the Rust ones.

    `autoreset_mode`: "NextStep" (Gymnasium's default: the step after an episode's last returns
    the new episode's first observation, reward 0, and ignores its action) or "SameStep" (the
    last step already returns the new episode's first observation)."""

    def __init__(self, scenario_path, num_envs, seed=None, autoreset_mode="NextStep"):
        if autoreset_mode not in _MODES:
            raise ValueError(
                f"autoreset_mode {autoreset_mode!r}: expected 'NextStep' or 'SameStep'"
            )
        self._rust = RustVecEnv(str(scenario_path), int(num_envs), autoreset_mode == "NextStep")
        self.num_envs = int(num_envs)
        self.metadata = {"autoreset_mode": _MODES[autoreset_mode]}
        n = self._rust.max_nodes
        self.single_observation_space = observation_space(n)
        self.single_action_space = LegalNodes(n, lambda: self._mask[0])
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.spaces.MultiDiscrete(np.full(self.num_envs, n))
        self._nodes = np.zeros((self.num_envs, n, NODE_FEATURES), np.float32)
        self._job = np.zeros((self.num_envs, JOB_FEATURES), np.float32)
        self._global = np.zeros((self.num_envs, GLOBAL_FEATURES), np.float32)
        self._mask = np.zeros((self.num_envs, n), np.bool_)
        self._rewards = np.zeros(self.num_envs, np.float32)
        self._terminated = np.zeros(self.num_envs, np.bool_)
        self._truncated = np.zeros(self.num_envs, np.bool_)
        self._seed = seed

    def _copy_obs(self, rows=None):
        # After a reset only: steps write straight into these arrays.
        self._rust.copy_obs(self._nodes, self._job, self._global, self._mask, rows)
        if rows is None:
            self._rewards[:] = 0
            self._terminated[:] = False
            self._truncated[:] = False

    def _obs(self):
        return {
            "nodes": self._nodes,
            "job": self._job,
            "global": self._global,
            "action_mask": self._mask.view(np.int8),
        }

    def reset(self, *, seed=None, options=None):
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], dtype=np.bool_)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"reset_mask has shape {mask.shape}, expected ({self.num_envs},)")
            self._rust.reset_some(np.ascontiguousarray(mask), None if seed is None else int(seed))
            self._copy_obs(np.ascontiguousarray(mask))
            return self._obs(), {}
        if seed is None:
            seed = self._seed if self._seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        self._seed = None
        self._rust.reset(int(seed))
        self._copy_obs()
        return self._obs(), {}

    def step(self, actions):
        self._rust.step(
            np.ascontiguousarray(actions, dtype=np.int64),
            self._nodes, self._job, self._global, self._mask,
            self._rewards, self._terminated, self._truncated,
        )
        infos = {}
        ended = self._rust.final_metrics()
        if ended:
            done = np.zeros(self.num_envs, np.bool_)
            done[list(ended)] = True
            names = next(iter(ended.values())).keys()
            episode = {k: np.full(self.num_envs, np.nan) for k in names}
            for e, metrics in ended.items():
                for k, v in metrics.items():
                    episode[k][e] = v
            infos = {"episode": episode, "_episode": done}
        return self._obs(), self._rewards, self._terminated, self._truncated, infos

    def action_masks(self):
        """The legal nodes of every env, `[num_envs, max_nodes]`."""
        return self._mask.copy()
