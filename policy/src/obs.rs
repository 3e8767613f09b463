//! The encoded observation as one value: node rows, job row, global row and mask together,
//! borrowed ([`Obs`], [`ObsMut`]) or as a batch of many in flat row-major buffers
//! ([`ObsBatch`], what a vector of envs writes and a trainer reads). The layout of each block is
//! [`crate::features`]'.

use crate::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};

/// One observation: `max_nodes` rows of [`NODE_FEATURES`], the job and global rows, and the
/// mask (`max_nodes` entries).
#[derive(Debug, Clone, Copy)]
pub struct Obs<'a> {
    pub nodes: &'a [f32],
    pub job: &'a [f32],
    pub global: &'a [f32],
    pub mask: &'a [bool],
}

/// One observation to write (see [`crate::features::encode`]).
#[derive(Debug)]
pub struct ObsMut<'a> {
    pub nodes: &'a mut [f32],
    pub job: &'a mut [f32],
    pub global: &'a mut [f32],
    pub mask: &'a mut [bool],
}

impl<'a> Obs<'a> {
    pub fn new(nodes: &'a [f32], job: &'a [f32], global: &'a [f32], mask: &'a [bool]) -> Self {
        Obs {
            nodes,
            job,
            global,
            mask,
        }
    }
}

impl<'a> ObsMut<'a> {
    /// Observation `i` of a whole batch's buffers (`max_nodes` node rows each), taking the
    /// borrow. Panics if the buffers hold fewer than `i + 1` observations.
    pub fn into_row(self, i: usize, max_nodes: usize) -> ObsMut<'a> {
        let row = max_nodes * NODE_FEATURES;
        ObsMut {
            nodes: &mut self.nodes[i * row..(i + 1) * row],
            job: &mut self.job[i * JOB_FEATURES..(i + 1) * JOB_FEATURES],
            global: &mut self.global[i * GLOBAL_FEATURES..(i + 1) * GLOBAL_FEATURES],
            mask: &mut self.mask[i * max_nodes..(i + 1) * max_nodes],
        }
    }

    /// Copies `src` (of the same width) into this observation.
    pub fn copy_from(&mut self, src: Obs<'_>) {
        self.nodes.copy_from_slice(src.nodes);
        self.job.copy_from_slice(src.job);
        self.global.copy_from_slice(src.global);
        self.mask.copy_from_slice(src.mask);
    }

    /// A shorter-lived copy of the borrow, so that `self` stays usable after passing it on.
    pub fn reborrow(&mut self) -> ObsMut<'_> {
        ObsMut {
            nodes: self.nodes,
            job: self.job,
            global: self.global,
            mask: self.mask,
        }
    }
}

/// `len` observations of `max_nodes` node rows each, laid out row-major: observation `i`'s
/// nodes are `nodes[i * max_nodes * NODE_FEATURES..]`, its mask `mask[i * max_nodes..]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObsBatch {
    max_nodes: usize,
    pub nodes: Vec<f32>,
    pub job: Vec<f32>,
    pub global: Vec<f32>,
    pub mask: Vec<bool>,
}

impl ObsBatch {
    /// `len` zeroed, fully masked observations.
    pub fn new(len: usize, max_nodes: usize) -> ObsBatch {
        ObsBatch {
            max_nodes,
            nodes: vec![0.0; len * max_nodes * NODE_FEATURES],
            job: vec![0.0; len * JOB_FEATURES],
            global: vec![0.0; len * GLOBAL_FEATURES],
            mask: vec![false; len * max_nodes],
        }
    }

    pub fn len(&self) -> usize {
        self.job.len() / JOB_FEATURES
    }

    pub fn is_empty(&self) -> bool {
        self.job.is_empty()
    }

    pub fn max_nodes(&self) -> usize {
        self.max_nodes
    }

    /// Observation `i`. Panics if `i >= len()`.
    pub fn get(&self, i: usize) -> Obs<'_> {
        let (n, row) = (self.max_nodes, self.max_nodes * NODE_FEATURES);
        Obs {
            nodes: &self.nodes[i * row..(i + 1) * row],
            job: &self.job[i * JOB_FEATURES..(i + 1) * JOB_FEATURES],
            global: &self.global[i * GLOBAL_FEATURES..(i + 1) * GLOBAL_FEATURES],
            mask: &self.mask[i * n..(i + 1) * n],
        }
    }

    /// Observation `i`, to write. Panics if `i >= len()`.
    pub fn get_mut(&mut self, i: usize) -> ObsMut<'_> {
        let n = self.max_nodes;
        self.as_mut_all().into_row(i, n)
    }

    /// The whole batch as one `ObsMut` (every observation's blocks back to back).
    pub fn as_mut_all(&mut self) -> ObsMut<'_> {
        ObsMut {
            nodes: &mut self.nodes,
            job: &mut self.job,
            global: &mut self.global,
            mask: &mut self.mask,
        }
    }

    /// Copies `src` (of the same width) into slot `j`.
    pub fn copy_from(&mut self, j: usize, src: Obs<'_>) {
        self.get_mut(j).copy_from(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_where_the_layout_says() {
        let mut b = ObsBatch::new(3, 2);
        assert_eq!((b.len(), b.max_nodes()), (3, 2));
        for i in 0..3 {
            let o = b.get_mut(i);
            o.nodes[NODE_FEATURES] = i as f32;
            o.job[0] = 10.0 + i as f32;
            o.mask[1] = i == 1;
        }
        assert_eq!(b.nodes[(2 * 2 + 1) * NODE_FEATURES], 2.0);
        assert_eq!(b.job[2 * JOB_FEATURES], 12.0);
        assert_eq!(b.mask, vec![false, false, false, true, false, false]);
        let one = b.get(1);
        assert_eq!(
            (one.nodes[NODE_FEATURES], one.job[0], one.mask),
            (1.0, 11.0, &[false, true][..])
        );
        let mut c = ObsBatch::new(1, 2);
        c.copy_from(0, b.get(2));
        assert_eq!(c.get(0).job[0], 12.0);
    }
}
