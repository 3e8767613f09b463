//! Tamper evidence: a SHA-256 digest over a policy file's content (every tensor's name, dtype,
//! shape and bytes, and every metadata entry but the digest itself), recorded in the metadata by
//! the writer and checked by the loader. A flipped weight byte loads as a different, valid
//! policy; with the digest it is refused.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use crate::file::{PolicyError, FORMAT_VERSION};

/// Version 1: version 2 without the content digest; still read, unverified.
const UNVERIFIED_VERSION: u32 = 1;

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
fn file_digest(st: &SafeTensors, meta: &HashMap<String, String>) -> String {
    let views = st.tensors();
    content_digest(
        meta,
        views
            .iter()
            .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
    )
}

/// Checks a parsed file's digest and format version: `Some(digest)` when it verifies, `None`
/// for a version-1 file (from before digests, read unverified); a mismatch, a current file
/// without a digest, or another version is an error naming `path`.
pub fn verified_digest(
    st: &SafeTensors,
    meta: &HashMap<String, String>,
    path: &Path,
) -> Result<Option<String>, PolicyError> {
    let digest = match meta.get(DIGEST_KEY) {
        Some(recorded) => {
            let computed = file_digest(st, meta);
            if computed != *recorded {
                return Err(PolicyError::Digest {
                    path: path.to_path_buf(),
                    recorded: recorded.clone(),
                    computed,
                });
            }
            Some(recorded.clone())
        }
        None => None,
    };
    let version = meta.get("format_version").cloned().unwrap_or_default();
    if version == FORMAT_VERSION.to_string() {
        if digest.is_none() {
            // A current file always has one: its absence is damage, not age.
            return Err(PolicyError::Metadata {
                path: path.to_path_buf(),
                key: DIGEST_KEY.into(),
                detail: format!("is missing, but every format-version-{FORMAT_VERSION} file records one: the file was changed after it was written; export it again from its run"),
            });
        }
    } else if version != UNVERIFIED_VERSION.to_string() {
        return Err(PolicyError::FormatVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(digest)
}
