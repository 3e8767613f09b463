//! Reading a policy file: every check a loader makes, in order (format, digest, feature schema
//! with the schema-1 widening, architecture, scales, verdict, tensors), each failing with a typed
//! error that names the file.

use std::path::Path;

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

use super::*;

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::from_bytes(&bytes, path)
    }

    /// Parses a policy from the bytes of a file; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Policy, PolicyError> {
        let p = || path.to_path_buf();
        let corrupt = |e: safetensors::SafeTensorError| PolicyError::Corrupt {
            path: p(),
            detail: format!("{e:?}"),
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
        let st = SafeTensors::deserialize(bytes).map_err(corrupt)?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| meta.get(k).cloned();
        if get("format").as_deref() != Some("haca-policy") {
            return Err(PolicyError::NotAPolicy {
                path: p(),
                found: get("format"),
            });
        }
        let digest = verified_digest(&st, &meta, path)?;
        let schema = get("feature_schema_version").unwrap_or_default();
        let Some(layout) = crate::schema::Layout::of(&schema) else {
            return Err(PolicyError::FeatureSchema {
                path: p(),
                found: schema,
                compiled: FEATURE_SCHEMA_VERSION,
            });
        };
        let bad = |key: &str, detail: String| PolicyError::Metadata {
            path: p(),
            key: key.into(),
            detail,
        };
        // Files from before the key existed were trained with the same clip.
        if let Some(clip) = get("input_clip") {
            if clip.parse::<f32>().ok() != Some(crate::model::OBS_CLIP) {
                return Err(bad(
                    "input_clip",
                    format!(
                        "is {clip}, but this runtime clips inputs to ±{}: the policy was trained with other preprocessing; retrain or export it with this version",
                        crate::model::OBS_CLIP
                    ),
                ));
            }
        }
        let arch_json: serde_json::Value =
            serde_json::from_str(&get("architecture").unwrap_or_default())
                .map_err(|e| bad("architecture", format!("not JSON: {e}")))?;
        let field = |k: &str| {
            arch_json[k]
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| bad("architecture", format!("needs a whole number `{k}`")))
        };
        for (k, expected) in [
            ("node_features", layout.node),
            ("job_features", JOB_FEATURES),
            ("global_features", layout.global),
        ] {
            let v = field(k)?;
            if v != expected {
                return Err(bad(
                    "architecture",
                    format!("`{k}` is {v}, but schema {schema} has {expected}"),
                ));
            }
        }
        if arch_json["kind"] != "node-scorer" {
            return Err(bad(
                "architecture",
                format!("kind {} is not \"node-scorer\"", arch_json["kind"]),
            ));
        }
        let activation = arch_json["activation"]
            .as_str()
            .and_then(Activation::parse)
            .ok_or_else(|| {
                bad(
                    "architecture",
                    "`activation` must be \"relu\" or \"tanh\"".into(),
                )
            })?;
        let arch = Architecture {
            hidden: field("hidden")?,
            layers: field("layers")?,
            value_layers: field("value_layers")?,
            activation,
        };
        if arch.hidden == 0
            || arch.layers == 0
            || arch.value_layers == 0
            || arch.hidden > 4096
            || arch.layers > 64
        {
            return Err(bad(
                "architecture",
                format!("sizes {arch:?} are out of range (hidden 1..=4096, layers 1..=64)"),
            ));
        }
        let scales_json: serde_json::Value =
            serde_json::from_str(&get("scales").unwrap_or_default())
                .map_err(|e| bad("scales", format!("not JSON: {e}")))?;
        let scale = |k: &str| {
            scales_json[k]
                .as_f64()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| bad("scales", format!("needs a positive `{k}`")))
        };
        let info = PolicyInfo {
            arch,
            scales: Scales {
                work: scale("work")?,
                speed: scale("speed")?,
            },
            scenario: get("scenario").unwrap_or_default(),
            training_steps: get("training_steps")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            evaluation: get("evaluation").unwrap_or_else(|| "{}".into()),
            verdict: get(VERDICT_KEY),
        };
        if let Some(v) = &info.verdict {
            check_verdict(path, v)?;
        }

        let read = |name: &str, expected: &[usize]| -> Result<Vec<f32>, PolicyError> {
            let view = st.tensor(name).map_err(|_| PolicyError::MissingTensor {
                path: p(),
                name: name.into(),
            })?;
            let int8_weight = view.dtype() == Dtype::I8 && name.ends_with(".weight");
            if view.dtype() != Dtype::F32 && !int8_weight {
                return Err(PolicyError::Dtype {
                    path: p(),
                    name: name.into(),
                    found: format!("{:?}", view.dtype()),
                });
            }
            if view.shape() != expected {
                return Err(PolicyError::Shape {
                    path: p(),
                    name: name.into(),
                    expected: expected.to_vec(),
                    found: view.shape().to_vec(),
                });
            }
            let data: Vec<f32> = match view.dtype() {
                Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                Dtype::I8 if name.ends_with(".weight") => {
                    let scale_name = format!("{name}.scale");
                    let sv = st
                        .tensor(&scale_name)
                        .map_err(|_| PolicyError::MissingTensor {
                            path: p(),
                            name: scale_name.clone(),
                        })?;
                    if sv.dtype() != Dtype::F32 || sv.shape() != [1] {
                        return Err(PolicyError::Dtype {
                            path: p(),
                            name: scale_name,
                            found: format!("{:?} {:?}", sv.dtype(), sv.shape()),
                        });
                    }
                    let b = sv.data();
                    let scale = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    check_finite(path, &scale_name, &[scale])?;
                    view.data()
                        .iter()
                        .map(|&q| q as i8 as f32 * scale)
                        .collect()
                }
                other => {
                    return Err(PolicyError::Dtype {
                        path: p(),
                        name: name.into(),
                        found: format!("{other:?}"),
                    })
                }
            };
            check_finite(path, name, &data)?;
            Ok(data)
        };
        let mut tensors = Vec::new();
        for (name, shape) in arch.tensor_shapes() {
            let data = if !layout.is_current() && name == "embed.weight" {
                layout.widen_embed(&read(&name, &[arch.hidden, layout.input()])?)
            } else {
                read(&name, &shape)?
            };
            tensors.push((name, shape, data));
        }
        let obs_norm = match (
            st.tensor("obs_norm.mean").is_ok(),
            st.tensor("obs_norm.std").is_ok(),
        ) {
            (false, false) => None,
            _ => {
                let mean = read("obs_norm.mean", &[layout.input()])?;
                let std = read("obs_norm.std", &[layout.input()])?;
                let (mean, std) = layout.widen_norm(&mean, &std);
                if let Some(i) = std.iter().position(|s| *s <= 0.0) {
                    return Err(bad(
                        "obs_norm.std",
                        format!(
                            "entry {i} is {}: standard deviations must be positive",
                            std[i]
                        ),
                    ));
                }
                Some((mean, std))
            }
        };
        let mut policy = Policy::from_tensors(info, tensors, obs_norm).map_err(|e| match e {
            // from_tensors reports `<memory>`; here the file is known.
            PolicyError::Shape {
                name,
                expected,
                found,
                ..
            } => PolicyError::Shape {
                path: p(),
                name,
                expected,
                found,
            },
            other => other,
        })?;
        policy.digest = digest;
        Ok(policy)
    }
}
