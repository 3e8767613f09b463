"""The Gymnasium env over the Rust core: conformance, masks, errors."""

import numpy as np
import pytest
from copy import deepcopy

from gymnasium.utils import env_checker as ec
from gymnasium.utils import passive_env_checker as pc
from gymnasium.utils.env_checker import check_env, data_equivalence

import haca
from conftest import SCENARIOS, tiny_scenario


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_gymnasium_checks_pass_on_every_shipped_scenario(path):
    """Every check of `gymnasium.utils.env_checker.check_env` but one, then that one with a legal
    action. Gymnasium's `check_step_determinism` samples its action *before* resetting the env,
    so the action comes from another decision's legal set; an env whose legal nodes depend on
    the job and that raises on an illegal node (as this one must) fails it whenever the two
    sets differ, which is a matter of luck, not of determinism."""
    env = haca.make(path, seed=3)
    pc.check_action_space(env.action_space)
    pc.check_observation_space(env.observation_space)
    ec.check_space_limit(env.observation_space, "observation")
    ec.check_seed_deprecation(env)
    ec.check_reset_return_info_deprecation(env)
    ec.check_reset_return_type(env)
    ec.check_reset_seed_determinism(env)
    ec.check_reset_options(env)
    pc.env_reset_passive_checker(env)
    pc.env_step_passive_checker(env, env.action_space.sample())
    if hasattr(ec, "check_returned_data_not_reused"):  # Gymnasium >= 1.2
        ec.check_returned_data_not_reused(env)
    # Step determinism: same seed, same (legal) action, same transition and info.
    steps = []
    for _ in range(2):
        obs, _ = env.reset(seed=123)
        action = int(np.flatnonzero(obs["action_mask"])[-1])
        steps.append(deepcopy(env.step(action)))
    assert data_equivalence(steps[0], steps[1])


def test_full_check_env_passes_where_the_first_decisions_allow_it(small):
    # On haca-small the action Gymnasium samples before its reset is legal after it (seed 3,
    # the checker's seed 123): the whole checker runs unmodified.
    check_env(haca.make(small, seed=3), skip_render_check=True)


def test_observation_matches_its_space_and_the_mask_is_the_legal_set(small):
    env = haca.make(small, seed=1)
    obs, info = env.reset()
    assert env.observation_space.contains(obs)
    assert info["episode_seed"] >= 0
    assert obs["action_mask"].any()
    np.testing.assert_array_equal(env.action_masks(), obs["action_mask"].astype(bool))
    for _ in range(50):
        a = env.action_space.sample()
        assert obs["action_mask"][a] == 1, "sample() draws legal nodes"
        obs, reward, terminated, truncated, info = env.step(a)
        assert np.isfinite(reward) and reward <= 0


def test_a_masked_or_out_of_range_action_raises_and_changes_nothing():
    # haca-zkml: zkml jobs run on zk nodes only, so some decisions have masked nodes.
    path = next(p for p in SCENARIOS if p.stem == "haca-zkml")
    env, twin = haca.make(path, seed=2), haca.make(path, seed=2)
    obs, _ = env.reset()
    twin.reset()
    for _ in range(1000):
        if not obs["action_mask"].all():
            break
        legal = int(np.flatnonzero(obs["action_mask"])[0])
        obs = env.step(legal)[0]
        twin.step(legal)
    masked = np.flatnonzero(obs["action_mask"] == 0)
    assert masked.size, "no decision with a masked node in 1000 steps"
    with pytest.raises(ValueError, match=f"action {masked[0]} picks a masked node"):
        env.step(int(masked[0]))
    with pytest.raises(ValueError, match="out of range"):
        env.step(10_000)
    with pytest.raises(ValueError, match="not a node index"):
        env.step(-1)
    # The env is where it was: the same legal step matches its twin that never erred.
    legal = int(np.flatnonzero(obs["action_mask"])[0])
    a, b = env.step(legal), twin.step(legal)
    np.testing.assert_array_equal(a[0]["nodes"], b[0]["nodes"])
    assert a[1] == b[1]


def test_same_seed_same_episode_and_reset_continues_the_stream(small):
    a, b = haca.make(small), haca.make(small)
    oa, ia = a.reset(seed=7)
    ob, ib = b.reset(seed=7)
    np.testing.assert_array_equal(oa["nodes"], ob["nodes"])
    assert ia["episode_seed"] == ib["episode_seed"]
    _, i2 = a.reset()
    assert i2["episode_seed"] != ia["episode_seed"]


def test_an_episode_ends_with_its_metrics(tmp_path):
    toml = tiny_scenario(tmp_path, jobs=20)
    env = haca.make(toml, seed=0)
    obs, _ = env.reset()
    done, steps = False, 0
    while not done:
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        done, steps = terminated or truncated, steps + 1
    assert steps == 20
    assert info["metrics"]["jobs_finished"] == 20
    assert info["metrics"]["mean_latency_s"] > 0


def test_a_bad_scenario_raises_naming_file_and_field(tmp_path):
    bad = tmp_path / "bad.toml"
    text = next(p for p in SCENARIOS if p.stem == "haca-small").read_text()
    bad.write_text(text.replace("speed = ", "speed = -", 1))
    with pytest.raises(ValueError) as e:
        haca.make(bad)
    message = str(e.value)
    assert "bad.toml" in message and "speed" in message and "positive" in message, message
    with pytest.raises(ValueError, match="cannot read the scenario"):
        haca.make(tmp_path / "absent.toml")
