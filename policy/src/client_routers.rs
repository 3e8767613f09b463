//! The routers of a network where every client routes for itself (DESIGN.md section 1): today's
//! OpenGradient client (`sdk`), the registry's reputation score (`reputation`), a local estimate
//! that avoids herding (`lsq`), and prefix-KV-cache routing (`prefix`). Each instance is one
//! client's: it sees that client's view and its own requests' outcomes only.

use crate::heuristics::{argmin_random_ties, argmin_random_ties_at};
use crate::rng::Rng;
use crate::router::Router;
use crate::view::{ClusterView, NodeView};

/// A uniformly random legal node, other than `avoid` when another is legal.
fn random_legal(view: &ClusterView, rng: &mut Rng, avoid: Option<usize>) -> usize {
    let ok = |i: usize| Some(i) != avoid;
    let legal = view.legal().filter(|&i| ok(i)).count();
    if legal == 0 {
        return view
            .legal()
            .next()
            .expect("route called with no legal node");
    }
    let k = rng.below(legal as u64) as usize;
    view.legal()
        .filter(|&i| ok(i))
        .nth(k)
        .expect("k < legal nodes")
}

/// Today's OpenGradient SDK client: it picks a random active node on its first request and pins
/// it; every `check_s` (300 s) it checks whether the pinned node is still active (listed) and
/// moves only when it is not; a request that fails is retried on a newly drawn node, which
/// becomes the pin. A job the pinned node cannot serve goes to a random legal node, the pin kept.
#[derive(Debug, Clone)]
pub struct SdkRouter {
    rng: Rng,
    pinned: Option<usize>,
    last_check: f64,
}

impl SdkRouter {
    /// The SDK's re-check period, seconds.
    pub const CHECK_S: f64 = 300.0;

    pub fn new(seed: u64) -> SdkRouter {
        SdkRouter {
            rng: Rng::new(seed),
            pinned: None,
            last_check: f64::NEG_INFINITY,
        }
    }
}

impl Router for SdkRouter {
    fn name(&self) -> &str {
        "sdk"
    }

    fn reset(&mut self, seed: u64) {
        *self = SdkRouter::new(seed);
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        let failed = view.job.failed_on.map(|n| n as usize);
        let mut repin = self.pinned.is_none() || (failed.is_some() && failed == self.pinned);
        if view.now - self.last_check >= Self::CHECK_S {
            self.last_check = view.now;
            repin |= self.pinned.is_some_and(|p| !view.nodes[p].up);
        }
        // A pin that is no longer listed fails at once (the registry check is what a request
        // to it would hit), so the client moves now rather than send to a node it cannot.
        repin |= self.pinned.is_some_and(|p| !view.nodes[p].up);
        if repin {
            self.pinned = Some(random_legal(view, &mut self.rng, failed));
        }
        match self.pinned {
            Some(p) if view.is_legal(p) => p,
            _ => random_legal(view, &mut self.rng, failed),
        }
    }
}

/// The reputation contract's score over what this client observed: 50% success rate, 35%
/// uptime (share of its decisions at which the node was listed), 15% response time (its fastest
/// node's mean over this node's); the `k` best legal nodes, one at random. Nodes it has not
/// tried score as perfect, so every node gets tried.
#[derive(Debug, Clone)]
pub struct ReputationRouter {
    k: usize,
    rng: Rng,
    stats: Vec<NodeStats>,
    best: Vec<(f64, usize)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct NodeStats {
    ok: u32,
    failed: u32,
    latency_sum: f64,
    seen: u32,
    listed: u32,
}

impl ReputationRouter {
    /// Default `k` of the top-k query.
    pub const DEFAULT_K: usize = 3;

    pub fn new(k: usize, seed: u64) -> ReputationRouter {
        ReputationRouter {
            k: k.max(1),
            rng: Rng::new(seed),
            stats: Vec::new(),
            best: Vec::new(),
        }
    }

    fn observe(&mut self, view: &ClusterView) {
        self.stats.resize(view.nodes.len(), NodeStats::default());
        for fb in &view.feedback {
            if let Some(s) = self.stats.get_mut(fb.node as usize) {
                if fb.ok {
                    s.ok += 1;
                    s.latency_sum += fb.latency_s;
                } else {
                    s.failed += 1;
                }
            }
        }
        for (s, n) in self.stats.iter_mut().zip(&view.nodes) {
            s.seen += 1;
            s.listed += n.up as u32;
        }
    }
}

impl Router for ReputationRouter {
    fn name(&self) -> &str {
        "reputation"
    }

    fn reset(&mut self, seed: u64) {
        *self = ReputationRouter::new(self.k, seed);
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        self.observe(view);
        let mean = |s: &NodeStats| (s.ok > 0).then(|| s.latency_sum / s.ok as f64);
        let fastest = self
            .stats
            .iter()
            .filter_map(mean)
            .fold(f64::INFINITY, f64::min);
        self.best.clear();
        for i in view.legal() {
            let s = &self.stats[i];
            let tries = s.ok + s.failed;
            let success = if tries == 0 {
                1.0
            } else {
                s.ok as f64 / tries as f64
            };
            let uptime = s.listed as f64 / s.seen.max(1) as f64;
            let response = mean(s).map_or(1.0, |m| (fastest / m).min(1.0));
            let score = 0.5 * success + 0.35 * uptime + 0.15 * response;
            // Random jitter below any real score difference breaks ties fairly.
            self.best.push((-score - 1e-9 * self.rng.uniform(), i));
        }
        let k = self.k.min(self.best.len());
        self.best
            .select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        self.best[self.rng.below(k as u64) as usize].1
    }
}

/// Local shortest queue (after Vargaftik et al., ToN 2020): each client keeps its own estimate
/// of every node, updated by its own dispatches and reset by each scrape, and counts each of its
/// dispatches for `1 / share` jobs: its stand-in for the other clients' dispatches since the
/// scrape, which it cannot see. So a client that just sent work to the node everyone saw as
/// least loaded expects the others did too and looks elsewhere: the herd breaks. Nodes are
/// compared by expected delay (see `sed`) on that estimate. With fresh views (no scrape) or one
/// client it is `sed`.
#[derive(Debug, Clone)]
pub struct LsqRouter {
    rng: Rng,
    observed_at: f64,
    own_work: Vec<f64>,
    own_jobs: Vec<u32>,
}

impl LsqRouter {
    pub fn new(seed: u64) -> LsqRouter {
        LsqRouter {
            rng: Rng::new(seed),
            observed_at: f64::NAN,
            own_work: Vec::new(),
            own_jobs: Vec::new(),
        }
    }
}

impl Router for LsqRouter {
    fn name(&self) -> &str {
        "lsq"
    }

    fn reset(&mut self, seed: u64) {
        *self = LsqRouter::new(seed);
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        let n = view.nodes.len();
        if view.observed_at != self.observed_at || self.own_work.len() != n {
            self.observed_at = view.observed_at;
            self.own_work.clear();
            self.own_work.resize(n, 0.0);
            self.own_jobs.clear();
            self.own_jobs.resize(n, 0);
        }
        // The view already holds this client's own dispatches once; the others' are estimated.
        let others = (1.0 / view.client_share.clamp(1e-9, 1.0)) - 1.0;
        let job = view.job;
        let (own_work, own_jobs) = (&self.own_work, &self.own_jobs);
        let pick = argmin_random_ties_at(view, &mut self.rng, |i, node| {
            let mut est = *node;
            est.queue_len += (own_jobs[i] as f64 * others).round() as u32;
            est.work_left += own_work[i] * others;
            est.expected_delay(&job)
        })
        .expect("route called with no legal node");
        self.own_work[pick] += job.est_work;
        self.own_jobs[pick] += 1;
        pick
    }
}

/// Prefix-KV-cache routing with a load guard: the shape of SGLang's cache-aware router (route
/// for cache hits while the load is balanced; when the most and least loaded legal nodes differ
/// by more than `balance_jobs` jobs per slot, balance instead) and Dynamo's KV router (the
/// prefill a node's cached prefix saves, weighed in time against its load): among balanced
/// nodes, the shortest expected delay with the cached prefix's prefill skipped.
#[derive(Debug, Clone)]
pub struct PrefixRouter {
    balance_jobs: f64,
    rng: Rng,
}

impl PrefixRouter {
    /// Default balance threshold, jobs per slot.
    pub const DEFAULT_BALANCE: f64 = 2.0;

    pub fn new(balance_jobs: f64, seed: u64) -> PrefixRouter {
        PrefixRouter {
            balance_jobs,
            rng: Rng::new(seed),
        }
    }
}

fn jobs_per_slot(n: &NodeView) -> f64 {
    (n.busy_slots + n.queue_len) as f64 / n.slots.max(1) as f64
}

impl Router for PrefixRouter {
    fn name(&self) -> &str {
        "prefix"
    }

    fn reset(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for i in view.legal() {
            let l = jobs_per_slot(&view.nodes[i]);
            lo = lo.min(l);
            hi = hi.max(l);
        }
        let job = view.job;
        let pick = if hi - lo > self.balance_jobs {
            argmin_random_ties(view, &mut self.rng, jobs_per_slot)
        } else {
            argmin_random_ties(view, &mut self.rng, |n| n.expected_delay_with_prefix(&job))
        };
        pick.expect("route called with no legal node")
    }
}
