//! The final choice of `best.safetensors`: the periodic evaluations' best few candidates and the
//! last weights, evaluated again on episodes none of them was chosen on.
//!
//! A periodic evaluation is small (32 episodes) and heavy-tailed: candidates a second apart on
//! 200 test episodes swap places on it, so the lowest of a dozen such scores is partly luck.
//! Evaluating the few finalists together on a larger, fresh set (their differences paired by
//! episode) is the cheap part of doing it right: it costs seconds, where training costs minutes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use haca_env::Scenario;
use haca_eval::{compare, Comparison, Contender};
use haca_policy::Policy;
use indicatif::ProgressBar;

use crate::run::RunDir;
use crate::seeds::Stream;
use crate::Trainer;

/// One evaluated candidate of the run, as `curve.csv` recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub update: u64,
    /// Lower is better: see [`score`].
    pub score: f64,
}

/// The reward charges stranded capacity as well as job-seconds.
pub fn weighted(scenario: &Scenario) -> bool {
    scenario.reward.stranded > 0.0
}

/// What a run minimizes when it picks among its policies: mean latency, or, when the reward
/// also charges stranded capacity (a frontier family member), minus the mean episode return,
/// the objective the run trained; picking such a run's lowest-latency policy would undo its
/// weight.
pub fn score(cmp: &Comparison, who: &str, weighted: bool) -> f64 {
    let result = cmp.result(who).expect("evaluated");
    if weighted {
        -result.get(haca_env::Metric::EpisodeReturn).mean
    } else {
        result.get(haca_env::Metric::MeanLatency).mean
    }
}

/// The finalists' re-evaluation: who was compared and who won.
#[derive(Debug, Clone)]
pub struct FinalSelection {
    /// (update, score on the periodic evaluation, score on the selection set).
    pub finalists: Vec<(u64, f64, f64)>,
    pub chosen: u64,
    pub episodes: usize,
}

/// The candidates of `curve.csv`, one per update (a resumed run may have evaluated an update
/// twice: the later line wins). The score is the `score` column, or the mean latency in a
/// curve written before that column existed.
pub fn candidates(curve: &Path) -> Result<Vec<Candidate>, String> {
    let text = std::fs::read_to_string(curve).map_err(|e| format!("{}: {e}", curve.display()))?;
    let mut out: Vec<Candidate> = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut cols = line.split(',');
        let bad = || {
            format!(
                "{} line {}: expected `update,global_step,train_seconds,mean_latency_s,...`; delete the file's damaged lines",
                curve.display(),
                i + 1
            )
        };
        let update: u64 = cols.next().and_then(|c| c.parse().ok()).ok_or_else(bad)?;
        let lat: f64 = cols.nth(2).and_then(|c| c.parse().ok()).ok_or_else(bad)?;
        let score = cols.nth(5).and_then(|c| c.parse().ok()).unwrap_or(lat);
        out.retain(|c| c.update != update);
        out.push(Candidate { update, score });
    }
    Ok(out)
}

/// The `top` candidates with the lowest periodic score, plus the latest one (the last
/// weights), in update order.
pub fn finalists(cands: &[Candidate], top: usize) -> Vec<Candidate> {
    let mut ranked: Vec<&Candidate> = cands.iter().filter(|c| c.score.is_finite()).collect();
    ranked.sort_by(|a, b| a.score.total_cmp(&b.score));
    let mut out: Vec<Candidate> = ranked.into_iter().take(top).cloned().collect();
    if let Some(last) = cands.iter().max_by_key(|c| c.update) {
        if !out.iter().any(|c| c.update == last.update) {
            out.push(last.clone());
        }
    }
    out.sort_by_key(|c| c.update);
    out
}

/// Where the candidate evaluated after `update` updates is kept.
pub fn candidate_path(run: &RunDir, update: u64) -> PathBuf {
    run.0
        .join("candidates")
        .join(format!("update{update:06}.safetensors"))
}

/// Re-evaluates the finalists on `episodes` episodes of the selection stream and copies the
/// winner to `best.safetensors` (its metadata says how it was chosen). `None` when there is
/// nothing to choose between (selection off, or fewer than two finalists).
pub fn select_best(trainer: &Trainer, run: &RunDir) -> Result<Option<FinalSelection>, String> {
    let cfg = &trainer.cfg;
    if cfg.select_top == 0 || cfg.select_episodes == 0 || !run.curve().exists() {
        return Ok(None);
    }
    let fin = finalists(&candidates(&run.curve())?, cfg.select_top);
    if fin.len() < 2 {
        return Ok(None);
    }
    let mut contenders = Vec::with_capacity(fin.len());
    for c in &fin {
        let path = candidate_path(run, c.update);
        let policy = Policy::load(&path).map_err(|e| e.to_string())?;
        contenders.push(Contender::Policy {
            name: format!("update{}", c.update),
            path,
            policy: Arc::new(policy),
            selection: cfg.selection(),
        });
    }
    let seed = Stream::Select.seed(cfg.seed);
    let cmp = compare(
        &trainer.scenario,
        &contenders,
        cfg.select_episodes,
        seed,
        0,
        &ProgressBar::hidden(),
    )
    .map_err(|e| e.to_string())?;
    let scored: Vec<(u64, f64, f64)> = fin
        .iter()
        .map(|c| {
            let name = format!("update{}", c.update);
            (
                c.update,
                c.score,
                score(&cmp, &name, weighted(&trainer.scenario)),
            )
        })
        .collect();
    let chosen = scored
        .iter()
        .min_by(|a, b| a.2.total_cmp(&b.2))
        .expect("two finalists")
        .0;
    let mut best = Policy::load(candidate_path(run, chosen)).map_err(|e| e.to_string())?;
    best.info.evaluation = serde_json::json!({
        "update": chosen,
        "note": "final selection",
        "selection_episodes": cfg.select_episodes,
        "selection_seed": seed,
        "score": if weighted(&trainer.scenario) { "-episode_return" } else { "mean_latency_s" },
        "finalists": scored.iter().map(|(u, e, s)| serde_json::json!({
            "update": u, "eval_score": e, "selection_score": s
        })).collect::<Vec<_>>(),
    })
    .to_string();
    best.save(run.best()).map_err(|e| e.to_string())?;
    Ok(Some(FinalSelection {
        finalists: scored,
        chosen,
        episodes: cfg.select_episodes,
    }))
}

impl FinalSelection {
    /// One line for the run's output.
    pub fn line(&self) -> String {
        let list: Vec<String> = self
            .finalists
            .iter()
            .map(|(u, e, s)| format!("update {u}: {e:.2} -> {s:.2}"))
            .collect();
        format!(
            "selection: {} finalists' scores re-evaluated on {} fresh episodes ({}); best.safetensors is update {}",
            self.finalists.len(),
            self.episodes,
            list.join(", "),
            self.chosen
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(update: u64, score: f64) -> Candidate {
        Candidate { update, score }
    }

    #[test]
    fn finalists_are_the_best_few_and_the_last() {
        let cands = [c(0, 7.0), c(20, 6.0), c(40, 9.0), c(60, 6.5), c(80, 8.0)];
        let fin = finalists(&cands, 2);
        assert_eq!(fin, vec![c(20, 6.0), c(60, 6.5), c(80, 8.0)]);
        // The last is not added twice when it is among the best.
        let fin = finalists(&cands[..4], 2);
        assert_eq!(fin, vec![c(20, 6.0), c(60, 6.5)]);
    }

    #[test]
    fn curve_lines_of_a_resumed_update_keep_the_later_one() {
        let dir = std::env::temp_dir().join(format!("haca-select-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("curve.csv");
        std::fs::write(
            &path,
            "update,global_step,train_seconds,mean_latency_s,x\n0,0,1,7.5,0\n20,9,2,6.0,0\n20,9,3,6.5,0\n",
        )
        .unwrap();
        assert_eq!(candidates(&path).unwrap(), vec![c(0, 7.5), c(20, 6.5)]);
        // A curve with the score column ranks by it.
        std::fs::write(
            &path,
            format!(
                "{}\n0,0,1,7.5,0.1,9,0,0,50,120.5\n",
                crate::run::CURVE_HEADER
            ),
        )
        .unwrap();
        assert_eq!(candidates(&path).unwrap(), vec![c(0, 120.5)]);
        std::fs::write(
            &path,
            "update,global_step,train_seconds,mean_latency_s\n0,0,x\n",
        )
        .unwrap();
        let err = candidates(&path).unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
