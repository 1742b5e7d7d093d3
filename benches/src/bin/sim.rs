//! `sim`: a scripted app-server workload run against switchboard, the
//! reference design and a synchronous `parking_lot::Mutex` over the same
//! maps, printed side by side.
//!
//! ```text
//! cargo run --release -p switchboard-benches --bin sim -- [--duration SECS]
//!     [--threads N] [--clients N] [--seed N] [--quiet]
//! ```
//!
//! `--duration` is the whole run phase (default 10 s), split evenly between
//! the three designs. Exits with status 1 if a final graph fails validation.

use std::process::ExitCode;
use std::time::Duration;
use switchboard_benches::alloc::{self, CountingAlloc};
use switchboard_benches::designs::{PlMutex, Reference, Switchboard};
use switchboard_benches::sim::{self, Config, Report, SimHost};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const USAGE: &str = "usage: sim [--duration SECS] [--threads N] [--clients N] [--seed N] [--quiet]

Runs the same scripted app-server workload against switchboard, the
reference design (one tokio::sync::Mutex over the maps) and one
parking_lot::Mutex over the same maps, and prints a side-by-side table.

  --duration SECS  total run time, split between the three designs (default 10)
  --threads N      thread id range (default 10000)
  --clients N      connections (default 20000)
  --seed N         script seed (default 42)
  --quiet          no progress lines";

/// How many designs share `--duration`.
const DESIGNS: f64 = 3.0;

struct Args {
    cfg: Config,
    quiet: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut cfg = Config::default();
    let mut total = 10.0_f64;
    let mut quiet = false;
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--duration" => {
                total = value("--duration")?
                    .parse()
                    .map_err(|e| format!("--duration: {e}"))?;
                if !(total.is_finite() && total > 0.0) {
                    return Err("--duration must be positive".into());
                }
            }
            "--threads" => cfg.threads = parse_count(&value("--threads")?, "--threads")?,
            "--clients" => cfg.clients = parse_count(&value("--clients")?, "--clients")?,
            "--seed" => {
                cfg.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?;
            }
            "--quiet" | "-q" => quiet = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    cfg.duration = Duration::from_secs_f64(total / DESIGNS);
    Ok(Args { cfg, quiet })
}

fn parse_count(s: &str, name: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        Ok(_) => Err(format!("{name} must be at least 1")),
        Err(e) => Err(format!("{name}: {e}")),
    }
}

fn run<H: SimHost>(cfg: &Config, quiet: bool) -> Report {
    sim::run::<H>(cfg, |line| {
        if !quiet {
            eprintln!("{line}");
        }
    })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sim: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cfg = args.cfg;
    alloc::set_counting(true);
    println!(
        "sim: {} threads, {} clients × {} subscriptions, {} event sources + 1 churn thread, \
         {} listener workers, {:.1}s per design, {} CPUs",
        cfg.threads,
        cfg.clients,
        cfg.subs_per_client,
        cfg.event_threads,
        cfg.workers,
        cfg.duration.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let reports = [
        run::<Switchboard>(&cfg, args.quiet),
        run::<Reference>(&cfg, args.quiet),
        run::<PlMutex>(&cfg, args.quiet),
    ];
    println!();
    print!("{}", sim::table(&reports));
    let mut failed = false;
    for r in &reports {
        if let Err(e) = &r.valid {
            eprintln!("sim: {}: final graph invalid: {e}", r.name);
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
