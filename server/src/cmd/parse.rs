//! Argument parsing shared by the command families, with Redis's rules and error texts.

use bytes::Bytes;

use crate::reply::Reply;

/// `-ERR value is not an integer or out of range`.
pub(crate) const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// `-ERR syntax error`.
pub(crate) const SYNTAX: &str = "ERR syntax error";

/// The most elements a random reply (HRANDFIELD, SRANDMEMBER with a negative count) holds:
/// Redis builds any size asked for; a larger count is refused here.
pub(crate) const RANDOM_REPLY_ELEMENTS_MAX: u64 = 1 << 20;

/// The error for a random count over [`RANDOM_REPLY_ELEMENTS_MAX`].
pub(crate) fn too_many_random() -> Reply {
    Reply::error(format!("ERR ferrocask replies with at most {RANDOM_REPLY_ELEMENTS_MAX} random elements"))
}

/// A random count as HRANDFIELD and SRANDMEMBER read it: an integer in -LONG_MAX..=LONG_MAX.
pub(crate) fn random_count(arg: &[u8]) -> Result<i64, Reply> {
    match strict_i64(arg) {
        None => Err(Reply::error(NOT_INTEGER)),
        Some(i64::MIN) => Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )),
        Some(n) => Ok(n),
    }
}

/// The syntax error reply.
pub(crate) fn syntax() -> Reply {
    Reply::error(SYNTAX)
}

/// The optional count of SPOP, LPOP/RPOP and ZPOPMIN/ZPOPMAX (`None`: absent, one element and
/// a single reply); Redis's error for a negative or non-integer one.
pub(crate) fn pop_count(arg: Option<&Bytes>) -> Result<Option<u64>, Reply> {
    match arg {
        None => Ok(None),
        Some(arg) => match strict_i64(arg) {
            Some(n) if n >= 0 => Ok(Some(n as u64)),
            _ => Err(Reply::error("ERR value is out of range, must be positive")),
        },
    }
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

/// A database index (SELECT, COPY ... DB) as Redis reads it: an `int`, and only database 0
/// exists.
pub(crate) fn database_zero(arg: &[u8]) -> Result<(), Reply> {
    match int(arg)? {
        id if i32::try_from(id).is_err() => {
            Err(Reply::error("ERR value is out of range, value must between -2147483648 and 2147483647"))
        }
        0 => Ok(()),
        _ => Err(Reply::error("ERR DB index is out of range")),
    }
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

/// How many `*` runs Redis's `stringmatchlen` follows before it gives up: it recurses once per
/// run and fails past this depth.
const GLOB_STAR_RUNS_MAX: usize = 1000;

/// Redis's `stringmatchlen`: glob-style matching with `*`, `?`, `[...]` (`^` negates, `a-z`
/// ranges, `\` escapes) and `\` escapes.
///
/// Never backtracks more than one `*` (the fix of CVE-2022-36021 in Redis 7.0.9 bounds its
/// recursion the same way), so a match costs at most about pattern × text steps.
pub(crate) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    glob_match_counted(pattern, text).0
}

/// One element of a compiled glob pattern.
#[derive(Clone, Copy, PartialEq)]
enum Glob {
    /// A run of `*`.
    Star,
    /// `?`.
    Any,
    /// A byte, `\`-escaped or not.
    Byte(u8),
    /// `[...]`: the bytes it matches, as a 256-bit set.
    Class([u64; 4]),
}

impl Glob {
    fn matches(&self, byte: u8) -> bool {
        match *self {
            Glob::Star | Glob::Any => true,
            Glob::Byte(b) => b == byte,
            Glob::Class(set) => set[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0,
        }
    }
}

/// [`glob_match`], and the number of steps it took (pattern bytes compiled plus comparisons of
/// one pattern element with one text byte): the bound on its work that a test checks.
pub(crate) fn glob_match_counted(pattern: &[u8], text: &[u8]) -> (bool, u64) {
    let globs = compile_glob(pattern);
    let mut steps = pattern.len() as u64;
    let star_runs = globs.iter().filter(|g| **g == Glob::Star).count();
    // Past the deepest star Redis follows, only a trailing one still matches (Redis returns at a
    // pattern's last `*` before recursing); any other would need one more level.
    if star_runs > GLOB_STAR_RUNS_MAX + 1 || (star_runs > GLOB_STAR_RUNS_MAX && globs.last() != Some(&Glob::Star)) {
        return (false, steps);
    }
    // Redis's loop needs a byte of text before it looks at the pattern: an empty text matches only
    // an empty pattern (so `*` does not match it).
    if text.is_empty() {
        return (pattern.is_empty(), steps);
    }
    let (mut g, mut t) = (0, 0);
    // The last `*` seen: the element after it and the text position it was last retried from.
    // Going back to an earlier `*` is never needed, since the last one can absorb whatever the
    // earlier would have.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        steps += 1;
        match globs.get(g) {
            Some(Glob::Star) => {
                g += 1;
                star = Some((g, t));
            }
            Some(glob) if glob.matches(text[t]) => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((after, from)) => {
                    g = after;
                    t = from + 1;
                    star = Some((after, from + 1));
                }
                None => return (false, steps),
            },
        }
    }
    while globs.get(g) == Some(&Glob::Star) {
        g += 1;
    }
    (g == globs.len(), steps)
}

/// Splits a pattern into its elements as `stringmatchlen` reads them: consecutive `*` are one
/// run, a trailing `\` is itself, an unclosed class ends at the pattern's end.
fn compile_glob(pattern: &[u8]) -> Vec<Glob> {
    let mut globs = Vec::new();
    let mut p = 0;
    while p < pattern.len() {
        let glob = match pattern[p] {
            b'*' if globs.last() == Some(&Glob::Star) => {
                p += 1;
                continue;
            }
            b'*' => Glob::Star,
            b'?' => Glob::Any,
            b'[' => {
                let (set, end) = class(pattern, p + 1);
                p = end;
                Glob::Class(set)
            }
            b'\\' if p + 1 < pattern.len() => {
                p += 1;
                Glob::Byte(pattern[p])
            }
            byte => Glob::Byte(byte),
        };
        globs.push(glob);
        p += 1;
    }
    globs
}

/// The set of bytes matched by the class whose body starts at `p` (after the `[`), and the index
/// of the class's last byte (its `]`, or the pattern's last byte if unclosed).
fn class(pattern: &[u8], mut p: usize) -> ([u64; 4], usize) {
    let mut set = [0u64; 4];
    let mut add = |lo: u8, hi: u8| {
        for b in lo..=hi {
            set[usize::from(b >> 6)] |= 1 << (b & 63);
        }
    };
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    loop {
        let left = pattern.len().saturating_sub(p);
        if left >= 2 && pattern[p] == b'\\' {
            p += 1;
            add(pattern[p], pattern[p]);
        } else if left > 0 && pattern[p] == b']' {
            break;
        } else if left == 0 {
            p -= 1;
            break;
        } else if left >= 3 && pattern[p + 1] == b'-' {
            add(pattern[p].min(pattern[p + 2]), pattern[p].max(pattern[p + 2]));
            p += 2;
        } else {
            add(pattern[p], pattern[p]);
        }
        p += 1;
    }
    if negate {
        set = set.map(|word| !word);
    }
    (set, p)
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

    #[test]
    fn globs_keep_redis_corner_cases() {
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"**", b""));
        assert!(glob_match(b"a**", b"a"), "trailing stars match nothing once the text is used up");
        assert!(glob_match(b"*a*", b"a"));
        assert!(glob_match(b"a\\", b"a\\"), "a trailing backslash is itself");
        assert!(glob_match(b"[\\]]", b"]"), "an escaped ] inside a class");
        assert!(glob_match(b"[z-a]", b"m"), "reversed ranges are swapped");
        assert!(glob_match(b"[^a-c]x", b"dx"));
        assert!(!glob_match(b"[^a-c]x", b"bx"));
        assert!(glob_match(b"[*]", b"*") && !glob_match(b"[*]", b"x"), "a star in a class is a byte");
        assert!(glob_match(b"\\?", b"?") && !glob_match(b"\\?", b"x"));
        assert!(glob_match(b"a*b*c", b"aXbYbZc"));
        assert!(!glob_match(b"a*b*c", b"aXbYbZ"));
        assert!(glob_match(b"*\xff", b"x\xff"), "bytes, not characters");
    }

    /// Redis follows at most 1000 star runs deep: 1001 runs match only if the last one ends the
    /// pattern (checked against redis-server 7.0.15).
    #[test]
    fn globs_with_more_than_1000_star_runs_match_as_redis_does() {
        let text = vec![b'a'; 1001];
        assert!(glob_match(&b"*a".repeat(1000), &text));
        assert!(!glob_match(&b"*a".repeat(1001), &text));
        assert!(glob_match(&b"a*".repeat(1001), &text));
        assert!(!glob_match(&b"a*".repeat(1002), &vec![b'a'; 1002]));
    }

    /// Issue 21, item 6: `a*a*a*...b` against `aaa...` backtracked exponentially (KEYS of 90
    /// bytes took 3.5 s). Its steps are now bounded by pattern × text, counted, not timed.
    #[test]
    fn glob_worst_case_is_bounded_by_pattern_times_text() {
        for (stars, len) in [(10, 50), (45, 90), (200, 4096)] {
            let mut pattern = b"a*".repeat(stars);
            pattern.push(b'b');
            let text = vec![b'a'; len];
            let (matched, steps) = glob_match_counted(&pattern, &text);
            assert!(!matched);
            let bound = (pattern.len() as u64 + 1) * (text.len() as u64 + 1);
            assert!(steps <= bound, "{steps} steps for a {}-byte pattern and a {len}-byte text", pattern.len());
        }
    }
}
