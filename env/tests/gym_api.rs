//! The Gymnasium-style API: reset/step contract, errors, seeding, and VecEnv.

mod common;

use haca_env::{AutoresetMode, Env, EnvError, VecEnv};
use haca_policy::rng::derive_seed;
use haca_policy::{ObsBatch, RandomRouter, Router, GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};

#[test]
fn step_contract_and_errors() {
    let mut env = Env::new(common::shipped_scenario("haca-small"));
    assert!(matches!(env.step(0), Err(EnvError::NotReset)));
    let (view, info) = env.reset(Some(1));
    assert_eq!(info.decisions, 0);
    assert_eq!(view.nodes.len(), 12);
    // TEE jobs are legal only on the two TEE nodes; find one and try a plain node.
    let mut r = RandomRouter::new(0);
    loop {
        let v = env.obs();
        if v.job.verification == haca_policy::Verification::Tee {
            let bad = v.mask.iter().position(|&m| !m).unwrap();
            assert_eq!(env.step(bad).unwrap_err(), EnvError::Masked { action: bad });
            break;
        }
        let a = r.route(v);
        env.step(a).unwrap();
    }
    assert_eq!(
        env.step(99).unwrap_err(),
        EnvError::OutOfRange {
            action: 99,
            nodes: 12
        }
    );
    // A rejected action changes nothing: the same job is still waiting.
    let before = env.obs().clone();
    let _ = env.step(99);
    assert_eq!(env.obs(), &before);
}

#[test]
fn reset_none_continues_the_seed_stream() {
    let sc = common::shipped_scenario("park");
    let mut a = Env::new(sc.clone());
    let mut b = Env::new(sc);
    let s1 = a.reset(Some(9)).1.episode_seed;
    let s2 = a.reset(None).1.episode_seed;
    assert_ne!(s1, s2);
    assert_eq!(b.reset(Some(9)).1.episode_seed, s1);
    assert_eq!(b.reset(None).1.episode_seed, s2);
    assert_eq!(a.info().episode, 1);

    // Replaying a logged episode seed reproduces that episode, whatever came before.
    let mut c = Env::new(common::shipped_scenario("park"));
    let first = |env: &mut Env| env.obs().job.input_tokens;
    a.reset(Some(9));
    let size = first(&mut a);
    c.reset(Some(1234));
    c.replay(s1);
    assert_eq!(c.info().episode_seed, s1);
    assert_eq!(first(&mut c), size);
    let m1 = haca_env::run_episode(&mut a, &mut RandomRouter::new(0), Some(9)).unwrap();
    let (_, _) = c.replay(s1);
    let mut r = RandomRouter::new(0);
    r.reset(haca_env::router_seed(s1));
    loop {
        let act = r.route(c.obs());
        if c.step(act).unwrap().done() {
            break;
        }
    }
    let bits = |m: haca_env::EpisodeMetrics| m.values().map(f64::to_bits);
    assert_eq!(
        bits(c.info().metrics.unwrap()),
        bits(m1),
        "NaN-safe equality"
    );
}

#[test]
fn encode_writes_the_documented_shapes() {
    let mut env = Env::new(common::shipped_scenario("haca-zkml"));
    env.reset(Some(0));
    let (n, j, g) = env.feature_sizes();
    assert_eq!(
        (n, j, g),
        (16 * NODE_FEATURES, JOB_FEATURES, GLOBAL_FEATURES)
    );
    let mut obs = ObsBatch::new(1, 16);
    env.encode(obs.get_mut(0));
    assert_eq!(
        (obs.nodes.len(), obs.job.len(), obs.global.len()),
        (n, j, g)
    );
    assert_eq!(obs.mask, env.obs().mask);
    assert!(obs
        .nodes
        .iter()
        .chain(&obs.job)
        .chain(&obs.global)
        .all(|x| x.is_finite()));
}

fn rewards(venv: &VecEnv) -> Vec<f32> {
    venv.outcomes.iter().map(|o| o.reward).collect()
}

fn flags(venv: &VecEnv, f: impl Fn(&haca_env::EnvOutcome) -> bool) -> Vec<bool> {
    venv.outcomes.iter().map(f).collect()
}

fn random_actions(venv: &VecEnv, routers: &mut [RandomRouter]) -> Vec<usize> {
    routers
        .iter_mut()
        .enumerate()
        .map(|(e, r)| r.route(venv.view(e)))
        .collect()
}

#[test]
fn vec_env_matches_standalone_envs_and_is_deterministic() {
    let sc = common::shipped_scenario("park");
    let envs = 6;
    let run = || {
        let mut venv = VecEnv::new(sc.clone(), envs, AutoresetMode::SameStep);
        venv.reset(77);
        let mut routers: Vec<RandomRouter> =
            (0..envs).map(|e| RandomRouter::new(e as u64)).collect();
        let mut trace = vec![];
        let mut finished = 0;
        for _ in 0..2_500 {
            let actions = random_actions(&venv, &mut routers);
            venv.step(&actions).unwrap();
            trace.push((venv.obs.nodes.clone(), rewards(&venv), actions));
            finished += venv
                .outcomes
                .iter()
                .filter(|o| o.final_metrics.is_some())
                .count();
            for e in 0..envs {
                assert_eq!(
                    venv.outcomes[e].terminated,
                    venv.outcomes[e].final_metrics.is_some()
                );
            }
        }
        (trace, finished)
    };
    let (a, finished) = run();
    let (b, _) = run();
    assert!(a == b, "same base seed, same trajectories");
    // Park episodes have 1000 decisions: every env finished two and was autoreset.
    assert_eq!(finished, 2 * envs);

    // Env 3 of the vector is a standalone env seeded with derive_seed(77, 3).
    let mut solo = Env::new(sc.clone());
    solo.reset(Some(derive_seed(77, 3)));
    for (node_obs, rewards, actions) in a.iter().take(999) {
        let step = solo.step(actions[3]).unwrap();
        assert_eq!(step.reward as f32, rewards[3]);
        let (n, _, _) = solo.feature_sizes();
        let mut obs = ObsBatch::new(1, 10);
        solo.encode(obs.get_mut(0));
        assert_eq!(&node_obs[3 * n..4 * n], &obs.nodes[..]);
    }
}

#[test]
fn next_step_autoreset_keeps_the_final_observation_then_resets() {
    let csv = "arrival_s,input_tokens,output_tokens\n0,5,0\n1,3,0\n";
    let toml = common::unit_work_scenario(
        "[[node_classes]]\nname = \"n\"\ncount = 1\nspeed = 1.0\nmemory_gb = 0\n",
        "",
    );
    let sc = std::sync::Arc::new(common::scenario_with_trace(&toml, Some(csv)).unwrap());
    for mode in [
        AutoresetMode::NextStep,
        AutoresetMode::SameStep,
        AutoresetMode::Disabled,
    ] {
        let mut venv = VecEnv::new(sc.clone(), 2, mode);
        venv.reset(1);
        venv.step(&[0, 0]).unwrap();
        venv.step(&[0, 0]).unwrap();
        assert_eq!(flags(&venv, |o| o.terminated), [true, true], "{mode:?}");
        // From t=1 to the end: job 1 in the system until 5, job 2 until 8: 4 + 7.
        assert_eq!(rewards(&venv), [-11.0, -11.0]);
        assert!(venv.outcomes.iter().all(|o| o.final_metrics.is_some()));
        match mode {
            AutoresetMode::NextStep => {
                assert_eq!(
                    venv.obs.mask,
                    [false, false],
                    "final observation: no decision"
                );
                // The action is ignored (99 would be out of range) and the env resets.
                venv.step(&[99, 99]).unwrap();
                assert_eq!(venv.obs.mask, [true, true]);
                assert_eq!(rewards(&venv), [0.0, 0.0]);
                assert_eq!(flags(&venv, |o| o.terminated), [false, false]);
            }
            AutoresetMode::SameStep => assert_eq!(venv.obs.mask, [true, true], "already reset"),
            AutoresetMode::Disabled => {
                venv.step(&[99, 99]).unwrap();
                assert_eq!(venv.obs.mask, [false, false], "stays ended");
                assert!(venv.env(0).is_over());
            }
        }
    }
}

#[test]
fn vec_env_reports_the_env_of_an_illegal_action() {
    let mut venv = VecEnv::new(common::shipped_scenario("park"), 3, AutoresetMode::SameStep);
    venv.reset(0);
    let err = venv.step(&[0, 10, 0]).unwrap_err();
    assert_eq!(err.env, 1);
    assert!(
        err.to_string()
            .starts_with("env 1: action 10 is out of range"),
        "{err}"
    );
}

#[test]
fn without_drain_the_episode_is_truncated_after_the_last_arrival() {
    // Works 5 and 3 at t=0 and t=1 on one node: the second decision is the last arrival, after
    // which the episode is cut with the first job still running.
    let csv = "arrival_s,input_tokens,output_tokens\n0,5,0\n1,3,0\n";
    let toml = common::unit_work_scenario(
        "[[node_classes]]\nname = \"n\"\ncount = 1\nspeed = 1.0\nmemory_gb = 0\n",
        "",
    )
    .replace("drain = true", "drain = false");
    let mut env = common::env_with_trace(&toml, csv);
    env.reset(Some(0));
    let first = env.step(0).unwrap();
    assert!(!first.done());
    assert_eq!(first.reward, -1.0);
    let last = env.step(0).unwrap();
    assert!(last.truncated && !last.terminated);
    assert_eq!(last.reward, 0.0, "no time passes after the last decision");
    let m = last.info.metrics.unwrap();
    assert_eq!((m.jobs_arrived, m.jobs_finished), (2.0, 0.0));
    let c = env.job_counts();
    assert_eq!(c.arrived, c.in_slots + c.queued);
}

#[test]
fn stepping_inside_the_pool_gives_the_same_results() {
    let sc = common::shipped_scenario("haca-small");
    let run = |venv: &mut VecEnv| {
        venv.reset(5);
        let mut routers: Vec<RandomRouter> = (0..8).map(|e| RandomRouter::new(e as u64)).collect();
        for _ in 0..300 {
            let actions = random_actions(venv, &mut routers);
            venv.step(&actions).unwrap();
        }
        (venv.obs.nodes.clone(), rewards(venv))
    };
    let mut a = VecEnv::new(sc.clone(), 8, AutoresetMode::SameStep);
    let mut b = VecEnv::new(sc, 8, AutoresetMode::SameStep);
    let outside = run(&mut a);
    let inside = haca_env::in_pool(|| run(&mut b));
    assert!(outside == inside);
}

#[test]
fn step_into_the_callers_buffers_equals_step() {
    let sc = common::shipped_scenario("haca-churn");
    let mut a = VecEnv::new(sc.clone(), 4, AutoresetMode::SameStep);
    let mut b = VecEnv::new(sc, 4, AutoresetMode::SameStep);
    a.reset(3);
    b.reset(3);
    let mut out = b.obs.clone();
    for t in 0..500 {
        let actions: Vec<usize> = (0..4)
            .map(|e| out.get(e).mask.iter().position(|&m| m).unwrap())
            .collect();
        a.step(&actions).unwrap();
        b.step_into(&actions, out.as_mut_all()).unwrap();
        assert_eq!(a.obs, out, "step {t}");
        assert_eq!(a.outcomes, b.outcomes, "step {t}");
    }
}
