//! One router instance per client. With many clients (DESIGN.md section 1) every client runs
//! its own copy of the router under evaluation on its own view; [`PerClient`] holds those
//! copies and hands each decision to the deciding client's ([`ClusterView::client`]).

use crate::rng::derive_seed;
use crate::router::Router;
use crate::view::ClusterView;

/// Builds a fresh router instance for a new client.
pub type RouterFactory = Box<dyn FnMut() -> Box<dyn Router> + Send>;

/// Client `c`'s router seed in an episode whose router seed is `seed`: client 0 keeps `seed`, so
/// that one client reproduces a single router exactly.
pub fn client_seed(seed: u64, c: usize) -> u64 {
    if c == 0 {
        seed
    } else {
        derive_seed(seed, 0x434C_0000_0000 + c as u64)
    }
}

pub struct PerClient {
    make: RouterFactory,
    routers: Vec<Box<dyn Router>>,
    seed: u64,
}

impl PerClient {
    /// Client 0's instance is built now; the others when their client first decides.
    pub fn new(mut make: RouterFactory) -> PerClient {
        let first = make();
        PerClient {
            make,
            routers: vec![first],
            seed: 0,
        }
    }

    /// Instances built so far (clients that have decided, and client 0).
    pub fn instances(&self) -> usize {
        self.routers.len()
    }
}

impl std::fmt::Debug for PerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerClient")
            .field("router", &self.name())
            .field("instances", &self.routers.len())
            .finish()
    }
}

impl Router for PerClient {
    fn name(&self) -> &str {
        self.routers[0].name()
    }

    fn reset(&mut self, seed: u64) {
        self.seed = seed;
        for (c, r) in self.routers.iter_mut().enumerate() {
            r.reset(client_seed(seed, c));
        }
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        let c = view.client as usize;
        while self.routers.len() <= c {
            let mut r = (self.make)();
            r.reset(client_seed(self.seed, self.routers.len()));
            self.routers.push(r);
        }
        self.routers[c].route(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::NodeView;

    /// Remembers how many decisions it made: instances must not share state.
    struct Counter(usize);

    impl Router for Counter {
        fn name(&self) -> &str {
            "counter"
        }
        fn reset(&mut self, _seed: u64) {
            self.0 = 0;
        }
        fn route(&mut self, _view: &ClusterView) -> usize {
            self.0 += 1;
            self.0 - 1
        }
    }

    #[test]
    fn each_client_has_its_own_instance() {
        let mut r = PerClient::new(Box::new(|| Box::new(Counter(0))));
        let mut view = ClusterView {
            nodes: vec![NodeView::default(); 8],
            mask: vec![true; 8],
            ..Default::default()
        };
        let mut picks = Vec::new();
        for c in [0, 0, 2, 0, 2, 1] {
            view.client = c;
            picks.push(r.route(&view));
        }
        assert_eq!(picks, [0, 1, 0, 2, 1, 0]);
        assert_eq!(r.instances(), 3);
        r.reset(5);
        view.client = 2;
        assert_eq!(r.route(&view), 0);
        assert_eq!(client_seed(7, 0), 7);
        assert_ne!(client_seed(7, 1), client_seed(7, 2));
    }
}
