//! Parsing and printing of sizes, addresses and durations as people write them: `64K`, `2M`,
//! `0x100000`, `500ms`, `2s`.

use std::fmt;
use std::time::Duration;

/// Binary suffixes accepted by [`parse_size`], with their multipliers.
const SUFFIXES: [(&str, u64); 4] = [
    ("K", 1 << 10),
    ("M", 1 << 20),
    ("G", 1 << 30),
    ("T", 1 << 40),
];

/// Parses an unsigned integer in decimal or, with a `0x` prefix, hexadecimal. `_` separators
/// are allowed. Overflow is an error, never a wrap.
pub fn parse_u64(text: &str) -> Result<u64, String> {
    let clean: String = text.trim().chars().filter(|&c| c != '_').collect();
    let hex = clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"));
    // Rust's parsers take a leading `+` (and `0x+10`); nobody writes a size or count so.
    if hex.unwrap_or(&clean).starts_with('+') {
        return Err(format!(
            "{text:?} is not a number (write decimal, or hex with 0x)"
        ));
    }
    let parsed = match hex {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => clean.parse::<u64>(),
    };
    parsed.map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => {
            format!("{text:?} is too large (maximum {})", u64::MAX)
        }
        std::num::IntErrorKind::Empty => "an empty value is not a number".to_string(),
        _ => format!("{text:?} is not a number (write decimal, or hex with 0x)"),
    })
}

/// The value of hex `digits` with at most one `0x`/`0X` prefix: at least one digit, digits
/// only (no sign, no second prefix: `0x0x1000` and `+1000` are typos, not addresses). `None`
/// when it is not such a number or does not fit in 64 bits.
pub fn parse_hex(digits: &str) -> Option<u64> {
    let digits = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Parses a byte size: a number (decimal or `0x` hex) with an optional binary suffix
/// `K`, `M`, `G` or `T` (also `KiB`, `MiB`, ...), e.g. `64K`, `2M`, `0x100000`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let upper = trimmed.to_ascii_uppercase();
    let without_ib = upper.strip_suffix("IB").unwrap_or(&upper);
    for (suffix, multiplier) in SUFFIXES {
        if let Some(number) = without_ib.strip_suffix(suffix) {
            // A hex number may end in a letter that looks like no suffix we know; only
            // decimal numbers take suffixes.
            if number.starts_with("0X") {
                break;
            }
            let value = parse_u64(number)?;
            return value
                .checked_mul(multiplier)
                .ok_or_else(|| format!("{text:?} is too large (maximum {} bytes)", u64::MAX));
        }
    }
    parse_u64(trimmed).map_err(|e| {
        if trimmed
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && !upper.starts_with("0X")
        {
            format!("{text:?} has an unknown suffix (use K, M, G or T)")
        } else {
            e
        }
    })
}

/// A byte count printed the way people read it: `1 MiB`, `64 KiB`, `4097 bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(&str, u64); 4] = [
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ];
        for (name, unit) in NAMES {
            if self.0 >= unit && self.0 % unit == 0 {
                return write!(f, "{} {name}", self.0 / unit);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

/// Units accepted by [`parse_duration`], with their length in milliseconds.
const DURATION_UNITS: [(&str, u64); 3] = [("ms", 1), ("s", 1_000), ("m", 60_000)];

/// Parses a duration: a whole decimal number and a unit, `ms`, `s` or `m` (`500ms`, `2s`,
/// `1m`). The unit is required, so `--timeout 5` cannot be misread, and the result must be at
/// least one millisecond. Overflow is an error, never a wrap.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let millis_per_unit = DURATION_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|&(_, millis)| millis)
        .ok_or_else(|| {
            if unit.is_empty() {
                format!("{text:?} has no unit (write 500ms, 2s or 1m)")
            } else {
                format!("{text:?} has an unknown unit {unit:?} (use ms, s or m)")
            }
        })?;
    let value = parse_u64(number)?;
    let millis = value
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("{text:?} is too long"))?;
    if millis == 0 {
        return Err(format!("{text:?} is zero; a deadline must be at least 1ms"));
    }
    Ok(Duration::from_millis(millis))
}

/// A duration printed the way [`parse_duration`] reads it: `200 ms`, `2 s`, `1 m`; whole
/// minutes and seconds use the larger unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        for &(name, unit) in DURATION_UNITS.iter().rev() {
            let unit = u128::from(unit);
            if millis >= unit && millis % unit == 0 {
                return write!(f, "{} {name}", millis / unit);
            }
        }
        write!(f, "{millis} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_people_write() {
        assert_eq!(parse_size("64K"), Ok(64 * 1024));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("0x100000"), Ok(0x100000));
        assert_eq!(parse_size("0x10_0000"), Ok(0x100000));
        assert_eq!(parse_size("4097"), Ok(4097));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn hex_takes_one_prefix_and_digits_only() {
        assert_eq!(parse_hex("1000"), Some(0x1000));
        assert_eq!(parse_hex("0x1000"), Some(0x1000));
        assert_eq!(parse_hex("0XfF"), Some(0xFF));
        for bad in [
            "", "0x", "+1000", "0x+1000", "0x0x1000", "-1", " 1", "1 ", "g",
        ] {
            assert_eq!(parse_hex(bad), None, "{bad:?}");
        }
        assert_eq!(parse_hex("10000000000000000"), None, "above 64 bits");
    }

    #[test]
    fn no_number_takes_a_sign() {
        for bad in ["+1", "0x+1", "+0x1"] {
            assert!(parse_u64(bad).is_err(), "{bad:?} parsed");
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn bad_sizes_are_errors_not_wraps() {
        for bad in [
            "",
            "-1",
            "1Q",
            "abc",
            "18446744073709551616",
            "16777216T",
            "0x",
            "1.5M",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_size("1Q").unwrap_err().contains("unknown suffix"));
        assert!(
            parse_size("18446744073709551616")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(parse_size(&u64::MAX.to_string()), Ok(u64::MAX));
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(Size(1 << 20).to_string(), "1 MiB");
        assert_eq!(Size(256 << 40).to_string(), "256 TiB");
        assert_eq!(Size(4097).to_string(), "4097 bytes");
        assert_eq!(Size(0x1800).to_string(), "6 KiB");
    }

    #[test]
    fn durations_people_write() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration(" 1_000ms "), Ok(Duration::from_secs(1)));
        for (bad, why) in [
            ("5", "no unit"),
            ("", "no unit"),
            ("2h", "unknown unit"),
            ("1.5s", "unknown unit"),
            ("-1s", "unknown unit"),
            ("ms", "empty value"),
            ("0s", "zero"),
            ("18446744073709551615s", "too long"),
            ("18446744073709551616ms", "too large"),
        ] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }

    #[test]
    fn durations_print_in_the_largest_whole_unit() {
        assert_eq!(Millis(Duration::from_millis(200)).to_string(), "200 ms");
        assert_eq!(Millis(Duration::from_millis(2000)).to_string(), "2 s");
        assert_eq!(Millis(Duration::from_secs(120)).to_string(), "2 m");
        assert_eq!(Millis(Duration::from_millis(1500)).to_string(), "1500 ms");
        assert_eq!(Millis(Duration::ZERO).to_string(), "0 ms");
    }
}
