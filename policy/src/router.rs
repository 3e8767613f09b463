//! The [`Router`] trait and the simplest routers.
//!
//! Every router, heuristic or learned, implements [`Router`]: it reads a [`ClusterView`] and
//! returns the index of a legal node. The simulator rejects an illegal choice with an error rather
//! than silently fixing it, so a router bug shows up at once.

use crate::per_client::PerClient;
use crate::rng::Rng;
use crate::view::ClusterView;

/// A routing policy. `route` is only called when at least one node is legal, and must return an
/// index `i` with `view.mask[i] == true`.
pub trait Router: Send {
    /// Short stable name, as used on the command line and in reports.
    fn name(&self) -> &str;

    /// Called at the start of each episode with a seed derived from the episode's, so stochastic
    /// routers are reproducible and stateful ones start clean.
    fn reset(&mut self, _seed: u64) {}

    fn route(&mut self, view: &ClusterView) -> usize;
}

impl<R: Router + ?Sized> Router for Box<R> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn reset(&mut self, seed: u64) {
        (**self).reset(seed)
    }
    fn route(&mut self, view: &ClusterView) -> usize {
        (**self).route(view)
    }
}

/// Uniform among legal nodes: today's OpenGradient behaviour (a client picks a random node).
#[derive(Debug, Clone)]
pub struct RandomRouter {
    rng: Rng,
}

impl RandomRouter {
    pub fn new(seed: u64) -> Self {
        RandomRouter {
            rng: Rng::new(seed),
        }
    }
}

impl Default for RandomRouter {
    fn default() -> Self {
        RandomRouter::new(0)
    }
}

impl Router for RandomRouter {
    fn name(&self) -> &str {
        "random"
    }

    fn reset(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        let legal = view.mask.iter().filter(|&&ok| ok).count();
        assert!(legal > 0, "route called with no legal node");
        let k = self.rng.below(legal as u64) as usize;
        view.legal().nth(k).expect("k < number of legal nodes")
    }
}

/// Cycles through the nodes, skipping illegal ones.
#[derive(Debug, Clone, Default)]
pub struct RoundRobinRouter {
    next: usize,
}

impl Router for RoundRobinRouter {
    fn name(&self) -> &str {
        "round_robin"
    }

    fn reset(&mut self, _seed: u64) {
        self.next = 0;
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        let n = view.mask.len();
        assert!(n > 0, "route called with no node");
        // The first legal node from `next` on, wrapping once (one division per call, not one
        // per candidate; `next` is out of range when the network shrank since the last call).
        let start = self.next % n;
        let i = (start..n)
            .chain(0..start)
            .find(|&i| view.mask[i])
            .expect("route called with no legal node");
        self.next = if i + 1 == n { 0 } else { i + 1 };
        i
    }
}

/// Names accepted by [`router_by_name`]: the eight heuristics and the four of a network of
/// clients (`sdk`, `reputation`, `lsq`, `prefix`). `po2` also accepts any `po<d>`, e.g. `po3`.
pub const ROUTER_NAMES: &[&str] = &[
    "random",
    "round_robin",
    "jsq",
    "lwl",
    "sed",
    "po2",
    "jiq",
    "affinity",
    "sdk",
    "reputation",
    "lsq",
    "prefix",
];

/// Builds a router from its command-line name; `None` for an unknown name (see [`ROUTER_NAMES`]).
/// The router runs one instance per client ([`PerClient`]); with one client it is the router
/// itself, seeded with `seed`.
pub fn router_by_name(name: &str, seed: u64) -> Option<Box<dyn Router>> {
    single_router(name, seed)?;
    let name = name.to_string();
    Some(Box::new(PerClient::new(Box::new(move || {
        single_router(&name, seed).expect("the name was checked")
    }))))
}

/// One instance of the router named `name` (see [`router_by_name`]).
pub fn single_router(name: &str, seed: u64) -> Option<Box<dyn Router>> {
    use crate::client_routers::*;
    use crate::heuristics::*;
    Some(match name {
        "random" => Box::new(RandomRouter::new(seed)),
        "round_robin" | "rr" => Box::new(RoundRobinRouter::default()),
        "jsq" => Box::new(JsqRouter::new(seed)),
        "lwl" => Box::new(LwlRouter::new(seed)),
        "sed" => Box::new(SedRouter::new(seed)),
        "jiq" => Box::new(JiqRouter::new(seed)),
        "affinity" => Box::new(AffinityRouter::new(AffinityRouter::DEFAULT_THRESHOLD, seed)),
        "sdk" => Box::new(SdkRouter::new(seed)),
        "reputation" => Box::new(ReputationRouter::new(ReputationRouter::DEFAULT_K, seed)),
        "lsq" => Box::new(LsqRouter::new(seed)),
        "prefix" => Box::new(PrefixRouter::new(PrefixRouter::DEFAULT_BALANCE, seed)),
        _ => {
            let d: usize = name.strip_prefix("po")?.parse().ok().filter(|&d| d >= 1)?;
            Box::new(PowerOfDRouter::new(d, seed))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::NodeView;

    fn view(mask: Vec<bool>) -> ClusterView {
        ClusterView {
            nodes: vec![NodeView::default(); mask.len()],
            mask,
            ..Default::default()
        }
    }

    #[test]
    fn round_robin_cycles_over_legal_nodes() {
        let v = view(vec![true, false, true, true]);
        let mut r = RoundRobinRouter::default();
        let picks: Vec<usize> = (0..6).map(|_| r.route(&v)).collect();
        assert_eq!(picks, [0, 2, 3, 0, 2, 3]);
        r.reset(0);
        assert_eq!(r.route(&v), 0);
    }

    #[test]
    fn random_is_uniform_over_legal_nodes_and_reproducible() {
        let v = view(vec![false, true, true, false, true]);
        let mut r = RandomRouter::new(1);
        let mut counts = [0u32; 5];
        for _ in 0..30_000 {
            counts[r.route(&v)] += 1;
        }
        assert_eq!(counts[0] + counts[3], 0);
        for i in [1, 2, 4] {
            assert!((9_500..10_500).contains(&counts[i]), "{counts:?}");
        }
        let mut a = RandomRouter::new(9);
        let mut b = RandomRouter::new(9);
        assert!((0..100).all(|_| a.route(&v) == b.route(&v)));
    }

    #[test]
    fn names_resolve() {
        for name in ROUTER_NAMES {
            assert_eq!(router_by_name(name, 0).unwrap().name(), *name);
        }
        assert_eq!(router_by_name("po3", 0).unwrap().name(), "po3");
        for bad in ["nope", "po", "po0", "pox"] {
            assert!(router_by_name(bad, 0).is_none(), "{bad}");
        }
    }
}
