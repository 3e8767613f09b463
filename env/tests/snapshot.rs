//! Snapshots: (seed stream, episode seed, actions) rebuild an env's state exactly by replay, and
//! a VecEnv keeps the final observation of a truncated episode for value bootstrapping.

mod common;

use haca_env::{AutoresetMode, Env, VecEnv};
use haca_policy::{ObsBatch, RandomRouter, Router};

/// Encodes the env's observation into an owned buffer, for comparison.
fn encoded(env: &Env) -> ObsBatch {
    let mut obs = ObsBatch::new(1, env.max_nodes());
    env.encode(obs.get_mut(0));
    obs
}

/// Steps `steps` random legal actions; returns the rewards (episodes reset with `None`).
fn walk(env: &mut Env, router: &mut RandomRouter, steps: usize) -> Vec<f64> {
    (0..steps)
        .map(|_| {
            let a = router.route(env.obs());
            let s = env.step(a).unwrap();
            let (r, done) = (s.reward, s.done());
            if done {
                env.reset(None);
            }
            r
        })
        .collect()
}

#[test]
fn restore_rebuilds_the_state_mid_episode_and_across_episodes() {
    for name in ["haca-churn", "haca-random", "park"] {
        let sc = common::shipped_scenario(name);
        let mut env = Env::new(sc.clone());
        env.reset(Some(5));
        let mut router = RandomRouter::new(1);
        // Past the first episode's end on park (1000 jobs), mid-episode elsewhere.
        walk(&mut env, &mut router, 1_300);
        let snap = env.snapshot();
        assert!(!snap.actions.is_empty());
        let mut copy = Env::new(sc);
        copy.restore(&snap).unwrap();
        assert_eq!(encoded(&copy), encoded(&env), "{name}: same observation");
        assert_eq!(copy.info(), env.info(), "{name}: same info");
        assert_eq!(copy.snapshot(), snap);
        // The futures agree, through later episodes of the seed stream too.
        let mut r1 = RandomRouter::new(2);
        let mut r2 = RandomRouter::new(2);
        assert_eq!(
            walk(&mut env, &mut r1, 2_500),
            walk(&mut copy, &mut r2, 2_500),
            "{name}: same rewards after the restore"
        );
    }
}

#[test]
fn a_snapshot_of_another_scenario_is_refused() {
    let mut env = Env::new(common::shipped_scenario("haca-small"));
    env.reset(Some(1));
    let mut router = RandomRouter::new(1);
    walk(&mut env, &mut router, 50);
    let mut snap = env.snapshot();
    snap.actions[10] = 10_000;
    let mut other = Env::new(common::shipped_scenario("haca-small"));
    let e = other.restore(&snap).unwrap_err().to_string();
    assert!(
        e.contains("action 10") && e.contains("another scenario"),
        "{e}"
    );
}

#[test]
fn vec_env_snapshot_restores_every_env() {
    let sc = common::shipped_scenario("haca-small");
    let mut a = VecEnv::new(sc.clone(), 3, AutoresetMode::SameStep);
    a.reset_groups(7, 3);
    let ids: Vec<u64> = (0..3).map(|e| a.env(e).info().episode_seed).collect();
    assert!(
        ids.iter().all(|&s| s == ids[0]),
        "one group shares its workload"
    );
    let mut routers: Vec<RandomRouter> = (0..3).map(|e| RandomRouter::new(e as u64)).collect();
    for _ in 0..40 {
        let acts: Vec<usize> = (0..3).map(|e| routers[e].route(a.view(e))).collect();
        a.step(&acts).unwrap();
    }
    let (snaps, pending) = a.snapshot();
    let mut b = VecEnv::new(sc, 3, AutoresetMode::SameStep);
    b.restore(&snaps, &pending).unwrap();
    assert_eq!(a.obs, b.obs);
    assert!(b.restore(&snaps[..2], &pending[..2]).is_err());
}

#[test]
fn a_truncated_episode_keeps_its_final_observation() {
    let csv = "arrival_s,input_tokens,output_tokens\n0,5,0\n1,3,0\n";
    let toml = common::unit_work_scenario(
        "[[node_classes]]\nname = \"n\"\ncount = 2\nspeed = 1.0\nmemory_gb = 0\n",
        "",
    )
    .replace("drain = true", "drain = false");
    let sc = std::sync::Arc::new(common::scenario_with_trace(&toml, Some(csv)).unwrap());
    let mut venv = VecEnv::new(sc, 1, AutoresetMode::SameStep);
    venv.reset(0);
    venv.step(&[0]).unwrap();
    assert!(!venv.outcomes[0].truncated);
    venv.step(&[0]).unwrap();
    assert!(venv.outcomes[0].truncated);
    // Both jobs went to node 0: its row shows them, node 1's does not; with no job waiting,
    // the mask marks both nodes of the network.
    assert_eq!(venv.final_obs.mask, vec![true, true]);
    let row = |n: usize| &venv.final_obs.nodes[n * 12..(n + 1) * 12];
    assert_ne!(
        row(0),
        row(1),
        "the final observation is the loaded network"
    );
    // The buffers hold the next episode's first observation.
    assert_eq!(venv.env(0).info().decisions, 0);
}
