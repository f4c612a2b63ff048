//! `ferrocask serve`: the store as a Redis-protocol server (see the ferrocask-server crate).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ferrocask::{Options, Store};
use ferrocask_server::Config;

use crate::Failure;

/// What `ferrocask serve` was given.
pub(crate) struct ServeArgs<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) bind: &'a str,
    pub(crate) port: u16,
    pub(crate) requirepass_file: Option<&'a PathBuf>,
    pub(crate) maxclients: usize,
    /// Refuse a non-loopback bind without a password (Redis's protected mode).
    pub(crate) protected_mode: bool,
    /// Where SAVE and BGSAVE make backups (`None`: beside the store).
    pub(crate) backup_dir: Option<&'a Path>,
}

/// Reads the password: the file's content without one trailing line end.
fn read_password(path: &Path) -> Result<Vec<u8>, Failure> {
    let mut bytes = std::fs::read(path).map_err(|e| Failure(format!("reading {}: {e}", path.display())))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(Failure(format!("{} holds an empty password", path.display())));
    }
    Ok(bytes)
}

/// Serves until SIGINT or SIGTERM, then closes every connection and the store.
///
/// Everything that can refuse the start (protected mode, the password file, the bind) is done
/// before the store is opened, so a refused start leaves `--dir` as it was: opening creates it.
pub(crate) fn serve(args: ServeArgs<'_>) -> Result<ExitCode, Failure> {
    let password = args.requirepass_file.map(|p| read_password(p)).transpose()?;
    let addrs = resolve(args.bind, args.port)?;
    if args.protected_mode && password.is_none() {
        refuse_unprotected(&addrs)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&addrs[..]))
        .map_err(|e| Failure(format!("binding {}:{}: {e}", args.bind, args.port)))?;
    let options = Options::default();
    let (clock, value_bytes_max) = (options.clock.clone(), options.value_bytes_max);
    let store = Arc::new(Store::open_with(args.dir, options)?);
    let maxclients = fit_maxclients(args.maxclients.max(1), &store)?;
    let backup_dir = args.backup_dir.map(Path::to_path_buf);
    let config = Config { maxclients, password, clock, value_bytes_max, backup_dir, ..Config::default() };
    runtime.block_on(async {
        let local = listener.local_addr()?;
        crate::print_line(format!("ready on {local}").as_bytes())?;
        ferrocask_server::run(listener, store.clone(), config, shutdown_signal()).await?;
        Ok::<(), Failure>(())
    })?;
    drop(runtime);
    // Every connection has ended, so this is the last reference: dropping it closes the store,
    // finishing any write still queued.
    match Arc::try_unwrap(store) {
        Ok(store) => drop(store),
        Err(_) => return Err(Failure("the store is still in use after shutdown".into())),
    }
    Ok(ExitCode::SUCCESS)
}

/// The addresses `bind`:`port` names (a host name may name several).
fn resolve(bind: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
    let addrs: Vec<SocketAddr> =
        (bind, port).to_socket_addrs().map_err(|e| Failure(format!("resolving --bind {bind}: {e}")))?.collect();
    if addrs.is_empty() {
        return Err(Failure(format!("--bind {bind} names no address")));
    }
    Ok(addrs)
}

/// Protected mode, as Redis's: with no password, only the loopback interface may be served.
/// Redis starts and then answers every outside client with a `-DENIED` error that explains
/// itself; ferrocask refuses to start instead, with the same reasoning and remedies, because a
/// server that cannot serve the address it was told to listen on is a configuration mistake
/// better found at once than by the first remote client.
fn refuse_unprotected(addrs: &[SocketAddr]) -> Result<(), Failure> {
    let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback()) else { return Ok(()) };
    Err(Failure(format!(
        "refusing to listen on {open}: protected mode is enabled and no password is set for the default user. \
         In this mode (as in Redis) connections are only accepted from the loopback interface, so that a server \
         without a password is not open to everyone who can reach it. Do one of these: 1) set a password \
         (--requirepass-file FILE, or `requirepass` in the --config file); 2) bind a loopback address \
         (--bind 127.0.0.1); 3) if every host that can reach this address may read and write every key, disable \
         protected mode with '--protected-mode no' (or `protected-mode no` in the config file), but MAKE SURE \
         the server is not reachable from the internet if you do so."
    )))
}

/// Raises the open-file limit towards what `requested` clients need beside the store's open
/// segments, or lowers maxclients to what it allows; says which on stderr in Redis's words, and
/// fails as Redis does when the limit leaves no room for a single client.
fn fit_maxclients(requested: usize, store: &Store) -> Result<usize, Failure> {
    let fit = ferrocask_server::fd_limit::fit_maxclients(requested, store.stats().segments);
    let mut messages = fit.messages();
    if fit.maxclients == 0 {
        return Err(Failure(messages.pop().unwrap_or_default()));
    }
    for line in messages {
        eprintln!("{line}");
    }
    Ok(fit.maxclients)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
