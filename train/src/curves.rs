//! Learning curves of runs, drawn from their `curve.csv`: evaluation mean latency against
//! training seconds, one line per run, with `sed` and `affinity` on the same evaluation
//! episodes as horizontal lines.

use std::path::{Path, PathBuf};

use haca_eval::plots::{save, LineChart};

/// One run's curve: (training seconds, policy, sed, affinity mean latency) per evaluation.
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// Reads `dir/curve.csv`, naming the column it needs when one is missing.
pub fn read_curve(dir: &Path) -> Result<Curve, String> {
    let path = dir.join("curve.csv");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e}: is this a haca-train run folder?", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| {
        header.iter().position(|h| *h == name).ok_or_else(|| {
            format!(
                "{}: no column `{name}`: written by an older haca-train? retrain to draw it",
                path.display()
            )
        })
    };
    let (t, p, s, a) = (
        col("train_seconds")?,
        col("mean_latency_s")?,
        col("sed_mean_latency_s")?,
        col("affinity_mean_latency_s")?,
    );
    let mut points = Vec::new();
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let num = |c: usize| -> Result<f64, String> {
            f.get(c).and_then(|v| v.parse().ok()).ok_or_else(|| {
                format!(
                    "{}: line {}: column {} is not a number",
                    path.display(),
                    i + 2,
                    header[c]
                )
            })
        };
        points.push((num(t)?, num(p)?, num(s)?, num(a)?));
    }
    if points.is_empty() {
        return Err(format!("{}: no evaluation yet", path.display()));
    }
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Curve { name, points })
}

/// Draws the runs' curves into `out/learning_curves.{svg,png}`; returns the files written.
pub fn draw(runs: &[PathBuf], out: &Path, title: &str) -> Result<Vec<PathBuf>, String> {
    let curves: Vec<Curve> = runs
        .iter()
        .map(|d| read_curve(d))
        .collect::<Result<_, _>>()?;
    let t_max = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let mean_of = |f: fn(&(f64, f64, f64, f64)) -> f64| {
        let v: Vec<f64> = curves.iter().flat_map(|c| c.points.iter().map(f)).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let mut series: Vec<(String, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.points.iter().map(|p| (p.0, p.1)).collect(),
            )
        })
        .collect();
    let (sed, affinity) = (mean_of(|p| p.2), mean_of(|p| p.3));
    series.push((format!("sed ({sed:.1} s)"), vec![(0.0, sed), (t_max, sed)]));
    series.push((
        format!("affinity ({affinity:.1} s)"),
        vec![(0.0, affinity), (t_max, affinity)],
    ));
    let chart = LineChart {
        title: title.to_string(),
        x_label: "training seconds (2-core CPU)".into(),
        y_label: "evaluation mean latency, s".into(),
        series,
        log_x: false,
        markers: true,
    };
    save(&chart, out, "learning_curves")
}
