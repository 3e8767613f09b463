//! The exported policy: hand-checked forward pass, invariances, int8, round trips, and every
//! broken file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use haca_policy::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::model::{softmax, Scratch, INPUT_FEATURES};
use haca_policy::{
    Activation, Architecture, ClusterView, JobView, NodeView, Policy, PolicyError, PolicyInfo,
    PolicyRouter, Rng, Router, Scales, Selection,
};
use safetensors::tensor::{Dtype, TensorView};

/// A path in a fresh temporary folder; the folder is removed when it is dropped.
struct Temp(#[allow(dead_code)] tempfile::TempDir, PathBuf);

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

fn temp(name: &str) -> Temp {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    Temp(dir, path)
}

fn tiny_policy() -> Policy {
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

fn random_features(rng: &mut Rng, n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<bool>) {
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
        haca_policy::Obs {
            nodes: &nodes,
            job: &[0.0; JOB_FEATURES],
            global: &[0.0; GLOBAL_FEATURES],
            mask: &mask,
        },
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
        let va = p.network.forward(
            haca_policy::Obs {
                nodes: &nodes,
                job: &job,
                global: &global,
                mask: &mask,
            },
            &mut s,
            &mut a,
        );
        let vb = p.network.forward(
            haca_policy::Obs {
                nodes: &pn,
                job: &job,
                global: &global,
                mask: &pm,
            },
            &mut s,
            &mut b,
        );
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
        let va = p.network.forward(
            haca_policy::Obs {
                nodes: &nodes,
                job: &job,
                global: &global,
                mask: &mask,
            },
            &mut s1,
            &mut a,
        );
        let vb = p.network.forward_portable(
            haca_policy::Obs {
                nodes: &nodes,
                job: &job,
                global: &global,
                mask: &mask,
            },
            &mut s2,
            &mut b,
        );
        assert_eq!(va.to_bits(), vb.to_bits());
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn save_load_round_trip_and_int8_agrees_on_the_argmax() {
    let mut p = Policy::random(
        Architecture {
            hidden: 16,
            layers: 2,
            value_layers: 2,
            activation: Activation::Tanh,
        },
        5,
    );
    p.info.scenario = "haca-small".into();
    p.info.training_steps = 123;
    p.info.scales = Scales {
        work: 3.5,
        speed: 0.8,
    };
    let (f32_path, i8_path) = (temp("rt.safetensors"), temp("rt8.safetensors"));
    p.save(&f32_path).unwrap();
    p.save_int8(&i8_path).unwrap();
    let back = Policy::load(&f32_path).unwrap();
    assert_eq!(back, p, "f32 round trip is exact");
    let q = Policy::load(&i8_path).unwrap();
    assert_eq!(q.info, p.info);
    assert!(
        std::fs::metadata(&i8_path).unwrap().len() * 2
            < std::fs::metadata(&f32_path).unwrap().len()
    );
    let mut rng = Rng::new(1);
    let (mut agree, mut decided, trials) = (0, 0, 500);
    let mut s = Scratch::default();
    for _ in 0..trials {
        let n = 2 + rng.below(30) as usize;
        let (nodes, job, global, mask) = random_features(&mut rng, n);
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        p.network.forward(
            haca_policy::Obs {
                nodes: &nodes,
                job: &job,
                global: &global,
                mask: &mask,
            },
            &mut s,
            &mut a,
        );
        q.network.forward(
            haca_policy::Obs {
                nodes: &nodes,
                job: &job,
                global: &global,
                mask: &mask,
            },
            &mut s,
            &mut b,
        );
        let argmax = |l: &[f32]| (0..n).max_by(|&i, &j| l[i].total_cmp(&l[j])).unwrap();
        let mut sorted: Vec<f32> = a.iter().copied().filter(|x| x.is_finite()).collect();
        sorted.sort_by(|x, y| y.total_cmp(x));
        let margin = if sorted.len() > 1 {
            sorted[0] - sorted[1]
        } else {
            f32::INFINITY
        };
        let same = argmax(&a) == argmax(&b);
        agree += same as usize;
        if margin > 0.05 {
            decided += 1;
            assert!(same, "int8 changed a decision with margin {margin}");
        }
    }
    assert!(agree * 100 >= trials * 97, "{agree}/{trials}");
    assert!(decided > trials / 2);
}

/// Writes a file by hand. It has no content digest, so it is written as format version 1 (a
/// file from before digests) and each case reaches the check it is about.
fn write_raw(
    path: &Path,
    tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)],
    mut meta: HashMap<String, String>,
) {
    if meta.get("format_version").map(String::as_str) == Some("2") {
        meta.insert("format_version".into(), "1".into());
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, &Some(meta)).unwrap()).unwrap();
}

fn raw(p: &Policy) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    p.tensors()
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                Dtype::F32,
                s.clone(),
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect()
}

#[test]
fn every_broken_file_gets_its_own_error() {
    let p = Policy::random(Architecture::default(), 1);
    let good = temp("good.safetensors");
    p.save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let msg = |e: PolicyError| e.to_string();

    let missing = Policy::load(temp("absent.safetensors")).unwrap_err();
    assert!(matches!(missing, PolicyError::Io { .. }), "{missing}");

    let truncated = temp("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let e = Policy::load(&truncated).unwrap_err();
    assert!(matches!(e, PolicyError::Corrupt { .. }), "{e}");
    assert!(msg(e).contains("truncated.safetensors"));
    std::fs::write(&truncated, &bytes[..5]).unwrap();
    assert!(matches!(
        Policy::load(&truncated).unwrap_err(),
        PolicyError::Corrupt { .. }
    ));

    let case = |name: &str,
                tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
                meta: HashMap<String, String>| {
        let path = temp(name);
        write_raw(&path, &tensors, meta);
        let e = Policy::load(&path).unwrap_err();
        assert!(
            e.to_string().contains(name),
            "the message names the file: {e}"
        );
        e
    };
    let meta = p.metadata();
    let with = |k: &str, v: &str| {
        let mut m = meta.clone();
        m.insert(k.into(), v.into());
        m
    };

    let e = case("version.safetensors", raw(&p), with("format_version", "99"));
    assert!(
        matches!(&e, PolicyError::FormatVersion { found, .. } if found == "99"),
        "{e}"
    );
    let e = case(
        "schema.safetensors",
        raw(&p),
        with("feature_schema_version", "0"),
    );
    assert!(matches!(&e, PolicyError::FeatureSchema { .. }), "{e}");
    assert!(e.to_string().contains("retrain"));
    let e = case("notpolicy.safetensors", raw(&p), with("format", "pytorch"));
    assert!(matches!(e, PolicyError::NotAPolicy { .. }), "{e}");
    let e = case(
        "arch.safetensors",
        raw(&p),
        with("architecture", "{\"kind\":\"node-scorer\"}"),
    );
    assert!(matches!(e, PolicyError::Metadata { .. }), "{e}");

    let mut t = raw(&p);
    t.retain(|(n, ..)| n != "score.1.bias");
    let e = case("missing.safetensors", t, meta.clone());
    assert!(
        matches!(&e, PolicyError::MissingTensor { name, .. } if name == "score.1.bias"),
        "{e}"
    );

    let mut t = raw(&p);
    let i = t.iter().position(|(n, ..)| n == "embed.bias").unwrap();
    t[i].2 = vec![16, 2];
    let e = case("shape.safetensors", t, meta.clone());
    assert!(
        matches!(&e, PolicyError::Shape { name, .. } if name == "embed.bias"),
        "{e}"
    );

    let mut t = raw(&p);
    let i = t.iter().position(|(n, ..)| n == "score.0.weight").unwrap();
    t[i].3[40..44].copy_from_slice(&f32::NAN.to_le_bytes());
    let e = case("nan.safetensors", t, meta.clone());
    assert!(
        matches!(&e, PolicyError::NonFinite { name, index: 10, .. } if name == "score.0.weight"),
        "{e}"
    );

    let mut t = raw(&p);
    let i = t.iter().position(|(n, ..)| n == "embed.bias").unwrap();
    t[i].1 = Dtype::F64;
    t[i].2 = vec![16];
    let e = case("dtype.safetensors", t, meta.clone());
    assert!(matches!(e, PolicyError::Dtype { .. }), "{e}");
}

fn view(n: usize, rng: &mut Rng) -> ClusterView {
    let nodes: Vec<NodeView> = (0..n)
        .map(|_| NodeView {
            up: true,
            speed: 0.5 + rng.uniform(),
            slots: 1 + rng.below(4) as u32,
            busy_slots: rng.below(2) as u32,
            queue_len: rng.below(5) as u32,
            work_left: rng.uniform() * 20.0,
            memory_gb: 80.0,
            tee: rng.uniform() < 0.3,
            zk: false,
            model_ready: rng.uniform() < 0.5,
            load_s: 3.0,
        })
        .collect();
    let mut mask: Vec<bool> = (0..n).map(|_| rng.uniform() < 0.8).collect();
    mask[n - 1] = true;
    ClusterView {
        now: 10.0,
        observed_at: 10.0,
        nodes,
        mask,
        job: JobView {
            est_work: 2.0,
            input_tokens: 500,
            output_tokens_est: 100.0,
            ..Default::default()
        },
        jobs_in_system: 5,
        scales: Scales::default(),
    }
}

#[test]
fn policy_router_routes_legally_greedily_and_samples_the_softmax() {
    let policy = Arc::new(Policy::random(Architecture::default(), 11));
    let mut rng = Rng::new(2);
    let mut greedy = PolicyRouter::new(policy.clone(), Selection::Greedy, 0);
    for _ in 0..200 {
        let v = view(1 + rng.below(20) as usize, &mut rng);
        let a = greedy.route(&v);
        assert!(v.mask[a]);
        let (logits, _) = greedy.scores(&v);
        let best = (0..v.nodes.len())
            .filter(|&i| v.mask[i])
            .max_by(|&i, &j| logits[i].total_cmp(&logits[j]))
            .unwrap();
        assert_eq!(logits[a], logits[best]);
    }
    // Sampling at temperature 1 follows the softmax.
    let v = view(4, &mut rng);
    let mut s = PolicyRouter::new(policy, Selection::Sample { temperature: 1.0 }, 3);
    let (logits, _) = s.scores(&v);
    let mut probs = vec![0.0; 4];
    softmax(logits, &mut probs);
    let mut counts = [0usize; 4];
    let trials = 40_000;
    for _ in 0..trials {
        counts[s.route(&v)] += 1;
    }
    for i in 0..4 {
        let f = counts[i] as f32 / trials as f32;
        assert!(
            (f - probs[i]).abs() < 0.012,
            "node {i}: {f} vs {}",
            probs[i]
        );
    }
}

#[test]
fn python_safetensors_reads_the_file() {
    let path = temp("python.safetensors");
    let p = tiny_policy();
    p.save(&path).unwrap();
    let script = r#"
import sys
from safetensors import safe_open
with safe_open(sys.argv[1], framework="numpy") as f:
    meta = f.metadata()
    assert meta["format"] == "haca-policy", meta
    assert meta["scenario"] == "tiny"
    w = f.get_tensor("score.0.weight")
    assert w.shape == (1, 3) and list(w[0]) == [1.0, -1.0, 0.5], w
    print("python read", len(list(f.keys())), "tensors")
"#;
    let probe = std::process::Command::new("python3")
        .args(["-c", "import safetensors, numpy"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        _ => {
            println!("SKIPPED: python3 with the safetensors and numpy packages is not available (CI installs them)");
            return;
        }
    }
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&*path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python read 10 tensors"));
}

const VERDICT: &str = r#"{"line": "policy beats sed: mean latency -3.1 ± 1.2 s (paired 95%, 64 episodes)", "outcome": "beats", "baseline": "sed", "metric": "mean_latency_s", "paired_mean": -3.1, "paired_ci95": 1.2, "policy_mean": 8.2, "baseline_mean": 11.3, "episodes": 64, "seed": 0}"#;

#[test]
fn the_verdict_travels_with_the_policy() {
    let mut p = Policy::random(Architecture::default(), 2);
    assert_eq!(p.info.verdict, None);
    assert_eq!(p.info.verdict_line(), None);
    assert!(!p.metadata().contains_key("verdict"), "absent, not empty");
    let none = temp("no-verdict.safetensors");
    p.save(&none).unwrap();
    assert_eq!(Policy::load(&none).unwrap().info.verdict, None);

    p.info.verdict = Some(VERDICT.into());
    assert_eq!(p.metadata()["verdict"], VERDICT);
    let (f32_path, i8_path) = (temp("verdict.safetensors"), temp("verdict8.safetensors"));
    p.save(&f32_path).unwrap();
    p.save_int8(&i8_path).unwrap();
    for path in [&f32_path, &i8_path] {
        let back = Policy::load(path).unwrap();
        assert_eq!(back.info.verdict.as_deref(), Some(VERDICT));
        assert_eq!(
            back.info.verdict_line().as_deref(),
            Some("policy beats sed: mean latency -3.1 ± 1.2 s (paired 95%, 64 episodes)")
        );
    }
    // A verdict without a sentence has no line.
    p.info.verdict = Some(r#"{"outcome": "unevaluated"}"#.into());
    assert_eq!(p.info.verdict_line(), None);
}

#[test]
fn a_verdict_that_is_not_a_json_object_is_refused() {
    let p = Policy::random(Architecture::default(), 4);
    for (name, text, says) in [
        (
            "verdict-text.safetensors",
            "policy beats sed",
            "is not JSON",
        ),
        ("verdict-array.safetensors", "[1, 2]", "is JSON an array"),
    ] {
        let path = temp(name);
        let mut meta = p.metadata();
        meta.insert("verdict".into(), text.into());
        write_raw(&path, &raw(&p), meta);
        let e = Policy::load(&path).unwrap_err();
        assert!(
            matches!(&e, PolicyError::Metadata { key, .. } if key == "verdict"),
            "{e}"
        );
        let msg = e.to_string();
        for needle in [name, "metadata `verdict`", says, "export the policy again"] {
            assert!(msg.contains(needle), "{needle}: {msg}");
        }
        // Nor is such a policy written.
        let mut q = p.clone();
        q.info.verdict = Some(text.into());
        let out = temp(&format!("w-{name}"));
        let e = q.save(&out).unwrap_err();
        assert!(matches!(e, PolicyError::Metadata { .. }), "{e}");
        assert!(!out.exists());
    }
}
