//! The routing heuristics production routers use, each reading only its [`ClusterView`].
//!
//! Ties are broken uniformly at random with a seeded generator: breaking them by index would
//! pile work onto low-numbered nodes and flatter or hurt a heuristic for no reason of its own.

use crate::rng::Rng;
use crate::router::Router;
use crate::view::{ClusterView, NodeView};

/// The legal node minimizing `key`, ties broken uniformly at random (reservoir sampling over the
/// tied nodes, so it is one pass and allocation-free). `None` if no node is legal.
pub fn argmin_random_ties(
    view: &ClusterView,
    rng: &mut Rng,
    mut key: impl FnMut(&NodeView) -> f64,
) -> Option<usize> {
    argmin_random_ties_at(view, rng, |_, n| key(n))
}

/// [`argmin_random_ties`] with the node's index passed to `key`.
pub fn argmin_random_ties_at(
    view: &ClusterView,
    rng: &mut Rng,
    mut key: impl FnMut(usize, &NodeView) -> f64,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut best_key = f64::INFINITY;
    let mut ties = 0u64;
    for i in view.legal() {
        let k = key(i, &view.nodes[i]);
        if best.is_none() || k < best_key {
            best = Some(i);
            best_key = k;
            ties = 1;
        } else if k == best_key {
            ties += 1;
            if rng.below(ties) == 0 {
                best = Some(i);
            }
        }
    }
    best
}

/// Jobs at a node (running or loading, plus queued).
fn jobs(n: &NodeView) -> f64 {
    (n.busy_slots + n.queue_len) as f64
}

macro_rules! seeded_router {
    ($(#[$doc:meta])* $name:ident, $label:literal, |$view:ident, $rng:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            rng: Rng,
        }

        impl $name {
            pub fn new(seed: u64) -> Self {
                $name { rng: Rng::new(seed) }
            }
        }

        impl Router for $name {
            fn name(&self) -> &str {
                $label
            }

            fn reset(&mut self, seed: u64) {
                self.rng = Rng::new(seed);
            }

            fn route(&mut self, $view: &ClusterView) -> usize {
                let $rng = &mut self.rng;
                $body.expect("route called with no legal node")
            }
        }
    };
}

seeded_router!(
    /// Join the shortest queue: the node with the fewest jobs.
    JsqRouter, "jsq", |view, rng| argmin_random_ties(view, rng, jobs)
);

seeded_router!(
    /// Least work left: the node with the least estimated work queued and running.
    LwlRouter, "lwl", |view, rng| argmin_random_ties(view, rng, |n| n.work_left)
);

seeded_router!(
    /// Shortest expected delay: the node where this job would finish first (wait for a slot at
    /// full capacity, cold load, own service time; see `NodeView::expected_delay`).
    SedRouter, "sed", |view, rng| {
        let job = view.job;
        argmin_random_ties(view, rng, |n| n.expected_delay(&job))
    }
);

seeded_router!(
    /// Join the idle queue: a node with an idle slot and nothing queued if there is one (at
    /// random among them), otherwise a random legal node, as in Lu et al. (2011).
    JiqRouter, "jiq", |view, rng| {
        argmin_random_ties(view, rng, |n| if n.has_idle_slot() && n.queue_len == 0 { 0.0 } else { 1.0 })
    }
);

/// Power of d choices: sample `d` legal nodes uniformly without replacement, send the job to the
/// one with the shortest expected delay.
#[derive(Debug, Clone)]
pub struct PowerOfDRouter {
    d: usize,
    rng: Rng,
    name: String,
}

impl PowerOfDRouter {
    /// `d` is at least 1; `d = 1` is random routing.
    pub fn new(d: usize, seed: u64) -> Self {
        let d = d.max(1);
        PowerOfDRouter {
            d,
            rng: Rng::new(seed),
            name: format!("po{d}"),
        }
    }
}

impl Router for PowerOfDRouter {
    fn name(&self) -> &str {
        &self.name
    }

    fn reset(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        let legal = view.mask.iter().filter(|&&m| m).count();
        assert!(legal > 0, "route called with no legal node");
        let d = self.d.min(legal);
        // Selection sampling (Knuth's algorithm S): d of the legal nodes, in one pass, no buffer.
        let (mut needed, mut left) = (d as u64, legal as u64);
        let mut best: Option<(usize, f64)> = None;
        for i in view.legal() {
            if self.rng.below(left) < needed {
                needed -= 1;
                let k = view.nodes[i].expected_delay(&view.job);
                if best.is_none_or(|(_, b)| k < b) {
                    best = Some((i, k));
                }
            }
            left -= 1;
        }
        best.expect("d >= 1 nodes sampled").0
    }
}

/// Model affinity with a load threshold, the shape of SGLang's cache-aware and Dynamo's KV
/// routers: prefer the least loaded node that has the job's model ready, unless its load (jobs
/// per slot) exceeds the least loaded legal node's by more than `threshold`; then balance load.
#[derive(Debug, Clone)]
pub struct AffinityRouter {
    threshold: f64,
    rng: Rng,
}

impl AffinityRouter {
    /// Default threshold: one job per slot.
    pub const DEFAULT_THRESHOLD: f64 = 1.0;

    pub fn new(threshold: f64, seed: u64) -> Self {
        AffinityRouter {
            threshold,
            rng: Rng::new(seed),
        }
    }
}

fn load(n: &NodeView) -> f64 {
    jobs(n) / n.slots.max(1) as f64
}

impl Router for AffinityRouter {
    fn name(&self) -> &str {
        "affinity"
    }

    fn reset(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        let any =
            argmin_random_ties(view, &mut self.rng, load).expect("route called with no legal node");
        let cached = argmin_random_ties(view, &mut self.rng, |n| {
            if n.model_ready {
                load(n)
            } else {
                f64::INFINITY
            }
        });
        match cached {
            Some(c)
                if view.nodes[c].model_ready
                    && load(&view.nodes[c]) - load(&view.nodes[any]) <= self.threshold =>
            {
                c
            }
            _ => any,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::JobView;

    fn node(speed: f64, slots: u32, busy: u32, queue: u32, work_left: f64) -> NodeView {
        NodeView {
            up: true,
            speed,
            slots,
            busy_slots: busy,
            queue_len: queue,
            work_left,
            model_ready: true,
            ..Default::default()
        }
    }

    fn view(nodes: Vec<NodeView>) -> ClusterView {
        ClusterView {
            mask: vec![true; nodes.len()],
            nodes,
            job: JobView {
                est_work: 4.0,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn each_heuristic_picks_its_hand_computed_node() {
        // node 0: fast and busy; node 1: slow, idle; node 2: one queued job, little work.
        let v = view(vec![
            node(4.0, 1, 1, 2, 40.0), // 3 jobs, delay 40/4 + 4/4 = 11
            node(0.5, 1, 0, 0, 0.0),  // 0 jobs, delay 4/0.5 = 8
            node(2.0, 1, 1, 1, 6.0),  // 2 jobs, delay 6/2 + 4/2 = 5
        ]);
        assert_eq!(JsqRouter::new(0).route(&v), 1);
        assert_eq!(LwlRouter::new(0).route(&v), 1);
        assert_eq!(SedRouter::new(0).route(&v), 2);
        assert_eq!(JiqRouter::new(0).route(&v), 1);
        // With d = all nodes, power-of-d is SED.
        assert_eq!(PowerOfDRouter::new(3, 0).route(&v), 2);
    }

    #[test]
    fn heuristics_respect_the_mask() {
        let mut v = view(vec![node(1.0, 1, 0, 0, 0.0), node(1.0, 1, 5, 5, 50.0)]);
        v.mask = vec![false, true];
        let mut routers: Vec<Box<dyn Router>> = vec![
            Box::new(JsqRouter::new(0)),
            Box::new(LwlRouter::new(0)),
            Box::new(SedRouter::new(0)),
            Box::new(JiqRouter::new(0)),
            Box::new(PowerOfDRouter::new(2, 0)),
            Box::new(AffinityRouter::new(1.0, 0)),
        ];
        for r in &mut routers {
            for _ in 0..20 {
                assert_eq!(r.route(&v), 1, "{}", r.name());
            }
        }
    }

    #[test]
    fn ties_are_broken_uniformly() {
        let v = view(vec![node(1.0, 1, 0, 0, 0.0); 4]);
        let mut r = JsqRouter::new(3);
        let mut counts = [0u32; 4];
        for _ in 0..8000 {
            counts[r.route(&v)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (1800..2200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn jiq_falls_back_to_random_when_nothing_is_idle() {
        let v = view(vec![node(1.0, 1, 1, 0, 1.0), node(1.0, 1, 1, 3, 9.0)]);
        let mut r = JiqRouter::new(1);
        let picks: Vec<usize> = (0..200).map(|_| r.route(&v)).collect();
        assert!(picks.contains(&0) && picks.contains(&1));
    }

    #[test]
    fn power_of_d_samples_d_distinct_nodes() {
        // Only the best node (index 3) of 4 wins when sampled; with d = 2 that happens in half
        // the decisions (it is in a uniform pair with probability 1/2).
        let mut nodes = vec![node(1.0, 1, 1, 5, 50.0); 4];
        nodes[3] = node(1.0, 1, 0, 0, 0.0);
        let v = view(nodes);
        let mut r = PowerOfDRouter::new(2, 5);
        let wins = (0..10_000).filter(|_| r.route(&v) == 3).count();
        assert!((4_700..5_300).contains(&wins), "{wins}");
        assert_eq!(r.name(), "po2");
    }

    #[test]
    fn affinity_prefers_cached_nodes_within_the_threshold() {
        let mut cold = node(1.0, 2, 0, 0, 0.0);
        cold.model_ready = false;
        let warm = node(1.0, 2, 2, 0, 8.0); // load 1 job per slot
        let v = view(vec![cold, warm]);
        assert_eq!(
            AffinityRouter::new(1.0, 0).route(&v),
            1,
            "within threshold: cache wins"
        );
        assert_eq!(
            AffinityRouter::new(0.5, 0).route(&v),
            0,
            "beyond threshold: load wins"
        );
        let none_cached = view(vec![cold, cold]);
        let pick = AffinityRouter::new(1.0, 0).route(&none_cached);
        assert!(pick < 2);
    }
}
