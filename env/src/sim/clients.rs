//! What belongs to the clients rather than to the nodes: which client sent each job, each
//! client's own dispatches and the requests that came back to it since the last scrape (its
//! view adds them to the shared snapshot; the other clients' it never sees), the outcomes of
//! its requests, and the registry through which every client learns which nodes are alive.

use haca_policy::rng::derive_seed;
use haca_policy::{Feedback, Rng};

use super::topology::Topology;

#[derive(Debug, Clone)]
pub(crate) struct Clients {
    nodes: usize,
    /// Draws the client of each arrival; `None` with one client (no draw, so a single client's
    /// episode consumes exactly the random numbers it did before clients existed).
    rng: Option<Rng>,
    /// Entry `c * nodes + n`: client `c`'s dispatches to node `n` since the last scrape, and
    /// their estimated work; then its requests that came back from `n` since.
    disp_count: Vec<u32>,
    disp_est: Vec<f64>,
    ans_count: Vec<u32>,
    ans_est: Vec<f64>,
    /// Whether answers are counted: only stale views (scrapes) read them.
    count_answers: bool,
    feedback: Vec<Vec<Feedback>>,
}

impl Clients {
    pub fn new(topo: &Topology, episode_seed: u64) -> Clients {
        let count = topo.sc.clients.count as usize;
        let nodes = topo.nodes();
        Clients {
            nodes,
            rng: (count > 1).then(|| Rng::new(derive_seed(episode_seed, crate::streams::CLIENTS))),
            disp_count: vec![0; count * nodes],
            disp_est: vec![0.0; count * nodes],
            ans_count: vec![0; count * nodes],
            ans_est: vec![0.0; count * nodes],
            count_answers: topo.sc.scrape_interval_s > 0.0,
            feedback: vec![Vec::new(); count],
        }
    }

    /// The client of a new arrival, drawn by the clients' shares of the demand.
    pub fn draw(&mut self, topo: &Topology) -> u32 {
        match &mut self.rng {
            None => 0,
            Some(rng) => {
                let cdf = &topo.sc.clients.cdf;
                let u = rng.uniform();
                cdf.partition_point(|&c| c <= u).min(cdf.len() - 1) as u32
            }
        }
    }

    #[inline]
    pub fn on_dispatch(&mut self, client: u32, n: usize, est: f64) {
        let i = client as usize * self.nodes + n;
        self.disp_count[i] += 1;
        self.disp_est[i] += est;
    }

    /// Client `c`'s request to node `n` came back (answered, or failed there): the client knows
    /// the job is no longer on the node.
    #[inline]
    pub fn on_answer(&mut self, client: u32, n: usize, est: f64) {
        if !self.count_answers {
            return;
        }
        let i = client as usize * self.nodes + n;
        self.ans_count[i] += 1;
        self.ans_est[i] += est;
    }

    /// Client `c`'s requests that came back from each node since the last scrape (answered or
    /// failed): counts and estimated work.
    #[inline]
    pub fn answered_row(&self, c: u32) -> (&[u32], &[f64]) {
        let r = c as usize * self.nodes..(c as usize + 1) * self.nodes;
        (&self.ans_count[r.clone()], &self.ans_est[r])
    }

    /// A scrape: every client's view starts again from the shared snapshot.
    pub fn on_scrape(&mut self) {
        self.disp_count.fill(0);
        self.disp_est.fill(0.0);
        self.ans_count.fill(0);
        self.ans_est.fill(0.0);
    }

    /// Client `c`'s dispatches per node since the last scrape: counts and estimated work.
    #[inline]
    pub fn row(&self, c: u32) -> (&[u32], &[f64]) {
        let r = c as usize * self.nodes..(c as usize + 1) * self.nodes;
        (&self.disp_count[r.clone()], &self.disp_est[r])
    }

    #[inline]
    pub fn push_feedback(&mut self, c: u32, fb: Feedback) {
        self.feedback[c as usize].push(fb);
    }

    /// Moves client `c`'s feedback into `out` (replacing what `out` held).
    #[inline]
    pub fn take_feedback(&mut self, c: u32, out: &mut Vec<Feedback>) {
        out.clear();
        std::mem::swap(out, &mut self.feedback[c as usize]);
    }
}

/// The registry's clock of each node's heartbeats: node `n` heartbeats at `phase[n] + k *
/// heartbeat_s` while it is up, and again as soon as it comes back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Heartbeats {
    phase: Vec<f64>,
}

impl Heartbeats {
    /// Random phases (from the episode's registry stream) when the scenario has a registry.
    pub fn new(topo: &Topology, episode_seed: u64) -> Heartbeats {
        let Some(reg) = topo.sc.registry else {
            return Heartbeats::default();
        };
        let mut rng = Rng::new(derive_seed(episode_seed, crate::streams::REGISTRY));
        Heartbeats {
            phase: (0..topo.nodes())
                .map(|_| rng.uniform() * reg.heartbeat_s)
                .collect(),
        }
    }

    /// When node `n`, down since `t`, drops out of the registry: its last heartbeat at or before
    /// `t` plus the maximum age.
    pub fn delist_time(&self, n: usize, t: f64, heartbeat_s: f64, max_age_s: f64) -> f64 {
        let phase = self.phase[n];
        let last = phase + heartbeat_s * ((t - phase) / heartbeat_s).floor();
        last + max_age_s
    }

    /// Node `n` came back at `t` and heartbeats at once.
    pub fn restart(&mut self, n: usize, t: f64) {
        if let Some(p) = self.phase.get_mut(n) {
            *p = t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_node_stays_listed_until_its_last_heartbeat_ages_out() {
        let hb = Heartbeats {
            phase: vec![100.0, 0.0],
        };
        // Beats at 100, 1000, 1900, ...: down at 1500, last beat 1000, gone at 1000 + 1800.
        assert_eq!(hb.delist_time(0, 1500.0, 900.0, 1800.0), 2800.0);
        // Down before its first beat of the episode: the one before (100 - 900) counts.
        assert_eq!(hb.delist_time(0, 50.0, 900.0, 1800.0), 1000.0);
        // Down exactly on a beat: that beat counts.
        assert_eq!(hb.delist_time(1, 900.0, 900.0, 1800.0), 2700.0);
    }
}
