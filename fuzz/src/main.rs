//! `haca-fuzz`: mutation fuzzing of the project's file loaders on stable Rust.
//!
//! Each input is a mutation of a corpus entry (the committed seeds, or the shipped files the
//! target reads); a panic is caught and its input saved, and a watchdog saves and stops on an
//! input that runs longer than `--timeout-s`. Not coverage-guided: it finds what random and
//! edge-value mutations of valid files reach. The summary line gives the counts.
//!
//!     cargo run --release -p haca-fuzz -- scenario --inputs 100000

mod mutate;
mod targets;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use haca_policy::Rng;

use targets::Target;

#[derive(Parser)]
#[command(about = "Mutation fuzzing of the scenario, trace, policy and checkpoint loaders")]
struct Cli {
    /// scenario | trace | policy | checkpoint
    target: String,
    /// Stop after this many inputs.
    #[arg(long, default_value_t = 100_000)]
    inputs: u64,
    /// Stop after this many seconds, whichever comes first.
    #[arg(long)]
    seconds: Option<f64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// An input running longer than this is a hang: saved, and the run stops with exit code 3.
    #[arg(long, default_value_t = 20.0)]
    timeout_s: f64,
    /// Where crashing and hanging inputs are written.
    #[arg(long, default_value = "target/fuzz-findings")]
    findings: PathBuf,
    /// Regenerate input N of this seed (the sequence does not depend on outcomes), save it to
    /// the findings folder and run it alone: how an input that aborted the process (an
    /// allocation failure cannot be caught) is reproduced.
    #[arg(long)]
    replay: Option<u64>,
    /// Run this one input file (a saved finding) and report what the loader says.
    #[arg(long)]
    input: Option<PathBuf>,
}

/// The input being run, for the abort handler's message.
static CURRENT: AtomicU64 = AtomicU64::new(u64::MAX);

/// On SIGABRT (an allocation failure, or any abort), names the input that caused it; only
/// async-signal-safe calls here.
extern "C" fn on_abort(_: libc::c_int) {
    let n = CURRENT.load(Ordering::SeqCst);
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let head = b"\nhaca-fuzz: the process aborted on input ";
    let tail = b": reproduce it with --replay and the same --seed\n";
    // SAFETY: write(2) on stderr with valid buffers is async-signal-safe.
    unsafe {
        libc::write(2, head.as_ptr().cast(), head.len());
        libc::write(2, digits[i..].as_ptr().cast(), digits.len() - i);
        libc::write(2, tail.as_ptr().cast(), tail.len());
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (target, corpus) = setup(&cli.target)?;
    if let Some(file) = &cli.input {
        let bytes = std::fs::read(file).with_context(|| file.display().to_string())?;
        let t0 = Instant::now();
        let outcome = target.run(&bytes);
        println!("{:.3} s: {outcome:?}", t0.elapsed().as_secs_f64());
        return Ok(());
    }
    std::fs::create_dir_all(&cli.findings)?;
    let current: Arc<Mutex<Vec<u8>>> = Arc::default();
    let started_ms = Arc::new(AtomicU64::new(u64::MAX));
    watchdog(&cli, target.name(), current.clone(), started_ms.clone());
    let last_panic: Arc<Mutex<String>> = Arc::default();
    let hook_panic = last_panic.clone();
    std::panic::set_hook(Box::new(move |info| {
        *hook_panic.lock().unwrap() = info.to_string();
    }));

    // SAFETY: installs a handler that only reads an atomic and calls write(2).
    unsafe {
        libc::signal(libc::SIGABRT, on_abort as *const () as libc::sighandler_t);
    }
    let clock = Instant::now();
    let mut rng = Rng::new(cli.seed);
    let (mut ran, mut accepted, mut crashes) = (0u64, 0u64, 0u64);
    let mut slowest = (0.0f64, 0u64);
    while ran < cli.inputs
        && cli
            .seconds
            .is_none_or(|s| clock.elapsed().as_secs_f64() < s)
    {
        let a = &corpus[rng.below(corpus.len() as u64) as usize];
        let b = &corpus[rng.below(corpus.len() as u64) as usize];
        let input = mutate::mutate(a, b, &mut rng);
        if cli.replay.is_some_and(|n| n != ran) {
            ran += 1;
            continue;
        }
        if cli.replay.is_some() {
            let path = save(&cli.findings, target.name(), "replay", ran, &input)?;
            eprintln!("input {ran} saved to {}; running it", path.display());
        }
        CURRENT.store(ran, Ordering::SeqCst);
        *current.lock().unwrap() = input.clone();
        let t0 = Instant::now();
        started_ms.store(clock.elapsed().as_millis() as u64, Ordering::SeqCst);
        let outcome = std::panic::catch_unwind(|| target.run(&input));
        started_ms.store(u64::MAX, Ordering::SeqCst);
        let secs = t0.elapsed().as_secs_f64();
        if secs > slowest.0 {
            slowest = (secs, ran);
        }
        match outcome {
            Ok(Ok(())) => accepted += 1,
            Ok(Err(_)) => {}
            Err(_) => {
                crashes += 1;
                let path = save(&cli.findings, target.name(), "crash", ran, &input)?;
                eprintln!(
                    "CRASH on input {ran} (saved to {}): {}",
                    path.display(),
                    last_panic.lock().unwrap()
                );
            }
        }
        ran += 1;
        if cli.replay.is_some() {
            break;
        }
    }
    println!(
        "fuzz {}: {ran} inputs in {:.0} s ({:.0}/s), {accepted} accepted, {} rejected with an error, {crashes} crashes, 0 timeouts (limit {} s; slowest input {:.3} s)",
        target.name(),
        clock.elapsed().as_secs_f64(),
        ran as f64 / clock.elapsed().as_secs_f64(),
        ran - accepted - crashes,
        cli.timeout_s,
        slowest.0,
    );
    if crashes > 0 {
        bail!("{crashes} crashing inputs in {}", cli.findings.display());
    }
    Ok(())
}

/// The target and its seed corpus.
fn setup(name: &str) -> Result<(Target, Vec<Vec<u8>>)> {
    let files = |dir: &str, ext: &str| -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("{dir}: run haca-fuzz from the repository root"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        paths.sort();
        for p in paths {
            out.push(std::fs::read(&p).with_context(|| p.display().to_string())?);
        }
        Ok(out)
    };
    let (target, corpus) = match name {
        "scenario" => (Target::Scenario, files("env/scenarios", "toml")?),
        "trace" => (Target::Trace, files("fuzz/corpus/trace", "csv")?),
        "policy" => {
            let corpus = files("fuzz/corpus/policy", "safetensors")?;
            let seeds = corpus
                .iter()
                .map(|b| haca_policy::Policy::from_bytes(b, Path::new("seed")))
                .collect::<Result<_, _>>()?;
            (Target::Policy { seeds }, corpus)
        }
        "checkpoint" => {
            let work = std::env::temp_dir().join(format!("haca-fuzz-{}", std::process::id()));
            targets::checkpoint_target(&work).map_err(anyhow::Error::msg)?
        }
        other => bail!("unknown target `{other}`: scenario, trace, policy or checkpoint"),
    };
    if corpus.is_empty() {
        bail!("no seed inputs for `{name}`");
    }
    Ok((target, corpus))
}

/// Stops the process (exit code 3) when one input runs past the limit, saving it first.
fn watchdog(cli: &Cli, name: &'static str, current: Arc<Mutex<Vec<u8>>>, started: Arc<AtomicU64>) {
    let limit_ms = (cli.timeout_s * 1000.0) as u64;
    let findings = cli.findings.clone();
    let clock = Instant::now();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(200));
        let s = started.load(Ordering::SeqCst);
        let now = clock.elapsed().as_millis() as u64;
        if s != u64::MAX && now.saturating_sub(s) > limit_ms {
            let input = current.lock().map(|i| i.clone()).unwrap_or_default();
            let path = save(
                &findings,
                name,
                "timeout",
                CURRENT.load(Ordering::SeqCst),
                &input,
            );
            eprintln!("TIMEOUT: an input ran over {limit_ms} ms (saved: {path:?})");
            println!("fuzz {name}: stopped on a timeout: 1 timeouts");
            std::process::exit(3);
        }
    });
}

fn save(dir: &Path, target: &str, kind: &str, n: u64, input: &[u8]) -> Result<PathBuf> {
    let path = dir.join(format!("{target}-{kind}-{n}"));
    std::fs::write(&path, input).with_context(|| path.display().to_string())?;
    Ok(path)
}
