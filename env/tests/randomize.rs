//! Domain randomization: a `[randomize]` scenario draws a network and load per episode, from
//! the episode's seed, within the ranges it states.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use haca_env::{check_env, run_episode, AutoresetMode, Env, Scenario, ScenarioError, VecEnv};
use haca_policy::features::NODE_FEATURES;
use haca_policy::{router_by_name, RandomRouter};

/// Two classes (3 and 5 nodes), Poisson at load 0.7, randomized with `randomize`.
fn scenario(randomize: &str) -> Result<Scenario, ScenarioError> {
    let toml = format!(
        r#"
[episode]
jobs = 200
[[models]]
name = "m"
memory_gb = 10
prefill_cost = 0.0
decode_cost = 0.01
[workload]
input_tokens = {{ dist = "fixed", value = 0 }}
output_tokens = {{ dist = "exponential", mean = 100 }}
[arrivals]
process = "poisson"
load = 0.7
[[node_classes]]
name = "fast"
count = 3
speed = 2.0
memory_gb = 80
[[node_classes]]
name = "slow"
count = 5
speed = 0.5
slots = 2
memory_gb = 80
{randomize}
"#
    );
    common::scenario_with_trace(&toml, None)
}

fn invalid_field(err: ScenarioError) -> (String, String) {
    match err {
        ScenarioError::Invalid { field, message, .. } => (field, message),
        other => panic!("expected an invalid-field error, got {other}"),
    }
}

#[test]
fn draws_stay_in_their_ranges_and_cover_them() {
    let sc = Arc::new(
        scenario(
            "[randomize]\nnode_scale = [0.5, 2.0]\nclass_scale = [0.5, 2.0]\nload = [0.4, 0.9]",
        )
        .unwrap(),
    );
    // 3 * 4 + 5 * 4 nodes at most.
    assert_eq!(sc.max_nodes, 32);
    let mut env = Env::new(sc.clone());
    let (mut sizes, mut mixes, mut loads) = (HashSet::new(), HashSet::new(), vec![]);
    env.reset(Some(7));
    for _ in 0..300 {
        let info = env.reset(None).1.clone();
        let drawn = env.episode_scenario().clone();
        let counts = drawn.class_counts();
        assert!(
            counts.iter().all(|&c| c >= 1),
            "a class vanished: {counts:?}"
        );
        assert!(counts[0] <= 12 && counts[1] <= 20, "{counts:?}");
        assert_eq!(info.nodes, drawn.nodes.len());
        assert!(drawn.randomize.is_none());
        assert_eq!(drawn.max_nodes, 32, "observation padding is fixed");
        assert_eq!(
            drawn.scales,
            drawn.own_scales(),
            "a draw normalizes by its own network"
        );
        assert_eq!(
            drawn.scales.work, sc.scales.work,
            "the workload is not drawn"
        );
        assert!((0.4 - 1e-9..=0.9 + 1e-9).contains(&info.offered_load));
        assert!((info.offered_load - drawn.offered_load()).abs() < 1e-12);
        sizes.insert(drawn.nodes.len());
        mixes.insert(counts[0] * 100 / (counts[0] + counts[1]));
        loads.push(info.offered_load);
    }
    assert!(sizes.len() > 15, "network sizes drawn: {sizes:?}");
    assert!(mixes.len() > 10, "class mixes drawn: {mixes:?}");
    let low = loads.iter().filter(|&&l| l < 0.65).count();
    assert!(
        (100..200).contains(&low),
        "load is uniform: {low} of 300 below the middle"
    );
}

#[test]
fn the_draw_follows_the_episode_seed() {
    let sc = Arc::new(scenario("[randomize]\nnode_scale = [0.3, 3.0]\nload = [0.5, 0.9]").unwrap());
    let mut a = Env::new(sc.clone());
    let mut b = Env::new(sc.clone());
    let mut seen = HashSet::new();
    a.reset(Some(1));
    for _ in 0..20 {
        let info = a.reset(None).1.clone();
        let net = a.episode_scenario().clone();
        seen.insert(net.nodes.len());
        // Replaying the logged episode rebuilds the same network and workload.
        let replayed = b.replay(info.episode_seed).1.clone();
        assert_eq!(replayed.nodes, info.nodes);
        assert_eq!(**b.episode_scenario(), *net);
        assert_eq!(a.obs(), b.obs());
    }
    assert!(seen.len() > 5, "sizes {seen:?}");

    // Every router, and the pooled reference, runs on the seed's network.
    let mut env = Env::new(sc.clone());
    let pooled = env.run_pooled(Some(5)).unwrap();
    let pooled_nodes = env.info().nodes;
    for name in ["random", "jsq", "sed"] {
        let mut router = router_by_name(name, 0).unwrap();
        let m = run_episode(&mut env, router.as_mut(), Some(5)).unwrap();
        assert_eq!(env.info().nodes, pooled_nodes, "{name}");
        assert_eq!(m.jobs_finished, pooled.jobs_finished);
    }
}

#[test]
fn without_a_load_range_the_arrival_rate_is_kept() {
    let sc = Arc::new(scenario("[randomize]\nnode_scale = [0.5, 2.0]").unwrap());
    let mut env = Env::new(sc.clone());
    env.reset(Some(3));
    for _ in 0..30 {
        env.reset(None);
        let net = env.episode_scenario();
        assert_eq!(net.arrivals.rate_per_s, sc.arrivals.rate_per_s);
        // Bigger networks are less loaded.
        let expected = 0.7 * sc.nodes.iter().map(|n| n.capacity()).sum::<f64>()
            / net.nodes.iter().map(|n| n.capacity()).sum::<f64>();
        assert!((env.info().offered_load - expected).abs() < 1e-9);
    }
}

#[test]
fn with_load_fixes_the_load_of_every_draw() {
    let sc = scenario("[randomize]\nclass_scale = [0.5, 2.0]\nload = [0.2, 0.9]").unwrap();
    let mut env = Env::new(Arc::new(sc.with_load(0.55)));
    env.reset(Some(0));
    for _ in 0..20 {
        assert!((env.reset(None).1.offered_load - 0.55).abs() < 1e-9);
    }
    // Node scaling (capacity search) scales the counts the draws center on, and the padding.
    let big = sc.with_node_scale(3.0);
    assert_eq!(big.class_counts(), [9, 15]);
    assert_eq!(big.max_nodes, 9 * 2 + 15 * 2);
    assert!(big.randomize.is_some());
}

#[test]
fn a_randomized_scenario_passes_check_env() {
    let sc = Arc::new(
        scenario(
            "[randomize]\nnode_scale = [0.25, 2.0]\nclass_scale = [0.5, 2.0]\nload = [0.5, 1.1]",
        )
        .unwrap(),
    );
    let report = check_env(sc, 11, 12, 5_000).unwrap();
    assert!(report.episodes >= 12);
    check_env(common::shipped_scenario("haca-random"), 2, 6, 3_000).unwrap();
}

#[test]
fn vec_env_pads_every_draw_to_max_nodes() {
    let sc = Arc::new(scenario("[randomize]\nnode_scale = [0.25, 2.0]").unwrap());
    let mn = sc.max_nodes;
    let mut venv = VecEnv::new(sc, 4, AutoresetMode::SameStep);
    venv.reset(9);
    let mut router = RandomRouter::new(0);
    let mut sizes = HashSet::new();
    for _ in 0..2_000 {
        let actions: Vec<usize> = (0..4)
            .map(|e| {
                let env = venv.env(e);
                let n = env.obs().nodes.len();
                sizes.insert(n);
                for row in n..mn {
                    assert!(!venv.obs.mask[e * mn + row], "padding row {row} unmasked");
                    let off = (e * mn + row) * NODE_FEATURES;
                    assert!(venv.obs.nodes[off..off + NODE_FEATURES]
                        .iter()
                        .all(|&x| x == 0.0));
                }
                haca_policy::Router::route(&mut router, env.obs())
            })
            .collect();
        venv.step(&actions).unwrap();
    }
    assert!(sizes.len() > 3, "sizes {sizes:?}");
}

#[test]
fn bad_ranges_name_the_field() {
    for (section, field, words) in [
        (
            "node_scale = [2.0, 0.5]",
            "randomize.node_scale",
            "[min, max]",
        ),
        (
            "class_scale = [0.0, 1.0]",
            "randomize.class_scale",
            "positive",
        ),
        ("load = [-0.5, 0.5]", "randomize.load", "positive"),
        (
            "node_scale = [1.0, inf]",
            "randomize.node_scale",
            "positive",
        ),
    ] {
        let (f, message) = invalid_field(scenario(&format!("[randomize]\n{section}")).unwrap_err());
        assert_eq!(f, field, "{section}");
        assert!(message.contains(words), "{section}: {message}");
    }
    let err = scenario("[randomize]\nnode_scale = [1.0]").unwrap_err();
    assert!(matches!(err, ScenarioError::Parse { .. }), "{err}");
    let err = scenario("[randomize]\nnodes = [1.0, 2.0]").unwrap_err();
    assert!(err.to_string().contains("unknown field `nodes`"), "{err}");

    let small = common::scenario_with_trace(
        &std::fs::read_to_string(
            common::shipped_scenario("haca-random")
                .path
                .as_ref()
                .unwrap(),
        )
        .unwrap()
        .replace("# max_nodes = 48", "max_nodes = 40"),
        None,
    )
    .unwrap_err();
    let (f, message) = invalid_field(small);
    assert_eq!(f, "episode.max_nodes");
    assert!(
        message.contains("largest network [randomize] can draw 48"),
        "{message}"
    );
}
