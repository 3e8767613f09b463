//! One episode's state, built fresh from the topology at every reset (so nothing of an earlier
//! episode can leak into it), and the event loop that runs it from one routing decision to the
//! next.

use std::collections::VecDeque;

use haca_policy::{ClusterView, Feedback};

use super::accounting::{Accounting, Answer, Capacity, EpisodeFacts};
use super::arrivals::Arrivals;
use super::budget::Budget;
use super::clients::{Clients, Heartbeats};
use super::cluster::{Cluster, Displacement, LoadShares};
use super::events::{Event, EventQueue};
use super::jobs::Jobs;
use super::settle::Settler;
use super::topology::Topology;
use super::verify::Verifier;
use super::Outcome;
use crate::metrics::EpisodeMetrics;

mod failures;

#[derive(Debug, Clone)]
pub(crate) struct Episode {
    pub seed: u64,
    pub q: EventQueue,
    pub arrivals: Arrivals,
    pub jobs: Jobs,
    pub cluster: Cluster,
    pub verifier: Verifier,
    pub settler: Settler,
    pub clients: Clients,
    heartbeats: Heartbeats,
    /// Jobs sent to a dead node that was still listed, or held by a node when it died (with a
    /// registry, when routed: the pooled queue takes them back at once), waiting out the
    /// client's timeout.
    pub failing: Vec<u32>,
    pub acc: Accounting,
    pub budget: Budget,
    /// Jobs waiting for a routing decision, oldest first.
    pub pending: VecDeque<u32>,
    /// Jobs no up node can take, until a node comes back.
    pub blocked: Vec<u32>,
    /// Jobs a failure handed back, reused between failures.
    lost: Vec<u32>,
    /// When set, every job leaving a placement records (decision, seconds under it), plus with
    /// [`CreditMode::Marginal`] (`cluster.track_wait`) the waiting it imposed on its node's queue.
    pub credits: Option<Vec<(u64, f64)>>,
    /// Run as the pooled reference: a central queue that sees every node, so it learns of a
    /// failure at once, with or without a registry.
    pooled: bool,
    /// Scratch buffers of pooled dispatch.
    pub candidates: Vec<usize>,
    pub servable: Vec<u64>,
}

/// What a placed job's credit charges the decision that placed it (see
/// [`crate::Env::set_credit_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CreditMode {
    /// No credits are recorded.
    #[default]
    Off,
    /// The seconds the job spent in the system under that placement.
    Latency,
    /// Those seconds plus the waiting it imposed on the jobs queued behind it while it held its
    /// slot (job-seconds, shared by the node's slots): the decision's marginal cost to the
    /// network, not only to its own job.
    Marginal,
    /// Marginal, with a cold load shared by the jobs it serves: the decision that triggered it
    /// is refunded all of the load time but its share (load time over the jobs that ran on the
    /// copy while it stayed in memory), settled when the copy leaves memory.
    Amortized,
    /// The seconds its job spent in the system plus its slot hold (over the node's slots)
    /// times the jobs that started from the node's queue after it took the slot, until the
    /// queue next emptied: what the hold delayed the whole backlog behind it, not only the jobs
    /// that waited while it ran (see `cluster/displace.rs`).
    Displacement,
    /// Marginal, with the decision that loaded a model copy paid what the copy saved the later
    /// jobs that started on it (each against the best other node that serves it, by expected
    /// delay on the truth as it starts), settled when the copy leaves memory (see
    /// `cluster/loads.rs`).
    CopyValue,
}

impl Episode {
    /// The episode drawn from `seed`, its first arrival, failures and scrape scheduled.
    pub fn new(topo: &Topology, seed: u64, credit: CreditMode, series: Option<f64>) -> Episode {
        let mut ep = Episode {
            seed,
            q: EventQueue::default(),
            arrivals: Arrivals::new(topo, seed),
            jobs: Jobs::default(),
            cluster: Cluster::new(topo, seed),
            verifier: Verifier::default(),
            settler: Settler::default(),
            clients: Clients::new(topo, seed),
            heartbeats: Heartbeats::new(topo, seed),
            failing: Vec::new(),
            acc: Accounting::new(series),
            budget: Budget::default(),
            pending: VecDeque::new(),
            blocked: Vec::new(),
            lost: Vec::new(),
            credits: (credit != CreditMode::Off).then(Vec::new),
            pooled: false,
            candidates: Vec::new(),
            servable: Vec::new(),
        };
        ep.cluster.track_wait = matches!(
            credit,
            CreditMode::Marginal | CreditMode::Amortized | CreditMode::CopyValue
        );
        if matches!(credit, CreditMode::Amortized | CreditMode::CopyValue) {
            let value = credit == CreditMode::CopyValue;
            ep.cluster.loads = Some(LoadShares::new(topo.nodes() * topo.models(), value));
        }
        if credit == CreditMode::Displacement {
            ep.cluster.displacement = Some(Displacement::new(topo.nodes()));
        }
        // The first arrival is drawn before `run`: its MMPP switches count from here.
        ep.budget.open(0, topo.nodes());
        if let Some(t) = ep.arrivals.next_time(topo, &mut ep.budget) {
            ep.q.set_next_arrival(t);
        }
        ep.cluster.schedule_failures(topo, &mut ep.q);
        if topo.sc.scrape_interval_s > 0.0 {
            ep.q.push(topo.sc.scrape_interval_s, Event::Scrape);
        }
        ep
    }

    /// Redraws everything not yet drawn (later arrivals and their sizes, failures) from `seed`.
    pub fn resample(&mut self, seed: u64) {
        self.arrivals.resample(seed);
        self.cluster.resample(seed);
    }

    /// Runs events until the next decision (its view written into `view`) or the end of the
    /// episode. A pooled episode makes no decisions: it runs to the end.
    pub fn run(&mut self, topo: &Topology, view: &mut ClusterView, pooled: bool) -> Outcome {
        self.budget.open(self.acc.jobs_in_system, topo.nodes());
        self.pooled = pooled;
        loop {
            if pooled {
                self.pool_dispatch(topo);
            }
            while let Some(&j) = self.pending.front().filter(|_| !pooled) {
                // A view is work (jobs no node can take are re-tried after every repair, so a
                // draw that blocks them for good repeats views without end); one unit per view,
                // so that valid episodes with many blocked jobs stay within budget.
                self.budget.charge(1);
                if self.fill_view(topo, view, j) {
                    return Outcome::Decision;
                }
                self.pending.pop_front();
                self.blocked.push(j);
            }
            if self.is_over(topo) {
                self.finish(view);
                return Outcome::Done;
            }
            if self.budget.exhausted() {
                self.finish(view);
                // Every real node legal: a caller that routes before its next step (which
                // reports the runaway) must find a node to pick, not an empty mask.
                view.mask[..topo.nodes()].fill(true);
                return Outcome::Runaway;
            }
            let Some((t, event)) = self.q.pop() else {
                // Only reachable if jobs are blocked with no node coming back, which validation
                // rules out (every blocked job waits for a churning node's NodeUp).
                debug_assert!(false, "event queue ran dry before the episode ended");
                self.finish(view);
                return Outcome::Done;
            };
            self.advance(t);
            self.handle(topo, event);
            self.budget.charge(1);
        }
    }

    fn handle(&mut self, topo: &Topology, event: Event) {
        let epoch_now = |c: &Cluster, node: u32, epoch: u32| c.nodes[node as usize].epoch == epoch;
        match event {
            Event::Arrival => self.on_arrival(topo),
            Event::Finish { node, job, epoch } if epoch_now(&self.cluster, node, epoch) => {
                self.on_finish(topo, node as usize, job)
            }
            Event::LoadDone { node, model, epoch } if epoch_now(&self.cluster, node, epoch) => {
                let (q, jobs) = (&mut self.q, &self.jobs);
                self.cluster
                    .on_load_done(topo, q, jobs, node as usize, model)
            }
            Event::Finish { .. } | Event::LoadDone { .. } => {} // stale: the node failed since
            Event::NodeDown { node } => self.on_node_down(topo, node as usize),
            Event::NodeUp { node } => {
                self.cluster.on_node_up(topo, &mut self.q, node as usize);
                self.heartbeats.restart(node as usize, self.q.now);
                // Jobs that had nowhere to go get another look.
                self.pending.extend(self.blocked.drain(..));
            }
            Event::VerifyDone { job } => {
                self.verifier.done(topo, &mut self.q, &self.jobs);
                self.finalize(topo, job);
            }
            Event::Scrape => {
                self.budget.charge(topo.nodes() as u64);
                self.cluster.scrape(topo, self.q.now);
                self.clients.on_scrape();
                self.q.after(topo.sc.scrape_interval_s, Event::Scrape);
            }
            Event::Delist { node, epoch } => {
                let state = &mut self.cluster.nodes[node as usize];
                if !state.up && state.epoch == epoch {
                    state.listed = false;
                }
            }
            Event::FailReturn { job, node } => self.on_fail_return(job, node),
            Event::SettleTimeout { batch } => {
                let v = &topo.sc.verification;
                let s = v
                    .settlement
                    .as_ref()
                    .expect("only batched settlement times out");
                self.settler.on_timeout(s, v.settle_s, &mut self.q, batch);
            }
            Event::Settled => {
                let now = self.q.now;
                for arrival in self
                    .settler
                    .on_settled(topo.sc.verification.settle_s, &mut self.q)
                {
                    self.acc.finalized(now - arrival);
                    self.verifier.finalized += 1;
                }
            }
        }
    }

    /// Advances the clock, integrating the cluster-level quantities.
    #[inline]
    fn advance(&mut self, t: f64) {
        if t > self.q.now {
            let c = &self.cluster;
            let cap = Capacity {
                idle: c.cap_idle,
                stranded: c.cap_stranded,
                up: c.cap_up,
            };
            self.acc.integrate(self.q.now, t, cap);
            self.q.now = t;
        }
    }

    fn on_arrival(&mut self, topo: &Topology) {
        self.budget.on_arrival();
        // With prefix caching a job's conversation is known before the job is drawn (its trace
        // row's hash_ids, or a synthetic session drawn first), so its model can follow it.
        let (blocks, session) = match &mut self.cluster.prefix {
            Some(p) => match self.arrivals.next_trace_blocks(topo) {
                Some(blocks) => (Some(blocks), None),
                None => (None, p.draw_session(topo)),
            },
            None => (None, None),
        };
        let conversation = match blocks {
            Some(b) => b.first().copied(),
            None => session.map(super::prefix::session_key),
        };
        let mut job = self.arrivals.arrive(topo, self.q.now, conversation);
        job.client = self.clients.draw(topo);
        if let Some(p) = &mut self.cluster.prefix {
            p.assign(topo, &mut job, blocks, session);
        }
        let j = self.jobs.insert(job);
        self.acc.jobs_in_system += 1;
        self.pending.push_back(j);
        if let Some(t) = self.arrivals.next_time(topo, &mut self.budget) {
            self.q.set_next_arrival(t);
        }
    }

    /// Sends the job at the head of the routing queue to node `n` (already checked legal).
    pub fn dispatch(&mut self, topo: &Topology, n: usize) {
        let j = self
            .pending
            .pop_front()
            .expect("dispatch needs a pending job");
        let job = &mut self.jobs[j];
        job.decision = self.acc.decisions;
        job.node = n as u32;
        self.acc.decisions += 1;
        let client = job.client;
        if self.cluster.nodes[n].up {
            self.cluster.admit(topo, &mut self.q, &mut self.jobs, n, j);
            // The client knows the saving its routing bought: it counts the work as queued.
            self.clients.on_dispatch(client, n, self.jobs[j].est_work);
        } else {
            self.clients.on_dispatch(client, n, self.jobs[j].est_work);
            // Listed but dead: the request times out at the client, which tries again.
            let timeout = topo.sc.registry.expect("only a registry lists a dead node");
            self.failing.push(j);
            let node = n as u32;
            self.q
                .after(timeout.fail_timeout_s, Event::FailReturn { job: j, node });
        }
    }

    fn on_finish(&mut self, topo: &Topology, n: usize, j: u32) {
        let now = self.q.now;
        let imposed = self.cluster.release(topo, &self.jobs, now, n, j);
        let job = self.jobs[j];
        // 0 unless the queue integral is tracked (marginal credit).
        self.credit_with(j, imposed);
        let fb = Feedback {
            node: n as u32,
            latency_s: now - job.since,
            ok: true,
        };
        self.clients.push_feedback(job.client, fb);
        self.clients.on_answer(job.client, n, job.est_work);
        let answer = Answer {
            latency: now - job.arrival,
            service: topo.service_time(n, job.work),
            // The job's full work, before any prefix hit: a denominator no routing changes.
            best_service: super::topology::quantize(
                (job.work + job.prefix_saved) / topo.best_speed[job.kind as usize],
                topo.sc.time_quantum_s,
            ),
        };
        self.acc.answered(answer, topo.sc.workload.slo_latency_s);
        if self.verifier.submit(topo, &mut self.q, &self.jobs, j) {
            self.finalize(topo, j);
        }
        self.cluster.refill(topo, &mut self.q, &mut self.jobs, n);
    }

    /// Job `j` is verified and settled: its finality is recorded and its id freed.
    fn finalize(&mut self, topo: &Topology, j: u32) {
        let arrival = self.jobs[j].arrival;
        let v = &topo.sc.verification;
        match &v.settlement {
            None => {
                self.acc.finalized(self.q.now + v.settle_s - arrival);
                self.verifier.finalized += 1;
            }
            Some(s) => self.settler.add(s, v.settle_s, &mut self.q, arrival),
        }
        self.jobs.release(j);
    }

    /// Records job `j`'s time under its current placement, when credits are on.
    fn credit(&mut self, j: u32) {
        self.credit_with(j, 0.0);
    }

    /// [`Episode::credit`] plus `extra` job-seconds it cost others.
    fn credit_with(&mut self, j: u32, extra: f64) {
        let job = &self.jobs[j];
        if let Some(credits) = &mut self.credits {
            if job.decision != u64::MAX {
                credits.push((job.decision, self.q.now - job.since + extra));
            }
        }
    }

    fn is_over(&self, topo: &Topology) -> bool {
        self.arrivals.all_arrived(topo)
            && self.pending.is_empty()
            && self.blocked.is_empty()
            && self.failing.is_empty()
            && (!topo.sc.drain
                || (self.acc.jobs_in_system == 0
                    && self.verifier.in_verification == 0
                    && self.settler.pending == 0))
    }

    fn finish(&mut self, view: &mut ClusterView) {
        self.cluster.touch_all(self.q.now);
        if let Some(l) = &mut self.cluster.loads {
            l.settle_all();
        }
        if let Some(d) = &mut self.cluster.displacement {
            d.settle_all();
        }
        view.mask.fill(false);
        view.now = self.q.now;
    }

    /// Metrics of the episode so far (complete once the episode is over).
    pub fn metrics(&mut self, topo: &Topology) -> EpisodeMetrics {
        // Nodes never up have no busy fraction and do not count in the Gini.
        let mut busy: Vec<f64> = (0..topo.nodes())
            .filter_map(|n| self.cluster.busy_fraction(topo, n))
            .collect();
        let facts = EpisodeFacts {
            slo: topo.sc.workload.slo_latency_s,
            cold_starts: self.cluster.cold_starts,
            arrived: self.arrivals.generated,
            prefix_blocks: self
                .cluster
                .prefix
                .as_ref()
                .map_or((0, 0), |p| (p.hit_blocks, p.total_blocks)),
        };
        self.acc.metrics(self.q.now, &mut busy, facts)
    }
}
