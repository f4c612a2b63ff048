//! The listeners a server accepts on: plain TCP (`port`), TLS (`tls-port`, see [`tls`](crate::tls))
//! and a Unix socket (`unixsocket`, Unix only), side by side. Whatever the listener, a client
//! runs the same connection code over its stream (`Connection` is generic over it).
//!
//! [`Listeners::bind`] binds every listener the settings ask for, or none: it is called before
//! the store is opened, so a bad certificate or a failed bind leaves the store directory as it
//! was.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::config::Settings;

/// Every listener the server accepts clients on.
#[derive(Default)]
pub struct Listeners {
    /// Plain TCP.
    pub tcp: Option<TcpListener>,
    /// TLS over TCP, with the acceptor that runs the handshake.
    pub tls: Option<(TcpListener, TlsAcceptor)>,
    /// A Unix socket and its path (removed when the server stops).
    #[cfg(unix)]
    pub unix: Option<(tokio::net::UnixListener, PathBuf)>,
}

/// A client just accepted, by the listener it came in on.
pub(crate) enum Accepted {
    Tcp(TcpStream),
    Tls(TcpStream, TlsAcceptor),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// A client's two ends as CLIENT LIST shows them.
pub(crate) struct Ends {
    /// The client's: `ip:port`, or for the Unix socket its path and `:0` (Redis's form).
    pub(crate) peer: String,
    /// The server's: the listener's `ip:port`, or the socket's `path:0`.
    pub(crate) local: String,
    /// It came in on the Unix socket.
    pub(crate) unix: bool,
}

impl Accepted {
    /// Its two ends (`?` for one the OS cannot tell).
    pub(crate) fn ends(&self) -> Ends {
        let text = |addr: io::Result<SocketAddr>| addr.map_or_else(|_| "?".into(), |a| a.to_string());
        match self {
            Accepted::Tcp(s) | Accepted::Tls(s, _) => {
                Ends { peer: text(s.peer_addr()), local: text(s.local_addr()), unix: false }
            }
            #[cfg(unix)]
            Accepted::Unix(s) => {
                // An accepted Unix stream's own address is the socket's path.
                let path = s.local_addr().ok().and_then(|a| a.as_pathname().map(|p| p.display().to_string()));
                let at = format!("{}:0", path.unwrap_or_else(|| "?".into()));
                Ends { peer: at.clone(), local: at, unix: true }
            }
        }
    }
}

impl Listeners {
    /// Plain TCP on `listener` only.
    pub fn tcp(listener: TcpListener) -> Listeners {
        Listeners { tcp: Some(listener), ..Listeners::default() }
    }

    /// Binds what `settings` ask for: plain TCP on `bind`:`port` unless `port` is 0 and another
    /// listener is asked for (alone, port 0 means any free port), TLS on `bind`:`tls-port` if it
    /// is not 0, the Unix socket at `unixsocket` if it is not empty. The error says which one
    /// failed and why. Call it inside a tokio runtime.
    pub async fn bind(settings: &Settings) -> Result<Listeners, String> {
        let mut listeners = Listeners::default();
        // Checked first: a bad certificate is refused before any port is taken.
        let acceptor = match settings.tls_port {
            0 => None,
            _ => Some(crate::tls::acceptor(settings)?),
        };
        let others = settings.tls_port != 0 || !settings.unixsocket.is_empty();
        if settings.port != 0 || !others {
            listeners.tcp = Some(bind_tcp(&settings.bind, settings.port, "port").await?);
        }
        if let Some(acceptor) = acceptor {
            listeners.tls = Some((bind_tcp(&settings.bind, settings.tls_port, "tls-port").await?, acceptor));
        }
        if !settings.unixsocket.is_empty() {
            listeners.bind_unix(&settings.unixsocket, settings.unixsocketperm)?;
        }
        Ok(listeners)
    }

    #[cfg(unix)]
    fn bind_unix(&mut self, path: &str, perm: u32) -> Result<(), String> {
        self.unix = Some(crate::unix_socket::bind(path.as_ref(), perm)?);
        Ok(())
    }

    #[cfg(not(unix))]
    fn bind_unix(&mut self, path: &str, _perm: u32) -> Result<(), String> {
        Err(format!(
            "unixsocket {path}: Unix sockets are not supported on this platform; remove unixsocket (--unixsocket) \
             and use the TCP port"
        ))
    }

    /// The plain listener's address, if there is one.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The TLS listener's address, if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The Unix socket's path, if there is one.
    pub fn unix_path(&self) -> Option<PathBuf> {
        #[cfg(unix)]
        if let Some((_, path)) = &self.unix {
            return Some(path.clone());
        }
        None
    }

    /// What each listener is on, one `ready on ...` line each: the plain address first (as
    /// `ready on HOST:PORT`, which scripts wait for), then `tls HOST:PORT` and `unix PATH`.
    pub fn ready_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(addr) = self.tcp_addr() {
            lines.push(format!("ready on {addr}"));
        }
        if let Some(addr) = self.tls_addr() {
            lines.push(format!("ready on tls {addr}"));
        }
        if let Some(path) = self.unix_path() {
            lines.push(format!("ready on unix {}", path.display()));
        }
        lines
    }

    /// The next client on any listener. A listener that is not there never answers.
    pub(crate) async fn accept(&self) -> io::Result<Accepted> {
        let tcp = async {
            match &self.tcp {
                Some(listener) => listener.accept().await.map(|(s, _)| s),
                None => std::future::pending().await,
            }
        };
        let tls = async {
            match &self.tls {
                Some((listener, acceptor)) => listener.accept().await.map(|(s, _)| (s, acceptor.clone())),
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        let unix = async {
            match &self.unix {
                Some((listener, _)) => listener.accept().await.map(|(s, _)| s),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let unix = std::future::pending::<io::Result<std::convert::Infallible>>();
        tokio::select! {
            s = tcp => s.map(Accepted::Tcp),
            s = tls => s.map(|(s, a)| Accepted::Tls(s, a)),
            s = unix => s.map(unix_accepted),
        }
    }

    /// Removes the Unix socket's file (as Redis does when it stops).
    pub(crate) fn remove_socket_file(&self) {
        if let Some(path) = self.unix_path() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(unix)]
fn unix_accepted(stream: tokio::net::UnixStream) -> Accepted {
    Accepted::Unix(stream)
}

#[cfg(not(unix))]
fn unix_accepted(never: std::convert::Infallible) -> Accepted {
    match never {}
}

/// A TCP listener on `host`:`port`; `directive` names the port in the error.
async fn bind_tcp(host: &str, port: u16, directive: &str) -> Result<TcpListener, String> {
    let addrs: Vec<SocketAddr> =
        (host, port).to_socket_addrs().map_err(|e| format!("resolving bind {host}: {e}"))?.collect();
    TcpListener::bind(&addrs[..]).await.map_err(|e| format!("binding {host}:{port} ({directive}): {e}"))
}
