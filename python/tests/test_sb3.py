"""sb3-contrib's MaskablePPO learns to prefer the fast node of a one-fast-one-slow network.

Needs sb3-contrib (and so torch): skipped when it is not installed, which is the case in CI's
virtual environment (torch from PyPI is gigabytes); `target/venv/bin/pip install sb3-contrib`
then `./test.sh` runs it."""

import numpy as np
import pytest

import haca

sb3_contrib = pytest.importorskip("sb3_contrib")

TOY = """
name = "fast-slow"
[episode]
jobs = 200
[sim]
size_visibility = "exact"
[verification]
verifiers = 0
[[models]]
name = "m"
memory_gb = 1
prefill_cost = 1.0
decode_cost = 0.0
[[node_classes]]
name = "slow"
count = 1
speed = 1.0
memory_gb = 8
[[node_classes]]
name = "fast"
count = 1
speed = 10.0
memory_gb = 8
[workload]
input_tokens = { dist = "fixed", value = 100 }
[arrivals]
process = "poisson"
load = 0.3
"""


def test_maskable_ppo_learns_to_prefer_the_fast_node(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(TOY)
    env = haca.make(path, seed=0)
    model = sb3_contrib.MaskablePPO(
        "MultiInputPolicy", env, n_steps=512, batch_size=128, learning_rate=1e-3, seed=0, verbose=0
    )
    model.learn(total_timesteps=6_000)
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
