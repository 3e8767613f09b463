//! Writes a policy file with random weights: for benchmarks, the C ABI test and trying the
//! tooling before a trained policy exists.
//!
//! cargo run -p haca-policy --example random_policy -- --out /tmp/random.safetensors

use std::path::PathBuf;

use clap::Parser;
use haca_policy::{Activation, Architecture, Policy};

#[derive(Parser)]
#[command(about = "Write a haca-policy file with random weights")]
struct Args {
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    #[arg(long, default_value_t = 2)]
    layers: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write int8 weights.
    #[arg(long)]
    int8: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let arch = Architecture {
        hidden: a.hidden,
        layers: a.layers,
        value_layers: 1,
        activation: Activation::Relu,
    };
    let mut p = Policy::random(arch, a.seed);
    p.info.scenario = "none (random weights)".into();
    if a.int8 {
        p.save_int8(&a.out)?;
    } else {
        p.save(&a.out)?;
    }
    println!(
        "wrote {} ({} parameters)",
        a.out.display(),
        arch.parameter_count()
    );
    Ok(())
}
