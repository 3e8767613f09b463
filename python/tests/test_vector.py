"""The vector env: Rust's numbers, autoreset, errors; routers, policies and compare."""

import json
import subprocess

import numpy as np
import pytest

import haca
from haca import _haca
from conftest import ROOT, tiny_scenario


def first_legal(mask):
    return mask.argmax(axis=1)


def test_vector_env_gives_the_rust_vec_env_numbers(small):
    venv = haca.VectorEnv(small, 6, autoreset_mode="SameStep")
    obs, _ = venv.reset(seed=11)
    want = _haca.reference_rewards(str(small), 6, 11, 400)
    for t in range(400):
        obs, rewards, term, trunc, info = venv.step(first_legal(obs["action_mask"]))
        np.testing.assert_array_equal(rewards, np.array(want[t], np.float32), err_msg=f"step {t}")


def test_env_e_of_a_vector_is_the_single_env_seeded_with_derive_seed(small):
    venv = haca.VectorEnv(small, 4, autoreset_mode="SameStep")
    obs, _ = venv.reset(seed=77)
    solo = haca.make(small)
    so, _ = solo.reset(seed=_haca.derive_seed(77, 3))
    for _ in range(300):
        np.testing.assert_array_equal(obs["nodes"][3], so["nodes"])
        actions = first_legal(obs["action_mask"])
        obs, rewards, term, trunc, _ = venv.step(actions)
        so, r, t, tr, _ = solo.step(int(actions[3]))
        assert np.float32(r) == rewards[3]
        if t or tr:
            so, _ = solo.reset()


def test_next_step_autoreset_reports_metrics_then_resets(tmp_path):
    toml = tiny_scenario(tmp_path, jobs=3)
    venv = haca.VectorEnv(toml, 2, seed=0)
    assert venv.metadata["autoreset_mode"] is not None
    obs, _ = venv.reset()
    for _ in range(3):
        obs, rewards, term, trunc, info = venv.step(first_legal(obs["action_mask"]))
    assert term.all(), "three jobs, three decisions"
    assert info["_episode"].all() and (info["episode"]["jobs_finished"] == 3).all()
    obs, rewards, term, trunc, info = venv.step(np.array([99, 99]))  # ignored: resetting
    assert (rewards == 0).all() and not term.any() and obs["action_mask"].any(axis=1).all()


def test_an_illegal_vector_action_names_the_env(small):
    venv = haca.VectorEnv(small, 3)
    obs, _ = venv.reset(seed=0)
    with pytest.raises(ValueError, match="env 1: action 500 is out of range"):
        venv.step(np.array([0, 500, 0]))
    with pytest.raises(ValueError, match="2 actions for 3 envs"):
        venv.step(np.array([0, 0]))


def test_heuristics_route_legal_nodes_and_an_unknown_name_raises(small):
    env = haca.make(small, seed=4)
    obs, _ = env.reset()
    for name in haca.ROUTERS:
        r = haca.Router.heuristic(name, seed=1)
        assert obs["action_mask"][r.route(env)] == 1, name
    with pytest.raises(ValueError, match="unknown router `nope`"):
        haca.Router.heuristic("nope")


def test_an_oracle_teacher_sees_what_the_client_does_not():
    # haca-clients: 10 s scrapes, so a client's view of a node is the last scrape plus its own
    # dispatches. `sed` on the truth must disagree with `sed` on the view at some decisions,
    # agree at some, and always pick a node the client may route to.
    env = haca.make(ROOT / "env" / "scenarios" / "haca-clients.toml", seed=2)
    obs, _ = env.reset()
    sed = haca.Router.heuristic("sed")
    same = differ = 0
    for _ in range(400):
        view, truth = sed.route(env), sed.route(env, oracle=True)
        assert obs["action_mask"][truth] == 1
        same += view == truth
        differ += view != truth
        obs, _, done, _, _ = env.step(view)
        assert not done
    assert same > 0 and differ > 0, (same, differ)


def test_a_shipped_policy_routes_and_a_bad_file_raises(tmp_path):
    env = haca.make(ROOT / "env" / "scenarios" / "haca-small.toml", seed=5)
    obs, _ = env.reset()
    p = haca.Router.policy(ROOT / "checkpoints" / "haca-small.safetensors")
    assert obs["action_mask"][p.route(env)] == 1
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a policy")
    with pytest.raises(ValueError, match="bad.safetensors"):
        haca.Router.policy(bad)


def test_compare_returns_the_cli_json(small, tmp_path):
    got = haca.compare(small, routers="random,sed", episodes=2, seed=3)
    assert [r["router"] for r in got["results"]] == ["random", "sed"]
    out = tmp_path / "cmp.json"
    cli = ["cargo", "run", "--release", "-q", "-p", "haca-eval", "--"]
    subprocess.run(
        cli + ["compare", "--scenario", str(small), "--routers", "random,sed", "--episodes", "2",
               "--seed", "3", "--json", str(out)],
        check=True, capture_output=True, cwd=ROOT,
    )
    assert json.loads(out.read_text()) == got


def test_reset_mask_resets_only_the_masked_envs(small):
    venv = haca.VectorEnv(small, 3, autoreset_mode="SameStep")
    obs, _ = venv.reset(seed=5)
    for _ in range(20):
        obs, *_ = venv.step(first_legal(obs["action_mask"]))
    before = {k: v.copy() for k, v in obs.items()}
    obs, _ = venv.reset(seed=9, options={"reset_mask": np.array([False, True, False])})
    np.testing.assert_array_equal(obs["nodes"][0], before["nodes"][0])
    np.testing.assert_array_equal(obs["nodes"][2], before["nodes"][2])
    solo = haca.make(small)
    so, _ = solo.reset(seed=_haca.derive_seed(9, 1))
    np.testing.assert_array_equal(obs["nodes"][1], so["nodes"])
    with pytest.raises(ValueError, match="reset_mask has shape"):
        venv.reset(options={"reset_mask": np.array([True])})
