//! Loading policy files of an earlier feature schema. Version 2 appended two node columns
//! (`ln_local_delay`, `prefix_hit_frac`) to version 1's twelve and one global column
//! (`ln_inv_share`) to its five. A version-1 file is widened on load: the embedding gets zero
//! weights for the new columns and the normalization an identity
//! entry (mean 0, std 1), so the network computes exactly what it computed before, ignoring what
//! it never learned to read. Its scores on every view are those of the file as trained.

use crate::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};

/// Node columns of feature schema 1.
pub const V1_NODE_FEATURES: usize = 12;
/// Global columns of feature schema 1.
pub const V1_GLOBAL_FEATURES: usize = 5;
/// Width of schema 1's per-node input.
pub const V1_INPUT_FEATURES: usize = V1_NODE_FEATURES + JOB_FEATURES + V1_GLOBAL_FEATURES;

/// The feature schemas this build loads, and whether each needs widening.
pub fn is_legacy(schema: &str) -> Option<bool> {
    match schema {
        s if s == crate::features::FEATURE_SCHEMA_VERSION.to_string() => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// Node and global columns a file of this schema has.
pub fn block_sizes(legacy: bool) -> (usize, usize) {
    if legacy {
        (V1_NODE_FEATURES, V1_GLOBAL_FEATURES)
    } else {
        (NODE_FEATURES, GLOBAL_FEATURES)
    }
}

/// Inserts `fill` for the new node columns (after the old ones) and the new global columns (at
/// the end) into each of `rows` rows of schema-1 input width.
fn widen(data: &[f32], rows: usize, fill: f32) -> Vec<f32> {
    let new_nodes = NODE_FEATURES - V1_NODE_FEATURES;
    let new_global = GLOBAL_FEATURES - V1_GLOBAL_FEATURES;
    let mut out = Vec::with_capacity(rows * (V1_INPUT_FEATURES + new_nodes + new_global));
    for row in data.chunks_exact(V1_INPUT_FEATURES) {
        out.extend_from_slice(&row[..V1_NODE_FEATURES]);
        out.extend(std::iter::repeat_n(fill, new_nodes));
        out.extend_from_slice(&row[V1_NODE_FEATURES..]);
        out.extend(std::iter::repeat_n(fill, new_global));
    }
    out
}

/// `embed.weight` (`[hidden, inputs]`) of schema 1 with zero weights for the new columns.
pub fn widen_embed(weight: &[f32], hidden: usize) -> Vec<f32> {
    widen(weight, hidden, 0.0)
}

/// Schema 1's normalization with the identity for the new columns.
pub fn widen_norm(mean: &[f32], std: &[f32]) -> (Vec<f32>, Vec<f32>) {
    (widen(mean, 1, 0.0), widen(std, 1, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::INPUT_FEATURES;

    #[test]
    fn widening_inserts_the_new_columns_after_the_old_node_columns() {
        let w: Vec<f32> = (0..2 * V1_INPUT_FEATURES).map(|x| x as f32 + 1.0).collect();
        let wide = widen_embed(&w, 2);
        assert_eq!(wide.len(), 2 * INPUT_FEATURES);
        let row1 = &wide[INPUT_FEATURES..];
        assert_eq!(
            &row1[..V1_NODE_FEATURES],
            &w[V1_INPUT_FEATURES..][..V1_NODE_FEATURES]
        );
        assert!(row1[V1_NODE_FEATURES..NODE_FEATURES]
            .iter()
            .all(|&x| x == 0.0));
        let old_rest = &w[V1_INPUT_FEATURES + V1_NODE_FEATURES..];
        assert_eq!(&row1[NODE_FEATURES..INPUT_FEATURES - 1], old_rest);
        assert_eq!(row1[INPUT_FEATURES - 1], 0.0, "the new global column");
        let (m, s) = widen_norm(&[0.5; V1_INPUT_FEATURES], &[2.0; V1_INPUT_FEATURES]);
        assert_eq!((m[V1_NODE_FEATURES], s[V1_NODE_FEATURES]), (0.0, 1.0));
        assert_eq!((m[NODE_FEATURES], s[NODE_FEATURES]), (0.5, 2.0));
        assert_eq!((m[INPUT_FEATURES - 1], s[INPUT_FEATURES - 1]), (0.0, 1.0));
    }
}
