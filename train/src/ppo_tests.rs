//! The training envs' episode ends: `cut_drain`.

use super::*;

/// haca-small with 40 jobs an episode, so that episodes end inside a 64-step rollout.
fn short_episodes() -> Arc<Scenario> {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../env/scenarios/haca-small.toml"
    );
    let text = std::fs::read_to_string(file)
        .unwrap()
        .replace("jobs = 2000", "jobs = 40");
    Arc::new(Scenario::from_toml_str(&text, std::path::Path::new(file)).unwrap())
}

fn one_update(cut_drain: bool) -> Trainer {
    let cfg = TrainConfig {
        envs: 4,
        steps_per_rollout: 64,
        minibatches: 2,
        epochs: 1,
        hidden: 8,
        init_from: None,
        reward_scaling: false,
        cut_drain,
        ..Default::default()
    };
    let mut t = Trainer::new(cfg, short_episodes()).unwrap();
    t.update().unwrap();
    t
}

/// With `cut_drain` an episode ends at its last arrival as a truncation (its tail is the
/// critic's value of the final observation), without it as a termination after the drain,
/// whose waiting lands on the last decision's reward; the evaluation scenario keeps its drain.
#[test]
fn cut_drain_truncates_training_episodes_and_leaves_evaluation_alone() {
    let cut = one_update(true);
    assert!(cut.scenario.drain, "the run's own scenario is untouched");
    assert!(cut.buf.truncated.iter().any(|&x| x));
    assert!(!cut.buf.terminated.iter().any(|&x| x));
    let drained = one_update(false);
    assert!(drained.buf.terminated.iter().any(|&x| x));
    assert!(!drained.buf.truncated.iter().any(|&x| x));
    // The drained episode's last reward holds the drain: the most negative of the rollout.
    let last = |t: &Trainer, flags: &[bool]| -> f32 {
        flags
            .iter()
            .zip(&t.buf.rewards)
            .filter(|(f, _)| **f)
            .map(|(_, r)| *r)
            .fold(0.0, f32::min)
    };
    let worst_other = |t: &Trainer| t.buf.rewards.iter().copied().fold(0.0, f32::min);
    assert_eq!(
        last(&drained, &drained.buf.terminated),
        worst_other(&drained)
    );
    assert!(last(&cut, &cut.buf.truncated) > worst_other(&drained));
}
