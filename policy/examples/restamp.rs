//! Re-saves policy files in the current format: a file from before content digests (format
//! version 1) is read unverified and written back with its digest, in its own precision (f32
//! or int8), weights unchanged, the metadata as the current writer writes it (`created_by`
//! updated, keys this version does not know dropped). A current file is left as it is; one
//! whose digest does not match is refused, not re-stamped.
//!
//!     cargo run --release -p haca-policy --example restamp -- FILE.safetensors...

use haca_policy::Policy;

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: restamp FILE.safetensors...");
        std::process::exit(2);
    }
    let mut failed = false;
    for f in &files {
        let outcome = Policy::load(f).and_then(|p| {
            let was = p.digest().map(str::to_string);
            if was.is_some() {
                // Already current: rewriting would only reorder the header.
                return Ok((was.clone(), was.unwrap_or_default()));
            }
            // Re-quantizing dequantized int8 weights gives the same bytes (same scale, same
            // rounding), so an int8 file stays int8 and identical in weights.
            if is_int8(f) {
                p.save_int8(f)?;
            } else {
                p.save(f)?;
            }
            let now = Policy::load(f)?;
            Ok((was, now.digest().unwrap_or_default().to_string()))
        });
        match outcome {
            Ok((Some(was), now)) if was == now => println!("{f}: already current ({now})"),
            Ok((_, now)) => println!("{f}: stamped {now}"),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}

/// Whether the file stores int8 weights (any tensor of dtype I8).
fn is_int8(path: &str) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| {
            let (_, header) = safetensors::SafeTensors::read_metadata(&b).ok()?;
            Some(
                header
                    .tensors()
                    .values()
                    .any(|t| t.dtype == safetensors::Dtype::I8),
            )
        })
        .unwrap_or(false)
}
