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
    if n == u64::MAX {
        let msg = b"\nhaca-fuzz: the process aborted before its first input\n";
        // SAFETY: write(2) on stderr with a valid buffer is async-signal-safe.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        return;
    }
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
    let watch = Watch {
        clock: Instant::now(),
        started_ms: Arc::new(AtomicU64::new(u64::MAX)),
        input: Arc::default(),
    };
    watchdog(&cli, target.name(), watch.clone());
    let last_panic: Arc<Mutex<String>> = Arc::default();
    let hook_panic = last_panic.clone();
    std::panic::set_hook(Box::new(move |info| {
        *hook_panic.lock().unwrap() = info.to_string();
    }));
    // SAFETY: installs a handler that only reads an atomic and calls write(2).
    unsafe {
        libc::signal(libc::SIGABRT, on_abort as *const () as libc::sighandler_t);
    }
    let c = fuzz(&cli, &target, &corpus, &watch, &last_panic)?;
    let secs = watch.clock.elapsed().as_secs_f64();
    println!(
        "fuzz {}: {} inputs in {secs:.0} s ({:.0}/s), {} accepted, {} rejected with an error, {} crashes, 0 timeouts (limit {} s; slowest input {:.3} s)",
        target.name(),
        c.ran,
        c.ran as f64 / secs,
        c.accepted,
        c.ran - c.accepted - c.crashes,
        c.crashes,
        cli.timeout_s,
        c.slowest,
    );
    if let Target::Checkpoint { dir, .. } = &target {
        let _ = std::fs::remove_dir_all(dir.parent().unwrap_or(dir));
    }
    if c.crashes > 0 {
        bail!(
            "{} crashing inputs in {}",
            c.crashes,
            cli.findings.display()
        );
    }
    Ok(())
}

/// What the watchdog sees of the input being run: when it started (ms on `clock`, `u64::MAX`
/// between inputs) and its bytes.
#[derive(Clone)]
struct Watch {
    clock: Instant,
    started_ms: Arc<AtomicU64>,
    input: Arc<Mutex<Vec<u8>>>,
}

#[derive(Default)]
struct Counts {
    ran: u64,
    accepted: u64,
    crashes: u64,
    slowest: f64,
}

/// Runs mutated inputs until `--inputs` or `--seconds` (or the one `--replay` input).
fn fuzz(
    cli: &Cli,
    target: &Target,
    corpus: &[Vec<u8>],
    watch: &Watch,
    last_panic: &Mutex<String>,
) -> Result<Counts> {
    let mut rng = Rng::new(cli.seed);
    let mut c = Counts::default();
    let mut n = 0u64;
    let in_time = |w: &Watch| {
        cli.seconds
            .is_none_or(|s| w.clock.elapsed().as_secs_f64() < s)
    };
    while n < cli.inputs && in_time(watch) {
        let a = &corpus[rng.below(corpus.len() as u64) as usize];
        let b = &corpus[rng.below(corpus.len() as u64) as usize];
        let input = mutate::mutate(a, b, &mut rng);
        n += 1;
        let index = n - 1;
        match cli.replay {
            Some(r) if r != index => continue,
            Some(_) => {
                let path = save(&cli.findings, target.name(), "replay", index, &input)?;
                eprintln!("input {index} saved to {}; running it", path.display());
            }
            None => {}
        }
        CURRENT.store(index, Ordering::SeqCst);
        *watch.input.lock().unwrap() = input.clone();
        let t0 = Instant::now();
        let now_ms = watch.clock.elapsed().as_millis() as u64;
        watch.started_ms.store(now_ms, Ordering::SeqCst);
        let outcome = std::panic::catch_unwind(|| target.run(&input));
        watch.started_ms.store(u64::MAX, Ordering::SeqCst);
        c.slowest = c.slowest.max(t0.elapsed().as_secs_f64());
        c.ran += 1;
        match outcome {
            Ok(Ok(())) => c.accepted += 1,
            Ok(Err(_)) => {}
            Err(_) => {
                c.crashes += 1;
                let path = save(&cli.findings, target.name(), "crash", index, &input)?;
                let why = last_panic.lock().unwrap();
                eprintln!(
                    "CRASH on input {index} (saved to {}): {why}",
                    path.display()
                );
            }
        }
        if cli.replay.is_some() {
            break;
        }
    }
    Ok(c)
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
fn watchdog(cli: &Cli, name: &'static str, watch: Watch) {
    let limit_ms = (cli.timeout_s * 1000.0) as u64;
    let findings = cli.findings.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(200));
        let started = watch.started_ms.load(Ordering::SeqCst);
        let now = watch.clock.elapsed().as_millis() as u64;
        if started != u64::MAX && now.saturating_sub(started) > limit_ms {
            let input = watch.input.lock().map(|i| i.clone()).unwrap_or_default();
            let n = CURRENT.load(Ordering::SeqCst);
            let path = save(&findings, name, "timeout", n, &input);
            eprintln!("TIMEOUT: input {n} ran over {limit_ms} ms (saved: {path:?})");
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
