//! The routers of a network where every client routes for itself (DESIGN.md section 1): today's
//! OpenGradient client (`sdk`), the registry's reputation score (`reputation`), a local estimate
//! that avoids herding (`lsq`), and prefix-KV-cache routing (`prefix`). Each instance is one
//! client's: it sees that client's view and its own requests' outcomes only.

use crate::heuristics::argmin_random_ties;
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
/// it, and moves only when the pinned node is no longer active (listed) or a request fails
/// there (retried on a newly drawn node, which becomes the pin). A job the pinned node cannot
/// serve goes to a random legal node, the pin kept. The SDK notices a delisted pin at its
/// 300 s re-check; here a delisted node is masked, so the client moves at its next request,
/// at most that much earlier (the registry's 1,800 s max age dominates the lag).
#[derive(Debug, Clone)]
pub struct SdkRouter {
    rng: Rng,
    pinned: Option<usize>,
}

impl SdkRouter {
    pub fn new(seed: u64) -> SdkRouter {
        SdkRouter {
            rng: Rng::new(seed),
            pinned: None,
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
        let repin = match self.pinned {
            None => true,
            Some(p) => failed == Some(p) || !view.nodes[p].up,
        };
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
/// compared by expected delay (as `sed`) on that estimate
/// ([`NodeView::local_expected_delay`]); with fresh views or one client it is `sed`.
#[derive(Debug, Clone)]
pub struct LsqRouter {
    rng: Rng,
}

impl LsqRouter {
    pub fn new(seed: u64) -> LsqRouter {
        LsqRouter {
            rng: Rng::new(seed),
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
        let (job, share) = (view.job, view.client_share);
        argmin_random_ties(view, &mut self.rng, |n| n.local_expected_delay(&job, share))
            .expect("route called with no legal node")
    }
}

/// Prefix-KV-cache routing with a load guard: the shape of SGLang's cache-aware router (route
/// for cache hits while the load is balanced; when the most and least loaded legal nodes differ
/// by more than `balance_jobs` jobs per slot, balance instead) and Dynamo's KV router (the
/// prefill a node's cached prefix saves, weighed in time against its load): among balanced
/// nodes, the shortest expected delay with the cached prefix's prefill skipped
/// ([`NodeView::expected_delay_with_prefix`]). Balancing uses the shortest expected delay
/// (`sed`) rather than SGLang's shortest queue, because here nodes differ in speed and cached
/// models, which a queue length does not see.
#[derive(Debug, Clone)]
pub struct PrefixRouter {
    balance_jobs: f64,
    rng: Rng,
}

impl PrefixRouter {
    /// Default balance threshold, jobs per slot.
    pub const DEFAULT_BALANCE: f64 = 4.0;

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
            argmin_random_ties(view, &mut self.rng, |n| n.expected_delay(&job))
        } else {
            argmin_random_ties(view, &mut self.rng, |n| n.expected_delay_with_prefix(&job))
        };
        pick.expect("route called with no legal node")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{Feedback, JobView};

    fn view(n: usize) -> ClusterView {
        let node = NodeView {
            up: true,
            speed: 1.0,
            slots: 1,
            ..Default::default()
        };
        ClusterView {
            nodes: vec![node; n],
            mask: vec![true; n],
            job: JobView {
                est_work: 1.0,
                ..Default::default()
            },
            clients: 2,
            client_share: 0.5,
            ..Default::default()
        }
    }

    #[test]
    fn sdk_pins_a_node_and_moves_only_when_it_fails_or_leaves_the_registry() {
        let mut r = SdkRouter::new(1);
        let mut v = view(5);
        let p = r.route(&v);
        for t in 1..50 {
            v.now = t as f64 * 100.0;
            assert_eq!(r.route(&v), p, "pinned, whatever the load");
            v.nodes[p].queue_len += 10;
        }
        // A job the pin cannot serve goes elsewhere; the pin stays.
        v.mask[p] = false;
        assert_ne!(r.route(&v), p);
        v.mask[p] = true;
        assert_eq!(r.route(&v), p);
        // A request that failed there is retried on a newly drawn node, the new pin.
        v.job.failed_on = Some(p as u32);
        let q = r.route(&v);
        assert_ne!(q, p);
        v.job.failed_on = None;
        assert_eq!(r.route(&v), q);
        // Delisted from the registry: it moves.
        v.nodes[q].up = false;
        v.mask[q] = false;
        let s = r.route(&v);
        assert_ne!(s, q);
        v.nodes[q].up = true;
        v.mask[q] = true;
        assert_eq!(r.route(&v), s);
    }

    #[test]
    fn lsq_counts_its_own_dispatches_for_the_unseen_others() {
        let mut v = view(2);
        // Node 0: only this client's job since the scrape; node 1: 1.5 units seen at the scrape.
        v.nodes[0].queue_len = 1;
        v.nodes[0].busy_slots = 1;
        v.nodes[0].work_left = 1.0;
        v.nodes[0].own_jobs = 1;
        v.nodes[0].own_work = 1.0;
        v.nodes[1].queue_len = 1;
        v.nodes[1].busy_slots = 1;
        v.nodes[1].work_left = 1.5;
        assert_eq!(crate::SedRouter::new(0).route(&v), 0);
        // With half the demand, its one job stands for two: 2 units against 1.5.
        assert_eq!(LsqRouter::new(0).route(&v), 1);
        v.client_share = 1.0;
        assert_eq!(LsqRouter::new(0).route(&v), 0, "alone, it is sed");
    }

    #[test]
    fn reputation_avoids_a_node_whose_requests_failed() {
        let mut r = ReputationRouter::new(1, 0);
        let mut v = view(3);
        v.feedback = vec![Feedback {
            node: 0,
            latency_s: 30.0,
            ok: false,
        }];
        for _ in 0..50 {
            assert_ne!(r.route(&v), 0);
            v.feedback.clear();
        }
    }

    #[test]
    fn prefix_follows_cached_prefixes_while_the_load_is_balanced() {
        let mut r = PrefixRouter::new(2.0, 0);
        let mut v = view(3);
        v.job.est_work = 10.0;
        v.job.prefix_blocks = 8;
        v.job.block_work = 1.0;
        v.nodes[2].prefix_hit = 8;
        v.nodes[2].busy_slots = 1;
        v.nodes[2].work_left = 1.0;
        v.nodes[2].queue_len = 1;
        // Node 2 saves 8 of 10 units for a 1-unit wait: 1 + 2 < 10.
        assert_eq!(r.route(&v), 2);
        // Three more jobs per slot than the idle nodes (threshold 2): balance instead.
        v.nodes[2].queue_len = 4;
        v.nodes[2].work_left = 4.0;
        assert_ne!(r.route(&v), 2);
    }
}
