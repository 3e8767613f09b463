//! Jobs and the table that holds them: ids are reused once a job is final, so the table grows
//! to the most jobs alive at once, not to the episode's length.

use std::ops::{Index, IndexMut};

use haca_policy::Verification;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Job {
    pub arrival: f64,
    pub work: f64,
    pub est_work: f64,
    pub est_out: f64,
    pub input: u32,
    pub model: u32,
    pub mode: Verification,
    /// `model * 3 + mode`: what a node must serve.
    pub kind: u32,
    pub retries: u32,
    pub node: u32,
    /// The routing decision (index in the episode) that placed it, `u64::MAX` before.
    pub decision: u64,
    /// When its current placement's time in the system started: arrival, or the failure that
    /// sent it back for another routing.
    pub since: f64,
    /// The client that sent it (and routes it).
    pub client: u32,
    /// The node its last attempt failed on, `u32::MAX` if none.
    pub failed_on: u32,
    /// Its prefix blocks are `blocks[prefix.0..prefix.0 + prefix.1]` of the episode's arena.
    pub prefix: (u32, u32),
    /// Work its cached prefix saves at its current placement (already taken off `work`; given
    /// back when the placement fails).
    pub prefix_saved: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Jobs {
    table: Vec<Job>,
    free: Vec<u32>,
}

impl Jobs {
    pub fn insert(&mut self, job: Job) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.table[id as usize] = job;
                id
            }
            None => {
                self.table.push(job);
                (self.table.len() - 1) as u32
            }
        }
    }

    /// Job `j` is final: its id may be reused.
    pub fn release(&mut self, j: u32) {
        self.free.push(j);
    }
}

impl Index<u32> for Jobs {
    type Output = Job;
    #[inline]
    fn index(&self, j: u32) -> &Job {
        &self.table[j as usize]
    }
}

impl IndexMut<u32> for Jobs {
    #[inline]
    fn index_mut(&mut self, j: u32) -> &mut Job {
        &mut self.table[j as usize]
    }
}
