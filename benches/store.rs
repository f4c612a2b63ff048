//! The performance issue's workloads with its sizes (16-byte keys, 100-byte values, 1,000,000
//! keys), each beside a baseline measured in the same run. The workload code is shared with
//! `ferrocask bench`: this file includes `cli/src/workload.rs`.
//!
//! ```text
//! cargo bench --bench store                      # everything
//! cargo bench --bench store -- open --keys 200000 # only some sections: puts, gets, open, rmw
//! ```

#[path = "../cli/src/workload.rs"]
#[allow(dead_code, reason = "the CLI uses parts this binary does not")]
mod workload;

/// Prints each stage's name on stderr.
struct Stages;

impl workload::Progress for Stages {
    fn stage(&self, label: &str, _total: u64) {
        eprintln!("bench: {label}");
    }

    fn inc(&self, _n: u64) {}
}

fn main() {
    let mut cfg = workload::Config::default();
    let mut sections = Vec::new();
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--json" => json = true,
            "--keys" => cfg.keys = args.next().and_then(|n| n.parse().ok()).expect("--keys N"),
            "--secs" => {
                cfg.put_secs = args.next().and_then(|n| n.parse().ok()).expect("--secs S");
                cfg.get_secs = cfg.put_secs * 0.75;
            }
            "puts" | "gets" | "open" | "rmw" => sections.push(arg),
            other => panic!("unknown argument {other:?}; expected puts, gets, open, rmw, --keys N, --secs S, --json"),
        }
    }
    if !sections.is_empty() {
        cfg.run_puts = sections.iter().any(|s| s == "puts");
        cfg.run_gets = sections.iter().any(|s| s == "gets");
        cfg.run_open = sections.iter().any(|s| s == "open");
        cfg.run_rmw = sections.iter().any(|s| s == "rmw");
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let results = workload::run(dir.path(), &cfg, &Stages).expect("benchmark run");
    if json {
        println!("{}", workload::json(&results));
    } else {
        println!(
            "ferrocask store bench: {} keys of {} B, values of {} B, in {}",
            cfg.keys,
            workload::KEY_BYTES,
            workload::VALUE_BYTES,
            dir.path().display()
        );
        print!("{}", workload::table(&results));
    }
}
