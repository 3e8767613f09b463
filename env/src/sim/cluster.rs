//! The inference nodes: slots, FIFO queues, model caches with cold loads and LRU eviction,
//! failures and repairs, and the idle and stranded capacity they leave, kept up to date
//! incrementally per node so that the cluster totals cost O(1) per change.

use std::collections::VecDeque;

use haca_policy::rng::derive_seed;
use haca_policy::Rng;

use super::events::{Event, EventQueue};
use super::jobs::Jobs;
use super::prefix::PrefixCaches;
use super::topology::Topology;
use crate::dist::exponential;
use crate::scenario::InitialCache;

mod capacity;
mod displace;
mod loads;
mod memory;

pub(crate) use displace::Displacement;
pub(crate) use loads::LoadShares;

/// A job holding a slot. `start` is infinite while it waits for its model to load.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Running {
    pub job: u32,
    pub est: f64,
    pub start: f64,
    /// The node's queue integral (`NodeState::wait_int`) when it took the slot; with
    /// displacement credit, the time it took the slot.
    wait_mark: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct NodeState {
    pub up: bool,
    /// Listed as active in the registry: `up`, or down with a heartbeat not yet too old (only
    /// with a registry). Routers see this, not `up`.
    pub listed: bool,
    /// Bumped by every failure: events scheduled before it are stale.
    pub epoch: u32,
    pub busy: u32,
    pub queue: VecDeque<u32>,
    queued_est: f64,
    mem_used: f64,
    // Lazily integrated busy slot-seconds and up seconds, for per-node busy fractions.
    busy_int: f64,
    up_int: f64,
    last_t: f64,
    /// Queued job-seconds on the node (`∫ queue length dt`) up to `wait_t`: the waiting its
    /// running jobs impose on the queue (see [`Cluster::release`]).
    wait_int: f64,
    wait_t: f64,
    // Contributions to the cluster totals, kept to update the totals by difference.
    idle_cap: f64,
    stranded_cap: f64,
    // Staleness: state at the last scrape (each client adds its own dispatches since).
    pub snap_busy: u32,
    pub snap_queue: u32,
    pub snap_work: f64,
}

impl NodeState {
    /// Estimated work of the jobs in its queue.
    #[inline]
    pub fn queued_est(&self) -> f64 {
        self.queued_est
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum CacheState {
    #[default]
    Absent,
    Loading,
    Ready,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CacheEntry {
    pub state: CacheState,
    pins: u32,
    last_used: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub nodes: Vec<NodeState>,
    /// Jobs holding slots: node `n` owns `running[slot_off[n]..slot_off[n] + busy]`. One flat
    /// buffer instead of a Vec per node keeps the per-decision scan free of pointer chasing.
    pub running: Vec<Running>,
    /// Entry `n * models + m`: model `m` on node `n`.
    pub cache: Vec<CacheEntry>,
    /// Jobs queued on nodes, per kind, and the kinds with any as bits.
    waiting: Vec<u32>,
    waiting_bits: Vec<u64>,
    pub cap_up: f64,
    pub cap_idle: f64,
    pub cap_stranded: f64,
    churn_rng: Rng,
    /// When the routers' snapshot of the nodes was taken (the last scrape).
    pub observed_at: f64,
    /// Jobs on the nodes (running, loading or queued) in that snapshot.
    pub snap_jobs: u32,
    pub cold_starts: u64,
    /// The nodes' prefix KV caches, with `[prefix]`.
    pub prefix: Option<PrefixCaches>,
    /// Integrate each node's queue (`NodeState::wait_int`) for marginal credits; off, the
    /// integral stays 0 and `release` reports no imposed waiting.
    pub track_wait: bool,
    /// Who loaded each model copy and how many jobs it served (and saved), for amortized and
    /// copy-value credits.
    pub loads: Option<LoadShares>,
    /// The backlog each job's hold displaced, for displacement credits.
    pub displacement: Option<Displacement>,
    /// Weight of what a job's hold did to others in its credit (1: all of it).
    pub externality: f64,
}

/// The router's estimate of a node's work left: its queued estimates plus what remains of its
/// running jobs' estimates at its speed (never below zero per job).
#[inline]
pub(crate) fn work_left(queued_est: f64, running: &[Running], speed: f64, now: f64) -> f64 {
    let mut w = queued_est.max(0.0);
    for r in running {
        // Branch-free: a job still loading has `start` = inf, so the difference is +inf and
        // `min` leaves its whole estimate; an overrun estimate clamps at zero.
        w += (r.est - speed * (now - r.start)).min(r.est).max(0.0);
    }
    w
}

impl Cluster {
    /// Every node up and empty, its memory filled with the most popular models when the
    /// scenario starts warm.
    pub fn new(topo: &Topology, episode_seed: u64) -> Cluster {
        let sc = &topo.sc;
        let m = topo.models();
        let mut cache = vec![CacheEntry::default(); topo.nodes() * m];
        let nodes = sc
            .nodes
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let mut node = NodeState {
                    up: true,
                    listed: true,
                    idle_cap: spec.capacity(),
                    ..Default::default()
                };
                if sc.initial_cache == InitialCache::Popular {
                    for (rank, &mi) in topo.popularity_order.iter().enumerate() {
                        let size = sc.models[mi].memory_gb;
                        if node.mem_used + size <= spec.memory_gb {
                            node.mem_used += size;
                            cache[i * m + mi] = CacheEntry {
                                state: CacheState::Ready,
                                pins: 0,
                                last_used: -(rank as f64),
                            };
                        }
                    }
                }
                node
            })
            .collect();
        let cap_up = sc.nodes.iter().map(|n| n.capacity()).sum();
        let empty = Running {
            job: 0,
            est: 0.0,
            start: 0.0,
            wait_mark: 0.0,
        };
        Cluster {
            nodes,
            running: vec![empty; topo.total_slots],
            cache,
            waiting: vec![0; m * 3],
            waiting_bits: vec![0; topo.words],
            cap_up,
            cap_idle: cap_up,
            cap_stranded: 0.0,
            churn_rng: Rng::new(derive_seed(episode_seed, crate::streams::CHURN)),
            observed_at: 0.0,
            snap_jobs: 0,
            cold_starts: 0,
            prefix: PrefixCaches::new(topo, episode_seed),
            track_wait: false,
            loads: None,
            displacement: None,
            externality: 1.0,
        }
    }

    /// Draws every churning node's first failure.
    pub fn schedule_failures(&mut self, topo: &Topology, q: &mut EventQueue) {
        for (i, spec) in topo.sc.nodes.iter().enumerate() {
            if let Some((mtbf, _)) = spec.churn {
                let t = exponential(&mut self.churn_rng, mtbf);
                q.push(t, Event::NodeDown { node: i as u32 });
            }
        }
    }

    /// Redraws future failures and repairs from `seed`.
    pub fn resample(&mut self, seed: u64) {
        self.churn_rng = Rng::new(derive_seed(seed, crate::streams::CHURN));
    }

    /// The jobs holding node `n`'s slots.
    #[inline]
    pub fn slots(&self, topo: &Topology, n: usize) -> &[Running] {
        let off = topo.slot_off[n];
        &self.running[off..off + self.nodes[n].busy as usize]
    }

    /// Gives job `j` a slot on node `n` (which has a free one). Returns false, changing nothing,
    /// when its model cannot be brought into memory. With `take_hit` (the pooled queue places
    /// and starts at once) the job's prefix hit is taken here, once the slot is sure.
    pub fn start(
        &mut self,
        topo: &Topology,
        q: &mut EventQueue,
        jobs: &mut Jobs,
        n: usize,
        j: u32,
        take_hit: bool,
    ) -> bool {
        let job = jobs[j];
        let ci = n * topo.models() + job.model as usize;
        let mut start = f64::INFINITY;
        let mut loads = false;
        match self.cache[ci].state {
            CacheState::Ready => start = q.now,
            CacheState::Loading => {}
            CacheState::Absent => {
                let size = topo.sc.models[job.model as usize].memory_gb;
                if !self.make_room(topo, n, size) {
                    return false;
                }
                self.nodes[n].mem_used += size;
                self.cache[ci].state = CacheState::Loading;
                self.cold_starts += 1;
                loads = true;
                let event = Event::LoadDone {
                    node: n as u32,
                    model: job.model,
                    epoch: self.nodes[n].epoch,
                };
                q.after(topo.load_time[job.model as usize], event);
            }
        }
        if self.loads.is_some() {
            self.note_load_share(topo, &job, n, ci, loads, q.now);
        }
        if let (true, Some(p)) = (take_hit, &mut self.prefix) {
            p.take_hit(topo, n, &mut jobs[j]);
        }
        self.touch_wait(n, q.now);
        let job = jobs[j];
        self.cache[ci].pins += 1;
        self.cache[ci].last_used = q.now;
        self.touch(n, q.now);
        let mut wait_mark = self.nodes[n].wait_int;
        if let Some(d) = &mut self.displacement {
            d.took_slot(n, j, false);
            wait_mark = q.now;
        }
        let node = &mut self.nodes[n];
        self.running[topo.slot_off[n] + node.busy as usize] = Running {
            job: j,
            est: job.est_work,
            start,
            wait_mark,
        };
        node.busy += 1;
        if start.is_finite() {
            self.schedule_finish(topo, q, jobs, n, j);
        }
        true
    }

    fn schedule_finish(&self, topo: &Topology, q: &mut EventQueue, jobs: &Jobs, n: usize, j: u32) {
        let service = topo.service_time(n, jobs[j].work);
        let epoch = self.nodes[n].epoch;
        q.after(
            service,
            Event::Finish {
                node: n as u32,
                job: j,
                epoch,
            },
        );
    }

    /// Starts queued jobs on node `n` while it has free slots (FIFO, head-of-line).
    fn fill_slots(&mut self, topo: &Topology, q: &mut EventQueue, jobs: &mut Jobs, n: usize) {
        while self.nodes[n].busy < topo.sc.nodes[n].slots {
            let Some(&j) = self.nodes[n].queue.front() else {
                break;
            };
            if !self.start(topo, q, jobs, n, j, false) {
                break;
            }
            let node = &mut self.nodes[n];
            node.queue.pop_front();
            if let Some(d) = &mut self.displacement {
                d.took_slot(n, j, true);
                if node.queue.is_empty() {
                    d.queue_emptied(n);
                }
            }
            node.queued_est = if node.queue.is_empty() {
                0.0
            } else {
                node.queued_est - jobs[j].est_work
            };
            self.waiting_remove(topo, jobs[j].kind);
        }
    }

    /// Job `j`, routed to node `n`: takes its prefix hit, starts at once if the node is free.
    pub fn admit(
        &mut self,
        topo: &Topology,
        q: &mut EventQueue,
        jobs: &mut Jobs,
        n: usize,
        j: u32,
    ) {
        if let Some(p) = &mut self.prefix {
            p.take_hit(topo, n, &mut jobs[j]);
        }
        let (est, kind) = (jobs[j].est_work, jobs[j].kind);
        let node = &self.nodes[n];
        let started = node.queue.is_empty()
            && node.busy < topo.sc.nodes[n].slots
            && self.start(topo, q, jobs, n, j, false);
        if !started {
            self.touch_wait(n, q.now);
            let node = &mut self.nodes[n];
            node.queue.push_back(j);
            node.queued_est += est;
            self.waiting_add(topo, kind);
        }
        self.refresh(topo, n);
    }

    /// Brings node `n`'s queue integral to `now`: call before its queue length changes.
    fn touch_wait(&mut self, n: usize, now: f64) {
        if !self.track_wait {
            return;
        }
        let node = &mut self.nodes[n];
        node.wait_int += (now - node.wait_t) * node.queue.len() as f64;
        node.wait_t = now;
    }

    /// Job `j` finished on node `n`: frees its slot and unpins its model. Returns the waiting it
    /// imposed on the node's queue while it held the slot, in job-seconds: the queue's
    /// job-seconds over that time, shared by the node's slots (its marginal credit's extra).
    pub fn release(&mut self, topo: &Topology, jobs: &Jobs, now: f64, n: usize, j: u32) -> f64 {
        self.touch(n, now);
        self.touch_wait(n, now);
        let node = &mut self.nodes[n];
        let off = topo.slot_off[n];
        let slots = &mut self.running[off..off + node.busy as usize];
        let pos = slots
            .iter()
            .position(|r| r.job == j)
            .expect("finished job holds a slot");
        let mark = slots[pos].wait_mark;
        slots.swap(pos, slots.len() - 1);
        node.busy -= 1;
        let imposed = if self.track_wait {
            (node.wait_int - mark) / topo.sc.nodes[n].slots as f64
        } else {
            0.0
        };
        let e = &mut self.cache[n * topo.models() + jobs[j].model as usize];
        e.pins -= 1;
        e.last_used = now;
        self.externality * imposed + self.displaced(topo, jobs, n, j, mark, now)
    }

    /// After a release: the queue moves up into the freed slot.
    pub fn refill(&mut self, topo: &Topology, q: &mut EventQueue, jobs: &mut Jobs, n: usize) {
        self.fill_slots(topo, q, jobs, n);
        self.refresh(topo, n);
    }

    /// Node `n` fails: its work in progress and queue are lost and its memory empties. The jobs
    /// it held go to `lost`, running ones first, for another routing; its repair is scheduled.
    pub fn on_node_down(
        &mut self,
        topo: &Topology,
        q: &mut EventQueue,
        jobs: &Jobs,
        n: usize,
        lost: &mut Vec<u32>,
    ) {
        self.touch(n, q.now);
        self.touch_wait(n, q.now);
        let m = topo.models();
        let node = &mut self.nodes[n];
        node.up = false;
        node.listed = false;
        node.epoch += 1;
        let busy = std::mem::take(&mut node.busy) as usize;
        node.mem_used = 0.0;
        node.queued_est = 0.0;
        let mut queue = std::mem::take(&mut node.queue);
        self.cache[n * m..(n + 1) * m].fill(CacheEntry::default());
        self.settle_node_loads(topo, n);
        if let Some(d) = &mut self.displacement {
            d.queue_emptied(n);
        }
        if let Some(p) = &mut self.prefix {
            p.on_node_down(topo, n);
        }
        let off = topo.slot_off[n];
        lost.extend(self.running[off..off + busy].iter().map(|r| r.job));
        for &j in &queue {
            lost.push(j);
            self.waiting_remove(topo, jobs[j].kind);
        }
        // Give the queue back so it keeps its capacity.
        queue.clear();
        self.nodes[n].queue = queue;
        self.cap_up -= topo.sc.nodes[n].capacity();
        self.refresh(topo, n);
        let (_, mttr) = topo.sc.nodes[n].churn.expect("only churning nodes fail");
        let t = q.now + exponential(&mut self.churn_rng, mttr);
        q.push(t, Event::NodeUp { node: n as u32 });
    }

    pub fn on_node_up(&mut self, topo: &Topology, q: &mut EventQueue, n: usize) {
        self.touch(n, q.now);
        self.nodes[n].up = true;
        self.nodes[n].listed = true;
        self.cap_up += topo.sc.nodes[n].capacity();
        self.refresh(topo, n);
        let (mtbf, _) = topo.sc.nodes[n].churn.expect("only churning nodes fail");
        let t = q.now + exponential(&mut self.churn_rng, mtbf);
        q.push(t, Event::NodeDown { node: n as u32 });
    }

    /// The routers' snapshot of every node, as a metrics scrape would take it.
    pub fn scrape(&mut self, topo: &Topology, now: f64) {
        self.snap_jobs = 0;
        for n in 0..self.nodes.len() {
            let w = self.work_left(topo, n, now);
            let node = &mut self.nodes[n];
            node.snap_busy = node.busy;
            node.snap_queue = node.queue.len() as u32;
            node.snap_work = w;
            self.snap_jobs += node.busy + node.queue.len() as u32;
        }
        self.observed_at = now;
    }

    /// The router's estimate of node `n`'s work left (see [`work_left`]).
    #[inline]
    pub fn work_left(&self, topo: &Topology, n: usize, now: f64) -> f64 {
        let speed = topo.sc.nodes[n].speed;
        work_left(self.nodes[n].queued_est, self.slots(topo, n), speed, now)
    }
}
