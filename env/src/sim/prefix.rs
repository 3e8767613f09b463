//! Prefix KV caches: each node keeps, per model, an LRU of the prompt-prefix blocks it computed;
//! a job skips the prefill of the leading blocks of its prompt cached on the node serving it.
//! Blocks come from a trace's `hash_ids` or, for synthetic workloads, from the session model of
//! `[prefix]`: shared system prompts and conversations whose turns reuse their own prefix.
//!
//! The hit is taken, and the job's blocks enter the cache, when the job is placed. A node serves
//! its queue in order, so the blocks a job finds when placed are exactly those of the jobs that
//! start before it: the hit it will get when its service begins (a failure empties the queue
//! and the cache together). So the router sees that hit (as SGLang's router sees the prompts it
//! routed), and the queued work is estimated with it. Optimistic only where the blocks are not
//! computed yet when the job starts: an earlier turn's prefill still running on another slot,
//! or a cold model load under way. A node that fails loses its caches, and a model evicted from
//! a node's memory its cache there.

use std::collections::{HashMap, VecDeque};

use haca_policy::rng::{derive_seed, splitmix64};
use haca_policy::Rng;

use super::jobs::Job;
use super::topology::Topology;

/// One (node, model) cache: block hash to the stamp of its last use, and the uses in order
/// (entries whose stamp is no longer the block's are stale and skipped on eviction).
#[derive(Debug, Clone, Default)]
struct Lru {
    map: HashMap<u64, u64>,
    order: VecDeque<(u64, u64)>,
    clock: u64,
}

impl Lru {
    fn touch(&mut self, block: u64, cap: usize) {
        self.clock += 1;
        self.map.insert(block, self.clock);
        self.order.push_back((block, self.clock));
        while self.map.len() > cap {
            let (b, stamp) = self.order.pop_front().expect("an entry per block");
            if self.map.get(&b) == Some(&stamp) {
                self.map.remove(&b);
            }
        }
        if self.order.len() > 2 * cap + 16 {
            let map = &self.map;
            self.order.retain(|(b, stamp)| map.get(b) == Some(stamp));
        }
    }

    /// Leading blocks of `blocks` present.
    fn prefix_hits(&self, blocks: &[u64]) -> u32 {
        blocks
            .iter()
            .take_while(|b| self.map.contains_key(b))
            .count() as u32
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PrefixCaches {
    /// Entry `n * models + m`.
    caches: Vec<Lru>,
    /// The blocks of this episode's jobs: job `j`'s are `arena[prefix.0..prefix.0 + prefix.1]`.
    arena: Vec<u64>,
    rng: Rng,
    unique: u64,
    pub hit_blocks: u64,
    pub total_blocks: u64,
}

/// The `kind` of a synthetic session's blocks (see [`block_hash`]).
const SESSION: u64 = 2;

/// A synthetic session's identity: its first own block (what a trace conversation's first
/// `hash_ids` entry is), from which its model is drawn.
pub fn session_key(session: u64) -> u64 {
    block_hash(SESSION, session, 0)
}

/// A block hash for synthetic prefixes: `kind` separates system prompts, sessions and unique
/// blocks, so their hashes never collide by construction of the inputs.
fn block_hash(kind: u64, id: u64, k: u64) -> u64 {
    let mut s = kind
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(id.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(k);
    splitmix64(&mut s)
}

impl PrefixCaches {
    /// `None` without `[prefix]`.
    pub fn new(topo: &Topology, episode_seed: u64) -> Option<PrefixCaches> {
        topo.sc.prefix?;
        Some(PrefixCaches {
            caches: vec![Lru::default(); topo.nodes() * topo.models()],
            arena: Vec::new(),
            rng: Rng::new(derive_seed(episode_seed, crate::streams::PREFIX)),
            unique: 0,
            hit_blocks: 0,
            total_blocks: 0,
        })
    }

    /// The synthetic session of the next arriving job (`sessions > 0`), drawn before the job so
    /// that its model can follow the session; `None` without sessions.
    pub fn draw_session(&mut self, topo: &Topology) -> Option<u64> {
        let p = topo.sc.prefix.expect("prefix caching is on");
        (p.sessions > 0).then(|| self.rng.below(p.sessions as u64))
    }

    /// Gives a new job its prefix blocks: the trace row's `hash_ids` when it has them, else the
    /// synthetic model's (its session's blocks when `session` is given, unique ones otherwise).
    pub fn assign(
        &mut self,
        topo: &Topology,
        job: &mut Job,
        trace_blocks: Option<&[u64]>,
        session: Option<u64>,
    ) {
        let p = topo.sc.prefix.expect("prefix caching is on");
        let off = self.arena.len() as u32;
        match trace_blocks {
            Some(blocks) => self.arena.extend_from_slice(blocks),
            None => {
                let n = (job.input / p.block_tokens) as u64;
                let mut k = 0;
                if p.system_prompts > 0 {
                    let s = self.rng.below(p.system_prompts as u64);
                    let sys = (p.system_tokens / p.block_tokens) as u64;
                    while k < n.min(sys) {
                        self.arena.push(block_hash(1, s, k));
                        k += 1;
                    }
                }
                let (kind, id) = match session {
                    Some(id) => (SESSION, id),
                    None => {
                        self.unique += 1;
                        (3, self.unique)
                    }
                };
                for i in 0..n - k {
                    self.arena.push(block_hash(kind, id, i));
                }
            }
        }
        job.prefix = (off, self.arena.len() as u32 - off);
    }

    pub fn blocks(&self, job: &Job) -> &[u64] {
        let (off, len) = job.prefix;
        &self.arena[off as usize..(off + len) as usize]
    }

    /// Leading blocks of `job`'s prefix cached on node `n`.
    #[inline]
    pub fn hits(&self, topo: &Topology, n: usize, job: &Job) -> u32 {
        self.caches[n * topo.models() + job.model as usize].prefix_hits(self.blocks(job))
    }

    /// `job` goes to node `n`: its work shrinks by the prefill of the prefix cached there, and
    /// its blocks enter the node's cache. A job handed back after a failure has had any earlier
    /// saving given back (`Episode::hand_back`), so every job comes here with none.
    pub fn take_hit(&mut self, topo: &Topology, n: usize, job: &mut Job) {
        let sc = &topo.sc;
        let p = sc.prefix.expect("prefix caching is on");
        let hits = self.hits(topo, n, job);
        self.hit_blocks += hits as u64;
        self.total_blocks += job.prefix.1 as u64;
        let tokens = (hits * p.block_tokens).min(job.input) as f64;
        let per_token = sc.models[job.model as usize].prefill_cost
            * sc.verification.multiplier[job.mode.index()];
        let saved = tokens * per_token;
        debug_assert_eq!(
            job.prefix_saved, 0.0,
            "a placed job carries no earlier saving"
        );
        job.work -= saved;
        job.est_work -= saved;
        job.prefix_saved = saved;
        let cap = sc.nodes[n].kv_blocks as usize;
        let (off, len) = job.prefix;
        let cache = &mut self.caches[n * topo.models() + job.model as usize];
        for &b in &self.arena[off as usize..(off + len) as usize] {
            cache.touch(b, cap);
        }
    }

    /// Model `model` left node `n`'s memory: its cache there is gone.
    pub fn on_model_evicted(&mut self, topo: &Topology, n: usize, model: usize) {
        self.caches[n * topo.models() + model] = Lru::default();
    }

    /// Node `n` failed: its caches are gone.
    pub fn on_node_down(&mut self, topo: &Topology, n: usize) {
        let m = topo.models();
        self.caches[n * m..(n + 1) * m].fill(Lru::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_keeps_the_most_recent_blocks_and_counts_leading_hits() {
        let mut c = Lru::default();
        for b in [1, 2, 3] {
            c.touch(b, 3);
        }
        assert_eq!(c.prefix_hits(&[1, 2, 3, 4]), 3);
        c.touch(1, 3); // 1 is now the most recent: 2 goes next
        c.touch(4, 3);
        assert_eq!(c.prefix_hits(&[1]), 1);
        assert_eq!(c.prefix_hits(&[2, 3]), 0, "2 was evicted");
        assert_eq!(c.prefix_hits(&[3, 4, 1]), 3);
        for b in 10..1000 {
            c.touch(b, 3);
        }
        assert!(c.order.len() <= 2 * 3 + 16, "stale entries are compacted");
        assert_eq!(c.prefix_hits(&[997, 998, 999]), 3);
    }
}
