//! `ferrocask`: inspect, verify, compact and benchmark a ferrocask store from the shell.
//!
//! Errors print one line to stderr and exit non-zero; `verify` exits 1 when it finds damage.
//! Progress bars are drawn on stderr only when it is a terminal.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ferrocask::inspect::{self, RecordKind};
use ferrocask::Store;
use indicatif::{ProgressBar, ProgressStyle};

mod cluster;
mod serve;
mod workload;

/// `--hex` after a subcommand that reads or prints keys and values. Not global: it means nothing
/// to `serve`, `bench` and the rest, and a global flag shows in every subcommand's help.
#[derive(clap::Args, Debug, Clone, Copy)]
struct Hex {
    /// Keys and values given and printed as hex (for binary data).
    #[arg(long)]
    hex: bool,
}

/// Inspect, verify, compact and benchmark a ferrocask store.
#[derive(Parser, Debug)]
#[command(name = "ferrocask", version, about)]
struct Cli {
    /// The store directory.
    #[arg(long, global = true, default_value = "./ferrocask-data")]
    dir: PathBuf,
    /// Keys and values given and printed as hex (for binary data): put, get, delete, keys and
    /// dump; also accepted after those subcommands.
    #[arg(long)]
    hex: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sets KEY to VALUE, durably (creates the store if missing).
    Put {
        key: String,
        value: String,
        #[command(flatten)]
        hex: Hex,
    },
    /// Prints KEY's value; exits 1 if the key is missing.
    Get {
        key: String,
        #[command(flatten)]
        hex: Hex,
    },
    /// Deletes KEY, durably (a missing key is not an error).
    Delete {
        key: String,
        #[command(flatten)]
        hex: Hex,
    },
    /// Lists live keys, sorted.
    Keys {
        /// Only keys starting with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        hex: Hex,
    },
    /// Prints size and activity counters.
    Stats {
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Checks every file of the store without opening it; exits 1 on damage.
    Verify,
    /// Rewrites sealed segments to reclaim the space of dead records.
    Compact,
    /// Lists every record in log order, without opening the store.
    Dump {
        #[command(flatten)]
        hex: Hex,
    },
    /// Copies the store, consistent as of one moment, into TARGET (which must not exist or be
    /// empty). The copy is a store of its own. A store a running `ferrocask serve` holds is
    /// backed up through the server instead: `redis-cli BGSAVE` (see `serve --backup-dir`).
    Backup { target: PathBuf },
    /// Serves the store over the Redis protocol (RESP2/RESP3) until SIGINT or SIGTERM; prints
    /// `ready on ADDR:PORT` once it accepts connections (then `ready on tls ADDR:PORT` and
    /// `ready on unix PATH` for those listeners). With `appendfsync always` (the default) every write is durable before its reply. Flags override the --config file.
    Serve {
        // Boxed: the flags are most of the enum's size.
        #[command(flatten)]
        flags: Box<serve::ServeFlags>,
    },
    /// Starts a local cluster of `serve` members (default 3, clients on ports 6379-6381), each in
    /// DIR/node-N; prints each one's PID and addresses. Ctrl-C stops it; running it again on
    /// the same --dir brings the same cluster back with its data.
    Cluster {
        #[command(flatten)]
        flags: cluster::ClusterFlags,
    },
    /// Benchmarks durable puts, gets, memory and open time against raw baselines, in a fresh
    /// temporary directory.
    Bench {
        /// Keys loaded for the get, memory and open workloads.
        #[arg(long, default_value_t = 1_000_000)]
        keys: usize,
        /// Seconds each put workload runs (gets run 3/4 of it).
        #[arg(long, default_value_t = 2.0)]
        secs: f64,
        /// Where to create the temporary directory (default: the system's temp dir).
        #[arg(long)]
        r#in: Option<PathBuf>,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Run only these sections (comma-separated): puts, gets, open, rmw (increments of one
        /// hot key and async writers). Default: all.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
}

impl Command {
    /// Whether `--hex` was given after the subcommand.
    fn hex(&self) -> bool {
        match self {
            Command::Put { hex, .. }
            | Command::Get { hex, .. }
            | Command::Delete { hex, .. }
            | Command::Keys { hex, .. }
            | Command::Dump { hex } => hex.hex,
            _ => false,
        }
    }

    /// Whether the subcommand reads or prints keys and values, so `--hex` means something to it.
    fn takes_hex(&self) -> bool {
        matches!(
            self,
            Command::Put { .. }
                | Command::Get { .. }
                | Command::Delete { .. }
                | Command::Keys { .. }
                | Command::Dump { .. }
        )
    }
}

/// A failure to report: one line, then a non-zero exit.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

type CliResult = Result<ExitCode, Failure>;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("ferrocask: internal error: {msg}");
    }));
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // `serve` takes its directory from --config unless --dir is given.
    let dir_given = matches.value_source("dir") == Some(clap::parser::ValueSource::CommandLine);
    match run(&cli, dir_given) {
        Ok(code) => code,
        Err(Failure(msg)) if msg.is_empty() => ExitCode::SUCCESS, // stdout closed early (a pipe)
        Err(Failure(msg)) => {
            eprintln!("ferrocask: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, dir_given: bool) -> CliResult {
    let hex = cli.hex || cli.command.hex();
    if cli.hex && !cli.command.takes_hex() {
        return Err(Failure("--hex applies to put, get, delete, keys and dump only".into()));
    }
    match &cli.command {
        Command::Put { key, value, .. } => {
            let store = open(&cli.dir, true)?;
            store.put(arg_bytes(key, hex)?, arg_bytes(value, hex)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Get { key, .. } => {
            let store = open(&cli.dir, false)?;
            match store.get(arg_bytes(key, hex)?)? {
                Some(value) => {
                    print_line(&show(&value, hex, false))?;
                    Ok(ExitCode::SUCCESS)
                }
                None => Err(Failure(format!("key not found: {key}"))),
            }
        }
        Command::Delete { key, .. } => {
            let store = open(&cli.dir, false)?;
            store.delete(arg_bytes(key, hex)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys { prefix, .. } => {
            let store = open(&cli.dir, false)?;
            let mut keys: Vec<Vec<u8>> = match prefix {
                Some(p) => store.scan_prefix(arg_bytes(p, hex)?).map(|(k, _)| k).collect(),
                None => store.keys().collect(),
            };
            keys.sort_unstable();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for k in &keys {
                out.write_all(&show(k, hex, false)).map_err(pipe)?;
                out.write_all(b"\n").map_err(pipe)?;
            }
            out.flush().map_err(pipe)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { json } => stats(&cli.dir, *json),
        Command::Verify => verify(&cli.dir),
        Command::Compact => {
            let store = open(&cli.dir, false)?;
            let bar = spinner("compacting");
            let r = store.compact();
            bar.finish_and_clear();
            let r = r?;
            print_line(
                format!(
                    "compacted {} segments ({} bytes) into {} ({} bytes): {} records copied, {} dropped, {} bytes reclaimed in {:.1} ms",
                    r.segments_read,
                    r.bytes_read,
                    r.segments_written,
                    r.bytes_written,
                    r.records_copied,
                    r.records_dropped,
                    r.bytes_reclaimed,
                    r.duration.as_secs_f64() * 1e3
                )
                .as_bytes(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dump { .. } => dump(&cli.dir, hex),
        Command::Backup { target } => {
            let store = open(&cli.dir, false).map_err(|e| locked_backup_advice(&cli.dir, e))?;
            let bar = spinner("backing up");
            let r = store.backup_to(target);
            bar.finish_and_clear();
            let r = r?;
            let line = format!(
                "backed up {} segments and {} hint files ({} bytes) to {} in {:.1} ms",
                r.segments,
                r.hints,
                r.bytes,
                r.path.display(),
                r.duration.as_secs_f64() * 1e3
            );
            print_line(line.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { keys, secs, r#in, json, only } => bench(*keys, *secs, r#in.as_deref(), *json, only),
        Command::Serve { flags } => serve::serve(flags, dir_given.then_some(cli.dir.as_path())),
        Command::Cluster { flags } => cluster::run(flags, &cli.dir),
    }
}

/// The backup's error when the store is open elsewhere (most likely by `ferrocask serve`): only
/// the process holding the store can cut a consistent copy of it, so the server makes it.
fn locked_backup_advice(dir: &Path, failure: Failure) -> Failure {
    if !failure.0.contains("is already open") {
        return failure;
    }
    Failure(format!(
        "{}; if a `ferrocask serve` holds it, back it up through the server: `redis-cli -p PORT BGSAVE` \
         (LASTSAVE changes when the copy is complete; SAVE waits for it), which makes a new \
         `{}-backup-<unix time>` directory beside the store or in the server's --backup-dir",
        failure.0,
        dir.file_name().map_or_else(|| "<dir>".into(), |n| n.to_string_lossy())
    ))
}

/// Opens the store; only `create` makes a new one.
fn open(dir: &Path, create: bool) -> Result<Store, Failure> {
    if !create && !dir.join("MANIFEST").exists() {
        return Err(Failure(format!("no store at {} (put a key to create one)", dir.display())));
    }
    let bar = spinner("opening the store");
    let store = Store::open(dir);
    bar.finish_and_clear();
    Ok(store?)
}

fn stats(dir: &Path, json: bool) -> CliResult {
    let store = open(dir, false)?;
    let s = store.stats();
    let fields: [(&str, String); 10] = [
        ("live_keys", s.live_keys.to_string()),
        ("live_bytes", s.live_bytes.to_string()),
        ("dead_bytes", s.dead_bytes.to_string()),
        ("disk_bytes", s.disk_bytes.to_string()),
        ("segments", s.segments.to_string()),
        ("compactions", s.compactions.to_string()),
        ("syncs", s.syncs.to_string()),
        ("frames", s.frames.to_string()),
        ("records_written", s.records_written.to_string()),
        ("records_per_sync", format!("{:.2}", s.records_per_sync)),
    ];
    let text = if json {
        let mut items: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let segments: Vec<String> = s
            .segment_details
            .iter()
            .map(|g| {
                format!(
                    "{{\"id\":{},\"kind\":\"{}\",\"data_bytes\":{},\"live_bytes\":{},\"dead_bytes\":{},\
                     \"live_records\":{},\"dead_records\":{},\"tombstones\":{}}}",
                    g.id,
                    segment_kind(g),
                    g.data_bytes,
                    g.live_bytes,
                    g.dead_bytes,
                    g.live_records,
                    g.dead_records,
                    g.tombstones
                )
            })
            .collect();
        items.push(format!("\"segment_details\":[{}]", segments.join(",")));
        format!("{{{}}}", items.join(","))
    } else {
        let mut lines: Vec<String> = fields.iter().map(|(k, v)| format!("{k:<17} {v}")).collect();
        lines.push(format!(
            "{:>16} {:<9} {:>12} {:>12} {:>12} {:>6} {:>10} {:>10} {:>10}",
            "segment",
            "kind",
            "data_bytes",
            "live_bytes",
            "dead_bytes",
            "dead%",
            "live_recs",
            "dead_recs",
            "tombstones"
        ));
        for g in &s.segment_details {
            let dead_pct = if g.data_bytes == 0 { 0.0 } else { 100.0 * g.dead_bytes as f64 / g.data_bytes as f64 };
            lines.push(format!(
                "{:016x} {:<9} {:>12} {:>12} {:>12} {:>5.1}% {:>10} {:>10} {:>10}",
                g.id,
                segment_kind(g),
                g.data_bytes,
                g.live_bytes,
                g.dead_bytes,
                dead_pct,
                g.live_records,
                g.dead_records,
                g.tombstones
            ));
        }
        lines.join("\n")
    };
    print_line(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn segment_kind(s: &ferrocask::SegmentStats) -> &'static str {
    match (s.active, s.compacted) {
        (true, _) => "active",
        (false, true) => "compacted",
        (false, false) => "log",
    }
}

fn verify(dir: &Path) -> CliResult {
    let bar = bytes_bar("verifying");
    let report = inspect::verify_with_progress(dir, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let r = report?;
    let mut out = String::new();
    out.push_str(&format!(
        "{} segments, {} bytes, {} frames, {} records ({} tombstones), {} hint files checked\n",
        r.segments, r.segment_bytes, r.frames, r.records, r.tombstones, r.hints_checked
    ));
    match &r.rebuild {
        Some(b) => out.push_str(&format!(
            "index rebuild: {} live keys ({} segments from hints, {} replayed)\n",
            b.live_keys, b.segments_from_hints, b.segments_replayed
        )),
        None => out.push_str("index rebuild: not attempted (see the damage below)\n"),
    }
    if let Some(t) = &r.torn_tail {
        out.push_str(&format!(
            "torn tail (an unacknowledged write, cut at the next open): {} at offset {}, {} bytes\n",
            t.path.display(),
            t.offset,
            t.bytes
        ));
    }
    for o in &r.orphans {
        out.push_str(&format!("orphan file (removed at the next open): {}\n", o.display()));
    }
    for d in &r.damage {
        out.push_str(&format!("DAMAGE {} at offset {}: {}\n", d.path.display(), d.offset, d.reason));
    }
    out.push_str(if r.is_ok() { "ok" } else { "damaged" });
    print_line(out.as_bytes())?;
    Ok(if r.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn dump(dir: &Path, hex: bool) -> CliResult {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = None;
    writeln!(out, "segment\toffset\tgroup\tseq\tkind\tkey\tvalue_len\texpires_ms").map_err(pipe)?;
    let report = inspect::dump(dir, |r| {
        let kind = match r.kind {
            RecordKind::Put => "put",
            RecordKind::Delete => "delete",
        };
        let line = format!("{}\t{}\t{}\t{}\t{kind}\t", r.segment_id, r.offset, r.group, r.seq);
        let written = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(&show(r.key, hex, true)))
            .and_then(|()| writeln!(out, "\t{}\t{}", r.value_len, r.expires_ms));
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(pipe(e));
    }
    out.flush().map_err(pipe)?;
    drop(out);
    if let Some(t) = &report.torn_tail {
        eprintln!("torn tail at {} offset {} ({} bytes) not listed", t.path.display(), t.offset, t.bytes);
    }
    for d in &report.damage {
        eprintln!("skipped damage in {} at offset {}: {}", d.path.display(), d.offset, d.reason);
    }
    Ok(if report.damage.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Draws the benchmark's stages as progress bars (on a terminal only).
struct BenchProgress {
    bar: RefCell<ProgressBar>,
}

impl workload::Progress for BenchProgress {
    fn stage(&self, label: &str, total: u64) {
        let mut bar = self.bar.borrow_mut();
        bar.finish_and_clear();
        *bar = if total == 0 { spinner(label) } else { count_bar(label, total) };
    }

    fn inc(&self, n: u64) {
        self.bar.borrow().inc(n);
    }
}

fn bench(keys: usize, secs: f64, parent: Option<&Path>, json: bool, only: &[String]) -> CliResult {
    if keys == 0 || !(secs > 0.0 && secs <= 600.0) {
        return Err(Failure("--keys must be positive and --secs within (0, 600]".into()));
    }
    const SECTIONS: [&str; 4] = ["puts", "gets", "open", "rmw"];
    if let Some(bad) = only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
        return Err(Failure(format!("unknown section {bad:?} for --only; expected some of {}", SECTIONS.join(", "))));
    }
    let wants = |section: &str| only.is_empty() || only.iter().any(|s| s == section);
    let dir = match parent {
        Some(p) => tempfile::tempdir_in(p),
        None => tempfile::tempdir(),
    }
    .map_err(|e| Failure(format!("cannot create a temporary directory: {e}")))?;
    let cfg = workload::Config {
        keys,
        put_secs: secs,
        get_secs: secs * 0.75,
        run_puts: wants("puts"),
        run_gets: wants("gets"),
        run_open: wants("open"),
        run_rmw: wants("rmw"),
        ..workload::Config::default()
    };
    let progress = BenchProgress { bar: RefCell::new(ProgressBar::hidden()) };
    let results = workload::run(dir.path(), &cfg, &progress);
    progress.bar.borrow().finish_and_clear();
    let results = results?;
    if json {
        print_line(workload::json(&results).as_bytes())?;
    } else {
        let head = format!(
            "ferrocask bench: {keys} keys of {} B, values of {} B, in {} (raw baselines on the same file system)\n",
            workload::KEY_BYTES,
            workload::VALUE_BYTES,
            dir.path().display()
        );
        print_line(format!("{head}{}", workload::table(&results)).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

fn spinner(msg: &str) -> ProgressBar {
    if !stderr_is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_message(msg.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn count_bar(msg: &str, total: u64) -> ProgressBar {
    if !stderr_is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{msg:>32} [{bar:40}] {pos}/{len} ({eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(total).with_style(style).with_message(msg.to_string())
}

fn bytes_bar(msg: &str) -> ProgressBar {
    if !stderr_is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(0).with_style(style).with_message(msg.to_string())
}

/// A key or value argument: UTF-8 bytes, or hex with `--hex`.
fn arg_bytes(arg: &str, hex: bool) -> Result<Vec<u8>, Failure> {
    if !hex {
        return Ok(arg.as_bytes().to_vec());
    }
    let digits = arg.strip_prefix("0x").unwrap_or(arg);
    if !digits.len().is_multiple_of(2) {
        return Err(Failure(format!("not hex (odd number of digits): {arg}")));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| Failure(format!("not hex: {arg}"))))
        .collect()
}

/// Bytes for output: hex with `--hex`, escaped if `escape` (for tab-separated lines), else as is.
fn show(bytes: &[u8], hex: bool, escape: bool) -> Vec<u8> {
    if hex {
        bytes.iter().flat_map(|b| format!("{b:02x}").into_bytes()).collect()
    } else if escape {
        bytes.escape_ascii().to_string().into_bytes()
    } else {
        bytes.to_vec()
    }
}

fn print_line(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()).map_err(pipe)
}

/// A write error on stdout; a closed pipe (`| head`) ends the program quietly.
fn pipe(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Failure(String::new())
    } else {
        Failure(format!("cannot write to stdout: {e}"))
    }
}
