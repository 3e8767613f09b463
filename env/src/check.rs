//! A conformance check in the spirit of Gymnasium's `check_env`.

use std::sync::Arc;

use haca_policy::{ObsBatch, RandomRouter, Router};

use crate::env::{Env, EnvError};
use crate::scenario::Scenario;

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
    let fail = |message: String| CheckError {
        scenario: scenario.name.clone(),
        message,
    };
    let (mut a, mut b) = (Env::new(scenario.clone()), Env::new(scenario.clone()));
    let mn = a.max_nodes();
    let (mut ba, mut bb) = (ObsBatch::new(1, mn), ObsBatch::new(1, mn));
    if !matches!(b.step(0), Err(EnvError::NotReset)) {
        return Err(fail("step before reset was not rejected".into()));
    }
    let mut router = RandomRouter::new(seed);
    let mut decisions = 0;
    let mut first_episode_seed = None;
    for ep in 0..episodes {
        let reset_seed = if ep == 0 { Some(seed) } else { None };
        let (va, ia) = a.reset(reset_seed);
        let (va, ia) = (va.clone(), ia.clone());
        let (vb, ib) = b.reset(reset_seed);
        if va != *vb || ia != *ib {
            return Err(fail(format!(
                "episode {ep}: reset with the same seed gave different observations"
            )));
        }
        match first_episode_seed {
            None => first_episode_seed = Some(ia.episode_seed),
            Some(s) if s == ia.episode_seed => return Err(fail(
                "reset(None) repeated the previous episode instead of continuing the seed stream"
                    .into(),
            )),
            Some(_) => {}
        }
        // A randomized scenario draws a network per episode.
        let n = a.episode_scenario().nodes.len();
        if mn < n || ia.nodes != n {
            return Err(fail(format!(
                "episode {ep}: {n} nodes but max_nodes {mn} and info.nodes {}",
                ia.nodes
            )));
        }
        if va.nodes.len() != n || va.mask.len() != n {
            return Err(fail(format!(
                "observation has {} nodes and {} mask entries, expected {n}",
                va.nodes.len(),
                va.mask.len()
            )));
        }
        let mut ret = 0.0;
        let mut steps = 0;
        loop {
            encoded(&a, &mut ba);
            encoded(&b, &mut bb);
            if bits(&ba) != bits(&bb) || ba.mask != bb.mask {
                return Err(fail(format!(
                    "episode {ep} step {steps}: same seed, different features"
                )));
            }
            if let Some(x) = ba
                .nodes
                .iter()
                .chain(&ba.job)
                .chain(&ba.global)
                .find(|x| !x.is_finite())
            {
                return Err(fail(format!(
                    "episode {ep} step {steps}: non-finite feature {x}"
                )));
            }
            if !ba.mask.iter().any(|&m| m) {
                return Err(fail(format!(
                    "episode {ep} step {steps}: a decision with no legal node"
                )));
            }
            if ba.mask[n..].iter().any(|&m| m) {
                return Err(fail("a padding row is unmasked".into()));
            }
            if let Some(bad) = a.obs().mask.iter().position(|&m| !m) {
                if !matches!(a.step(bad), Err(EnvError::Masked { action }) if action == bad) {
                    return Err(fail(format!("masked action {bad} was not rejected")));
                }
            }
            if !matches!(a.step(n), Err(EnvError::OutOfRange { .. })) {
                return Err(fail(format!("out-of-range action {n} was not rejected")));
            }
            let action = router.route(a.obs());
            let sa = a
                .step(action)
                .map_err(|e| fail(format!("legal action rejected: {e}")))?;
            let (ra, da, ta, ma) = (sa.reward, sa.terminated, sa.truncated, sa.info.metrics);
            let sb = b
                .step(action)
                .map_err(|e| fail(format!("legal action rejected: {e}")))?;
            if ra.to_bits() != sb.reward.to_bits()
                || da != sb.terminated
                || ta != sb.truncated
                || a.obs() != b.obs()
            {
                return Err(fail(format!(
                    "episode {ep} step {steps}: same seed and action, different step"
                )));
            }
            if !ra.is_finite() {
                return Err(fail(format!("episode {ep} step {steps}: reward {ra}")));
            }
            ret += ra;
            steps += 1;
            decisions += 1;
            let c = a.job_counts();
            if c.arrived != c.answered + c.routing + c.queued + c.in_slots {
                return Err(fail(format!(
                    "episode {ep} step {steps}: jobs not conserved: {c:?}"
                )));
            }
            if da || ta {
                let m = ma.ok_or_else(|| fail("the last step has no metrics".into()))?;
                if scenario.drain
                    && (c.answered != c.arrived || c.arrived != scenario.jobs_per_episode)
                {
                    return Err(fail(format!("episode ended with jobs unanswered: {c:?}")));
                }
                if (m.episode_return - ret).abs() > 1e-6 * ret.abs().max(1.0) {
                    return Err(fail(format!(
                        "rewards sum to {ret} but episode_return is {}",
                        m.episode_return
                    )));
                }
                let no_slo = scenario.workload.slo_latency_s.is_none();
                if let Some((name, v)) = m
                    .pairs()
                    .find(|&(name, v)| !(v.is_finite() || (no_slo && name == "slo_attainment")))
                {
                    return Err(fail(format!("metric {name} is {v}")));
                }
                if !matches!(a.step(0), Err(EnvError::EpisodeOver)) {
                    return Err(fail("step after the end was not rejected".into()));
                }
                break;
            }
            if steps >= max_steps {
                break;
            }
        }
    }
    // Replaying the first seed reproduces the first episode.
    let mut c = Env::new(scenario.clone());
    let (_, ic) = c.reset(Some(seed));
    if Some(ic.episode_seed) != first_episode_seed {
        return Err(fail(
            "reset(Some(seed)) did not replay the first episode".into(),
        ));
    }
    Ok(CheckReport {
        episodes,
        decisions,
    })
}
