//! What a router knows at a decision: the observation views.
//!
//! These mirror what a real scheduler can see: node capabilities and load as last reported
//! (possibly stale, see [`ClusterView::observed_at`]), its own bookkeeping of model caches, and the
//! arriving job's model, verification mode, input tokens and (depending on the scenario's size
//! visibility) an estimate of its output tokens. The simulator's hidden truth (exact remaining
//! work of a running job when sizes are hidden, future arrivals) is never here.

/// How a job's result is verified. Each mode restricts the nodes that may serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum Verification {
    /// No proof: any node may serve it.
    #[default]
    Vanilla = 0,
    /// Must run inside a trusted execution environment: TEE nodes only.
    Tee = 1,
    /// Needs a ZKML proof: zk nodes only, and only for models small enough to prove.
    Zkml = 2,
}

impl Verification {
    pub const ALL: [Verification; 3] =
        [Verification::Vanilla, Verification::Tee, Verification::Zkml];

    pub fn name(self) -> &'static str {
        match self {
            Verification::Vanilla => "vanilla",
            Verification::Tee => "tee",
            Verification::Zkml => "zkml",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// How much the router knows about a job's output length (and so its size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SizeVisibility {
    /// The true output token count.
    Exact,
    /// A noisy estimate (multiplicative log-normal noise).
    Estimate,
    /// Only the workload's mean output length.
    #[default]
    Hidden,
}

impl SizeVisibility {
    /// The value the feature encoding uses (1 exact, 0.5 estimate, 0 hidden).
    pub fn confidence(self) -> f32 {
        match self {
            SizeVisibility::Exact => 1.0,
            SizeVisibility::Estimate => 0.5,
            SizeVisibility::Hidden => 0.0,
        }
    }
}

/// One inference node as the router sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NodeView {
    /// Whether the node is up (a down node is always masked).
    pub up: bool,
    /// Work units per second per slot.
    pub speed: f64,
    /// Concurrent jobs the node runs.
    pub slots: u32,
    /// Slots running or loading a job (as last observed).
    pub busy_slots: u32,
    /// Jobs waiting for a slot (as last observed, plus this router's dispatches since).
    pub queue_len: u32,
    /// Estimated work units left: queued jobs plus the remainder of running ones, computed from
    /// what the router knows of job sizes.
    pub work_left: f64,
    pub memory_gb: f64,
    pub tee: bool,
    pub zk: bool,
    /// The arriving job's model is cached or already loading on this node.
    pub model_ready: bool,
    /// Seconds a cold load of the arriving job's model would take here (0 when `model_ready`).
    pub load_s: f64,
    /// Leading blocks of the arriving job's prefix cached here for its model (0 without prefix
    /// caching): the prefill this node would skip.
    pub prefix_hit: u32,
    /// The deciding client's own dispatches here since the last scrape, and their estimated
    /// work: already in `queue_len` and `work_left` (0 with fresh observations).
    pub own_jobs: u32,
    pub own_work: f64,
    /// The deciding client's own requests that came back from here since the last scrape
    /// (answered, or failed), dispatched before or after it, and their estimated work: jobs the
    /// client knows are no longer on the node. Not subtracted from `queue_len` and `work_left`
    /// (0 with fresh observations).
    pub own_answered: u32,
    pub own_answered_work: f64,
}

impl NodeView {
    pub fn capacity(&self) -> f64 {
        self.speed * self.slots as f64
    }

    pub fn has_idle_slot(&self) -> bool {
        self.busy_slots < self.slots
    }

    /// Expected seconds until `job` would finish here: waiting for a slot (zero when one is idle,
    /// otherwise the estimated work left drained at full capacity), the cold load if any, and
    /// the job's own service time.
    pub fn expected_delay(&self, job: &JobView) -> f64 {
        self.expected_delay_of(job.est_work)
    }

    /// [`NodeView::expected_delay`] with the prefill of the job's cached prefix blocks here
    /// skipped (equal to it without prefix caching).
    pub fn expected_delay_with_prefix(&self, job: &JobView) -> f64 {
        let saved = (self.prefix_hit as f64 * job.block_work).min(job.est_work);
        self.expected_delay_of(job.est_work - saved)
    }

    /// [`NodeView::expected_delay`] on this client's local estimate of the node (the estimate
    /// `lsq` routes on): its own dispatches since the scrape count `1 / share` times, standing in
    /// for the other clients' dispatches it cannot see, and its own requests that came back since
    /// leave the node, each once (the others' answers it cannot see, and scaling its own up to
    /// stand for them herds: every client would see the nodes it had answers from as drained).
    /// With fresh observations equal to `expected_delay`.
    pub fn local_expected_delay(&self, job: &JobView, share: f64) -> f64 {
        self.local_estimate(share, true).expected_delay(job)
    }

    /// [`NodeView::local_expected_delay`] without the client's answers: its dispatches alone
    /// (feature schema 2's `ln_local_delay`; with one client, `expected_delay`).
    pub fn dispatch_expected_delay(&self, job: &JobView, share: f64) -> f64 {
        self.local_estimate(share, false).expected_delay(job)
    }

    fn local_estimate(&self, share: f64, answers: bool) -> NodeView {
        let others = 1.0 / share.clamp(1e-9, 1.0) - 1.0;
        let mut est = NodeView {
            queue_len: self.queue_len + (self.own_jobs as f64 * others).round() as u32,
            work_left: self.work_left + self.own_work * others,
            ..*self
        };
        if answers && self.own_answered > 0 {
            // Gone from the queue first; past it, slots the answered jobs held are free.
            let gone = self.own_answered;
            let from_queue = gone.min(est.queue_len);
            est.queue_len -= from_queue;
            est.busy_slots = est.busy_slots.saturating_sub(gone - from_queue);
            est.work_left = (est.work_left - self.own_answered_work).max(0.0);
        }
        est
    }

    fn expected_delay_of(&self, work: f64) -> f64 {
        let wait = if self.has_idle_slot() && self.queue_len == 0 {
            0.0
        } else {
            self.work_left / self.capacity()
        };
        wait + self.load_s + work / self.speed
    }
}

/// The job being routed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JobView {
    /// Index of the model in the scenario's catalog.
    pub model: u32,
    pub model_gb: f64,
    pub verification: Verification,
    pub input_tokens: u32,
    /// Output tokens as far as the router knows (see `size_visibility`).
    pub output_tokens_est: f64,
    pub size_visibility: SizeVisibility,
    /// Estimated work units, verification multiplier included.
    pub est_work: f64,
    /// Times this job was handed back after a node failure.
    pub retries: u32,
    /// The node its last attempt failed on, as the client saw it (`None` on a first attempt).
    pub failed_on: Option<u32>,
    /// Blocks of its prompt prefix (0 without prefix caching).
    pub prefix_blocks: u32,
    /// Estimated work one cached prefix block saves (prefill of a block, verification
    /// multiplier included).
    pub block_work: f64,
}

/// What a client learned of one of its own requests since its previous decision: the node
/// answered it (after `latency_s`), or it failed there (after the client's timeout).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feedback {
    pub node: u32,
    pub latency_s: f64,
    pub ok: bool,
}

/// Scales used to normalize features, fixed per scenario (documented in `features`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scales {
    /// Mean work units of a job (verification multiplier included).
    pub work: f64,
    /// Mean per-slot speed over the scenario's nodes.
    pub speed: f64,
}

impl Scales {
    /// Mean service time of a job on a mean slot: the time unit of the features.
    pub fn time(&self) -> f64 {
        self.work / self.speed
    }
}

impl Default for Scales {
    fn default() -> Self {
        Scales {
            work: 1.0,
            speed: 1.0,
        }
    }
}

/// Everything a router sees at one decision. `nodes` and `mask` have one entry per node of the
/// network (not padded); a router must return an index `i` with `mask[i] == true`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterView {
    /// Simulated time of the decision, seconds.
    pub now: f64,
    /// Time of the node state the router sees (`now` when observations are fresh).
    pub observed_at: f64,
    pub nodes: Vec<NodeView>,
    /// Legal nodes: up, with the job's capability, and memory for its model.
    pub mask: Vec<bool>,
    pub job: JobView,
    /// Jobs arrived and not yet answered (queued, loading, running, or waiting to be routed). With
    /// many clients, what the deciding client can count: the last scrape's jobs on the nodes, its
    /// own dispatches since less its requests that came back, and the job it is routing.
    pub jobs_in_system: u32,
    pub scales: Scales,
    /// The client deciding (0 with one client). Each client runs its own router instance and
    /// sees the scraped state plus its own dispatches since, never the other clients'.
    pub client: u32,
    /// Clients in the network (1: a single router).
    pub clients: u32,
    /// The deciding client's share of the demand (1 with one client).
    pub client_share: f64,
    /// Outcomes of this client's requests since its previous decision, oldest first.
    pub feedback: Vec<Feedback>,
}

impl ClusterView {
    /// Indices of legal nodes, in order.
    pub fn legal(&self) -> impl Iterator<Item = usize> + '_ {
        self.mask
            .iter()
            .enumerate()
            .filter_map(|(i, &ok)| ok.then_some(i))
    }

    pub fn is_legal(&self, node: usize) -> bool {
        self.mask.get(node).copied().unwrap_or(false)
    }

    /// The legal node minimizing `key` (ties go to the lowest index), or `None` if no node is
    /// legal. The building block of most heuristics.
    pub fn argmin_legal(&self, mut key: impl FnMut(usize, &NodeView) -> f64) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for i in self.legal() {
            let k = key(i, &self.nodes[i]);
            if best.is_none_or(|(_, b)| k < b) {
                best = Some((i, k));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_delay_counts_wait_load_and_service() {
        let job = JobView {
            est_work: 10.0,
            ..Default::default()
        };
        let mut node = NodeView {
            up: true,
            speed: 2.0,
            slots: 2,
            busy_slots: 2,
            queue_len: 1,
            work_left: 40.0,
            load_s: 3.0,
            ..Default::default()
        };
        // wait 40 / (2*2) = 10, load 3, service 10/2 = 5
        assert_eq!(node.expected_delay(&job), 18.0);
        node.busy_slots = 1;
        node.queue_len = 0;
        assert_eq!(node.expected_delay(&job), 8.0);
    }

    #[test]
    fn argmin_skips_masked_nodes() {
        let view = ClusterView {
            nodes: vec![NodeView::default(); 3],
            mask: vec![false, true, true],
            ..Default::default()
        };
        assert_eq!(view.argmin_legal(|i, _| -(i as f64)), Some(2));
        assert_eq!(view.argmin_legal(|_, _| 0.0), Some(1));
    }
}
