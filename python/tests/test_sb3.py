"""sb3-contrib's MaskablePPO learns to prefer the fast node of a one-fast-one-slow network.

Needs sb3-contrib (and so torch): skipped when it is not installed, which is the case in CI's
virtual environment (torch from PyPI is gigabytes); `target/venv/bin/pip install sb3-contrib`
then `./test.sh` runs it."""

import numpy as np
import pytest

import haca
from conftest import tiny_scenario

sb3_contrib = pytest.importorskip("sb3_contrib")



def test_maskable_ppo_learns_to_prefer_the_fast_node(tmp_path):
    # Node 0 is slow, node 1 ten times faster; at this load the fast one is always free.
    path = tiny_scenario(tmp_path, jobs=200, speeds=(1.0, 10.0), load=0.3)
    env = haca.make(path, seed=0)
    model = sb3_contrib.MaskablePPO(
        "MultiInputPolicy", env, n_steps=512, batch_size=128, learning_rate=1e-3, seed=0, verbose=0
    )
    # 20,000 steps: 6,000 (12 updates) are too few for SB3's MLP to learn it reliably.
    model.learn(total_timesteps=20_000)
    probe = haca.make(path, seed=99)
    obs, _ = probe.reset()
    fast = 0
    for _ in range(200):
        action, _ = model.predict(obs, action_masks=probe.action_masks(), deterministic=True)
        fast += int(action) == 1
        obs, _, terminated, truncated, _ = probe.step(int(action))
        if terminated or truncated:
            obs, _ = probe.reset()
    assert fast >= 180, f"the fast node got {fast} of 200 decisions"
