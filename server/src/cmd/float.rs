//! INCRBYFLOAT's arithmetic. Redis adds two `long double`s and prints the sum with `%.17Lf`,
//! trailing zeros trimmed; its 64-bit mantissa makes the sum of two short decimals print as the
//! exact decimal sum, which an `f64` would not (0.1 + 0.2). So decimals of up to 38 digits are
//! added exactly, and only what does not fit (huge exponents, `inf`) falls back to `f64`.

/// Redis's limit on the text of a float (`MAX_LONG_DOUBLE_CHARS`).
const TEXT_BYTES_MAX: usize = 5 * 1024;
/// Digits after the point that `%.17Lf` prints.
const PRINTED_DIGITS: u32 = 17;
/// The most digits after the point kept exactly.
const SCALE_MAX: u32 = 30;

/// A number as INCRBYFLOAT reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Decimal {
    /// `mantissa / 10^scale`, exactly.
    Exact { mantissa: i128, scale: u32 },
    /// Anything else that parses as a float.
    Approx(f64),
}

impl Decimal {
    /// Zero.
    pub(crate) fn zero() -> Decimal {
        Decimal::Exact { mantissa: 0, scale: 0 }
    }

    /// Parses `text` as `strtold` would, with Redis's extra rules (no leading blank, no NaN).
    pub(crate) fn parse(text: &[u8]) -> Option<Decimal> {
        if text.is_empty() || text.len() > TEXT_BYTES_MAX {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        let float: f64 = text.parse().ok()?;
        if float.is_nan() {
            return None;
        }
        Some(exact(text).unwrap_or(Decimal::Approx(float)))
    }

    /// The sum, or `None` if it is not finite.
    pub(crate) fn add(&self, other: &Decimal) -> Option<Decimal> {
        if let (Decimal::Exact { mantissa: a, scale: sa }, Decimal::Exact { mantissa: b, scale: sb }) = (self, other) {
            let scale = (*sa).max(*sb);
            let a = a.checked_mul(10i128.checked_pow(scale - sa)?);
            let b = b.checked_mul(10i128.checked_pow(scale - sb)?);
            if let Some(sum) = a.zip(b).and_then(|(a, b)| a.checked_add(b)) {
                return Some(Decimal::Exact { mantissa: sum, scale });
            }
        }
        let sum = self.to_f64() + other.to_f64();
        sum.is_finite().then_some(Decimal::Approx(sum))
    }

    fn to_f64(self) -> f64 {
        match self {
            Decimal::Exact { mantissa, scale } => mantissa as f64 / 10f64.powi(scale as i32),
            Decimal::Approx(f) => f,
        }
    }
}

impl std::fmt::Display for Decimal {
    /// `%.17Lf` with trailing zeros (and a trailing point) removed, and `-0` printed as `0`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let printed = match *self {
            Decimal::Exact { mantissa, scale } => print_exact(mantissa, scale),
            Decimal::Approx(x) => format!("{x:.17}"),
        };
        let trimmed =
            if printed.contains('.') { printed.trim_end_matches('0').trim_end_matches('.') } else { &printed };
        f.write_str(if trimmed == "-0" { "0" } else { trimmed })
    }
}

/// Prints `mantissa / 10^scale` with 17 digits after the point, rounding half away from zero.
fn print_exact(mut mantissa: i128, mut scale: u32) -> String {
    while scale > PRINTED_DIGITS {
        let last = mantissa % 10;
        mantissa /= 10;
        if last >= 5 {
            mantissa += 1;
        } else if last <= -5 {
            mantissa -= 1;
        }
        scale -= 1;
    }
    let negative = mantissa < 0;
    let digits = mantissa.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    let frac = format!("{frac:0<width$}", width = PRINTED_DIGITS as usize);
    format!("{}{int}.{frac}", if negative { "-" } else { "" })
}

/// A plain decimal (`-12.5`, `.5`, `3.`, `1e-3`) as an exact value, if it fits.
fn exact(text: &str) -> Option<Decimal> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (number, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let mut mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let mut scale = frac.len() as i64 - i64::from(exponent);
    while scale < 0 {
        mantissa = mantissa.checked_mul(10)?;
        scale += 1;
    }
    if scale > i64::from(SCALE_MAX) {
        return None;
    }
    Some(Decimal::Exact { mantissa: if negative { -mantissa } else { mantissa }, scale: scale as u32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        Decimal::parse(a.as_bytes()).unwrap().add(&Decimal::parse(b.as_bytes()).unwrap()).unwrap().to_string()
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
        for bad in ["", " 1", "1 ", "abc", "nan", "1.2.3"] {
            assert_eq!(Decimal::parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert!(Decimal::parse(b"inf").unwrap().add(&Decimal::zero()).is_none());
    }
}
