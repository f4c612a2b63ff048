//! Argument parsing shared by the command families, with Redis's rules and error texts.

use bytes::Bytes;

use crate::reply::Reply;

/// `-ERR value is not an integer or out of range`.
pub(crate) const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// `-ERR syntax error`.
pub(crate) const SYNTAX: &str = "ERR syntax error";

/// The syntax error reply.
pub(crate) fn syntax() -> Reply {
    Reply::error(SYNTAX)
}

/// An integer as Redis's `string2ll` reads it: optional `-`, no leading zeros (but `0` itself),
/// no `+`, no spaces, within `i64`.
pub(crate) fn strict_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        (magnitude <= 1 << 63).then(|| (magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// An integer argument, or the reply Redis gives for one that is not.
pub(crate) fn int(arg: &[u8]) -> Result<i64, Reply> {
    strict_i64(arg).ok_or_else(|| Reply::error(NOT_INTEGER))
}

/// Whether `arg` is `word`, ignoring ASCII case.
pub(crate) fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Integer reply of a count.
pub(crate) fn count(n: usize) -> Reply {
    Reply::Int(n as i64)
}

/// An owned copy of arguments, for the replies that echo them.
pub(crate) fn bulk(arg: &Bytes) -> Reply {
    Reply::Bulk(arg.clone())
}

/// Redis's `stringmatchlen`: glob-style matching with `*`, `?`, `[...]` (`^` negates, `a-z`
/// ranges, `\` escapes) and `\` escapes.
pub(crate) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    glob(pattern, text, 0)
}

fn glob(pattern: &[u8], string: &[u8], depth: usize) -> bool {
    // Redis bounds the recursion of `*` too (stringmatchlen fails past 1000 levels).
    if depth > 1000 {
        return false;
    }
    let (mut p, mut s) = (0, 0);
    while p < pattern.len() && s < string.len() {
        match pattern[p] {
            b'*' => {
                while pattern.len() - p > 1 && pattern[p + 1] == b'*' {
                    p += 1;
                }
                if pattern.len() - p == 1 {
                    return true;
                }
                return (s..string.len()).any(|from| glob(&pattern[p + 1..], &string[from..], depth + 1));
            }
            b'?' => s += 1,
            b'[' => {
                let (matched, end) = class(pattern, p + 1, string[s]);
                if !matched {
                    return false;
                }
                p = end;
                s += 1;
            }
            c => {
                let c = if c == b'\\' && pattern.len() - p >= 2 {
                    p += 1;
                    pattern[p]
                } else {
                    c
                };
                if c != string[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while p < pattern.len() && pattern[p] == b'*' {
                p += 1;
            }
            break;
        }
    }
    p == pattern.len() && s == string.len()
}

/// Matches `c` against the class whose body starts at `p` (after the `[`); returns whether it
/// matched and the index of the class's last byte (its `]`, or the pattern's end if unclosed).
fn class(pattern: &[u8], mut p: usize, c: u8) -> (bool, usize) {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    loop {
        let left = pattern.len().saturating_sub(p);
        if left >= 2 && pattern[p] == b'\\' {
            p += 1;
            matched |= pattern[p] == c;
        } else if left > 0 && pattern[p] == b']' {
            break;
        } else if left == 0 {
            p -= 1;
            break;
        } else if left >= 3 && pattern[p + 1] == b'-' {
            let (lo, hi) = (pattern[p].min(pattern[p + 2]), pattern[p].max(pattern[p + 2]));
            matched |= (lo..=hi).contains(&c);
            p += 2;
        } else {
            matched |= pattern[p] == c;
        }
        p += 1;
    }
    (matched != negate, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_read_as_string2ll_reads_them() {
        assert_eq!(strict_i64(b"0"), Some(0));
        assert_eq!(strict_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(strict_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [&b""[..], b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"1.0"] {
            assert_eq!(strict_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn globs_match_like_redis() {
        assert!(!glob_match(b"*", b""), "as in Redis: the loop needs a byte to match");
        assert!(glob_match(b"*", b"x"));
        assert!(glob_match(b"a[b", b"ab"), "an unclosed class ends at the pattern's end");
        assert!(glob_match(b"h?llo", b"hello"));
        assert!(glob_match(b"h*llo", b"heeeello"));
        assert!(glob_match(b"h[ae]llo", b"hallo"));
        assert!(!glob_match(b"h[^e]llo", b"hello"));
        assert!(glob_match(b"h[a-b]llo", b"hbllo"));
        assert!(glob_match(b"h\\*llo", b"h*llo"));
        assert!(!glob_match(b"a*b", b"acbd"));
    }
}
