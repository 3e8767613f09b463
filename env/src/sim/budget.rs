//! The runaway guard: simulation work is counted (one unit per event, per node a scrape reads,
//! per view written) and each call of `Sim::run` may do only so much of it. A valid episode
//! needs a handful of events per job plus its scrapes and failures, which validation bounds to
//! ten thousand units per job; beyond the budget the episode is a runaway (a guard against
//! inputs validation missed), reported as an error within seconds instead of a hang.

/// Simulation work a call of `run` may do per job and per node before it is a runaway.
const RUNAWAY_WORK_PER_UNIT: u64 = 20_000;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Work done this episode.
    pub work: u64,
    /// Work done when the current call of `run` began.
    start: u64,
    /// The work at which the current call is a runaway.
    limit: u64,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            work: 0,
            start: 0,
            limit: u64::MAX,
        }
    }
}

impl Budget {
    /// Opens the budget of a call: twenty thousand units per job in the system and per node,
    /// and ten million more.
    pub fn open(&mut self, jobs_in_system: u32, nodes: usize) {
        let units = jobs_in_system as u64 + nodes as u64 + 1;
        self.start = self.work;
        self.limit = self.work + RUNAWAY_WORK_PER_UNIT * units + 10_000_000;
    }

    /// An arrival during the call raises its limit by one job's share.
    pub fn on_arrival(&mut self) {
        self.limit += RUNAWAY_WORK_PER_UNIT;
    }

    #[inline]
    pub fn charge(&mut self, units: u64) {
        self.work += units;
    }

    #[inline]
    pub fn exhausted(&self) -> bool {
        self.work > self.limit
    }

    /// The most work the current (or last) call may do.
    pub fn size(&self) -> u64 {
        self.limit - self.start
    }

    /// Work done since the current (or last) call began.
    pub fn used(&self) -> u64 {
        self.work.saturating_sub(self.start)
    }
}
