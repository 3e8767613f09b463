//! The trainer: parity with the runtime, determinism, bit-identical resume, a smoke run of
//! train -> export -> evaluate, and a learning test with a known answer.

#[path = "../../testutil/temp_path.rs"]
mod temp_path;
use std::path::Path;
use std::sync::Arc;
use temp_path::TempPath;

use burn::tensor::Device;
use haca_env::Scenario;
use haca_policy::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::model::Scratch;
use haca_policy::{Activation, Architecture, PolicyInfo, Rng};
use haca_train::model::{Batch, Net};
use haca_train::{TrainConfig, Trainer};

fn scenario(name: &str) -> Arc<Scenario> {
    Arc::new(
        Scenario::load(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../env/scenarios/{name}.toml")),
        )
        .unwrap(),
    )
}

fn tmp(tag: &str) -> TempPath {
    TempPath::new("haca-train-test", tag)
}

fn tiny(scn: &str) -> TrainConfig {
    TrainConfig {
        scenario: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../env/scenarios/{scn}.toml"))
            .display()
            .to_string(),
        envs: 4,
        steps_per_rollout: 32,
        minibatches: 2,
        epochs: 2,
        total_steps: 4 * 32 * 4,
        hidden: 16,
        layers: 2,
        eval_every: 0,
        checkpoint_every: 1,
        init_from: None,
        ..Default::default()
    }
}

/// Inputs in the range features usually take: uniform in [-1, 2).
fn usual(rng: &mut Rng) -> f32 {
    (rng.uniform() * 3.0 - 1.0) as f32
}

/// Inputs far outside it, as heavy-tailed scenarios produce (ZKML work, overload, staleness):
/// a third usual, the rest of either sign with magnitudes log-uniform up to 1e4.
fn wide(rng: &mut Rng) -> f32 {
    if rng.uniform() < 1.0 / 3.0 {
        return usual(rng);
    }
    let magnitude = 10f64.powf(rng.uniform() * 4.0);
    let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
    (sign * magnitude) as f32
}

#[test]
fn burn_forward_matches_the_runtime_forward() {
    parity(usual);
}

#[test]
fn burn_forward_matches_the_runtime_forward_far_outside_the_usual_range() {
    parity(wide);
}

fn parity(draw: fn(&mut Rng) -> f32) {
    let device = Device::flex();
    for (arch_seed, activation) in [(1u64, Activation::Relu), (2, Activation::Tanh)] {
        let arch = Architecture {
            hidden: 24,
            layers: 3,
            value_layers: 2,
            activation,
        };
        let net = Net::new(arch, arch_seed, &device);
        let policy = net.to_policy(PolicyInfo::default()).unwrap();
        let (b, n) = (16, 12);
        let mut rng = Rng::new(arch_seed);
        let mut f = |k: usize| (0..k).map(|_| draw(&mut rng)).collect::<Vec<f32>>();
        let nodes = f(b * n * NODE_FEATURES);
        let job = f(b * JOB_FEATURES);
        let global = f(b * GLOBAL_FEATURES);
        let mut mrng = Rng::new(9);
        // Row 1 has no legal node (both pass a zero context to the value head).
        let mask: Vec<bool> = (0..b * n)
            .map(|i| i / n != 1 && (i % n == 0 || mrng.uniform() < 0.6))
            .collect();
        let maskf: Vec<f32> = mask.iter().map(|&m| m as u8 as f32).collect();
        let batch = Batch::from_slices(&nodes, &job, &global, &maskf, b, n, &device);
        let (logits, values) = net.forward(&batch);
        let logits: Vec<f32> = logits.into_data().try_to_vec().unwrap();
        let values: Vec<f32> = values.into_data().try_to_vec().unwrap();
        let mut scratch = Scratch::default();
        for row in 0..b {
            let mut out = vec![0.0; n];
            let v = policy.network.forward(
                haca_policy::Obs::new(
                    &nodes[row * n * NODE_FEATURES..(row + 1) * n * NODE_FEATURES],
                    &job[row * JOB_FEATURES..(row + 1) * JOB_FEATURES],
                    &global[row * GLOBAL_FEATURES..(row + 1) * GLOBAL_FEATURES],
                    &mask[row * n..(row + 1) * n],
                ),
                &mut scratch,
                &mut out,
            );
            assert!(v.is_finite() && values[row].is_finite());
            assert!(
                (v - values[row]).abs() < 1e-4 * v.abs().max(1.0),
                "value {v} vs {}",
                values[row]
            );
            if row == 1 {
                assert!(out.iter().all(|&l| l == f32::NEG_INFINITY));
                continue;
            }
            let argmax = |l: &[f32]| {
                (0..n)
                    .filter(|&i| mask[row * n + i])
                    .max_by(|&i, &j| l[i].total_cmp(&l[j]))
                    .unwrap()
            };
            let burn_row = &logits[row * n..(row + 1) * n];
            for i in 0..n {
                if mask[row * n + i] {
                    assert!(
                        (out[i] - burn_row[i]).abs() < 1e-4 * out[i].abs().max(1.0),
                        "{activation:?} row {row} node {i}: {} vs {}",
                        out[i],
                        burn_row[i]
                    );
                } else {
                    assert!(out[i] == f32::NEG_INFINITY && burn_row[i] <= -1e8);
                }
            }
            assert_eq!(argmax(&out), argmax(burn_row));
        }
    }
}

#[test]
fn same_seed_same_first_losses() {
    let cfg = tiny("haca-small");
    let sc = scenario("haca-small");
    let mut a = Trainer::new(cfg.clone(), sc.clone()).unwrap();
    let mut b = Trainer::new(cfg, sc).unwrap();
    for _ in 0..2 {
        let (sa, sb) = (a.update().unwrap(), b.update().unwrap());
        assert_eq!(sa.policy_loss.to_bits(), sb.policy_loss.to_bits());
        assert_eq!(sa.value_loss.to_bits(), sb.value_loss.to_bits());
        assert_eq!(sa.entropy.to_bits(), sb.entropy.to_bits());
    }
    assert_eq!(
        a.export("{}".into()).unwrap(),
        b.export("{}".into()).unwrap()
    );
}

#[test]
fn resume_continues_exactly_like_an_uninterrupted_run() {
    let cfg = tiny("park");
    let sc = scenario("park");
    let mut straight = Trainer::new(cfg.clone(), sc.clone()).unwrap();
    for _ in 0..4 {
        straight.update().unwrap();
    }
    let dir = tmp("resume");
    let mut first = Trainer::new(cfg, sc.clone()).unwrap();
    first.update().unwrap();
    first.update().unwrap();
    first.save_checkpoint(&dir).unwrap();
    drop(first);
    let mut resumed = Trainer::load_checkpoint(&dir, |_| Ok(sc.clone()))
        .unwrap()
        .trainer;
    assert_eq!(resumed.state.update, 2);
    resumed.update().unwrap();
    resumed.update().unwrap();
    // The saved env snapshots are the only difference: the uninterrupted run never saved.
    let mut state = resumed.state.clone();
    (state.envs, state.pending) = (Vec::new(), Vec::new());
    assert_eq!(state, straight.state);
    assert_eq!(
        resumed.export("{}".into()).unwrap(),
        straight.export("{}".into()).unwrap(),
        "same weights"
    );
}

#[test]
fn smoke_train_export_evaluate() {
    let dir = tmp("smoke");
    let cfg = TrainConfig {
        eval_every: 2,
        eval_episodes: 2,
        select_top: 2,
        select_episodes: 3,
        ..tiny("haca-small")
    };
    let t = haca_train::run::train(cfg, &dir, &Default::default()).unwrap();
    assert_eq!(t.state.update, 4);
    for f in [
        "best.safetensors",
        "last.safetensors",
        "config.json",
        "checkpoint/model.bpk",
        "checkpoint/optimizer.bpk",
        "checkpoint/state.json",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let tb = std::fs::read_dir(dir.join("tb"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        std::fs::read_dir(tb).unwrap().count() > 0,
        "a TensorBoard event file"
    );
    let policy = haca_policy::Policy::load(dir.join("best.safetensors")).unwrap();
    assert_eq!(policy.info.scenario, "haca-small");
    // The final selection compared the two evaluated candidates (updates 2 and 4, the last
    // weights) on fresh episodes, from the files the evaluations kept.
    let chosen: serde_json::Value = serde_json::from_str(&policy.info.evaluation).unwrap();
    assert_eq!(chosen["note"], "final selection", "{chosen}");
    let finalists = chosen["finalists"].as_array().unwrap();
    assert_eq!(finalists.len(), 2, "{chosen}");
    assert!(
        finalists.iter().any(|f| f["update"] == 4),
        "the last weights: {chosen}"
    );
    assert!(dir.join("candidates/update000004.safetensors").exists());
    assert_eq!(policy.info.training_steps % 128, 0);
    let c = haca_eval::Contender::policy(&dir.join("best.safetensors")).unwrap();
    let cmp = haca_eval::compare(
        &scenario("haca-small"),
        &[c],
        2,
        5,
        0,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();
    assert_eq!(
        cmp.results[0].get(haca_env::Metric::JobsFinished).mean,
        2000.0
    );
    // Resume the finished run with a larger budget (`--total-steps`): it continues from
    // update 4; a budget below what is done is refused.
    let resume = |total| haca_train::run::RunOptions {
        resume: true,
        total_steps: Some(total),
        show_progress: false,
    };
    let e = haca_train::run::train(TrainConfig::default(), &dir, &resume(100))
        .err()
        .unwrap();
    assert!(
        e.contains("--total-steps 100 is below the 512 steps"),
        "{e}"
    );
    let t2 = haca_train::run::train(TrainConfig::default(), &dir, &resume(1024)).unwrap();
    assert_eq!(t2.state.update, 8);
}

#[test]
fn learns_to_prefer_the_fast_node() {
    // One node ten times faster than the other, light load: routing to the fast one is right.
    // Jobs of about 100 tokens at 0.01 work units each: token counts are whole numbers, so with
    // a mean of 1 token most jobs would have no work, their routing no consequence, and the
    // share of jobs sent to the fast node would measure arbitrary logits.
    let dir = tmp("learn");
    std::fs::create_dir_all(&dir).unwrap();
    let scn = dir.join("fast-slow.toml");
    std::fs::write(
        &scn,
        r#"
[episode]
jobs = 200
[sim]
size_visibility = "exact"
[verification]
verifiers = 0
[[models]]
name = "m"
memory_gb = 0
prefill_cost = 0.01
decode_cost = 0.0
[workload]
input_tokens = { dist = "exponential", mean = 100.0 }
[arrivals]
process = "poisson"
load = 0.3
[[node_classes]]
name = "slow"
count = 1
speed = 0.1
memory_gb = 0
[[node_classes]]
name = "fast"
count = 1
speed = 1.0
memory_gb = 0
"#,
    )
    .unwrap();
    // Every seed must learn it (seeds 1-12 send 0.945-1.0 of jobs to the fast node greedily).
    let sc = Arc::new(Scenario::load(&scn).unwrap());
    let shares: Vec<f64> = (1..=3)
        .map(|seed| {
            let cfg = TrainConfig {
                scenario: scn.display().to_string(),
                envs: 8,
                steps_per_rollout: 64,
                total_steps: 8 * 64 * 40,
                learning_rate: 1e-3,
                eval_every: 0,
                checkpoint_every: 0,
                seed,
                ..Default::default()
            };
            let mut t = Trainer::new(cfg.clone(), sc.clone()).unwrap();
            for _ in 0..cfg.updates() {
                t.update().unwrap();
            }
            let policy = Arc::new(t.export("{}".into()).unwrap());
            let mut env = haca_env::Env::new(sc.clone());
            let mut router =
                haca_policy::PolicyRouter::new(policy, haca_policy::Selection::Greedy, 0);
            use haca_policy::Router;
            let (mut fast, mut total) = (0, 0);
            env.reset(Some(42));
            loop {
                let a = router.route(env.obs());
                fast += (a == 1) as usize;
                total += 1;
                if env.step(a).unwrap().done() {
                    break;
                }
            }
            fast as f64 / total as f64
        })
        .collect();
    assert!(
        shares.iter().all(|&s| s > 0.9),
        "share of jobs routed to the fast node per seed: {shares:?}"
    );
}

#[test]
fn target_kl_stops_an_update_after_the_first_epoch() {
    let sc = scenario("park");
    let mut cfg = tiny("park");
    cfg.epochs = 4;
    cfg.target_kl = None;
    let mut free = Trainer::new(cfg.clone(), sc.clone()).unwrap();
    assert_eq!(free.update().unwrap().epochs_run, 4);
    // Any policy change exceeds a target this small, so only the first epoch runs.
    cfg.target_kl = Some(1e-12);
    let mut stopped = Trainer::new(cfg, sc).unwrap();
    let s = stopped.update().unwrap();
    assert_eq!(s.epochs_run, 1, "approx_kl {}", s.approx_kl);
}
