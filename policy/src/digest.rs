//! Tamper evidence: a SHA-256 digest over a policy file's content (every tensor's name, dtype,
//! shape and bytes, and every metadata entry but the digest itself), recorded in the metadata by
//! the writer and checked by the loader. A flipped weight byte loads as a different, valid
//! policy; with the digest it is refused.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

/// The metadata key of the digest.
pub const DIGEST_KEY: &str = "digest";

/// `sha256:<hex>` over the metadata (sorted by key, `DIGEST_KEY` left out) and the tensors
/// (sorted by name), each field length-prefixed so no two contents encode alike.
pub fn content_digest<'a>(
    meta: &HashMap<String, String>,
    tensors: impl IntoIterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    let mut keys: Vec<&String> = meta.keys().filter(|k| *k != DIGEST_KEY).collect();
    keys.sort();
    field(b"metadata");
    for k in keys {
        field(k.as_bytes());
        field(meta[k].as_bytes());
    }
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_by_key(|t| t.0);
    field(b"tensors");
    for (name, dtype, shape, data) in tensors {
        field(name.as_bytes());
        field(dtype_name(dtype).as_bytes());
        let dims: Vec<u8> = shape
            .iter()
            .flat_map(|d| (*d as u64).to_le_bytes())
            .collect();
        field(&dims);
        field(data);
    }
    prefixed_hex(&h.finalize())
}

/// `sha256:<hex>` of `data`: the checkpoint manifest's digest of a file.
pub fn sha256_hex(data: &[u8]) -> String {
    prefixed_hex(&Sha256::digest(data))
}

fn prefixed_hex(hash: &[u8]) -> String {
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The dtype as the digest spells it: fixed names, not `Debug` output that a safetensors
/// release could change.
fn dtype_name(d: Dtype) -> String {
    match d {
        Dtype::F32 => "F32".into(),
        Dtype::I8 => "I8".into(),
        other => format!("other:{other:?}"),
    }
}

/// The digest of a parsed file's content, as [`content_digest`] computes it.
pub fn file_digest(st: &SafeTensors, meta: &HashMap<String, String>) -> String {
    let views = st.tensors();
    content_digest(
        meta,
        views
            .iter()
            .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
    )
}
