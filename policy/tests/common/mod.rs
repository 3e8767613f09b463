#![allow(dead_code)]
//! Helpers shared by the policy tests: temporary files, a hand-built policy, random features.

use std::path::{Path, PathBuf};

use haca_policy::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::model::INPUT_FEATURES;
use haca_policy::{Activation, Architecture, Policy, PolicyInfo, Rng, Scales};

/// A path in a fresh temporary folder; the folder is removed when it is dropped.
pub struct Temp(#[allow(dead_code)] tempfile::TempDir, PathBuf);

impl std::ops::Deref for Temp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.1
    }
}

impl AsRef<Path> for Temp {
    fn as_ref(&self) -> &Path {
        &self.1
    }
}

pub fn temp(name: &str) -> Temp {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    Temp(dir, path)
}

pub fn tiny_policy() -> Policy {
    // H = 1. h_n = relu(speed feature); u_n = relu(h_n - m + 0.5 x); logit = 2 u_n + 0.5;
    // value = 4 relu(m + x - 3) + 1.
    let arch = Architecture {
        hidden: 1,
        layers: 1,
        value_layers: 1,
        activation: Activation::Relu,
    };
    let mut embed = vec![0.0; INPUT_FEATURES];
    embed[0] = 1.0;
    let t = |name: &str, shape: Vec<usize>, data: Vec<f32>| (name.to_string(), shape, data);
    let tensors = vec![
        t("embed.weight", vec![1, INPUT_FEATURES], embed),
        t("embed.bias", vec![1], vec![0.0]),
        t("score.0.weight", vec![1, 3], vec![1.0, -1.0, 0.5]),
        t("score.0.bias", vec![1], vec![0.0]),
        t("score.out.weight", vec![1, 1], vec![2.0]),
        t("score.out.bias", vec![1], vec![0.5]),
        t("value.0.weight", vec![1, 2], vec![1.0, 1.0]),
        t("value.0.bias", vec![1], vec![-3.0]),
        t("value.out.weight", vec![1, 1], vec![4.0]),
        t("value.out.bias", vec![1], vec![1.0]),
    ];
    let info = PolicyInfo {
        arch,
        scales: Scales {
            work: 2.0,
            speed: 1.0,
        },
        scenario: "tiny".into(),
        training_steps: 7,
        evaluation: "{\"note\":\"hand-built\"}".into(),
        verdict: None,
    };
    Policy::from_tensors(info, tensors, None).unwrap()
}

pub fn random_features(rng: &mut Rng, n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<bool>) {
    let mut f = |k: usize| {
        (0..k)
            .map(|_| (rng.uniform() * 4.0 - 1.0) as f32)
            .collect::<Vec<f32>>()
    };
    let nodes = f(n * NODE_FEATURES);
    let job = f(JOB_FEATURES);
    let global = f(GLOBAL_FEATURES);
    let mut mask: Vec<bool> = (0..n).map(|_| rng.uniform() < 0.7).collect();
    mask[0] = true;
    (nodes, job, global, mask)
}
