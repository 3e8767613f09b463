//! The exported policy file: one safetensors file, documented in `policy/FORMAT.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;

use crate::digest::{content_digest, verified_digest, DIGEST_KEY};
use crate::features::{FEATURE_SCHEMA_VERSION, GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use crate::model::{Activation, Architecture, Network, INPUT_FEATURES};
use crate::view::Scales;

mod read;

/// The file format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// Why a policy file could not be loaded. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}: cannot read the policy: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a readable safetensors file ({detail}); the file is truncated or corrupt: export it again", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("{}: not a HACA policy (metadata `format` is {found:?}, expected \"haca-policy\"); export it with `haca-train export`", path.display())]
    NotAPolicy {
        path: PathBuf,
        found: Option<String>,
    },
    #[error("{}: format version {found}, but this build reads versions 1 and {supported}: use a haca-policy release that reads it, or export the policy again", path.display())]
    FormatVersion {
        path: PathBuf,
        found: String,
        supported: u32,
    },
    #[error("{}: trained on feature schema {found}, but this build encodes schema {compiled}: the features would not mean what the network learned; retrain, or use the haca-policy release with schema {found}", path.display())]
    FeatureSchema {
        path: PathBuf,
        found: String,
        compiled: u32,
    },
    #[error("{}: the content digest does not match (recorded {recorded}, computed {computed}): the file was changed after it was written; export it again from its run", path.display())]
    Digest {
        path: PathBuf,
        recorded: String,
        computed: String,
    },
    #[error("{}: metadata `{key}`: {detail}", path.display())]
    Metadata {
        path: PathBuf,
        key: String,
        detail: String,
    },
    #[error("{}: tensor `{name}` is missing; the file is incomplete: export it again", path.display())]
    MissingTensor { path: PathBuf, name: String },
    #[error("{}: tensor `{name}` has shape {found:?}, but the architecture in the metadata needs {expected:?}: the file is inconsistent, export it again", path.display())]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{}: tensor `{name}` has dtype {found}; weights are F32 or I8 with a `{name}.scale`, everything else F32", path.display())]
    Dtype {
        path: PathBuf,
        name: String,
        found: String,
    },
    #[error("{}: tensor `{name}` holds a non-finite value ({value}) at index {index}: training diverged; export an earlier checkpoint", path.display())]
    NonFinite {
        path: PathBuf,
        name: String,
        index: usize,
        value: f32,
    },
}

/// What a policy file says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInfo {
    pub arch: Architecture,
    /// Feature normalization scales the policy was trained with.
    pub scales: Scales,
    /// The scenario it was trained on.
    pub scenario: String,
    pub training_steps: u64,
    /// Free-form evaluation summary (JSON text), as written by the trainer.
    pub evaluation: String,
    /// The paired comparison of the policy against the best heuristic (JSON object text,
    /// metadata key `verdict`, schema in `policy/FORMAT.md`), when the trainer made one.
    pub verdict: Option<String>,
}

impl Default for PolicyInfo {
    fn default() -> Self {
        PolicyInfo {
            arch: Architecture::default(),
            scales: Scales::default(),
            scenario: String::new(),
            training_steps: 0,
            evaluation: "{}".into(),
            verdict: None,
        }
    }
}

impl PolicyInfo {
    /// The verdict's one human sentence (its `line` field), e.g. `policy beats sed: mean
    /// latency -3.1 ± 1.2 s (paired 95%, 64 episodes)`; `None` without a verdict or a `line`.
    pub fn verdict_line(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(self.verdict.as_deref()?).ok()?;
        v.get("line")?.as_str().map(str::to_string)
    }
}

/// The metadata key of the verdict.
const VERDICT_KEY: &str = "verdict";

/// Checks that a verdict is a JSON object; the error names the file and the fix.
fn check_verdict(path: &Path, text: &str) -> Result<(), PolicyError> {
    let detail = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.is_object() => return Ok(()),
        Ok(v) => format!("is JSON {}, not an object", json_kind(&v)),
        Err(e) => format!("is not JSON ({e})"),
    };
    Err(PolicyError::Metadata {
        path: path.to_path_buf(),
        key: VERDICT_KEY.into(),
        detail: format!(
            "{detail}; it must be a JSON object such as {{\"line\": ..., \"outcome\": \"beats\", ...}} (policy/FORMAT.md): export the policy again, or remove the key"
        ),
    })
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A loaded policy: its network and its description.
#[derive(Debug, Clone)]
pub struct Policy {
    pub info: PolicyInfo,
    pub network: Network,
    /// The `[out, in]` tensors as loaded (after any int8 dequantization), for writing back.
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    obs_norm: Option<(Vec<f32>, Vec<f32>)>,
    /// The content digest the file recorded and the loader verified; `None` for a policy not
    /// read from a file, or from a file written before digests existed (read unverified).
    digest: Option<String>,
}

/// Two policies are equal when their content is: where they were read from (and so whether a
/// digest was verified) does not matter.
impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.info == other.info
            && self.network == other.network
            && self.tensors == other.tensors
            && self.obs_norm == other.obs_norm
    }
}

fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Policy {
    /// Builds a policy from named `[out, in]` tensors (the trainer's export path). Checks shapes
    /// and finiteness like `load` does; `path` names the origin in errors.
    pub fn from_tensors(
        info: PolicyInfo,
        tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
        obs_norm: Option<(Vec<f32>, Vec<f32>)>,
    ) -> Result<Policy, PolicyError> {
        let origin = PathBuf::from("<memory>");
        let map: HashMap<&str, (&Vec<usize>, &Vec<f32>)> = tensors
            .iter()
            .map(|(n, s, d)| (n.as_str(), (s, d)))
            .collect();
        for (name, expected) in info.arch.tensor_shapes() {
            let (shape, data) =
                map.get(name.as_str())
                    .ok_or_else(|| PolicyError::MissingTensor {
                        path: origin.clone(),
                        name: name.clone(),
                    })?;
            if **shape != expected || data.len() != expected.iter().product::<usize>() {
                return Err(PolicyError::Shape {
                    path: origin.clone(),
                    name,
                    expected,
                    found: shape.to_vec(),
                });
            }
            check_finite(&origin, &name, data)?;
        }
        if let Some((m, s)) = &obs_norm {
            for (name, v) in [("obs_norm.mean", m), ("obs_norm.std", s)] {
                if v.len() != INPUT_FEATURES {
                    return Err(PolicyError::Shape {
                        path: origin.clone(),
                        name: name.into(),
                        expected: vec![INPUT_FEATURES],
                        found: vec![v.len()],
                    });
                }
            }
            check_finite(&origin, "obs_norm.mean", m)?;
            check_finite(&origin, "obs_norm.std", s)?;
        }
        let network = Network::from_tensors(info.arch, |n| map[n].1.clone(), obs_norm.clone());
        Ok(Policy {
            info,
            network,
            tensors,
            obs_norm,
            digest: None,
        })
    }

    /// A policy with random weights (uniform, scaled by fan-in): for tests and benchmarks.
    pub fn random(arch: Architecture, seed: u64) -> Policy {
        let mut rng = crate::Rng::new(seed);
        let tensors = arch
            .tensor_shapes()
            .into_iter()
            .map(|(name, shape)| {
                let fan_in = *shape.last().unwrap_or(&1) as f64;
                let bound = (3.0 / fan_in).sqrt();
                let n: usize = shape.iter().product();
                let data = (0..n)
                    .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
                    .collect();
                (name, shape, data)
            })
            .collect();
        let info = PolicyInfo {
            arch,
            ..Default::default()
        };
        Policy::from_tensors(info, tensors, None).expect("shapes come from the architecture")
    }

    /// The `[out, in]` tensors by name.
    pub fn tensors(&self) -> &[(String, Vec<usize>, Vec<f32>)] {
        &self.tensors
    }

    /// The metadata this policy is written with (format, versions, architecture, scales, ...,
    /// and `verdict` when it has one).
    pub fn metadata(&self) -> HashMap<String, String> {
        let a = &self.info.arch;
        let mut meta = HashMap::from([
            ("format".into(), "haca-policy".into()),
            ("format_version".into(), FORMAT_VERSION.to_string()),
            (
                "feature_schema_version".into(),
                FEATURE_SCHEMA_VERSION.to_string(),
            ),
            (
                "architecture".into(),
                json!({
                    "kind": "node-scorer",
                    "hidden": a.hidden,
                    "layers": a.layers,
                    "value_layers": a.value_layers,
                    "activation": a.activation.name(),
                    "node_features": NODE_FEATURES,
                    "job_features": JOB_FEATURES,
                    "global_features": GLOBAL_FEATURES,
                })
                .to_string(),
            ),
            (
                "scales".into(),
                json!({"work": self.info.scales.work, "speed": self.info.scales.speed}).to_string(),
            ),
            ("scenario".into(), self.info.scenario.clone()),
            (
                "training_steps".into(),
                self.info.training_steps.to_string(),
            ),
            ("evaluation".into(), self.info.evaluation.clone()),
            // The input preprocessing: every (normalized) feature clipped to ±this, by the
            // runtime and by the trainer's burn model alike.
            ("input_clip".into(), crate::model::OBS_CLIP.to_string()),
            (
                "created_by".into(),
                format!("haca-policy {}", env!("CARGO_PKG_VERSION")),
            ),
        ]);
        if let Some(v) = &self.info.verdict {
            meta.insert(VERDICT_KEY.into(), v.clone());
        }
        if let Some(d) = &self.digest {
            meta.insert(DIGEST_KEY.into(), d.clone());
        }
        meta
    }

    /// The verified content digest (`sha256:...`) of the file this policy was read from;
    /// `None` when it was not read from a file or the file predates digests.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Writes the policy as f32 safetensors.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), PolicyError> {
        self.write(path.as_ref(), false)
    }

    /// Writes the policy with int8 weight matrices (one f32 scale per tensor, `name.scale`);
    /// biases and normalization stay f32. About a quarter of the size.
    pub fn save_int8(&self, path: impl AsRef<Path>) -> Result<(), PolicyError> {
        self.write(path.as_ref(), true)
    }

    fn write(&self, path: &Path, int8: bool) -> Result<(), PolicyError> {
        // A file that would not load again is not written.
        if let Some(v) = &self.info.verdict {
            check_verdict(path, v)?;
        }
        let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, shape, data) in &self.tensors {
            if int8 && name.ends_with(".weight") {
                let max = data.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
                let q: Vec<u8> = data
                    .iter()
                    .map(|x| ((x / scale).round().clamp(-127.0, 127.0) as i8) as u8)
                    .collect();
                owned.push((name.clone(), Dtype::I8, shape.clone(), q));
                owned.push((
                    format!("{name}.scale"),
                    Dtype::F32,
                    vec![1],
                    f32_bytes(&[scale]),
                ));
            } else {
                owned.push((name.clone(), Dtype::F32, shape.clone(), f32_bytes(data)));
            }
        }
        if let Some((mean, std)) = &self.obs_norm {
            owned.push((
                "obs_norm.mean".into(),
                Dtype::F32,
                vec![INPUT_FEATURES],
                f32_bytes(mean),
            ));
            owned.push((
                "obs_norm.std".into(),
                Dtype::F32,
                vec![INPUT_FEATURES],
                f32_bytes(std),
            ));
        }
        let views: Vec<(String, TensorView)> = owned
            .iter()
            .map(|(n, d, s, b)| {
                (
                    n.clone(),
                    TensorView::new(*d, s.clone(), b).expect("sizes match"),
                )
            })
            .collect();
        let io = |source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut meta = self.metadata();
        let digest = content_digest(
            &meta,
            owned
                .iter()
                .map(|(n, d, s, b)| (n.as_str(), *d, s.as_slice(), b.as_slice())),
        );
        meta.insert(DIGEST_KEY.into(), digest);
        let bytes =
            safetensors::serialize(views, &Some(meta)).map_err(|e| PolicyError::Corrupt {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Write then rename, so a crash never leaves a half-written policy under the real name.
        let tmp = path.with_extension("safetensors.tmp");
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

fn check_finite(path: &Path, name: &str, data: &[f32]) -> Result<(), PolicyError> {
    match data.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(PolicyError::NonFinite {
            path: path.to_path_buf(),
            name: name.into(),
            index,
            value: data[index],
        }),
        None => Ok(()),
    }
}
