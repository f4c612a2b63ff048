//! `ferrocask cluster`: a local cluster in one command, for trying the replicated server out:
//! N `ferrocask serve` processes on loopback, each a member with its own directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};

use crate::Failure;

/// What `ferrocask cluster` starts.
#[derive(clap::Args, Debug)]
pub(crate) struct ClusterFlags {
    /// Members to start (3 survives the loss of one, 5 of two).
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Node N's clients connect to this port + N - 1 (so 6379, 6380, 6381).
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Node N's Raft listener is on this port + N - 1 (so 7379, 7380, 7381).
    #[arg(long, default_value_t = 7379)]
    raft_port: u16,
}

/// Starts the members (each in `dir/node-N`), prints each one's PID and addresses once it is
/// ready, and waits; SIGINT (Ctrl-C) or SIGTERM stops them all. A member that exits is reported
/// and the others are stopped.
pub(crate) fn run(flags: &ClusterFlags, dir: &Path) -> Result<ExitCode, Failure> {
    if flags.nodes == 0 {
        return Err(Failure("--nodes must be at least 1".into()));
    }
    let exe = std::env::current_exe()?;
    let peers: Vec<String> =
        (1..=flags.nodes).map(|n| format!("{n}=127.0.0.1:{}", u32::from(flags.raft_port) + u32::from(n) - 1)).collect();
    let peers = peers.join(",");
    let mut children: Vec<(u16, Child)> = Vec::new();
    for n in 1..=flags.nodes {
        let port = u32::from(flags.port) + u32::from(n) - 1;
        let port = u16::try_from(port).map_err(|_| Failure(format!("port {port} is out of range")))?;
        let node_dir = dir.join(format!("node-{n}"));
        let mut child = Command::new(&exe)
            .arg("serve")
            .arg("--dir")
            .arg(&node_dir)
            .arg("--port")
            .arg(port.to_string())
            .arg("--node-id")
            .arg(n.to_string())
            .arg("--peers")
            .arg(&peers)
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if !line.starts_with("ready on ") {
            let _ = child.kill();
            for (_, mut c) in children {
                let _ = c.kill();
            }
            return Err(Failure(format!("node {n} did not start (its log is on stderr above)")));
        }
        println!(
            "node {n}: pid {} clients 127.0.0.1:{port} raft 127.0.0.1:{} dir {}",
            child.id(),
            u32::from(flags.raft_port) + u32::from(n) - 1,
            node_dir.display()
        );
        children.push((n, child));
    }
    println!(
        "cluster of {} ready: redis-cli -p {} (any node takes any command); Ctrl-C stops it",
        flags.nodes, flags.port
    );
    // Wait for a signal (SIGINT, SIGTERM) or for a member to exit; then stop the rest. Killed,
    // not asked: a member is crash-safe by design, and a member that is gone cannot be asked.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let failed = runtime.block_on(async {
        let stop = crate::serve::shutdown_signal()?;
        tokio::pin!(stop);
        loop {
            for (n, child) in &mut children {
                if let Some(status) = child.try_wait()? {
                    eprintln!("node {n} exited: {status}; stopping the others");
                    return Ok::<bool, Failure>(!status.success());
                }
            }
            // Polling a child's exit: std has no portable wait-for-any.
            tokio::select! {
                () = &mut stop => return Ok(false),
                () = tokio::time::sleep(CHILD_POLL) => {}
            }
        }
    })?;
    for (_, child) in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// How often `cluster` looks for a member that exited.
const CHILD_POLL: std::time::Duration = std::time::Duration::from_millis(200);
