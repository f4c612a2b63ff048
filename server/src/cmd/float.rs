//! INCRBYFLOAT's arithmetic, as Redis does it on x86-64: the text read by `strtold` into an
//! 80-bit `long double` (a 64-bit mantissa), the two added in that format, the sum printed with
//! `%.17Lf` and its trailing zeros trimmed. Rust has no such type, so it is emulated here: a
//! value is `mantissa × 2^exp`, every operation is done exactly on integers and rounded once to
//! 64 bits, to nearest with ties to even, as the FPU and glibc do. That makes every reply
//! Redis's, including sums past `f64`'s range (`1e400`), hex input, and ties in the printing.
//!
//! Work is bounded by the text's length: an exponent is clamped before any power is built (a
//! value whose exponent is past the clamp overflows or rounds to zero whatever its digits), so
//! `0e2147483647` costs what `0e1` costs.

use std::cmp::Ordering;

/// Redis's limit on the text of a float (`MAX_LONG_DOUBLE_CHARS`): a text this long or longer
/// is refused.
const TEXT_BYTES_MAX: usize = 5 * 1024;
/// Digits after the point that `%.17Lf` prints.
const PRINTED_DIGITS: u32 = 17;
/// `10^PRINTED_DIGITS`.
const PRINTED_SCALE: u128 = 10u128.pow(PRINTED_DIGITS);
/// Bits in a `long double`'s mantissa.
const MANTISSA_BITS: i64 = 64;
/// The exponent of the last mantissa bit of the least subnormal (`2^-16445`).
const EXP_MIN: i64 = -16445;
/// The exponent of the last mantissa bit of the largest finite value (`(2^64 - 1) × 2^16320`).
const EXP_MAX: i64 = 16320;
/// A decimal exponent past this overflows whatever the digits (`10^4933` > `LDBL_MAX` ≈
/// `1.19e4932`, and the digits are at least 1).
const DEC_EXP_OVERFLOW: i64 = 4933;
/// A decimal exponent below this rounds to zero whatever the digits: they are below
/// `10^TEXT_BYTES_MAX`, so the value is below `10^-4952`, under half the least subnormal
/// (`≈ 3.6e-4951`).
const DEC_EXP_UNDERFLOW: i64 = -4952 - TEXT_BYTES_MAX as i64;
/// The binary exponents of a hex float past which it overflows or rounds to zero (its digits
/// hold fewer than `4 × TEXT_BYTES_MAX` bits).
const BIN_EXP_OVERFLOW: i64 = EXP_MAX + MANTISSA_BITS;
const BIN_EXP_UNDERFLOW: i64 = EXP_MIN - 2 - 4 * TEXT_BYTES_MAX as i64;
/// An exponent's digits are read up to this magnitude; any larger one is past the clamps above
/// even after the digits after the point are counted.
const EXPONENT_CAP: i64 = 100_000;
/// Exponents further apart than this in a sum: the smaller addend only decides the rounding
/// (it is below the larger's last bit by more than the guard bits kept for it).
const ADD_EXP_GAP_MAX: i64 = 2 * MANTISSA_BITS + 8;

const _: () = assert!(EXPONENT_CAP > -DEC_EXP_UNDERFLOW + TEXT_BYTES_MAX as i64);
const _: () = assert!(EXPONENT_CAP > -BIN_EXP_UNDERFLOW + 4 * TEXT_BYTES_MAX as i64);

/// A `long double` as INCRBYFLOAT holds it (never NaN).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LongDouble {
    /// `±mantissa × 2^exp`, rounded to the format: `mantissa < 2^64`, `EXP_MIN <= exp <= EXP_MAX`.
    Finite { negative: bool, mantissa: u64, exp: i64 },
    /// An infinity.
    Infinite { negative: bool },
}

impl LongDouble {
    /// Zero.
    pub(crate) fn zero() -> LongDouble {
        LongDouble::Finite { negative: false, mantissa: 0, exp: 0 }
    }

    /// Parses `text` as Redis's `string2ld` does: `strtold` (decimal, hex, `inf`), no leading
    /// blank, nothing after the number, not NaN, and not a value `strtold` overflows or rounds
    /// to zero (`ERANGE`).
    pub(crate) fn parse(text: &[u8]) -> Option<LongDouble> {
        if text.is_empty() || text.len() >= TEXT_BYTES_MAX {
            return None;
        }
        let (negative, body) = match text[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let lower = body.to_ascii_lowercase();
        if lower == b"inf" || lower == b"infinity" {
            return Some(LongDouble::Infinite { negative });
        }
        let parsed = if lower.starts_with(b"0x") { parse_hex(&body[2..])? } else { parse_decimal(body)? };
        match parsed {
            Parsed::Zero => Some(LongDouble::Finite { negative, mantissa: 0, exp: 0 }),
            Parsed::Exact { digits, exp2, sticky } => match round(negative, digits, exp2, sticky) {
                // strtold's ERANGE: an overflow, or a nonzero text that rounds to zero.
                LongDouble::Infinite { .. } => None,
                LongDouble::Finite { mantissa: 0, .. } => None,
                finite => Some(finite),
            },
            Parsed::Overflow | Parsed::Underflow => None,
        }
    }

    /// The sum, or `None` if it is not finite (an infinity, or NaN).
    pub(crate) fn add(&self, other: &LongDouble) -> Option<LongDouble> {
        let (
            &LongDouble::Finite { negative: na, mantissa: ma, exp: ea },
            &LongDouble::Finite { negative: nb, mantissa: mb, exp: eb },
        ) = (self, other)
        else {
            return None;
        };
        if ma == 0 {
            return Some(*other);
        }
        if mb == 0 {
            return Some(*self);
        }
        // The addend with the larger exponent first.
        let ((na, ma, ea), (nb, mb, eb)) =
            if ea >= eb { ((na, ma, ea), (nb, mb, eb)) } else { ((nb, mb, eb), (na, ma, ea)) };
        let sum = if ea - eb > ADD_EXP_GAP_MAX {
            // The smaller is below the larger's guard bits: it only says which way to round.
            let guard = MANTISSA_BITS + 8;
            let big = Big::from_u64(ma).shl(guard as usize);
            let digits = if na == nb { big } else { big.sub(&Big::from_u64(1)) };
            round(na, digits, ea - guard, true)
        } else {
            let a = Big::from_u64(ma).shl((ea - eb) as usize);
            let b = Big::from_u64(mb);
            match (na == nb, a.cmp(&b)) {
                (true, _) => round(na, a.add(&b), eb, false),
                (false, Ordering::Equal) => LongDouble::zero(),
                (false, Ordering::Greater) => round(na, a.sub(&b), eb, false),
                (false, Ordering::Less) => round(nb, b.sub(&a), eb, false),
            }
        };
        matches!(sum, LongDouble::Finite { .. }).then_some(sum)
    }
}

impl std::fmt::Display for LongDouble {
    /// `%.17Lf` (the exact binary value rounded to 17 decimals, ties to even) with trailing zeros
    /// and a trailing point removed, and `-0` printed as `0`, as Redis's `ld2string` does.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let LongDouble::Finite { negative, mantissa, exp } = *self else {
            return f.write_str(if matches!(self, LongDouble::Infinite { negative: true }) { "-inf" } else { "inf" });
        };
        let (int, frac) = if exp >= 0 {
            (Big::from_u64(mantissa).shl(exp as usize).to_decimal(), 0)
        } else {
            let scaled = round_shift(u128::from(mantissa) * PRINTED_SCALE, -exp);
            ((scaled / PRINTED_SCALE).to_string(), scaled % PRINTED_SCALE)
        };
        let frac = format!("{frac:0width$}", width = PRINTED_DIGITS as usize);
        let frac = frac.trim_end_matches('0');
        let sign = if negative { "-" } else { "" };
        let printed = if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") };
        f.write_str(if printed == "-0" { "0" } else { &printed })
    }
}

/// `value / 2^shift` rounded to nearest, ties to even.
fn round_shift(value: u128, shift: i64) -> u128 {
    if shift >= 128 {
        // value < 2^121 here, so the quotient is below a half.
        return 0;
    }
    let shift = shift as u32;
    let quotient = value >> shift;
    let rest = value & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    if rest > half || (rest == half && quotient & 1 == 1) {
        quotient + 1
    } else {
        quotient
    }
}

/// A number read from text, before it is rounded to the format.
enum Parsed {
    Zero,
    /// `digits × 2^exp2`, plus a nonzero amount below its last bit if `sticky`.
    Exact {
        digits: Big,
        exp2: i64,
        sticky: bool,
    },
    Overflow,
    Underflow,
}

/// `digits[.digits][e[±]digits]`, at least one digit; the whole text must be the number.
fn parse_decimal(body: &[u8]) -> Option<Parsed> {
    let (mantissa, exponent) = split_exponent(body, b'e')?;
    let (int, frac) = split_point(mantissa)?;
    if !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let digits = Big::from_digits(int.iter().chain(frac).copied(), 10);
    if digits.is_zero() {
        return Some(Parsed::Zero);
    }
    let exp10 = exponent - frac.len() as i64;
    if exp10 > DEC_EXP_OVERFLOW {
        return Some(Parsed::Overflow);
    }
    if exp10 < DEC_EXP_UNDERFLOW {
        return Some(Parsed::Underflow);
    }
    if exp10 >= 0 {
        return Some(Parsed::Exact { digits: digits.mul_pow10(exp10 as usize), exp2: 0, sticky: false });
    }
    // digits / 10^k, with enough quotient bits (66 or 67) to round once and a sticky remainder.
    let divisor = Big::from_u64(1).mul_pow10(-exp10 as usize);
    let shift = divisor.bits() as i64 - digits.bits() as i64 + MANTISSA_BITS + 2;
    let (quotient, exact) = if shift >= 0 {
        digits.shl(shift as usize).div_small_quotient(&divisor)
    } else {
        digits.div_small_quotient(&divisor.shl(-shift as usize))
    };
    Some(Parsed::Exact { digits: Big::from_u128(quotient), exp2: -shift, sticky: !exact })
}

/// `0x` already taken: `hexdigits[.hexdigits][p[±]digits]`, at least one hex digit.
fn parse_hex(body: &[u8]) -> Option<Parsed> {
    let (mantissa, exponent) = split_exponent(body, b'p')?;
    let (int, frac) = split_point(mantissa)?;
    if !int.iter().chain(frac).all(u8::is_ascii_hexdigit) {
        return None;
    }
    let digits = Big::from_digits(int.iter().chain(frac).copied(), 16);
    if digits.is_zero() {
        return Some(Parsed::Zero);
    }
    let exp2 = exponent - 4 * frac.len() as i64;
    if exp2 > BIN_EXP_OVERFLOW {
        return Some(Parsed::Overflow);
    }
    if exp2 < BIN_EXP_UNDERFLOW {
        return Some(Parsed::Underflow);
    }
    Some(Parsed::Exact { digits, exp2, sticky: false })
}

/// Splits off an exponent (`e` or `p`, then an optional sign and at least one digit), clamped
/// to [`EXPONENT_CAP`]. A marker without digits after it is not part of the number for
/// `strtold`, so the text is refused (something follows the number).
fn split_exponent(body: &[u8], marker: u8) -> Option<(&[u8], i64)> {
    let Some(at) = body.iter().position(|b| b.to_ascii_lowercase() == marker) else { return Some((body, 0)) };
    let (negative, digits) = match &body[at + 1..] {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |n, d| (n * 10 + i64::from(d - b'0')).min(EXPONENT_CAP));
    Some((&body[..at], if negative { -magnitude } else { magnitude }))
}

/// Splits digits at an optional point; at least one digit on either side.
fn split_point(mantissa: &[u8]) -> Option<(&[u8], &[u8])> {
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &[][..]),
    };
    (!int.is_empty() || !frac.is_empty()).then_some((int, frac))
}

/// Rounds `±(digits + sticky) × 2^exp2` to the format: 64 mantissa bits, to nearest with ties
/// to even, subnormal below the least normal exponent, infinite past the largest.
fn round(negative: bool, digits: Big, exp2: i64, sticky: bool) -> LongDouble {
    if digits.is_zero() {
        return LongDouble::Finite { negative, mantissa: 0, exp: 0 };
    }
    let top = exp2 + digits.bits() as i64 - 1;
    let mut exp = (top - (MANTISSA_BITS - 1)).max(EXP_MIN);
    let drop = exp - exp2;
    let mantissa = if drop <= 0 {
        digits.low_u64_shifted_left((-drop) as usize)
    } else {
        let drop = drop as usize;
        let kept = digits.bits_from(drop);
        let half = digits.bit(drop - 1);
        let below = sticky || digits.any_below(drop - 1);
        let round_up = half && (below || kept & 1 == 1);
        let (sum, carried) = kept.overflowing_add(u64::from(round_up));
        if carried {
            exp += 1;
            1 << 63
        } else {
            sum
        }
    };
    if exp > EXP_MAX {
        return LongDouble::Infinite { negative };
    }
    if mantissa == 0 {
        // Rounded to zero (below half the least subnormal).
        exp = 0;
    }
    LongDouble::Finite { negative, mantissa, exp }
}

/// A nonnegative integer, little-endian 32-bit limbs, no high zero limbs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(n: u64) -> Big {
        Big(vec![n as u32, (n >> 32) as u32]).trimmed()
    }

    fn from_u128(n: u128) -> Big {
        Big((0..4).map(|i| (n >> (32 * i)) as u32).collect()).trimmed()
    }

    /// The number written by `digits` (ASCII, already checked) in `radix` (10 or 16), taken a
    /// limb's worth of digits per pass over the limbs.
    fn from_digits(digits: impl Iterator<Item = u8>, radix: u32) -> Big {
        let mut n = Big(Vec::new());
        let (mut chunk, mut factor) = (0u32, 1u32);
        for d in digits {
            let value = (d as char).to_digit(radix).expect("digits are checked before");
            chunk = chunk * radix + value;
            factor *= radix;
            if factor.checked_mul(radix).is_none() {
                n.mul_add_small(factor, chunk);
                (chunk, factor) = (0, 1);
            }
        }
        n.mul_add_small(factor, chunk);
        n.trimmed()
    }

    fn trimmed(mut self) -> Big {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        self
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bits(&self) -> usize {
        self.0.last().map_or(0, |top| 32 * self.0.len() - top.leading_zeros() as usize)
    }

    fn bit(&self, i: usize) -> bool {
        self.0.get(i / 32).is_some_and(|limb| limb >> (i % 32) & 1 == 1)
    }

    /// Whether any bit below `i` is set.
    fn any_below(&self, i: usize) -> bool {
        let (limbs, bits) = (i / 32, i % 32);
        self.0[..limbs.min(self.0.len())].iter().any(|&l| l != 0)
            || (bits > 0 && self.0.get(limbs).is_some_and(|l| l & ((1 << bits) - 1) != 0))
    }

    /// Bits `from..from + 64` (the number must have fewer than `from + 65` bits).
    fn bits_from(&self, from: usize) -> u64 {
        (0..64).filter(|i| self.bit(from + i)).fold(0, |n, i| n | 1 << i)
    }

    /// The number shifted left by `by`, as a `u64` (it must fit).
    fn low_u64_shifted_left(&self, by: usize) -> u64 {
        let low = self.0.iter().take(2).rev().fold(0u64, |n, &l| n << 32 | u64::from(l));
        low << by
    }

    fn mul_add_small(&mut self, factor: u32, addend: u32) {
        let mut carry = u64::from(addend);
        for limb in &mut self.0 {
            let product = u64::from(*limb) * u64::from(factor) + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    /// `self × 10^k`; `k` is bounded by the exponent clamps, so this is the costliest step.
    fn mul_pow10(mut self, k: usize) -> Big {
        assert!(k as i64 <= -DEC_EXP_UNDERFLOW, "powers of ten are built only within the exponent clamps");
        const CHUNK: usize = 9;
        for _ in 0..k / CHUNK {
            self.mul_add_small(10u32.pow(CHUNK as u32), 0);
        }
        self.mul_add_small(10u32.pow((k % CHUNK) as u32), 0);
        self
    }

    fn shl(&self, by: usize) -> Big {
        let (limbs, bits) = (by / 32, by % 32);
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for &limb in &self.0 {
            if bits == 0 {
                out.push(limb);
            } else {
                out.push(limb << bits | carry);
                carry = limb >> (32 - bits);
            }
        }
        out.push(carry);
        Big(out).trimmed()
    }

    fn add(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            let sum = u64::from(*self.0.get(i).unwrap_or(&0)) + u64::from(*other.0.get(i).unwrap_or(&0)) + carry;
            out.push(sum as u32);
            carry = sum >> 32;
        }
        out.push(carry as u32);
        Big(out).trimmed()
    }

    /// `self - other`; `self >= other`.
    fn sub(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut diff = i64::from(self.0[i]) - i64::from(*other.0.get(i).unwrap_or(&0)) - borrow;
            borrow = i64::from(diff < 0);
            if diff < 0 {
                diff += 1 << 32;
            }
            out.push(diff as u32);
        }
        debug_assert_eq!(borrow, 0, "sub wants self >= other");
        Big(out).trimmed()
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `(self / divisor, whether it divides exactly)`, for a quotient below 2^68 (the callers
    /// scale so): one compare-and-subtract per quotient bit.
    fn div_small_quotient(&self, divisor: &Big) -> (u128, bool) {
        const QUOTIENT_BITS: usize = 68;
        let mut rest = self.clone();
        let mut quotient = 0u128;
        for i in (0..QUOTIENT_BITS).rev() {
            let shifted = divisor.shl(i);
            if rest.cmp(&shifted) != Ordering::Less {
                rest = rest.sub(&shifted);
                quotient |= 1 << i;
            }
        }
        assert!(rest.cmp(divisor) == Ordering::Less, "the quotient fits in {QUOTIENT_BITS} bits");
        (quotient, rest.is_zero())
    }

    /// Decimal digits.
    fn to_decimal(&self) -> String {
        const CHUNK: u64 = 1_000_000_000;
        let mut limbs = self.0.clone();
        let mut chunks = Vec::new();
        while !limbs.is_empty() {
            let mut rest = 0u64;
            for limb in limbs.iter_mut().rev() {
                let value = rest << 32 | u64::from(*limb);
                *limb = (value / CHUNK) as u32;
                rest = value % CHUNK;
            }
            chunks.push(rest);
            while limbs.last() == Some(&0) {
                limbs.pop();
            }
        }
        let mut out = chunks.pop().map_or_else(|| "0".to_string(), |top| top.to_string());
        for chunk in chunks.into_iter().rev() {
            out.push_str(&format!("{chunk:09}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        LongDouble::parse(a.as_bytes()).unwrap().add(&LongDouble::parse(b.as_bytes()).unwrap()).unwrap().to_string()
    }

    #[test]
    fn sums_print_as_redis_prints_them() {
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("5.0e3", "2.0e2"), "5200");
        assert_eq!(sum("3", "-3"), "0");
        assert_eq!(sum("-0.5", "0.25"), "-0.25");
        assert_eq!(sum("1", "0.000000000000000001"), "1");
    }

    #[test]
    fn what_strtold_refuses_is_not_a_float() {
        for bad in ["", " 1", "1 ", "abc", "nan", "1.2.3", "0x", "1e", "1e+", ".", "-", "0x.p1", "1\0"] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert!(LongDouble::parse(b"inf").unwrap().add(&LongDouble::zero()).is_none());
    }

    /// Issue 21, item 8, each checked against redis-server 7.0.15.
    #[test]
    fn long_double_replies_match_redis() {
        assert_eq!(sum("0", "0x10"), "16");
        assert_eq!(sum("16", "0X1p3"), "24");
        assert_eq!(LongDouble::parse(b"1e-5000"), None, "rounds to zero: ERANGE");
        assert_eq!(LongDouble::parse(b"1e5000"), None, "overflows: ERANGE");
        assert_eq!(LongDouble::parse(b"-1e5000"), None);
        assert_eq!(sum("1", "1e-4940"), "1", "a subnormal is a float");
        assert_eq!(LongDouble::parse(&[b"0".repeat(5119), b"1".to_vec()].concat()), None, "5120 bytes");
        assert_eq!(sum("0", &format!("{}1", "0".repeat(5118))), "1", "5119 bytes");
        let big = sum("24", "1e400");
        assert_eq!(big.len(), 401);
        assert!(big.starts_with("10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"));
        assert_eq!(sum("0", "0.000000000000000005"), "0");
        assert_eq!(sum("0", "0.000000000000000015"), "0.00000000000000002");
        assert_eq!(sum("0", "0.000000000000000025"), "0.00000000000000002");
        assert!(LongDouble::parse(b"1.1e4932").unwrap().add(&LongDouble::parse(b"1e4932").unwrap()).is_none());
        assert_eq!(LongDouble::parse(b"1.2e4932"), None);
    }

    /// `2^-18` = 0.000003814697265625 has 18 decimals ending in 5: `%.17Lf` rounds the tie to
    /// even (…562), where rounding half away from zero gave …563.
    #[test]
    fn printing_rounds_exact_ties_to_even() {
        assert_eq!(sum("0", "0.000003814697265625"), "0.00000381469726562");
        assert_eq!(sum("0", "0.000011444091796875"), "0.00001144409179688");
    }

    /// Issue 21, item 6: `0e2147483647` multiplied by ten 2^31 times in the group-commit leader.
    /// Exponents are clamped before any power is built (`mul_pow10` asserts it), so these cost
    /// what their digits cost.
    #[test]
    fn huge_exponents_are_decided_without_building_their_power() {
        assert_eq!(
            LongDouble::parse(b"0e2147483647"),
            Some(LongDouble::Finite { negative: false, mantissa: 0, exp: 0 })
        );
        assert_eq!(LongDouble::parse(b"0e-99999999999999999999"), Some(LongDouble::zero()));
        assert_eq!(LongDouble::parse(b"1e2147483647"), None);
        assert_eq!(LongDouble::parse(b"1e-2147483647"), None);
        assert_eq!(LongDouble::parse(b"0x1p2147483647"), None);
        assert_eq!(LongDouble::parse(b"0x1p-2147483647"), None);
        assert_eq!(sum("1", "0x0p99999999"), "1");
    }
}
