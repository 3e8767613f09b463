//! Loading policy files of an earlier feature schema. Each version appended columns: version 2
//! two node columns (`ln_local_delay`, `prefix_hit_frac`) to version 1's twelve and one global
//! column (`ln_inv_share`) to its five; version 3 two node columns (`ln_answered_delay`,
//! `ln_own_answered`); version 4 one global column (`ln_clients`). An older file is widened on load: the embedding gets zero weights for the
//! columns it lacks and the normalization an identity entry (mean 0, std 1), so the network
//! computes exactly what it computed before, ignoring what it never learned to read. Its scores
//! on every view are those of the file as trained.

use crate::features::{FEATURE_SCHEMA_VERSION, GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};

/// The columns of one feature schema: node and global (the job block never changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub node: usize,
    pub global: usize,
}

impl Layout {
    /// This build's schema.
    pub const CURRENT: Layout = Layout {
        node: NODE_FEATURES,
        global: GLOBAL_FEATURES,
    };

    /// Width of one node's input: its node columns, the job's and the global ones.
    pub fn input(self) -> usize {
        self.node + JOB_FEATURES + self.global
    }

    /// The layout of a schema this build loads (`None` for any other).
    pub fn of(schema: &str) -> Option<Layout> {
        match schema {
            s if s == FEATURE_SCHEMA_VERSION.to_string() => Some(Layout::CURRENT),
            "3" => Some(Layout {
                node: 16,
                global: 6,
            }),
            "2" => Some(Layout {
                node: 14,
                global: 6,
            }),
            "1" => Some(Layout {
                node: 12,
                global: 5,
            }),
            _ => None,
        }
    }

    pub fn is_current(self) -> bool {
        self == Layout::CURRENT
    }

    /// Inserts `fill` for the missing node columns (after the old ones) and the missing global
    /// columns (at the end) into each row of this layout's input width.
    fn widen(self, data: &[f32], fill: f32) -> Vec<f32> {
        let cur = Layout::CURRENT;
        let (new_nodes, new_global) = (cur.node - self.node, cur.global - self.global);
        let mut out = Vec::with_capacity(data.len() / self.input() * cur.input());
        for row in data.chunks_exact(self.input()) {
            out.extend_from_slice(&row[..self.node]);
            out.extend(std::iter::repeat_n(fill, new_nodes));
            out.extend_from_slice(&row[self.node..]);
            out.extend(std::iter::repeat_n(fill, new_global));
        }
        out
    }

    /// `embed.weight` (`[hidden, inputs]`) of this layout with zero weights for the new columns.
    pub fn widen_embed(self, weight: &[f32]) -> Vec<f32> {
        self.widen(weight, 0.0)
    }

    /// This layout's normalization with the identity for the new columns.
    pub fn widen_norm(self, mean: &[f32], std: &[f32]) -> (Vec<f32>, Vec<f32>) {
        (self.widen(mean, 0.0), self.widen(std, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::INPUT_FEATURES;

    #[test]
    fn widening_inserts_the_new_columns_after_the_old_node_columns() {
        let v1 = Layout::of("1").unwrap();
        let w: Vec<f32> = (0..2 * v1.input()).map(|x| x as f32 + 1.0).collect();
        let wide = v1.widen_embed(&w);
        assert_eq!(wide.len(), 2 * INPUT_FEATURES);
        let row1 = &wide[INPUT_FEATURES..];
        assert_eq!(&row1[..v1.node], &w[v1.input()..][..v1.node]);
        assert!(row1[v1.node..NODE_FEATURES].iter().all(|&x| x == 0.0));
        let old_rest = &w[v1.input() + v1.node..];
        let new_global = GLOBAL_FEATURES - v1.global;
        assert_eq!(new_global, 2, "ln_inv_share and ln_clients");
        assert_eq!(&row1[NODE_FEATURES..INPUT_FEATURES - new_global], old_rest);
        assert_eq!(&row1[INPUT_FEATURES - new_global..], &[0.0, 0.0]);
        let (m, s) = v1.widen_norm(&[0.5; 25], &[2.0; 25]);
        assert_eq!((m[v1.node], s[v1.node]), (0.0, 1.0));
        assert_eq!((m[NODE_FEATURES], s[NODE_FEATURES]), (0.5, 2.0));
        assert_eq!((m[INPUT_FEATURES - 1], s[INPUT_FEATURES - 1]), (0.0, 1.0));
    }

    #[test]
    fn version_2_gains_the_two_answer_columns_and_the_clients_column() {
        let v2 = Layout::of("2").unwrap();
        let w: Vec<f32> = (0..v2.input()).map(|x| x as f32 + 1.0).collect();
        let wide = v2.widen_embed(&w);
        assert_eq!(wide.len(), INPUT_FEATURES);
        assert_eq!(&wide[..14], &w[..14]);
        assert_eq!(&wide[14..16], &[0.0, 0.0]);
        assert_eq!(
            &wide[16..INPUT_FEATURES - 1],
            &w[14..],
            "job and global columns in place"
        );
        assert_eq!(wide[INPUT_FEATURES - 1], 0.0);
    }

    #[test]
    fn version_3_gains_the_clients_column_only() {
        let v3 = Layout::of("3").unwrap();
        assert_eq!((v3.node, v3.global + 1), (NODE_FEATURES, GLOBAL_FEATURES));
        let w: Vec<f32> = (0..v3.input()).map(|x| x as f32 + 1.0).collect();
        let wide = v3.widen_embed(&w);
        assert_eq!(&wide[..INPUT_FEATURES - 1], &w[..]);
        assert_eq!(wide[INPUT_FEATURES - 1], 0.0);
        assert_eq!(Layout::of("5"), None);
        assert!(Layout::of(&FEATURE_SCHEMA_VERSION.to_string())
            .unwrap()
            .is_current());
    }
}
