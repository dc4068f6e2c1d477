//! Go's `time.Duration` as it appears in kubeadm configs (`24h0m0s`, `4m0s`, `1.5s`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANOSECOND: u128 = 1;
const MICROSECOND: u128 = 1_000 * NANOSECOND;
const MILLISECOND: u128 = 1_000 * MICROSECOND;
const SECOND: u128 = 1_000 * MILLISECOND;
const MINUTE: u128 = 60 * SECOND;
const HOUR: u128 = 60 * MINUTE;

/// A signed span of nanoseconds with Go's `time.ParseDuration` syntax and
/// `time.Duration.String()` formatting, so values print exactly as kubeadm prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    nanos: i64,
}

impl Duration {
    pub const ZERO: Duration = Duration { nanos: 0 };

    pub const fn from_nanos(nanos: i64) -> Self {
        Self { nanos }
    }

    pub const fn from_secs(secs: i64) -> Self {
        Self {
            nanos: secs * 1_000_000_000,
        }
    }

    pub const fn from_mins(mins: i64) -> Self {
        Self::from_secs(mins * 60)
    }

    pub const fn from_hours(hours: i64) -> Self {
        Self::from_secs(hours * 3600)
    }

    pub const fn as_nanos(self) -> i64 {
        self.nanos
    }

    pub const fn is_positive(self) -> bool {
        self.nanos > 0
    }

    /// The equivalent `std::time::Duration`; `None` when negative.
    pub fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.nanos)
            .ok()
            .map(std::time::Duration::from_nanos)
    }
}

impl From<std::time::Duration> for Duration {
    /// Saturates at Go's maximum duration (about 292 years).
    fn from(value: std::time::Duration) -> Self {
        Self {
            nanos: i64::try_from(value.as_nanos()).unwrap_or(i64::MAX),
        }
    }
}

/// Why a string is not a Go duration; the message quotes the input like Go's does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationParseError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for DurationParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: {} (use Go syntax such as \"24h0m0s\", \"1h30m\", \"90s\", \"500ms\")",
            self.input, self.reason
        )
    }
}

impl std::error::Error for DurationParseError {}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => NANOSECOND,
        // Go accepts both the micro sign (U+00B5) and the Greek small letter mu (U+03BC).
        "us" | "\u{00b5}s" | "\u{03bc}s" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        _ => return None,
    })
}

impl FromStr for Duration {
    type Err = DurationParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| DurationParseError {
            input: input.to_owned(),
            reason,
        };
        let (negative, mut rest) = match input.as_bytes().first() {
            Some(b'-') => (true, &input[1..]),
            Some(b'+') => (false, &input[1..]),
            _ => (false, input),
        };
        if rest == "0" {
            return Ok(Duration::ZERO);
        }
        if rest.is_empty() {
            return Err(fail("empty duration"));
        }
        // Magnitude bound: Go allows exactly 1<<63 ns only for negative durations.
        let limit: u128 = if negative { 1 << 63 } else { (1 << 63) - 1 };
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (int_digits, after_int) = rest.split_at(int_len);
            let (frac_digits, after_number) = match after_int.strip_prefix('.') {
                Some(after_dot) => {
                    let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                    after_dot.split_at(frac_len)
                }
                None => ("", after_int),
            };
            if int_digits.is_empty() && frac_digits.is_empty() {
                return Err(fail("expected a number"));
            }
            let unit_len = after_number
                .char_indices()
                .find(|&(_, c)| c == '.' || c.is_ascii_digit())
                .map_or(after_number.len(), |(i, _)| i);
            let (unit, after_unit) = after_number.split_at(unit_len);
            if unit.is_empty() {
                return Err(fail("missing unit"));
            }
            let unit = unit_nanos(unit).ok_or_else(|| fail("unknown unit"))?;

            let mut whole: u128 = 0;
            for digit in int_digits.bytes() {
                whole = whole * 10 + u128::from(digit - b'0');
                if whole > limit {
                    return Err(fail("out of range"));
                }
            }
            // Fractions below a nanosecond are truncated, as Go does; 20 digits cover any unit.
            let mut frac: u128 = 0;
            let mut scale: u128 = 1;
            for digit in frac_digits.bytes().take(20) {
                frac = frac * 10 + u128::from(digit - b'0');
                scale *= 10;
            }
            total += whole * unit + frac * unit / scale;
            if total > limit {
                return Err(fail("out of range"));
            }
            rest = after_unit;
        }
        let magnitude = i128::try_from(total).map_err(|_| fail("out of range"))?;
        let signed = if negative { -magnitude } else { magnitude };
        i64::try_from(signed)
            .map(Duration::from_nanos)
            .map_err(|_| fail("out of range"))
    }
}

/// Writes `value / 10^precision` with the fraction's trailing zeros (and a bare point) dropped.
fn write_scaled(out: &mut String, value: u128, precision: u32) {
    let scale = 10u128.pow(precision);
    out.push_str(&(value / scale).to_string());
    let frac = value % scale;
    if frac != 0 {
        let digits = format!("{frac:0width$}", width = precision as usize);
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let magnitude = u128::from(self.nanos.unsigned_abs());
        let mut out = String::new();
        if self.nanos < 0 {
            out.push('-');
        }
        if magnitude == 0 {
            out.push_str("0s");
        } else if magnitude < MICROSECOND {
            write_scaled(&mut out, magnitude, 0);
            out.push_str("ns");
        } else if magnitude < MILLISECOND {
            write_scaled(&mut out, magnitude, 3);
            out.push_str("\u{00b5}s");
        } else if magnitude < SECOND {
            write_scaled(&mut out, magnitude, 6);
            out.push_str("ms");
        } else {
            let hours = magnitude / HOUR;
            let minutes = magnitude % HOUR / MINUTE;
            let seconds_nanos = magnitude % MINUTE;
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            if hours > 0 || minutes > 0 {
                out.push_str(&format!("{minutes}m"));
            }
            write_scaled(&mut out, seconds_nanos, 9);
            out.push('s');
        }
        f.write_str(&out)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Duration {
        text.parse()
            .unwrap_or_else(|err| panic!("{text:?} should parse: {err}"))
    }

    #[test]
    fn kubeadm_values_round_trip() {
        for text in [
            "24h0m0s",
            "8760h0m0s",
            "87600h0m0s",
            "4m0s",
            "1m0s",
            "2m0s",
            "5m0s",
            "0s",
        ] {
            assert_eq!(parse(text).to_string(), text);
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(Duration::from_hours(24).to_string(), "24h0m0s");
        assert_eq!(Duration::from_mins(4).to_string(), "4m0s");
        assert_eq!(Duration::from_secs(90).to_string(), "1m30s");
        assert_eq!(Duration::from_secs(3601).to_string(), "1h0m1s");
        assert_eq!(Duration::from_nanos(1_500_000_000).to_string(), "1.5s");
        assert_eq!(Duration::from_nanos(1_500_000).to_string(), "1.5ms");
        assert_eq!(Duration::from_nanos(1_000).to_string(), "1\u{00b5}s");
        assert_eq!(Duration::from_nanos(1_100).to_string(), "1.1\u{00b5}s");
        assert_eq!(Duration::from_nanos(999).to_string(), "999ns");
        assert_eq!(Duration::from_nanos(-90_000_000_000).to_string(), "-1m30s");
        assert_eq!(
            Duration::from_nanos(i64::MIN).to_string(),
            "-2562047h47m16.854775808s"
        );
        assert_eq!(
            Duration::from_nanos(i64::MAX).to_string(),
            "2562047h47m16.854775807s"
        );
    }

    #[test]
    fn parses_go_syntax() {
        assert_eq!(parse("1h30m"), Duration::from_mins(90));
        assert_eq!(parse("24h"), Duration::from_hours(24));
        assert_eq!(parse("8760h"), Duration::from_hours(8760));
        assert_eq!(parse("1.5h"), Duration::from_mins(90));
        assert_eq!(parse(".5s"), Duration::from_nanos(500_000_000));
        assert_eq!(parse("1.s"), Duration::from_secs(1));
        assert_eq!(parse("500ms"), Duration::from_nanos(500_000_000));
        assert_eq!(parse("10us"), Duration::from_nanos(10_000));
        assert_eq!(parse("10\u{00b5}s"), Duration::from_nanos(10_000));
        assert_eq!(parse("10\u{03bc}s"), Duration::from_nanos(10_000));
        assert_eq!(parse("7ns"), Duration::from_nanos(7));
        assert_eq!(
            parse("1h2m3s4ms5us6ns"),
            Duration::from_nanos(3_723_004_005_006)
        );
        assert_eq!(parse("-1m"), Duration::from_mins(-1));
        assert_eq!(parse("+1m"), Duration::from_mins(1));
        assert_eq!(parse("0"), Duration::ZERO);
        assert_eq!(parse("-0"), Duration::ZERO);
        assert_eq!(parse("0.50000000000000000000001h"), Duration::from_mins(30));
        assert_eq!(
            parse("-2562047h47m16.854775808s"),
            Duration::from_nanos(i64::MIN)
        );
        assert_eq!(
            parse("2562047h47m16.854775807s"),
            Duration::from_nanos(i64::MAX)
        );
    }

    #[test]
    fn rejects_what_go_rejects() {
        for text in [
            "",
            "-",
            "1",
            "h",
            ".s",
            "1x",
            "1hh",
            "1.2.3s",
            "3000000h",
            "2562047h47m16.854775808s",
            " 1s",
            "1s ",
            "1 s",
        ] {
            assert!(
                text.parse::<Duration>().is_err(),
                "{text:?} should not parse"
            );
        }
        let err = "5x".parse::<Duration>().unwrap_err().to_string();
        assert!(
            err.contains("\"5x\"") && err.contains("unknown unit"),
            "{err}"
        );
    }

    #[test]
    fn serde_uses_strings() {
        let value: Duration = serde_json::from_str("\"87600h\"").unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), "\"87600h0m0s\"");
        assert!(serde_json::from_str::<Duration>("3600").is_err());
    }

    #[test]
    fn converts_to_std() {
        assert_eq!(
            Duration::from_mins(4).to_std(),
            Some(std::time::Duration::from_secs(240))
        );
        assert_eq!(Duration::from_secs(-1).to_std(), None);
        assert_eq!(
            Duration::from(std::time::Duration::from_millis(1500)),
            Duration::from_nanos(1_500_000_000)
        );
    }
}
