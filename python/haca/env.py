"""`haca.make`: one simulated HACA network as a `gymnasium.Env`, one routing decision per step."""

import numpy as np
import gymnasium as gym
from gymnasium import spaces

from haca._haca import RustEnv

NODE_FEATURES, JOB_FEATURES, GLOBAL_FEATURES = 16, 8, 7


def observation_space(max_nodes):
    """The observation: node rows, the job row, the global row and the legal-node mask."""
    inf = np.float32(np.inf)
    return spaces.Dict(
        {
            "nodes": spaces.Box(-inf, inf, (max_nodes, NODE_FEATURES), np.float32),
            "job": spaces.Box(-inf, inf, (JOB_FEATURES,), np.float32),
            "global": spaces.Box(-inf, inf, (GLOBAL_FEATURES,), np.float32),
            "action_mask": spaces.Box(0, 1, (max_nodes,), np.int8),
        }
    )


class LegalNodes(spaces.Discrete):
    """`Discrete(max_nodes)` whose `sample()` draws among the nodes legal right now: a random
    agent (and `gymnasium.utils.env_checker`) then only takes actions the env accepts."""

    def __init__(self, n, legal, seed=None):
        super().__init__(n, seed=seed)
        self._legal = legal

    def sample(self, mask=None, probability=None):
        if mask is None and probability is None:
            mask = self._legal().astype(np.int8)
        return super().sample(mask=mask, probability=probability)


class HacaEnv(gym.Env):
    """A scenario file as a Gymnasium env. `reset(seed=s)` reseeds the stream of episodes,
    `reset()` continues it; an illegal action raises `ValueError` naming the node and why."""

    metadata = {"render_modes": []}

    def __init__(self, scenario_path, seed=None):
        self._rust = RustEnv(str(scenario_path))
        self.scenario_path = str(scenario_path)
        n = self._rust.max_nodes
        self.observation_space = observation_space(n)
        self.action_space = LegalNodes(n, lambda: self._mask)
        self._nodes = np.zeros((n, NODE_FEATURES), np.float32)
        self._job = np.zeros(JOB_FEATURES, np.float32)
        self._global = np.zeros(GLOBAL_FEATURES, np.float32)
        self._mask = np.zeros(n, np.bool_)
        self._seed = seed
        self._started = False

    def _obs(self):
        # Copies: an observation handed out must not change under its holder's feet.
        return {
            "nodes": self._nodes.copy(),
            "job": self._job.copy(),
            "global": self._global.copy(),
            "action_mask": self._mask.astype(np.int8),
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is None and not self._started:
            # The first episode: the seed given to `make`, else one from Gymnasium's generator.
            seed = self._seed if self._seed is not None else int(self.np_random.integers(2**63))
        self._started = True
        info = self._rust.reset(seed, self._nodes, self._job, self._global, self._mask)
        return self._obs(), info

    def step(self, action):
        reward, terminated, truncated, info = self._rust.step(
            int(action), self._nodes, self._job, self._global, self._mask
        )
        return self._obs(), float(reward), terminated, truncated, info

    def action_masks(self):
        """The legal nodes (what sb3-contrib's MaskablePPO asks for)."""
        return self._mask.copy()


def make(scenario_path, seed=None):
    """The env of a scenario file; `seed` fixes its first episode (later resets continue)."""
    return HacaEnv(scenario_path, seed=seed)
