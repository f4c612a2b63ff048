//! `ferrocask-raft`: run a node, a 3-node loopback cluster, a client command, or the benchmark.
//!
//! ```text
//! ferrocask-raft cluster [--dir DIR] [--port P]     3 nodes on 127.0.0.1:P..P+2 (default 21001)
//! ferrocask-raft put KEY VALUE [--nodes A,B,C]      write through the leader
//! ferrocask-raft get KEY [--nodes A,B,C]            linearizable read through the leader
//! ferrocask-raft delete KEY [--nodes A,B,C]
//! ferrocask-raft node --id N --dir DIR --listen ADDR [--snapshot-every N]
//! ferrocask-raft bench [--seconds S] [--rounds R] [--clients 1,16,64]
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocask_raft::client::{call_node, Client};
use ferrocask_raft::network::{KvReply, KvRequest};
use ferrocask_raft::node::{Node, NodeConfig};
use ferrocask_raft::process::{NodeProcess, READY};

type Failure = Box<dyn std::error::Error>;

const DEFAULT_PORT: u16 = 21001;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("node") => run_node(&args[1..]),
        Some("cluster") => run_cluster(&args[1..]),
        Some("put" | "get" | "delete") => run_client(&args[0], &args[1..]),
        Some("bench") => run_bench(&args[1..]),
        _ => Err(USAGE.into()),
    };
    if let Err(e) = result {
        eprintln!("ferrocask-raft: {e}");
        std::process::exit(1);
    }
}

const USAGE: &str = "usage: ferrocask-raft cluster [--dir DIR] [--port P] | put KEY VALUE [--nodes A,B,C] | \
get KEY [--nodes ..] | delete KEY [--nodes ..] | node --id N --dir DIR --listen ADDR [--snapshot-every N] | \
bench [--seconds S] [--rounds R] [--clients 1,16,64]";

/// `--name value` flags and positional arguments.
struct Args {
    flags: BTreeMap<String, String>,
    positional: Vec<String>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Args, Failure> {
        let mut flags = BTreeMap::new();
        let mut positional = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                let value = iter.next().ok_or_else(|| format!("--{name} needs a value"))?;
                flags.insert(name.to_string(), value.clone());
            } else {
                positional.push(arg.clone());
            }
        }
        Ok(Args { flags, positional })
    }

    fn get<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Failure> {
        match self.flags.get(name) {
            Some(text) => Ok(Some(text.parse().map_err(|_| format!("--{name}: cannot parse {text:?}"))?)),
            None => Ok(None),
        }
    }

    fn required<T: std::str::FromStr>(&self, name: &str) -> Result<T, Failure> {
        self.get(name)?.ok_or_else(|| format!("--{name} is required").into())
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn run_node(args: &[String]) -> Result<(), Failure> {
    let args = Args::parse(args)?;
    let config = NodeConfig {
        id: args.required("id")?,
        dir: args.required::<PathBuf>("dir")?,
        listen: args.required("listen")?,
        snapshot_every: args.get("snapshot-every")?,
    };
    if args.flags.get("parent-watch").map(String::as_str) == Some("stdin") {
        // Started by a parent process: exit when it closes our stdin (or dies).
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    runtime()?.block_on(async {
        let node = Node::start(config).await?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{READY} {}", node.addr)?;
        stdout.flush()?;
        // Runs until killed.
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// Starts three node processes of this binary and initialises them as one cluster.
fn start_cluster(dir: &std::path::Path, listen: [String; 3]) -> Result<Vec<NodeProcess>, Failure> {
    let exe = std::env::current_exe()?;
    let mut nodes = Vec::new();
    for (i, listen) in listen.iter().enumerate() {
        let id = i as u64 + 1;
        nodes.push(NodeProcess::spawn(&exe, id, &dir.join(format!("node-{id}")), listen, None)?);
    }
    let members: BTreeMap<u64, String> = nodes.iter().map(|n| (n.id, n.addr.clone())).collect();
    runtime()?.block_on(async {
        let timeout = Duration::from_secs(10);
        expect_done(call_node(&nodes[0].addr, KvRequest::Init { members }, timeout).await?)?;
        let wait = KvRequest::Wait { leader_not: None, leader_known: true, applied_at_least: None, timeout_ms: 10_000 };
        match call_node(&nodes[0].addr, wait, timeout + timeout).await? {
            KvReply::Status(status) => {
                println!("leader: node {}", status.leader.unwrap_or_default());
                Ok::<(), Failure>(())
            }
            other => Err(format!("no leader: {other:?}").into()),
        }
    })?;
    Ok(nodes)
}

fn expect_done(reply: KvReply) -> Result<(), Failure> {
    match reply {
        KvReply::Done => Ok(()),
        other => Err(format!("unexpected reply {other:?}").into()),
    }
}

fn run_cluster(args: &[String]) -> Result<(), Failure> {
    let args = Args::parse(args)?;
    let dir: PathBuf = args.get("dir")?.unwrap_or_else(|| PathBuf::from("ferrocask-cluster"));
    let port: u16 = args.get("port")?.unwrap_or(DEFAULT_PORT);
    let listen = [0, 1, 2].map(|i| format!("127.0.0.1:{}", port + i));
    let nodes = start_cluster(&dir, listen)?;
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr.clone()).collect();
    println!("3 nodes in {} on {}; Ctrl-C stops them.", dir.display(), addrs.join(", "));
    println!("try:  ferrocask-raft put hello world --nodes {}", addrs.join(","));
    println!("      ferrocask-raft get hello --nodes {}", addrs.join(","));
    for node in nodes {
        node.wait()?;
    }
    Ok(())
}

fn run_client(command: &str, args: &[String]) -> Result<(), Failure> {
    let args = Args::parse(args)?;
    let nodes: String = args
        .get("nodes")?
        .unwrap_or_else(|| (0..3).map(|i| format!("127.0.0.1:{}", DEFAULT_PORT + i)).collect::<Vec<_>>().join(","));
    let mut client = Client::new(nodes.split(',').map(str::to_string).collect());
    let key = args.positional.first().ok_or(USAGE)?.as_bytes().to_vec();
    runtime()?.block_on(async {
        match command {
            "put" => client.put(&key, args.positional.get(1).ok_or(USAGE)?.as_bytes()).await?,
            "delete" => client.delete(&key).await?,
            _ => match client.get(&key).await? {
                Some(value) => println!("{}", String::from_utf8_lossy(&value)),
                None => println!("(not found)"),
            },
        }
        Ok(())
    })
}

fn run_bench(args: &[String]) -> Result<(), Failure> {
    let args = Args::parse(args)?;
    let seconds: f64 = args.get("seconds")?.unwrap_or(2.0);
    let rounds: usize = args.get("rounds")?.unwrap_or(3);
    let clients: Vec<usize> = match args.flags.get("clients") {
        Some(list) => list.split(',').map(|c| c.parse()).collect::<Result<_, _>>()?,
        None => vec![1, 16, 64],
    };
    let duration = Duration::from_secs_f64(seconds);
    let dir = tempfile::tempdir_in(".")?;
    let nodes = start_cluster(dir.path(), ["127.0.0.1:0".into(), "127.0.0.1:0".into(), "127.0.0.1:0".into()])?;
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let single = Arc::new(ferrocask::Store::open(dir.path().join("single"))?);
    let rt = runtime()?;
    // results[clients][round] = (replicated, single)
    let mut results: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for round in 0..rounds {
        for &c in &clients {
            let replicated = rt.block_on(replicated_rate(&addrs, c, duration, round))?;
            let local = rt.block_on(single_rate(&single, c, duration, round))?;
            eprintln!("round {round} clients {c}: replicated {replicated:.0}/s, single {local:.0}/s");
            results.entry(c).or_default().push((replicated, local));
        }
    }
    println!("| clients | 3-node replicated writes/s (median) | single-node writes/s (median) | replicated / single per round |");
    println!("|---:|---:|---:|---|");
    for (c, runs) in &results {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let replicated = median(runs.iter().map(|r| r.0).collect());
        let local = median(runs.iter().map(|r| r.1).collect());
        let ratios: Vec<String> = runs.iter().map(|(r, l)| format!("{:.2}", r / l)).collect();
        println!("| {c} | {replicated:.0} | {local:.0} | {} |", ratios.join(", "));
    }
    drop(nodes);
    Ok(())
}

const VALUE: [u8; 100] = [b'v'; 100];

async fn replicated_rate(addrs: &[String], clients: usize, duration: Duration, round: usize) -> Result<f64, Failure> {
    let mut connected = Vec::new();
    for task in 0..clients {
        let mut client = Client::new(addrs.to_vec());
        // Find the leader before the clock starts.
        client.put(format!("warm/{task}").as_bytes(), &VALUE).await?;
        connected.push(client);
    }
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = connected
        .into_iter()
        .enumerate()
        .map(|(task, mut client)| {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    client.put(format!("r{round}/{task}/{n}").as_bytes(), &VALUE).await?;
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, ferrocask_raft::client::ClientError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

async fn single_rate(
    store: &Arc<ferrocask::Store>,
    clients: usize,
    duration: Duration,
    round: usize,
) -> Result<f64, Failure> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|task| {
            let store = Arc::clone(store);
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    store.put_async(format!("s{round}/{task}/{n}"), VALUE).await?;
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, ferrocask::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}
