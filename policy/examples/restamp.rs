//! Re-saves policy files in the current format: a file from before content digests (format
//! version 1) is read unverified and written back with its digest, weights and metadata
//! unchanged. A current file whose digest does not match is refused, not re-stamped.
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
            p.save(f)?;
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
