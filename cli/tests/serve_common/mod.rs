//! Starting a real `ferrocask serve` process for the CLI's server tests.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `ferrocask serve` on `dir` and a free port; waits for its `ready on` line.
pub fn start(dir: &std::path::Path) -> (Child, SocketAddr) {
    spawn_ready(command(dir))
}

/// The command that serves `dir` on a free port, with its stdout piped for the ready line.
pub fn command(dir: &std::path::Path) -> Command {
    command_on(dir, 0)
}

/// The command that serves `dir` on `port` (0: any free port), with its stdout piped for the
/// ready line. A test that restarts a server on the same address picks the port once with
/// [`free_port`].
pub fn command_on(dir: &std::path::Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocask"));
    command.arg("--dir").arg(dir).args(["serve", "--port", &port.to_string()]);
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    command
}

/// A loopback port free when asked (the OS's choice for port 0, released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Spawns `command` (from [`command`]) and waits for its `ready on` line.
pub fn spawn_ready(mut command: Command) -> (Child, SocketAddr) {
    wait_ready(command.spawn().expect("spawn ferrocask serve"))
}

/// Waits for a spawned server's `ready on` line (its stdout piped, as [`command`] sets it).
pub fn wait_ready(mut child: Child) -> (Child, SocketAddr) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).expect("a ready line within 30 s");
    let addr = line.strip_prefix("ready on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, addr.parse().unwrap())
}

/// A served process that is killed when dropped, so a test that fails half way leaves no server
/// behind (holding its pipes open, which would keep the test runner's output from ending).
pub struct Served(Option<Child>);

impl Served {
    pub fn new(child: Child) -> Served {
        Served(Some(child))
    }

    /// The process's exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.0.as_mut().and_then(|child| child.try_wait().unwrap())
    }

    /// The process, no longer killed on drop.
    pub fn take(mut self) -> Child {
        self.0.take().expect("taken once")
    }

    /// Stops the server as a service manager would (SIGTERM) and checks it exits cleanly.
    #[cfg(unix)]
    pub fn stop(self) {
        let mut child = self.take();
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        assert!(child.wait().unwrap().success(), "clean exit after SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
