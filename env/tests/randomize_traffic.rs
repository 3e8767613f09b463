//! Domain randomization beyond network size: per-class hardware, churn, observation staleness,
//! size information, popularity, the ZKML share and the arrival process, each drawn per episode.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use haca_env::{check_env, ArrivalProcess, Scenario, ScenarioError};
use haca_policy::SizeVisibility;

const CSV: &str = "arrival_s,input_tokens,output_tokens\n0,100,10\n1,200,20\n2,300,30\n4,400,40\n";

/// Two plain classes and a zk class, a provable model, randomized with `randomize`; `trace.csv`
/// beside it holds four requests.
fn scenario(randomize: &str) -> Result<Scenario, ScenarioError> {
    scenario_with_jobs(4, randomize)
}

fn scenario_with_jobs(jobs: u64, randomize: &str) -> Result<Scenario, ScenarioError> {
    let toml = format!(
        r#"
[episode]
jobs = {jobs}
[[models]]
name = "m"
memory_gb = 10
prefill_cost = 0.0
decode_cost = 0.01
[[models]]
name = "zk"
memory_gb = 1
prefill_cost = 0.0
decode_cost = 0.0001
zkml = true
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
slots = 4
memory_gb = 80
[[node_classes]]
name = "slow"
count = 5
speed = 0.5
slots = 2
memory_gb = 80
[[node_classes]]
name = "prover"
count = 2
speed = 1.0
memory_gb = 16
zk = true
[randomize]
{randomize}
"#
    );
    common::scenario_with_trace(&toml, Some(CSV))
}

fn draws(sc: &Scenario, n: u64) -> Vec<Scenario> {
    (0..n).map(|seed| sc.episode_variant(seed)).collect()
}

#[test]
fn class_hardware_draws_stay_in_range_and_keep_each_class_uniform() {
    let sc = scenario(
        "class_speed = [0.5, 2.0]\nclass_slots = [0.5, 2.0]\nclass_memory = [0.5, 1.0]\nchurn = 0.5\nmtbf_s = [600, 3600]\nmttr_s = [30, 300]",
    )
    .unwrap();
    let mut speeds = HashSet::new();
    let mut churned = 0;
    for v in draws(&sc, 200) {
        assert!(v.randomize.is_none());
        for class in 0..3 {
            let nodes: Vec<_> = v.nodes.iter().filter(|n| n.class == class).collect();
            let base = sc.nodes.iter().find(|n| n.class == class).unwrap();
            let first = nodes[0];
            for n in &nodes {
                assert_eq!(
                    (n.speed, n.slots, n.memory_gb),
                    (first.speed, first.slots, first.memory_gb)
                );
                assert_eq!(n.churn, first.churn);
            }
            let f = first.speed / base.speed;
            assert!((0.5 - 1e-9..=2.0 + 1e-9).contains(&f), "speed factor {f}");
            let slots = first.slots as f64 / base.slots as f64;
            assert!(
                (0.25..=2.0).contains(&slots) && first.slots >= 1,
                "slots {slots}"
            );
            assert!(
                first.memory_gb <= base.memory_gb && first.memory_gb >= base.memory_gb * 0.5 - 1e-9
            );
            if let Some((mtbf, mttr)) = first.churn {
                churned += 1;
                assert!((600.0..=3600.0).contains(&mtbf) && (30.0..=300.0).contains(&mttr));
            }
            speeds.insert((f * 1000.0) as i64);
        }
    }
    assert!(speeds.len() > 100, "speed draws collapse: {}", speeds.len());
    // 600 class draws at probability 0.5.
    assert!(
        (240..=360).contains(&churned),
        "{churned} churning classes of 600"
    );
}

#[test]
fn traffic_draws_cover_every_option_and_keep_the_load() {
    let sc = scenario(
        "load = [0.6, 0.6]\nscrape_interval_s = [0, 5]\nsize_visibility = [\"hidden\", \"exact\"]\nzipf = [0.5, 1.5]\nzkml = [0.0, 0.1]\narrivals = [\"poisson\", \"mmpp\", \"diurnal\", \"trace\"]\ntraces = [\"trace.csv\"]",
    )
    .unwrap();
    let (mut scrapes, mut vis, mut kinds) = (HashSet::new(), HashSet::new(), HashSet::new());
    for v in draws(&sc, 100) {
        scrapes.insert(v.scrape_interval_s as i64);
        vis.insert(v.size_visibility == SizeVisibility::Exact);
        kinds.insert(std::mem::discriminant(&v.arrivals.process));
        let mix = v.workload.mix;
        assert!((mix.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{mix:?}");
        assert!((0.0..=0.1).contains(&mix[2]), "zkml share {}", mix[2]);
        assert!((mix[0] / (mix[0] + mix[1]) - sc.workload.mix[0]).abs() < 1e-9);
        let p = &v.workload.popularity;
        assert!(p[0] >= p[1], "zipf popularity decreases: {p:?}");
        assert!(
            (v.offered_load() - 0.6).abs() < 1e-9,
            "load {}",
            v.offered_load()
        );
        if let ArrivalProcess::Trace { random_offset, .. } = v.arrivals.process {
            assert!(random_offset);
            assert_eq!(v.workload.mean_output_tokens, 25.0);
        }
    }
    assert_eq!(scrapes.len(), 2);
    assert_eq!(vis.len(), 2);
    assert_eq!(kinds.len(), 4);
}

#[test]
fn draws_are_deterministic_and_fields_left_out_draw_nothing() {
    let sc = scenario(
        "node_scale = [0.5, 2.0]\nclass_speed = [0.5, 2.0]\narrivals = [\"mmpp\", \"diurnal\"]",
    )
    .unwrap();
    for seed in 0..20 {
        let (a, b) = (sc.episode_variant(seed), sc.episode_variant(seed));
        assert_eq!(a.nodes, b.nodes);
        assert_eq!(format!("{:?}", a.arrivals), format!("{:?}", b.arrivals));
    }
    // A single option is no choice: the network drawn is the one drawn without it.
    let plain = scenario("node_scale = [0.5, 2.0]").unwrap();
    let fixed =
        scenario("node_scale = [0.5, 2.0]\nscrape_interval_s = [3]\nsize_visibility = [\"exact\"]")
            .unwrap();
    for seed in 0..20 {
        let (a, b) = (plain.episode_variant(seed), fixed.episode_variant(seed));
        assert_eq!(a.class_counts(), b.class_counts());
        assert_eq!(b.scrape_interval_s, 3.0);
    }
}

#[test]
fn a_fully_randomized_scenario_passes_check_env() {
    let sc = scenario(
        "node_scale = [0.5, 2.0]\nclass_speed = [0.5, 2.0]\nclass_slots = [0.5, 2.0]\nclass_memory = [0.2, 1.0]\nchurn = 0.5\nmtbf_s = [60, 600]\nmttr_s = [10, 60]\nscrape_interval_s = [0, 2]\nsize_visibility = [\"hidden\", \"estimate\"]\nzipf = [0.5, 1.5]\nzkml = [0.0, 0.1]\narrivals = [\"poisson\", \"mmpp\", \"diurnal\", \"trace\"]\ntraces = [\"trace.csv\"]",
    )
    .unwrap();
    let report = check_env(Arc::new(sc), 3, 30, 2_000).unwrap();
    assert!(report.episodes >= 30);
}

fn field_of(err: ScenarioError) -> (String, String) {
    match err {
        ScenarioError::Invalid { field, message, .. } => (field, message),
        other => panic!("expected an invalid-field error, got {other}"),
    }
}

#[test]
fn bad_sections_name_the_field_and_the_fix() {
    for (section, field, words) in [
        ("churn = 0.3", "randomize.churn", "set all three"),
        (
            "churn = 1.5\nmtbf_s = [1, 2]\nmttr_s = [1, 2]",
            "randomize.churn",
            "between 0 and 1",
        ),
        (
            "churn = 0.5\nmtbf_s = [2, 1]\nmttr_s = [1, 2]",
            "randomize.mtbf_s",
            "[min, max]",
        ),
        ("class_speed = [0, 2]", "randomize.class_speed", "positive"),
        ("zkml = [0.0, 1.0]", "randomize.zkml", "below 1"),
        (
            "scrape_interval_s = [1, -2]",
            "randomize.scrape_interval_s[1]",
            "zero or a positive",
        ),
        (
            "size_visibility = [\"exact\", \"fuzzy\"]",
            "randomize.size_visibility[1]",
            "\"estimate\"",
        ),
        (
            "arrivals = [\"poisson\", \"bursty\"]",
            "randomize.arrivals[1]",
            "\"mmpp\"",
        ),
        ("arrivals = [\"trace\"]", "randomize.traces", "is required"),
        (
            "traces = [\"trace.csv\"]",
            "randomize.traces",
            "add \"trace\"",
        ),
    ] {
        let (f, message) = field_of(scenario(section).unwrap_err());
        assert_eq!(f, field, "{section}: {message}");
        assert!(message.contains(words), "{section}: {message}");
    }
    let err = scenario("arrivals = [\"trace\"]\ntraces = [\"missing.csv\"]").unwrap_err();
    assert!(matches!(err, ScenarioError::Trace { .. }), "{err}");
    assert!(err.to_string().contains("missing.csv"), "{err}");
}

#[test]
fn a_zkml_draw_needs_a_prover_and_a_trace_draw_enough_requests() {
    assert_eq!(scenario("zkml = [0.0, 0.1]").unwrap().nodes.len(), 10);
    let text = std::fs::read_to_string(
        common::shipped_scenario("haca-small")
            .path
            .as_ref()
            .unwrap(),
    )
    .unwrap()
        + "\n[randomize]\nzkml = [0.0, 0.1]\n";
    let (f, message) = field_of(common::scenario_with_trace(&text, None).unwrap_err());
    assert_eq!(f, "randomize.zkml");
    assert!(message.contains("no zk node"), "{message}");

    let long = scenario_with_jobs(5, "arrivals = [\"trace\"]\ntraces = [\"trace.csv\"]");
    let (f, message) = field_of(long.unwrap_err());
    assert_eq!(f, "randomize.traces[0]");
    assert!(message.contains("fewer than episode.jobs"), "{message}");
}
