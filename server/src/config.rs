//! The server's parameters: their values ([`Settings`]), the redis.conf-style file they are read
//! from (`ferrocask serve --config FILE`) and written back to (CONFIG REWRITE), and the rule for
//! each one, shared by the file and CONFIG SET so both accept and refuse the same values with the
//! same words (Redis's).
//!
//! A file holds one directive per line, `name value`, split as Redis splits it (`sdssplitargs`:
//! quotes and escapes); blank lines and lines starting with `#` are comments. An unknown
//! directive, a wrong number of arguments or a bad value is an error naming the line, as Redis's
//! `FATAL CONFIG FILE ERROR` does. A directive given twice: the last one counts (as in Redis).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::cmd::parse::strict_i64;

/// When the store syncs its log (`appendfsync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendFsync {
    /// Every write durable before its reply (the store's `SyncMode::Always`). The default.
    Always,
    /// Write-back: synced about once a second (the store's `SyncMode::Every(1 s)`).
    Everysec,
}

/// How often the store syncs with `appendfsync everysec` (Redis's: once a second).
pub const EVERYSEC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl AppendFsync {
    /// The store's sync mode for this value.
    pub fn sync_mode(self) -> ferrocask::SyncMode {
        match self {
            AppendFsync::Always => ferrocask::SyncMode::Always,
            AppendFsync::Everysec => ferrocask::SyncMode::Every(EVERYSEC_INTERVAL),
        }
    }

    /// The directive's value.
    pub fn name(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::Everysec => "everysec",
        }
    }
}

/// Which TLS clients must show a certificate (`tls-auth-clients`), checked against
/// `tls-ca-cert-file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsAuthClients {
    /// Every client must show a certificate the CA signed (Redis's default).
    Yes,
    /// Client certificates are neither asked for nor checked.
    No,
    /// A client may show none; one it shows must be the CA's.
    Optional,
}

impl TlsAuthClients {
    /// The directive's value.
    pub fn name(self) -> &'static str {
        match self {
            TlsAuthClients::Yes => "yes",
            TlsAuthClients::No => "no",
            TlsAuthClients::Optional => "optional",
        }
    }
}

/// The largest `unixsocketperm` (the permission bits and setuid, setgid, sticky: octal 7777).
pub const UNIXSOCKETPERM_MAX: u32 = 0o7777;

/// The log levels Redis knows (`loglevel`).
pub const LOG_LEVELS: [&str; 4] = ["debug", "verbose", "notice", "warning"];

/// The largest `timeout` (Redis keeps it in a C `int`).
pub const TIMEOUT_SECS_MAX: i64 = i32::MAX as i64;
/// The largest `maxclients` (Redis keeps it in a C `unsigned int`).
pub const MAXCLIENTS_MAX: i64 = u32::MAX as i64;

/// Every parameter's value. [`Settings::default`] is what `ferrocask serve` runs with when
/// neither a file nor a flag says otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `bind`: the address to listen on (one; loopback by default).
    pub bind: String,
    /// `port`: the plain TCP port. 0 turns the plain listener off when `tls-port` or
    /// `unixsocket` gives another (as in Redis); alone, it means any free port.
    pub port: u16,
    /// `tls-port`: the TLS listener's TCP port on the same address (0: no TLS listener).
    pub tls_port: u16,
    /// `tls-cert-file`: the server's certificate chain, PEM (empty: none).
    pub tls_cert_file: String,
    /// `tls-key-file`: the certificate's private key, PEM (empty: none).
    pub tls_key_file: String,
    /// `tls-ca-cert-file`: the CA certificates client certificates are checked against, PEM
    /// (empty: none).
    pub tls_ca_cert_file: String,
    /// `tls-auth-clients`: which TLS clients must show a certificate.
    pub tls_auth_clients: TlsAuthClients,
    /// `unixsocket`: the path of a Unix socket to listen on too (empty: none; Unix only).
    pub unixsocket: String,
    /// `unixsocketperm`: the socket file's permission bits, octal (0: as the umask leaves them).
    pub unixsocketperm: u32,
    /// `dir`: the store directory.
    pub dir: PathBuf,
    /// `requirepass`: the default user's password (`None`: none).
    pub requirepass: Option<Vec<u8>>,
    /// `maxclients`: the most clients at once (lowered to what the open-file limit allows).
    pub maxclients: usize,
    /// `timeout`: seconds a client may stay idle (0: forever).
    pub timeout_secs: u64,
    /// `appendfsync`: when the store syncs.
    pub appendfsync: AppendFsync,
    /// `protected-mode`: refuse to start on a non-loopback address without a password.
    pub protected_mode: bool,
    /// `loglevel`: one of [`LOG_LEVELS`].
    pub loglevel: &'static str,
    /// `slowlog-log-slower-than`: microseconds past which a command is logged (-1: never, 0:
    /// every command).
    pub slowlog_log_slower_than: i64,
    /// `slowlog-max-len`: the most entries the slow log keeps.
    pub slowlog_max_len: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            bind: "127.0.0.1".into(),
            port: 6379,
            tls_port: 0,
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            tls_ca_cert_file: String::new(),
            tls_auth_clients: TlsAuthClients::Yes,
            unixsocket: String::new(),
            unixsocketperm: 0,
            dir: PathBuf::from("./ferrocask-data"),
            requirepass: None,
            maxclients: 10_000,
            timeout_secs: 0,
            appendfsync: AppendFsync::Always,
            protected_mode: true,
            loglevel: "notice",
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
        }
    }
}

/// Every parameter a file may set, in the order CONFIG REWRITE appends them.
pub const PARAMETERS: [&str; 18] = [
    "bind",
    "port",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "unixsocket",
    "unixsocketperm",
    "dir",
    "requirepass",
    "maxclients",
    "timeout",
    "appendfsync",
    "protected-mode",
    "loglevel",
    "slowlog-log-slower-than",
    "slowlog-max-len",
];

/// Why CONFIG SET refuses a parameter that a file may set: each is read once, when the server
/// starts. `None`: it may change at run time (`appendfsync` switches the store's sync mode).
pub(crate) fn fixed_at_start(name: &str) -> Option<&'static str> {
    match name {
        "bind" | "port" | "dir" | "maxclients" | "unixsocket" | "unixsocketperm" => Some("can't set immutable config"),
        "tls-port" | "tls-cert-file" | "tls-key-file" | "tls-ca-cert-file" | "tls-auth-clients" => Some(
            "the TLS listener is set up when the server starts in ferrocask (set it in the config file and restart)",
        ),
        "requirepass" => Some("can't set requirepass at run time in ferrocask (set it in the config file and restart)"),
        "protected-mode" => Some(
            "protected mode is checked when the server starts in ferrocask (set it in the config file and restart)",
        ),
        _ => None,
    }
}

impl Settings {
    /// Sets parameter `name` (lowercase) from its text, with Redis's checks; the error is
    /// Redis's reason (what follows `CONFIG SET failed ... - `). `Err(None)`: no such parameter.
    pub fn set(&mut self, name: &str, value: &[u8]) -> Result<(), Option<String>> {
        let text = || String::from_utf8_lossy(value).into_owned();
        match name {
            "bind" => self.bind = text(),
            "port" => self.port = int_in(value, 0, u16::MAX.into())? as u16,
            "tls-port" => self.tls_port = int_in(value, 0, u16::MAX.into())? as u16,
            "tls-cert-file" => self.tls_cert_file = text(),
            "tls-key-file" => self.tls_key_file = text(),
            "tls-ca-cert-file" => self.tls_ca_cert_file = text(),
            "tls-auth-clients" => {
                self.tls_auth_clients = match value.to_ascii_lowercase().as_slice() {
                    b"yes" => TlsAuthClients::Yes,
                    b"no" => TlsAuthClients::No,
                    b"optional" => TlsAuthClients::Optional,
                    _ => return Err(Some("argument(s) must be one of the following: no, yes, optional".into())),
                }
            }
            "unixsocket" => self.unixsocket = text(),
            "unixsocketperm" => self.unixsocketperm = octal_perm(value)?,
            "dir" => self.dir = PathBuf::from(text()),
            "requirepass" => self.requirepass = (!value.is_empty()).then(|| value.to_vec()),
            "maxclients" => self.maxclients = int_in(value, 1, MAXCLIENTS_MAX)? as usize,
            "timeout" => self.timeout_secs = int_in(value, 0, TIMEOUT_SECS_MAX)? as u64,
            "appendfsync" => {
                self.appendfsync = match value.to_ascii_lowercase().as_slice() {
                    b"always" => AppendFsync::Always,
                    b"everysec" => AppendFsync::Everysec,
                    _ => return Err(Some("argument(s) must be one of the following: everysec, always".into())),
                }
            }
            "protected-mode" => self.protected_mode = yes_no(value)?,
            "loglevel" => {
                let lower = value.to_ascii_lowercase();
                let Some(level) = LOG_LEVELS.iter().find(|l| l.as_bytes() == lower) else {
                    return Err(Some(format!("argument(s) must be one of the following: {}", LOG_LEVELS.join(", "))));
                };
                self.loglevel = level;
            }
            "slowlog-log-slower-than" => self.slowlog_log_slower_than = int_in(value, -1, i64::MAX)?,
            "slowlog-max-len" => self.slowlog_max_len = int_in(value, 0, i64::MAX)? as u64,
            _ => return Err(None),
        }
        Ok(())
    }

    /// Parameter `name`'s value as a file (and CONFIG GET) writes it.
    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        let text = match name {
            "bind" => self.bind.clone(),
            "port" => self.port.to_string(),
            "tls-port" => self.tls_port.to_string(),
            "tls-cert-file" => self.tls_cert_file.clone(),
            "tls-key-file" => self.tls_key_file.clone(),
            "tls-ca-cert-file" => self.tls_ca_cert_file.clone(),
            "tls-auth-clients" => self.tls_auth_clients.name().into(),
            "unixsocket" => self.unixsocket.clone(),
            "unixsocketperm" => format!("{:o}", self.unixsocketperm),
            "dir" => self.dir.to_string_lossy().into_owned(),
            "requirepass" => return Some(self.requirepass.clone().unwrap_or_default()),
            "maxclients" => self.maxclients.to_string(),
            "timeout" => self.timeout_secs.to_string(),
            "appendfsync" => self.appendfsync.name().into(),
            "protected-mode" => if self.protected_mode { "yes" } else { "no" }.into(),
            "loglevel" => self.loglevel.into(),
            "slowlog-log-slower-than" => self.slowlog_log_slower_than.to_string(),
            "slowlog-max-len" => self.slowlog_max_len.to_string(),
            _ => return None,
        };
        Some(text.into_bytes())
    }

    /// Applies a config file's text over these settings. `path` names the file in errors.
    pub fn read_file(&mut self, path: &Path, text: &str) -> Result<(), String> {
        for (i, line) in text.lines().enumerate() {
            let Some((name, args)) = directive(line) else { continue };
            let fail =
                |why: &str| format!("config file {}, line {}: >>> '{}': {why}", path.display(), i + 1, line.trim());
            let Some(name) = name else { return Err(fail("unbalanced quotes in configuration line")) };
            if args.len() != 1 || !PARAMETERS.contains(&name.as_str()) {
                return Err(fail("Bad directive or wrong number of arguments"));
            }
            self.set(&name, &args[0]).map_err(|why| fail(&why.unwrap_or_default()))?;
        }
        Ok(())
    }

    /// The text of a config file holding these settings: `original`'s lines with each known
    /// directive's value replaced by the current one (a repeated directive is written once),
    /// comments and blank lines kept; then, after Redis's marker line, every parameter the file
    /// did not name whose value is not the default.
    pub fn rewrite(&self, original: &str) -> String {
        let mut out = String::new();
        let mut written: Vec<String> = Vec::new();
        for line in original.lines() {
            match directive(line) {
                Some((Some(name), _)) if PARAMETERS.contains(&name.as_str()) => {
                    if !written.contains(&name) {
                        let _ = writeln!(out, "{}", self.line(&name));
                        written.push(name);
                    }
                }
                _ => {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        let defaults = Settings::default();
        let missing: Vec<&str> = PARAMETERS
            .iter()
            .copied()
            .filter(|name| !written.iter().any(|w| w == name) && self.get(name) != defaults.get(name))
            .collect();
        if !missing.is_empty() {
            if !original.contains(REWRITE_MARKER) {
                let _ = writeln!(out, "{REWRITE_MARKER}");
            }
            for name in missing {
                let _ = writeln!(out, "{}", self.line(name));
            }
        }
        out
    }

    /// `name value`, the value quoted if it needs to be.
    fn line(&self, name: &str) -> String {
        format!("{name} {}", repr(&self.get(name).unwrap_or_default()))
    }
}

/// The line CONFIG REWRITE writes before the parameters it appends (Redis's).
const REWRITE_MARKER: &str = "# Generated by CONFIG REWRITE";

/// A line's directive (lowercase) and its arguments; `None` for a comment or blank line, and a
/// `None` name for unbalanced quotes.
fn directive(line: &str) -> Option<(Option<String>, Vec<Bytes>)> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    match crate::protocol::split_args(trimmed.as_bytes()) {
        Some(args) if !args.is_empty() => {
            Some((Some(String::from_utf8_lossy(&args[0]).to_ascii_lowercase()), args[1..].to_vec()))
        }
        Some(_) => None,
        None => Some((None, Vec::new())),
    }
}

/// A value as a config file line holds it: bare when it is plain, else double-quoted with
/// escapes (Redis's `sdscatrepr`), so that [`Settings::read_file`] reads back the same bytes.
fn repr(value: &[u8]) -> String {
    let plain = !value.is_empty() && value.iter().all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\'));
    if plain {
        return String::from_utf8_lossy(value).into_owned();
    }
    let mut out = String::new();
    cat_repr(&mut out, value);
    out
}

/// Appends `value` double-quoted with escapes, as Redis's `sdscatrepr` (also MONITOR's form).
pub(crate) fn cat_repr(out: &mut String, value: &[u8]) {
    out.push('"');
    for &b in value {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            b if b == b' ' || b.is_ascii_graphic() => out.push(b as char),
            b => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
}

/// An integer within `[min, max]`, with Redis's reasons.
fn int_in(value: &[u8], min: i64, max: i64) -> Result<i64, Option<String>> {
    match strict_i64(value) {
        None => Err(Some("argument couldn't be parsed into an integer".into())),
        Some(n) if !(min..=max).contains(&n) => {
            Err(Some(format!("argument must be between {min} and {max} inclusive")))
        }
        Some(n) => Ok(n),
    }
}

/// Permission bits in octal (`700`, `0770`), at most [`UNIXSOCKETPERM_MAX`], with Redis's reasons.
fn octal_perm(value: &[u8]) -> Result<u32, Option<String>> {
    let text =
        std::str::from_utf8(value).map_err(|_| Some("argument couldn't be parsed into an integer".to_string()))?;
    match u32::from_str_radix(text, 8) {
        Ok(n) if n <= UNIXSOCKETPERM_MAX => Ok(n),
        Ok(_) => Err(Some(format!("argument must be between 0 and {UNIXSOCKETPERM_MAX:o} inclusive"))),
        Err(_) => Err(Some("argument couldn't be parsed into an integer".into())),
    }
}

/// `yes` or `no`, any case, with Redis's reason.
fn yes_no(value: &[u8]) -> Result<bool, Option<String>> {
    match value.to_ascii_lowercase().as_slice() {
        b"yes" => Ok(true),
        b"no" => Ok(false),
        _ => Err(Some("argument must be 'yes' or 'no'".into())),
    }
}

/// Writes `text` to `path` atomically: a temporary file beside it, synced, renamed over it, and
/// the directory synced, so a crash leaves the old file or the new one, never a mix.
pub(crate) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{name}.rewrite-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result?;
    // The rename's entry is durable only once the directory is synced (a no-op on Windows,
    // where a directory cannot be opened as a file).
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_each_parameter_and_rewrite_reads_back_the_same() {
        let text = "# a comment\nport 7000\nrequirepass \"a b\\\"c\"\nappendfsync EVERYSEC\n\nloglevel warning\n";
        let mut settings = Settings::default();
        settings.read_file(Path::new("f.conf"), text).unwrap();
        assert_eq!(settings.port, 7000);
        assert_eq!(settings.requirepass.as_deref(), Some(&b"a b\"c"[..]));
        assert_eq!(settings.appendfsync, AppendFsync::Everysec);
        assert_eq!(settings.loglevel, "warning");
        settings.timeout_secs = 30;
        settings
            .read_file(Path::new("f.conf"), "tls-port 6380\ntls-auth-clients optional\nunixsocketperm 0770\n")
            .unwrap();
        assert_eq!((settings.tls_port, settings.tls_auth_clients), (6380, TlsAuthClients::Optional));
        assert_eq!(settings.get("unixsocketperm").unwrap(), b"770");
        let rewritten = settings.rewrite(text);
        assert!(rewritten.starts_with("# a comment\nport 7000\n"), "{rewritten}");
        assert!(rewritten.ends_with("# Generated by CONFIG REWRITE\ntls-port 6380\ntls-auth-clients optional\nunixsocketperm 770\ntimeout 30\n"), "{rewritten}");
        let mut again = Settings::default();
        again.read_file(Path::new("f.conf"), &rewritten).unwrap();
        assert_eq!(again, settings);
    }

    #[test]
    fn a_bad_line_is_named_with_its_number_and_reason() {
        let mut settings = Settings::default();
        let err = settings.read_file(Path::new("f.conf"), "port 1\n\nsave 900 1\n").unwrap_err();
        assert_eq!(err, "config file f.conf, line 3: >>> 'save 900 1': Bad directive or wrong number of arguments");
        let err = settings.read_file(Path::new("f.conf"), "timeout -1").unwrap_err();
        assert!(
            err.ends_with("line 1: >>> 'timeout -1': argument must be between 0 and 2147483647 inclusive"),
            "{err}"
        );
        let err = settings.read_file(Path::new("f.conf"), "unixsocketperm 789").unwrap_err();
        assert!(err.ends_with("'unixsocketperm 789': argument couldn't be parsed into an integer"), "{err}");
        let err = settings.read_file(Path::new("f.conf"), "tls-auth-clients maybe").unwrap_err();
        assert!(err.ends_with("must be one of the following: no, yes, optional"), "{err}");
        let err = settings.read_file(Path::new("f.conf"), "bind 127.0.0.1 ::1").unwrap_err();
        assert!(err.contains("wrong number of arguments"), "{err}");
    }
}
