//! The validation context: the file being read, and the checks every section uses, each
//! producing an error that names the file, the field and what is allowed.

use std::path::Path;

use crate::bounds::shown;
use crate::config::RawDist;
use crate::dist::Dist;
use crate::scenario::ScenarioError;
use crate::trace::Trace;

pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a Path,
}

impl Ctx<'_> {
    pub(crate) fn err(
        &self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.to_path_buf(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn positive(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.err(field, format!("is {}: must be a positive number", shown(v))))
        }
    }

    pub(crate) fn non_negative(&self, field: &str, v: f64) -> Result<f64, ScenarioError> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(self.err(
                field,
                format!("is {}: must be zero or a positive number", shown(v)),
            ))
        }
    }

    pub(crate) fn opt_non_negative(
        &self,
        field: &str,
        v: Option<f64>,
        default: f64,
    ) -> Result<f64, ScenarioError> {
        self.non_negative(field, v.unwrap_or(default))
    }

    /// Loads a trace named in the file: relative paths are relative to the file's folder.
    pub(crate) fn trace(&self, path: &Path) -> Result<Trace, ScenarioError> {
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.file.parent().unwrap_or(Path::new(".")).join(path)
        };
        Trace::load(&full).map_err(|source| ScenarioError::Trace {
            file: self.file.to_path_buf(),
            source,
        })
    }

    pub(crate) fn dist(&self, field: &str, raw: &RawDist) -> Result<Dist, ScenarioError> {
        let allowed: &[&str] = match raw.dist.as_str() {
            "fixed" => &["value"],
            "uniform" => &["min", "max"],
            "exponential" => &["mean"],
            "lognormal" => &["mean", "cv"],
            "pareto" => &["shape", "scale"],
            other => {
                return Err(self.err(
                    format!("{field}.dist"),
                    format!("is \"{other}\": expected one of \"fixed\", \"uniform\", \"exponential\", \"lognormal\", \"pareto\""),
                ))
            }
        };
        let given = [
            ("value", raw.value),
            ("min", raw.min),
            ("max", raw.max),
            ("mean", raw.mean),
            ("cv", raw.cv),
            ("shape", raw.shape),
            ("scale", raw.scale),
        ];
        for (name, v) in given {
            if v.is_some() && !allowed.contains(&name) {
                return Err(self.err(
                    format!("{field}.{name}"),
                    format!(
                        "does not apply to dist = \"{}\" (which takes {})",
                        raw.dist,
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let need = |name: &str, v: Option<f64>| {
            v.ok_or_else(|| {
                self.err(
                    format!("{field}.{name}"),
                    format!("is required for dist = \"{}\"", raw.dist),
                )
            })
        };
        let f = |n: &str| format!("{field}.{n}");
        Ok(match raw.dist.as_str() {
            "fixed" => Dist::Fixed(self.non_negative(&f("value"), need("value", raw.value)?)?),
            "uniform" => {
                let min = self.non_negative(&f("min"), need("min", raw.min)?)?;
                let max = self.non_negative(&f("max"), need("max", raw.max)?)?;
                if max < min {
                    return Err(self.err(f("max"), format!("is {max}, below min = {min}")));
                }
                Dist::Uniform { min, max }
            }
            "exponential" => Dist::Exponential {
                mean: self.positive(&f("mean"), need("mean", raw.mean)?)?,
            },
            "lognormal" => Dist::lognormal(
                self.positive(&f("mean"), need("mean", raw.mean)?)?,
                self.non_negative(&f("cv"), need("cv", raw.cv)?)?,
            ),
            _ => Dist::Pareto {
                shape: self.positive(&f("shape"), need("shape", raw.shape)?)?,
                scale: self.positive(&f("scale"), need("scale", raw.scale)?)?,
            },
        })
    }
}
