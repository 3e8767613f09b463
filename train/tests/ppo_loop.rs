//! The PPO loop computes what it claims: the update scores the policy that acted, training does
//! not depend on the checkpoint cadence, and the warm start clones its teacher.

#[path = "../../testutil/temp_path.rs"]
mod temp_path;
use std::path::Path;
use std::sync::Arc;
use temp_path::TempPath;

use haca_env::Scenario;
use haca_policy::Selection::Greedy;
use haca_train::{TrainConfig, Trainer};

fn path(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../env/scenarios/{name}.toml"))
        .display()
        .to_string()
}

fn scenario(name: &str) -> Arc<Scenario> {
    Arc::new(Scenario::load(path(name)).unwrap())
}

fn tmp(tag: &str) -> TempPath {
    TempPath::new("haca-ppo-test", tag)
}

fn tiny(scn: &str) -> TrainConfig {
    TrainConfig {
        scenario: path(scn),
        envs: 4,
        steps_per_rollout: 32,
        minibatches: 2,
        epochs: 2,
        total_steps: 4 * 32 * 6,
        hidden: 16,
        eval_every: 0,
        checkpoint_every: 0,
        init_from: None,
        ..Default::default()
    }
}

/// haca-zkml's ZKML jobs carry features far above the runtime's input clip (300x work). Before
/// the burn model clipped its inputs too, the first minibatch's ratio was not 1 there: PPO
/// optimized the log-probabilities of another policy than the one that acted.
#[test]
fn the_first_minibatch_of_every_update_has_ratio_one_on_haca_zkml() {
    let sc = scenario("haca-zkml");
    let mut t = Trainer::new(tiny("haca-zkml"), sc).unwrap();
    for u in 0..3 {
        let s = t.update().unwrap();
        assert!(
            s.first_kl.abs() < 1e-6 && s.first_ratio_dev < 1e-3,
            "update {u}: first minibatch approx KL {:e}, max |ratio - 1| {:e}",
            s.first_kl,
            s.first_ratio_dev
        );
    }
}

/// Checkpoints are taken at other moments, but the envs are not touched: the same run with a
/// checkpoint after every update and with none ends with the same weights and state.
#[test]
fn training_does_not_depend_on_checkpoint_every() {
    let (a, b) = (tmp("cadence-a"), tmp("cadence-b"));
    let run = |cfg: TrainConfig, dir: &Path| {
        haca_train::run::train(cfg, dir, &Default::default()).unwrap()
    };
    let often = run(
        TrainConfig {
            checkpoint_every: 1,
            ..tiny("haca-small")
        },
        &a,
    );
    let never = run(
        TrainConfig {
            checkpoint_every: 0,
            ..tiny("haca-small")
        },
        &b,
    );
    let mut s1 = often.state.clone();
    let mut s2 = never.state.clone();
    // Wall-clock time is the only thing allowed to differ.
    s1.train_seconds = 0.0;
    s2.train_seconds = 0.0;
    assert_eq!(s1, s2);
    assert_eq!(
        often.export("{}".into()).unwrap(),
        never.export("{}".into()).unwrap()
    );
}

/// A resumed run rebuilds its envs mid-episode by replay: resuming after every update is
/// bit-identical to never stopping, on a scenario whose episodes span many rollouts.
#[test]
fn resume_mid_episode_is_bit_identical() {
    let sc = scenario("haca-churn");
    let cfg = tiny("haca-churn");
    let mut straight = Trainer::new(cfg.clone(), sc.clone()).unwrap();
    let dir = tmp("mid-episode");
    let mut t = Trainer::new(cfg, sc.clone()).unwrap();
    for _ in 0..3 {
        straight.update().unwrap();
        t.update().unwrap();
        t.save_checkpoint(&dir).unwrap();
        t = Trainer::load_checkpoint(&dir, |_| Ok(sc.clone()))
            .unwrap()
            .trainer;
    }
    assert!(
        t.state.envs.iter().all(|e| !e.actions.is_empty()),
        "the envs were mid-episode"
    );
    let (s1, s2) = (straight.update().unwrap(), t.update().unwrap());
    assert_eq!(s1.policy_loss.to_bits(), s2.policy_loss.to_bits());
    assert_eq!(
        straight.export("{}".into()).unwrap(),
        t.export("{}".into()).unwrap()
    );
}

/// Behaviour cloning of `sed` makes a policy that mostly picks what `sed` picks, and whose
/// greedy evaluation is far better than the random initial weights'.
#[test]
fn warm_start_clones_the_teacher() {
    let sc = scenario("haca-small");
    let cfg = TrainConfig {
        bc_steps: 16_384,
        bc_epochs: 12,
        ..tiny("haca-small")
    };
    let mut t = Trainer::new(cfg, sc.clone()).unwrap();
    let lat = |t: &Trainer| {
        let cmp = haca_train::run::evaluate(
            &sc,
            (t.export("{}".into()).unwrap(), Greedy),
            "p",
            "sed",
            4,
            9,
        )
        .unwrap();
        (
            cmp.result("p")
                .unwrap()
                .get(haca_env::Metric::MeanLatency)
                .mean,
            cmp.result("sed")
                .unwrap()
                .get(haca_env::Metric::MeanLatency)
                .mean,
        )
    };
    let (before, sed) = lat(&t);
    let report = t.warm_start("sed").unwrap();
    let (after, _) = lat(&t);
    assert!(report.accuracy > 0.6, "{report:?}");
    assert!(
        after < 0.25 * before && after < 3.0 * sed,
        "random {before:.1} s, clone {after:.1} s, sed {sed:.1} s"
    );
    assert!(t
        .warm_start("fastest")
        .unwrap_err()
        .contains("not a router"));
}

/// A privileged teacher (`oracle:sed`, deciding on the truth while the clone sees a client's
/// stale view) on haca-clients: the clone, sampled, is far better than its random weights.
#[test]
fn warm_start_clones_a_privileged_teacher() {
    let sc = scenario("haca-clients");
    let cfg = TrainConfig {
        bc_steps: 16_384,
        bc_epochs: 12,
        ..tiny("haca-clients")
    };
    let mut t = Trainer::new(cfg, sc.clone()).unwrap();
    let lat = |t: &Trainer| {
        let policy = t.export("{}".into()).unwrap();
        let sampled = haca_policy::Selection::Sample { temperature: 1.0 };
        let cmp = haca_train::run::evaluate(&sc, (policy, sampled), "p", "lsq", 4, 9).unwrap();
        let mean = |who: &str| {
            cmp.result(who)
                .unwrap()
                .get(haca_env::Metric::MeanLatency)
                .mean
        };
        (mean("p"), mean("lsq"))
    };
    let (before, _) = lat(&t);
    let report = t.warm_start("oracle:sed").unwrap();
    let (after, lsq) = lat(&t);
    assert_eq!(report.teacher, "oracle:sed");
    assert!(
        after < 0.25 * before && after < 2.0 * lsq,
        "random {before:.1} s, clone {after:.1} s, lsq {lsq:.1} s"
    );
    let err = t.warm_start("oracle:fastest").unwrap_err();
    assert!(
        err.contains("init_from `oracle:fastest`: `fastest` is not a router"),
        "{err}"
    );
}

/// `init_from` an exported policy file clones that policy's greedy choices (the network's size
/// need not match the file's); a file that is not a policy is a one-line error, not a panic.
#[test]
fn warm_start_clones_an_exported_policy() {
    let sc = scenario("haca-small");
    let cfg = TrainConfig {
        bc_steps: 16_384,
        bc_epochs: 12,
        ..tiny("haca-small")
    };
    let mut t = Trainer::new(cfg, sc).unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../checkpoints/haca-small.safetensors");
    let report = t.warm_start(file.to_str().unwrap()).unwrap();
    assert!(report.accuracy > 0.6, "{report:?}");
    let dir = tmp("bad-teacher");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let err = t.warm_start(bad.to_str().unwrap()).unwrap_err();
    assert!(
        err.starts_with("init_from `") && !err.contains('\n'),
        "{err}"
    );
}
