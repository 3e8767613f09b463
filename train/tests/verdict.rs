//! The command line tells the truth about its policy: a tiny run that cannot beat `sed` says so,
//! records it in the file, fails under `--require-win`, and never names an unevaluated policy
//! "best". Resume refuses flags that contradict the saved run.

#[path = "../../testutil/temp_path.rs"]
mod temp_path;
use std::path::Path;
use std::process::{Command, Output};
use temp_path::TempPath;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_haca-train"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    c
}

fn out_dir(tag: &str) -> TempPath {
    TempPath::new("haca-verdict", tag)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A run far too short to learn anything: 4 updates from random weights, evaluation off.
fn tiny_run(dir: &Path, extra: &[&str]) -> Output {
    bin()
        .args([
            "--total-steps",
            "512",
            "--envs",
            "4",
            "--steps-per-rollout",
            "32",
        ])
        .args(["--init-from", "none", "--eval-episodes", "32"])
        .args([
            "--set",
            "eval_every=0",
            "--set",
            "hidden=8",
            "--set",
            "eval_episodes=2",
        ])
        .arg("--out")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_losing_run_says_so_records_it_and_fails_under_require_win() {
    let dir = out_dir("loses");
    let o = tiny_run(&dir, &[]);
    let out = text(&o);
    assert!(o.status.success(), "a loss is not a failed run: {out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("verdict: policy LOSES to sed by +") && last.contains("do not deploy it"),
        "the last line is the verdict: {out}"
    );
    // Evaluation was off, yet the file named best was evaluated once: its last weights.
    let curve = std::fs::read_to_string(dir.join("curve.csv")).unwrap();
    assert_eq!(curve.lines().count(), 2, "{curve}");
    let best = haca_policy::Policy::load(dir.join("best.safetensors")).unwrap();
    assert!(best
        .info
        .evaluation
        .contains("last weights (no periodic evaluation)"));
    let v: serde_json::Value = serde_json::from_str(best.info.verdict.as_deref().unwrap()).unwrap();
    assert_eq!(v["outcome"], "loses");
    assert_eq!(v["baseline"], "sed");
    assert_eq!(v["episodes"], 32);
    assert!(v["paired_mean"].as_f64().unwrap() > 0.0);
    // haca-eval shows it when it loads the file.
    let c = haca_eval::Contender::policy(&dir.join("best.safetensors")).unwrap();
    assert!(c.verdict_note().unwrap().contains("LOSES to sed"));

    let o = tiny_run(&out_dir("require"), &["--require-win"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("--require-win: the policy does not beat sed"));
}

#[test]
fn resume_refuses_contradicting_flags_and_extends_with_total_steps() {
    let dir = out_dir("resume");
    assert!(tiny_run(&dir, &[]).status.success());
    for flag in [["--seed", "3"], ["--envs", "8"], ["--learning-rate", "0.1"]] {
        let o = bin().arg("--resume").arg(&dir).args(flag).output().unwrap();
        assert!(!o.status.success());
        assert!(
            text(&o).contains("cannot be used with"),
            "{flag:?}: {}",
            text(&o)
        );
    }
    let o = bin()
        .arg("--resume")
        .arg(&dir)
        .args(["--total-steps", "1024", "--eval-episodes", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("trained 1024 steps"), "{}", text(&o));
}

/// A run whose reward charges stranded capacity is selected by what it was trained for: its
/// curve's score column is minus the episode return (not the latency), and the final selection
/// picks the finalist with the lowest such score on fresh episodes.
#[test]
fn a_weighted_run_selects_by_its_trained_objective() {
    let dir = out_dir("weighted");
    let o = tiny_run(
        &dir,
        &[
            "--set",
            "stranded_weight=20",
            "--set",
            "eval_every=1",
            "--set",
            "select_top=3",
            "--set",
            "select_episodes=3",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let curve = std::fs::read_to_string(dir.join("curve.csv")).unwrap();
    let header: Vec<&str> = curve.lines().next().unwrap().split(',').collect();
    assert_eq!(header.last(), Some(&"score"));
    let lat_col = header.iter().position(|h| *h == "mean_latency_s").unwrap();
    for line in curve.lines().skip(1) {
        let cols: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        let score = *cols.last().unwrap();
        // Minus a return of costs: positive, and not the latency.
        assert!(score > 0.0 && score != cols[lat_col], "{line}");
    }
    let best = haca_policy::Policy::load(dir.join("best.safetensors")).unwrap();
    let ev: serde_json::Value = serde_json::from_str(&best.info.evaluation).unwrap();
    assert_eq!(ev["score"], "-episode_return", "{ev}");
    let finalists = ev["finalists"].as_array().unwrap();
    assert!(finalists.len() >= 2, "{ev}");
    let lowest = finalists
        .iter()
        .min_by(|a, b| {
            let s = |x: &serde_json::Value| x["selection_score"].as_f64().unwrap();
            s(a).total_cmp(&s(b))
        })
        .unwrap();
    assert_eq!(ev["update"], lowest["update"], "{ev}");
}
