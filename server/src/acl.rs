//! ACL, as far as ferrocask has users: one, `default`, with every permission, and the server's
//! password (`requirepass`) as its only password, or none. WHOAMI, USERS, LIST and GETUSER answer
//! what Redis 7.0 answers for that user; HELP is Redis's; every subcommand that would change or
//! need more users (SETUSER, DELUSER, LOAD, SAVE, LOG, DRYRUN, GENPASS, CAT) is refused with the
//! reason, so a client never believes it made a user that does not exist.

use bytes::Bytes;

use crate::reply::Reply;
use crate::server_cmds::{subcommand, Subcommand};
use crate::session::Session;

pub(crate) const ACL_SUBCOMMANDS: &[Subcommand] = &[
    ("whoami", 2),
    ("users", 2),
    ("list", 2),
    ("getuser", 3),
    ("help", 2),
    ("cat", -2),
    ("deluser", -3),
    ("dryrun", -4),
    ("genpass", -2),
    ("load", 2),
    ("log", -2),
    ("save", 2),
    ("setuser", -3),
];

/// ACL HELP's text, as Redis 7.0 prints it.
const ACL_HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

/// ACL and its subcommands.
pub(crate) fn acl(session: &Session, args: &[Bytes]) -> Reply {
    let name = match subcommand(ACL_SUBCOMMANDS, args, "ACL") {
        Ok(name) => name,
        Err(e) => return e,
    };
    let password = session.db.password.as_deref();
    match name {
        "whoami" => Reply::bulk("default"),
        "users" => Reply::Array(vec![Reply::bulk("default")]),
        "list" => Reply::Array(vec![Reply::bulk(describe_default(password).into_bytes())]),
        "getuser" if &args[2][..] == b"default" => getuser_default(password),
        "getuser" => Reply::Nil,
        "help" => Reply::Array(ACL_HELP.iter().map(|line| Reply::Status(line)).collect()),
        other => Reply::error(format!(
            "ERR ACL {} is not supported by ferrocask: it has one user, 'default' (its password is requirepass)",
            other.to_ascii_uppercase()
        )),
    }
}

/// The default user as ACL LIST describes it (Redis 7.0's words and order): its password as the
/// hex SHA-256 Redis stores, never the password itself.
fn describe_default(password: Option<&[u8]>) -> String {
    match password {
        None => "user default on nopass ~* &* +@all".to_string(),
        Some(p) => format!("user default on #{} ~* &* +@all", hex(&sha256(p))),
    }
}

fn getuser_default(password: Option<&[u8]>) -> Reply {
    let status = |s: &'static str| Reply::bulk(s.as_bytes());
    let (flags, passwords) = match password {
        None => (vec![status("on"), status("nopass")], vec![]),
        Some(p) => (vec![status("on")], vec![Reply::bulk(hex(&sha256(p)).into_bytes())]),
    };
    Reply::Map(vec![
        (status("flags"), Reply::Array(flags)),
        (status("passwords"), Reply::Array(passwords)),
        (status("commands"), status("+@all")),
        (status("keys"), status("~*")),
        (status("channels"), status("&*")),
        (status("selectors"), Reply::Array(vec![])),
    ])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (FIPS 180-4), for the one hash ACL shows. Written out rather than a dependency: the
/// TLS crypto provider differs by platform, and this runs once per ACL LIST.
fn sha256(message: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut padded = message.to_vec();
    padded.push(0x80);
    while padded.len() % 64 != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&((message.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in padded.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            (hh, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-4's vectors, one that needs a second padding block, and the hash Redis 7.0.15
    /// shows in ACL LIST for `requirepass foo`.
    #[test]
    fn sha256_matches_known_digests() {
        let cases: [(&[u8], &str); 4] = [
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (b"foo", "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"),
        ];
        for (input, want) in cases {
            assert_eq!(hex(&sha256(input)), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn acl_list_describes_the_default_user_as_redis_does() {
        assert_eq!(describe_default(None), "user default on nopass ~* &* +@all");
        assert_eq!(
            describe_default(Some(b"foo")),
            "user default on #2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae ~* &* +@all"
        );
    }
}
