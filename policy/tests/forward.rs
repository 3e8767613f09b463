//! The exported policy's forward pass: hand-checked values, normalization, permutation
//! equivariance, and the AVX2 and portable paths agreeing bit for bit.

mod common;

use common::{random_features, tiny_policy};
use haca_policy::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::model::{softmax, Scratch, INPUT_FEATURES};
use haca_policy::{Architecture, Obs, Policy, Rng};

#[test]
fn golden_forward_pass_on_a_hand_built_network() {
    let p = tiny_policy();
    let mut nodes = vec![0.0f32; 3 * NODE_FEATURES];
    nodes[0] = 1.0;
    nodes[NODE_FEATURES] = 2.0;
    nodes[2 * NODE_FEATURES] = 3.0;
    let mask = [true, true, false];
    let mut logits = [0.0f32; 3];
    let value = p.network.forward(
        Obs::new(&nodes, &[0.0; JOB_FEATURES], &[0.0; GLOBAL_FEATURES], &mask),
        &mut Scratch::default(),
        &mut logits,
    );
    // h = [1, 2] over legal nodes: m = 1.5, x = 2. u = [relu(1 - 1.5 + 1), relu(2 - 1.5 + 1)] = [0.5, 1.5].
    assert_eq!(logits[0], 1.5);
    assert_eq!(logits[1], 3.5);
    assert_eq!(logits[2], f32::NEG_INFINITY);
    // value = 4 * relu(1.5 + 2 - 3) + 1 = 3.
    assert_eq!(value, 3.0);
    let mut probs = [0.0f32; 3];
    softmax(&logits, &mut probs);
    assert!((probs[1] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
    assert_eq!(probs[2], 0.0, "masked nodes get zero probability");
}

#[test]
fn observation_normalization_is_applied_and_clipped() {
    let p = tiny_policy();
    let mut mean = vec![0.0; INPUT_FEATURES];
    let mut std = vec![1.0; INPUT_FEATURES];
    mean[0] = 1.0;
    std[0] = 0.5; // speed feature s -> (s - 1) / 0.5
    let q = Policy::from_tensors(p.info.clone(), p.tensors().to_vec(), Some((mean, std))).unwrap();
    let mut nodes = vec![0.0f32; 2 * NODE_FEATURES];
    nodes[0] = 2.0; // -> 2
    nodes[NODE_FEATURES] = 100.0; // -> 198, clipped to 10
    let mut logits = [0.0f32; 2];
    q.network.forward(
        haca_policy::Obs {
            nodes: &nodes,
            job: &[0.0; JOB_FEATURES],
            global: &[0.0; GLOBAL_FEATURES],
            mask: &[true, true],
        },
        &mut Scratch::default(),
        &mut logits,
    );
    // h = [2, 10]: m = 6, x = 10. u = [relu(2 - 6 + 5), relu(10 - 6 + 5)] = [1, 9].
    assert_eq!(logits, [2.5, 18.5]);
}

#[test]
fn permuting_nodes_permutes_the_scores() {
    let p = Policy::random(Architecture::default(), 3);
    let mut rng = Rng::new(9);
    for n in [1, 5, 40] {
        let (nodes, job, global, mask) = random_features(&mut rng, n);
        let perm: Vec<usize> = (0..n).rev().collect();
        let pn: Vec<f32> = perm
            .iter()
            .flat_map(|&i| nodes[i * NODE_FEATURES..(i + 1) * NODE_FEATURES].to_vec())
            .collect();
        let pm: Vec<bool> = perm.iter().map(|&i| mask[i]).collect();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        let mut s = Scratch::default();
        let va = p
            .network
            .forward(Obs::new(&nodes, &job, &global, &mask), &mut s, &mut a);
        let vb = p
            .network
            .forward(Obs::new(&pn, &job, &global, &pm), &mut s, &mut b);
        for (k, &i) in perm.iter().enumerate() {
            assert!(
                a[i] == b[k] || (a[i] - b[k]).abs() < 1e-4,
                "n {n}: {} vs {}",
                a[i],
                b[k]
            );
        }
        assert!((va - vb).abs() < 1e-4);
    }
}

#[test]
fn dispatched_and_portable_forward_passes_are_bit_identical() {
    let p = Policy::random(Architecture::default(), 8);
    let mut rng = Rng::new(4);
    let (mut s1, mut s2) = (Scratch::default(), Scratch::default());
    for _ in 0..100 {
        let n = 1 + rng.below(40) as usize;
        let (nodes, job, global, mask) = random_features(&mut rng, n);
        let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
        let va = p
            .network
            .forward(Obs::new(&nodes, &job, &global, &mask), &mut s1, &mut a);
        let vb =
            p.network
                .forward_portable(Obs::new(&nodes, &job, &global, &mask), &mut s2, &mut b);
        assert_eq!(va.to_bits(), vb.to_bits());
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}

/// Loads `file` (of an earlier schema) and checks that whatever the columns it never saw hold
/// (node columns `new_nodes`, and the last global column when `new_global`), its scores and
/// value do not move.
fn ignores_the_columns_it_never_saw(
    file: &str,
    new_nodes: std::ops::Range<usize>,
    new_global: bool,
) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../checkpoints")
        .join(file);
    let p = Policy::load(&path).unwrap();
    let mut rng = Rng::new(3);
    let mut scratch = Scratch::default();
    for n in [1, 5, 10] {
        let (mut nodes, job, mut global, mask) = random_features(&mut rng, n);
        let mut before = vec![0.0f32; n];
        let v0 = p.network.forward(
            Obs::new(&nodes, &job, &global, &mask),
            &mut scratch,
            &mut before,
        );
        for row in nodes.chunks_exact_mut(NODE_FEATURES) {
            for c in new_nodes.clone() {
                row[c] = rng.uniform() as f32 * 5.0;
            }
        }
        if new_global {
            global[GLOBAL_FEATURES - 1] = 3.0;
        }
        let mut after = vec![0.0f32; n];
        let v1 = p.network.forward(
            Obs::new(&nodes, &job, &global, &mask),
            &mut scratch,
            &mut after,
        );
        assert_eq!(before, after, "{file}");
        assert_eq!(v0, v1, "{file}");
    }
}

#[test]
fn a_schema_1_file_loads_and_ignores_the_columns_it_never_saw() {
    // Exported with feature schema 1 (12 node columns, 5 global).
    ignores_the_columns_it_never_saw("park.safetensors", 12..NODE_FEATURES, true);
}

#[test]
fn a_schema_2_file_loads_and_ignores_the_answer_columns() {
    // Exported with feature schema 2 (14 node columns).
    ignores_the_columns_it_never_saw(
        "trace-mooncake-prefix.safetensors",
        14..NODE_FEATURES,
        false,
    );
}
