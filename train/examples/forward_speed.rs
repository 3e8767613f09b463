//! Measures the two ways a rollout could run the policy: burn's batched forward (one call for
//! all envs) and haca-policy's runtime forward (one call per env), on the same weights.
//!
//! cargo run --release -p haca-train --example forward_speed

use std::time::Instant;

use burn::tensor::Device;
use haca_policy::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::model::Scratch;
use haca_policy::{Architecture, PolicyInfo, Rng};
use haca_train::model::{Batch, Net};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let device = Device::flex();
    let net = Net::new(Architecture::default(), 1, &device);
    let policy = net.to_policy(PolicyInfo::default()).expect("valid");
    let (envs, n, reps) = (16usize, 12usize, 200);
    let mut rng = Rng::new(3);
    let mut f = |k: usize| (0..k).map(|_| rng.uniform() as f32).collect::<Vec<f32>>();
    let (nodes, job, global) = (
        f(envs * n * NODE_FEATURES),
        f(envs * JOB_FEATURES),
        f(envs * GLOBAL_FEATURES),
    );
    let mask = vec![true; envs * n];
    let maskf = vec![1.0f32; envs * n];

    let burn_us = median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                let batch = Batch::from_slices(&nodes, &job, &global, &maskf, envs, n, &device);
                let (logits, _) = net.forward(&batch);
                let _: Vec<f32> = logits.into_data().try_to_vec().expect("f32");
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    );
    let mut scratch = Scratch::default();
    let mut out = vec![0.0f32; n];
    let runtime_us = median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                for e in 0..envs {
                    policy.network.forward(
                        haca_policy::Obs::new(
                            &nodes[e * n * NODE_FEATURES..(e + 1) * n * NODE_FEATURES],
                            &job[e * JOB_FEATURES..(e + 1) * JOB_FEATURES],
                            &global[e * GLOBAL_FEATURES..(e + 1) * GLOBAL_FEATURES],
                            &mask[e * n..(e + 1) * n],
                        ),
                        &mut scratch,
                        &mut out,
                    );
                }
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    );
    println!("policy forward for {envs} envs x {n} nodes, median of {reps} (one thread for the runtime):");
    println!("  burn batched (flex): {burn_us:>9.1} us");
    println!(
        "  runtime, per env:    {runtime_us:>9.1} us   ({:.0}x faster)",
        burn_us / runtime_us
    );
}
