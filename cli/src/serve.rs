//! `ferrocask serve`: the store as a Redis-protocol server (see the ferrocask-server crate).

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
pub(crate) fn serve(args: ServeArgs<'_>) -> Result<ExitCode, Failure> {
    let password = args.requirepass_file.map(|p| read_password(p)).transpose()?;
    let options = Options::default();
    let (clock, value_bytes_max) = (options.clock.clone(), options.value_bytes_max);
    let store = Arc::new(Store::open_with(args.dir, options)?);
    let maxclients = fit_maxclients(args.maxclients.max(1), &store)?;
    let config = Config { maxclients, password, clock, value_bytes_max, ..Config::default() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.bind, args.port))
            .await
            .map_err(|e| Failure(format!("binding {}:{}: {e}", args.bind, args.port)))?;
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
