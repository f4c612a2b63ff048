//! What `ferrocask serve` refuses before it serves anything, and what a refused start leaves
//! behind: protected mode (a non-loopback bind without a password), a failed bind (the store
//! directory untouched), and the flags its help shows.

mod serve_common;

use std::path::Path;
use std::process::{Command, Output};

fn ferrocask(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrocask")).arg("--dir").arg(dir).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn protected_mode_refuses_a_non_loopback_bind_without_a_password_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let out = ferrocask(&dir, &["serve", "--bind", "0.0.0.0", "--port", "0"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("protected mode is enabled and no password is set"), "{text}");
    assert!(text.contains("--protected-mode no") && text.contains("--requirepass-file"), "the remedies: {text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(!dir.exists(), "a refused start must not create the store");
}

#[cfg(unix)]
#[test]
fn protected_mode_no_or_a_password_lets_a_non_loopback_bind_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let password = tmp.path().join("password");
    std::fs::write(&password, "secret\n").unwrap();
    let variants: [&[&str]; 2] = [&["--protected-mode", "no"], &["--requirepass-file", password.to_str().unwrap()]];
    for (i, extra) in variants.into_iter().enumerate() {
        let mut command = serve_common::command(&tmp.path().join(format!("store{i}")));
        command.args(["--bind", "0.0.0.0"]).args(extra);
        let (mut child, addr) = serve_common::spawn_ready(command);
        assert!(addr.ip().is_unspecified(), "{extra:?}: listening on {addr}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn a_failed_bind_leaves_the_store_directory_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tmp.path().join("store");
    let out = ferrocask(&dir, &["serve", "--port", &port]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("binding 127.0.0.1:{port}")), "{}", stderr(&out));
    assert!(!dir.exists(), "a failed bind must not create the store");
}

#[test]
fn hex_is_a_flag_of_the_data_commands_not_of_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let help = |sub: &str| String::from_utf8(ferrocask(tmp.path(), &[sub, "--help"]).stdout).unwrap();
    assert!(!help("serve").contains("--hex"), "{}", help("serve"));
    for sub in ["put", "get", "delete", "keys", "dump"] {
        assert!(help(sub).contains("--hex"), "{sub}: {}", help(sub));
    }
    let dir = tmp.path().join("store");
    assert!(ferrocask(&dir, &["put", "--hex", "00ff", "0102"]).status.success());
    let dump = String::from_utf8(ferrocask(&dir, &["dump", "--hex"]).stdout).unwrap();
    assert!(dump.contains("\tput\t00ff\t2\t"), "{dump}");
    let refused = ferrocask(&dir, &["--hex", "verify"]);
    assert!(!refused.status.success() && stderr(&refused).contains("--hex applies to"), "{}", stderr(&refused));
}

/// A certificate or key that cannot be read is named at startup, before the store is opened.
#[test]
fn a_bad_tls_certificate_is_named_and_leaves_the_store_directory_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let junk = tmp.path().join("server.crt");
    std::fs::write(&junk, "-----BEGIN NOTHING-----\n").unwrap();
    let missing = tmp.path().join("server.key");
    let tls_port = serve_common::free_port().to_string();
    let (junk, missing) = (junk.to_str().unwrap(), missing.to_str().unwrap());
    let out = ferrocask(
        &dir,
        &[
            "serve",
            "--port",
            "0",
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            junk,
            "--tls-key-file",
            missing,
            "--tls-auth-clients",
            "no",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("tls-cert-file {junk}: ")), "{}", stderr(&out));
    assert!(!dir.exists(), "a refused start must not create the store");
}

/// Redis's default `tls-auth-clients yes` needs the CA that signs client certificates: without
/// one the start is refused with both remedies, not served without checking anything.
#[test]
fn tls_auth_clients_yes_without_a_ca_is_refused_with_the_remedies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let file = tmp.path().join("any.pem");
    std::fs::write(&file, "").unwrap();
    let file = file.to_str().unwrap();
    let tls_port = serve_common::free_port().to_string();
    let out = ferrocask(&dir, &["serve", "--tls-port", &tls_port, "--tls-cert-file", file, "--tls-key-file", file]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("tls-auth-clients yes needs tls-ca-cert-file"), "{text}");
    assert!(text.contains("--tls-ca-cert-file FILE") && text.contains("--tls-auth-clients no"), "{text}");
    assert!(!dir.exists());
}

#[cfg(not(unix))]
#[test]
fn unixsocket_is_refused_with_a_reason_where_there_are_no_unix_sockets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let out = ferrocask(&dir, &["serve", "--port", "0", "--unixsocket", "ferrocask.sock"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("Unix sockets are not supported on this platform"), "{}", stderr(&out));
    assert!(!dir.exists(), "a refused start must not create the store");
}
