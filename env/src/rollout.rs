//! Running a router over episodes.

use haca_policy::rng::derive_seed;
use haca_policy::Router;

use crate::env::{Env, EnvError};
use crate::metrics::EpisodeMetrics;

/// A router broke the rules (returned an illegal node), or the episode ran away.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("router `{router}` at decision {decision}: {source}")]
pub struct RolloutError {
    pub router: String,
    pub decision: u64,
    pub source: EnvError,
}

/// The seed a router is reset with for an episode: derived from the episode's seed, so a
/// stochastic router is reproducible and independent of the workload's stream.
pub fn router_seed(episode_seed: u64) -> u64 {
    derive_seed(episode_seed, crate::streams::ROUTER_TIES)
}

/// Runs one full episode of `router` on `env` and returns its metrics. `seed` is passed to
/// `Env::reset`; the router is reset with a seed derived from the episode's, so a stochastic
/// router is reproducible too.
pub fn run_episode<R: Router + ?Sized>(
    env: &mut Env,
    router: &mut R,
    seed: Option<u64>,
) -> Result<EpisodeMetrics, RolloutError> {
    let (_, info) = env.reset(seed);
    router.reset(router_seed(info.episode_seed));
    loop {
        let action = router.route(env.obs());
        let decision = env.info().decisions;
        let step = env.step(action).map_err(|source| RolloutError {
            router: router.name().to_string(),
            decision,
            source,
        })?;
        if step.done() {
            return Ok(step
                .info
                .metrics
                .expect("the last step carries the metrics"));
        }
    }
}
