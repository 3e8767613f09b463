//! A conformance check in the spirit of Gymnasium's `check_env`.

use std::sync::Arc;

use haca_policy::{ObsBatch, RandomRouter, Router};

use crate::env::{Env, EnvError};
use crate::metrics::{EpisodeMetrics, Metric};
use crate::scenario::Scenario;
use crate::sim::JobCounts;

/// What the check exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckReport {
    pub episodes: u32,
    pub decisions: u64,
}

/// The first rule the env broke.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{scenario}: {message}")]
pub struct CheckError {
    pub scenario: String,
    pub message: String,
}

/// One encoded observation of an env.
fn encoded(env: &Env, out: &mut ObsBatch) {
    env.encode(out.get_mut(0));
}

/// The observation's features as bits (NaN-safe equality).
fn bits(obs: &ObsBatch) -> Vec<u32> {
    obs.nodes
        .iter()
        .chain(&obs.job)
        .chain(&obs.global)
        .map(|x| x.to_bits())
        .collect()
}

/// Checks an env on `scenario`: reset and step determinism (two envs with the same seed follow
/// bit-identical trajectories), shapes, a legal node at every decision, masked and out-of-range
/// actions rejected without side effects, finite features and rewards, conservation of jobs,
/// rewards summing to the episode return, `reset(None)` continuing the seed stream and
/// `reset(Some(seed))` replaying it. Runs `episodes` episodes of at most `max_steps` decisions.
pub fn check_env(
    scenario: Arc<Scenario>,
    seed: u64,
    episodes: u32,
    max_steps: u64,
) -> Result<CheckReport, CheckError> {
    run_checks(&scenario, seed, episodes, max_steps).map_err(|message| CheckError {
        scenario: scenario.name.clone(),
        message,
    })
}

fn run_checks(
    scenario: &Arc<Scenario>,
    seed: u64,
    episodes: u32,
    max_steps: u64,
) -> Result<CheckReport, String> {
    let mut pair = Twins::new(scenario);
    if !matches!(pair.b.step(0), Err(EnvError::NotReset)) {
        return Err("step before reset was not rejected".into());
    }
    let mut router = RandomRouter::new(seed);
    let mut decisions = 0;
    let mut first_episode_seed = None;
    for ep in 0..episodes {
        let episode_seed = pair.reset(ep, (ep == 0).then_some(seed))?;
        match first_episode_seed {
            None => first_episode_seed = Some(episode_seed),
            Some(s) if s == episode_seed => return Err(
                "reset(None) repeated the previous episode instead of continuing the seed stream"
                    .into(),
            ),
            Some(_) => {}
        }
        decisions += pair.episode(ep, &mut router, max_steps)?;
    }
    // Replaying the first seed reproduces the first episode.
    let mut c = Env::new(scenario.clone());
    let (_, ic) = c.reset(Some(seed));
    if Some(ic.episode_seed) != first_episode_seed {
        return Err("reset(Some(seed)) did not replay the first episode".into());
    }
    Ok(CheckReport {
        episodes,
        decisions,
    })
}

/// Two envs driven with the same seeds and actions, which must stay bit-identical.
struct Twins {
    scenario: Arc<Scenario>,
    a: Env,
    b: Env,
    obs_a: ObsBatch,
    obs_b: ObsBatch,
}

impl Twins {
    fn new(scenario: &Arc<Scenario>) -> Twins {
        let a = Env::new(scenario.clone());
        let mn = a.max_nodes();
        Twins {
            scenario: scenario.clone(),
            b: Env::new(scenario.clone()),
            a,
            obs_a: ObsBatch::new(1, mn),
            obs_b: ObsBatch::new(1, mn),
        }
    }

    /// Resets both; checks they agree and the observation's shape. Returns the episode seed.
    fn reset(&mut self, ep: u32, seed: Option<u64>) -> Result<u64, String> {
        let (va, ia) = self.a.reset(seed);
        let (va, ia) = (va.clone(), ia.clone());
        let (vb, ib) = self.b.reset(seed);
        if va != *vb || ia != *ib {
            return Err(format!(
                "episode {ep}: reset with the same seed gave different observations"
            ));
        }
        // A randomized scenario draws a network per episode.
        let (n, mn) = (self.a.episode_scenario().nodes.len(), self.a.max_nodes());
        if mn < n || ia.nodes != n {
            return Err(format!(
                "episode {ep}: {n} nodes but max_nodes {mn} and info.nodes {}",
                ia.nodes
            ));
        }
        if va.nodes.len() != n || va.mask.len() != n {
            return Err(format!(
                "observation has {} nodes and {} mask entries, expected {n}",
                va.nodes.len(),
                va.mask.len()
            ));
        }
        Ok(ia.episode_seed)
    }

    /// Runs one episode (at most `max_steps` decisions); returns its decisions.
    fn episode(
        &mut self,
        ep: u32,
        router: &mut RandomRouter,
        max_steps: u64,
    ) -> Result<u64, String> {
        let n = self.a.episode_scenario().nodes.len();
        let (mut ret, mut steps) = (0.0, 0);
        loop {
            let at = format!("episode {ep} step {steps}");
            self.check_features(&at, n)?;
            self.check_rejections(n)?;
            let action = router.route(self.a.obs());
            let sa = self
                .a
                .step(action)
                .map_err(|e| format!("legal action rejected: {e}"))?;
            let (ra, da, ta, ma) = (sa.reward, sa.terminated, sa.truncated, sa.info.metrics);
            let sb = self
                .b
                .step(action)
                .map_err(|e| format!("legal action rejected: {e}"))?;
            if ra.to_bits() != sb.reward.to_bits()
                || da != sb.terminated
                || ta != sb.truncated
                || self.a.obs() != self.b.obs()
            {
                return Err(format!("{at}: same seed and action, different step"));
            }
            if !ra.is_finite() {
                return Err(format!("{at}: reward {ra}"));
            }
            ret += ra;
            steps += 1;
            let c = self.a.job_counts();
            if c.arrived != c.answered + c.routing + c.queued + c.in_slots + c.failing {
                return Err(format!(
                    "episode {ep} step {steps}: jobs not conserved: {c:?}"
                ));
            }
            if da || ta {
                let m = ma.ok_or_else(|| "the last step has no metrics".to_string())?;
                self.check_end(&m, ret, c)?;
                return Ok(steps);
            }
            if steps >= max_steps {
                return Ok(steps);
            }
        }
    }

    /// Both envs encode the same finite features, with a legal node and masked padding.
    fn check_features(&mut self, at: &str, n: usize) -> Result<(), String> {
        encoded(&self.a, &mut self.obs_a);
        encoded(&self.b, &mut self.obs_b);
        let o = &self.obs_a;
        if bits(o) != bits(&self.obs_b) || o.mask != self.obs_b.mask {
            return Err(format!("{at}: same seed, different features"));
        }
        if let Some(x) = o
            .nodes
            .iter()
            .chain(&o.job)
            .chain(&o.global)
            .find(|x| !x.is_finite())
        {
            return Err(format!("{at}: non-finite feature {x}"));
        }
        if !o.mask.iter().any(|&m| m) {
            return Err(format!("{at}: a decision with no legal node"));
        }
        if o.mask[n..].iter().any(|&m| m) {
            return Err("a padding row is unmasked".into());
        }
        Ok(())
    }

    /// A masked and an out-of-range action are errors that change nothing.
    fn check_rejections(&mut self, n: usize) -> Result<(), String> {
        if let Some(bad) = self.a.obs().mask.iter().position(|&m| !m) {
            if !matches!(self.a.step(bad), Err(EnvError::Masked { action }) if action == bad) {
                return Err(format!("masked action {bad} was not rejected"));
            }
        }
        if !matches!(self.a.step(n), Err(EnvError::OutOfRange { .. })) {
            return Err(format!("out-of-range action {n} was not rejected"));
        }
        Ok(())
    }

    /// The end of an episode: every job answered (when draining), rewards summing to the
    /// return, finite metrics, and no step after it.
    fn check_end(&mut self, m: &EpisodeMetrics, ret: f64, c: JobCounts) -> Result<(), String> {
        let sc = &self.scenario;
        if sc.drain && (c.answered != c.arrived || c.arrived != sc.jobs_per_episode) {
            return Err(format!("episode ended with jobs unanswered: {c:?}"));
        }
        if (m.episode_return - ret).abs() > 1e-6 * ret.abs().max(1.0) {
            return Err(format!(
                "rewards sum to {ret} but episode_return is {}",
                m.episode_return
            ));
        }
        let no_slo = sc.workload.slo_latency_s.is_none();
        if let Some(metric) = Metric::ALL.into_iter().find(|&metric| {
            !(m.value(metric).is_finite() || (no_slo && metric == Metric::SloAttainment))
        }) {
            return Err(format!("metric {metric} is {}", m.value(metric)));
        }
        if !matches!(self.a.step(0), Err(EnvError::EpisodeOver)) {
            return Err("step after the end was not rejected".into());
        }
        Ok(())
    }
}
