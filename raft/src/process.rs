//! Starting nodes as child processes of the `ferrocask-raft` binary (`ferrocask-raft node ...`),
//! for the one-command cluster, the benchmark and the kill-the-leader tests.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::NodeId;

/// The line a node prints on stdout once it listens: `ready <address>`.
pub const READY: &str = "ready";

/// A node running in a child process.
#[derive(Debug)]
pub struct NodeProcess {
    /// The node's id.
    pub id: NodeId,
    /// The address it listens on.
    pub addr: String,
    /// Its directory.
    pub dir: PathBuf,
    child: Child,
    /// Held open for the node's lifetime: the node exits when it closes, so a parent that dies
    /// (even by SIGKILL) takes its nodes with it.
    _lifeline: ChildStdin,
}

impl NodeProcess {
    /// Runs `exe node --id ID --dir DIR --listen LISTEN [--snapshot-every N]` and waits until the
    /// node says it listens (its `ready` line), so no caller has to guess when it is up.
    pub fn spawn(
        exe: &Path,
        id: NodeId,
        dir: &Path,
        listen: &str,
        snapshot_every: Option<u64>,
    ) -> io::Result<NodeProcess> {
        let mut command = Command::new(exe);
        command.arg("node").arg("--id").arg(id.to_string()).arg("--dir").arg(dir).arg("--listen").arg(listen);
        command.arg("--parent-watch").arg("stdin");
        if let Some(every) = snapshot_every {
            command.arg("--snapshot-every").arg(every.to_string());
        }
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let lifeline = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix(READY).map(|a| a.trim().to_string()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!("node {id} did not start: {line:?}")));
        };
        Ok(NodeProcess { id, addr, dir: dir.to_path_buf(), child, _lifeline: lifeline })
    }

    /// Kills the node with SIGKILL (no shutdown code runs) and reaps it.
    pub fn kill(mut self) -> io::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Waits for the node to exit by itself.
    pub fn wait(mut self) -> io::Result<std::process::ExitStatus> {
        self.child.wait()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // A test that fails half-way must not leave nodes running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
