//! Every random stream of a training run, derived from the run's seed.
//!
//! One table, so that no two streams can share a seed: a stream with many members (one per env,
//! one per actor) derives its members from its own seed, `derive_seed(derive_seed(seed, S), i)`,
//! never from `derive_seed(seed, S + i)`, where member 677 of a stream at 100 once met the
//! evaluation stream at 777. The simulator derives its own streams from each *episode* seed
//! (`haca_env::streams`): a different base, so the two tables cannot collide either.

use haca_policy::rng::derive_seed;

/// The streams of a run: `derive_seed(run_seed, stream as u64)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Initial weights.
    Init = 1,
    /// Minibatch shuffles of the PPO update and of behaviour cloning.
    Minibatch = 2,
    /// The training envs' seed streams (member `e`: env `e`, or group `e` with input groups).
    Envs = 3,
    /// Per-env action sampling (member `e`).
    Actors = 4,
    /// Periodic evaluation, which picks `best.safetensors`.
    Eval = 5,
    /// The final comparison and the verdict: seeds nothing selected on.
    Verdict = 6,
    /// Behaviour cloning's own rollouts of the teacher router.
    Clone = 7,
    /// The final re-evaluation of the best candidates (`select_top`).
    Select = 8,
}

impl Stream {
    pub const ALL: [Stream; 8] = [
        Stream::Init,
        Stream::Minibatch,
        Stream::Envs,
        Stream::Actors,
        Stream::Eval,
        Stream::Verdict,
        Stream::Clone,
        Stream::Select,
    ];

    /// The stream's seed for a run seeded with `run_seed`.
    pub fn seed(self, run_seed: u64) -> u64 {
        derive_seed(run_seed, self as u64)
    }

    /// Member `i` of the stream (env `i`, actor `i`).
    pub fn member(self, run_seed: u64, i: u64) -> u64 {
        derive_seed(self.seed(run_seed), i)
    }
}

#[cfg(test)]
mod tests {
    use super::Stream;
    use std::collections::HashSet;

    #[test]
    fn no_two_streams_or_members_share_a_seed() {
        for run_seed in [0u64, 1, 2, 777, u64::MAX] {
            let mut seen = HashSet::new();
            for s in Stream::ALL {
                assert!(seen.insert(s.seed(run_seed)), "{s:?} collides");
            }
            for s in [Stream::Envs, Stream::Actors, Stream::Clone] {
                for i in 0..4096 {
                    assert!(
                        seen.insert(s.member(run_seed, i)),
                        "member {i} of {s:?} collides (run seed {run_seed})"
                    );
                }
            }
        }
        let indices: HashSet<u64> = Stream::ALL.iter().map(|&s| s as u64).collect();
        assert_eq!(
            indices.len(),
            Stream::ALL.len(),
            "two streams share an index"
        );
    }
}
