//! No input makes an episode run without end: values that would create unbounded events or
//! memory are rejected with the file and field, and the simulator's own guard turns an episode
//! that still runs away into an error.

mod common;

use std::path::Path;
use std::sync::Arc;

use haca_env::{run_episode, EnvError, Scenario};

fn text(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml")),
    )
    .unwrap()
}

/// `text` with the first line starting `key =` replaced.
fn with(text: &str, key: &str, value: &str) -> String {
    let mut done = false;
    text.lines()
        .map(|l| {
            if !done && l.trim_start().starts_with(&format!("{key} =")) {
                done = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn error_of(text: &str) -> String {
    let err = common::scenario_with_trace(text, None).expect_err("should be rejected");
    let msg = err.to_string();
    assert!(
        msg.contains("scenario.toml") && !msg.contains('\n'),
        "{msg}"
    );
    msg
}

#[test]
fn values_that_would_never_end_an_episode_are_rejected() {
    let small = text("haca-small");
    let churn = text("haca-churn");
    let bursty = text("haca-bursty");
    let randomized = format!("{small}\n[randomize]\nclass_memory = [0.7, 1.5]\n");
    let stale_draws = format!(
        "{small}\n[randomize]\nnode_scale = [100, 1000]\nscrape_interval_s = [0.01]\nload = [0.01, 0.02]\n"
    );
    let cases: [(&str, &str, &str, &[&str]); 15] = [
        // Each bound holds for the written scenario, not for its draws: caught on a sample.
        (
            "node_scale",
            "[100, 1000]",
            &stale_draws,
            &[
                "`randomize`: draw",
                "sim.scrape_interval_s",
                "narrow the ranges",
            ],
        ),
        (
            "class_memory",
            "[1e-9, 1.5]",
            &randomized,
            &["randomize.class_memory", "between 0.001 and 1000"],
        ),
        (
            "class_memory",
            "[0.01, 1.5]",
            &randomized,
            &["randomize.class_memory", "on no node"],
        ),
        // Found by haca-fuzz: allocations of every node and slot before any bound.
        ("slots", "4294967295", &small, &["slots", "at most 1024"]),
        (
            "count",
            "100000000",
            &small,
            &["count", "more than 100000 nodes"],
        ),
        // Found by haca-fuzz: an infinite multiplier made both MMPP rates zero.
        (
            "high_mult",
            "1e308",
            &bursty,
            &["arrivals.high_mult", "at most"],
        ),
        (
            "scrape_interval_s",
            "1e-300",
            &small,
            &["sim.scrape_interval_s", "1e-300", "at least 0.01 s"],
        ),
        (
            "scrape_interval_s",
            "0.001",
            &small,
            &["sim.scrape_interval_s", "0 (the router sees fresh state)"],
        ),
        (
            "jobs",
            "1000000000000",
            &small,
            &["episode.jobs", "at most 10000000"],
        ),
        (
            "time_quantum_s",
            "1e300",
            &small,
            &["sim.time_quantum_s", "mean service time"],
        ),
        ("load", "1e-300", &small, &["arrivals", "would span"]),
        ("mtbf_s", "1e-9", &churn, &["mtbf_s", "at least 1 s"]),
        (
            "jobs",
            "100",
            &with(&small, "scrape_interval_s", "0.01").replace("load = 0.8", "load = 0.0001"),
            &["sim.scrape_interval_s", "node states per job"],
        ),
        (
            "jobs",
            "100",
            &with(&with(&churn, "mtbf_s", "1"), "load", "0.00001"),
            &["mtbf_s", "failures per job"],
        ),
        (
            "estimate_cv",
            "-1",
            &small,
            &["sim.estimate_cv", "zero or a positive number"],
        ),
    ];
    for (key, value, base, needles) in cases {
        let msg = error_of(&with(base, key, value));
        for n in needles {
            assert!(msg.contains(n), "{key} = {value}: expected `{n}` in: {msg}");
        }
    }
}

/// A runaway that validation did not prevent (here forced by editing a loaded scenario) ends in
/// an error naming the runaway, on the first step after it, not in a hang.
#[test]
fn the_simulator_stops_a_runaway_episode_with_an_error() {
    let mut sc =
        Scenario::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/haca-small.toml"))
            .unwrap();
    sc.scrape_interval_s = 1e-9;
    let mut env = haca_env::Env::new(Arc::new(sc));
    let mut router = haca_policy::router_by_name("sed", 0).unwrap();
    let err = run_episode(&mut env, &mut router, Some(1)).unwrap_err();
    match err.source {
        EnvError::Runaway { work, budget, .. } => assert!(work > budget),
        other => panic!("expected a runaway, got {other}"),
    }
    assert!(err.to_string().contains("ran away"), "{err}");
    // Every later step says so too, until a reset.
    assert!(matches!(env.step(0), Err(EnvError::Runaway { .. })));
    // The pooled reference runs into the same guard.
    assert!(matches!(
        env.run_pooled(Some(2)),
        Err(EnvError::Runaway { .. })
    ));

    // Found by haca-fuzz: draws where no node can hold a model block its jobs for good, and
    // every failure repair re-tried all of them against every node: work the guard did not
    // count. Validation now refuses such a range; forced here, the guard stops it.
    let mut sc =
        Scenario::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/haca-general.toml"))
            .unwrap();
    sc.randomize.as_mut().unwrap().class_memory = (1e-9, 1e-9);
    let mut env = haca_env::Env::new(Arc::new(sc));
    let err = run_episode(&mut env, &mut router, Some(3)).unwrap_err();
    assert!(matches!(err.source, EnvError::Runaway { .. }), "{err}");
}
