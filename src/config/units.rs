//! Human units in configuration: durations (`"5s"`, `"1h"`, `"30d"`) and byte sizes
//! (`"256MiB"`, `"4GiB"`, `0`). Pure parsing and printing; printing round-trips through parsing.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, str::FromStr, time::Duration};

/// A configured duration. Accepts `ms`, `s`, `m`, `h`, `d` suffixes, or a bare integer of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

/// A configured byte count. Accepts `B`, `KiB`, `MiB`, `GiB`, `TiB` (and `KB`/`MB`/`GB` as
/// decimal), or a bare integer of bytes. `0` is meaningful: it turns a cache tier off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

fn split_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(s.len());
    let digits: String = s[..end].chars().filter(|&c| c != '_').collect();
    let n = digits.parse().ok()?;
    Some((n, s[end..].trim()))
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("`{s}` is not a duration (use e.g. \"500ms\", \"5s\", \"1h\", \"30d\")");
        let (n, unit) = split_number(s).ok_or_else(bad)?;
        let secs = |k: u64| n.checked_mul(k).map(Duration::from_secs).ok_or_else(bad);
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "" | "s" => secs(1)?,
            "m" => secs(60)?,
            "h" => secs(3600)?,
            "d" => secs(86_400)?,
            _ => return Err(bad()),
        };
        Ok(Dur(d))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let s = self.0.as_secs();
        match s {
            0 => write!(f, "0s"),
            _ if s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3600) => write!(f, "{}h", s / 3600),
            _ if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl FromStr for Bytes {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("`{s}` is not a size (use e.g. \"0\", \"512KiB\", \"256MiB\", \"4GiB\")");
        let (n, unit) = split_number(s).ok_or_else(bad)?;
        let k: u64 = match unit {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => return Err(bad()),
        };
        n.checked_mul(k).map(Bytes).ok_or_else(bad)
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if n != 0 && n.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

/// Both units come from a string or a bare integer; TOML and the environment give either.
fn de_unit<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = String>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<T: FromStr<Err = String>> de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string such as \"5s\" or \"256MiB\", or an integer")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            v.to_string().parse().map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            if v < 0 {
                return Err(E::custom(format!("{v} is negative")));
            }
            v.to_string().parse().map_err(E::custom)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_unit(d)
    }
}
impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_unit(d)
    }
}
impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_round_trip() {
        for (text, secs_ms) in [
            ("5s", 5_000),
            ("1h", 3_600_000),
            ("30d", 2_592_000_000),
            ("500ms", 500),
            ("90", 90_000),
            ("2m", 120_000),
            ("0s", 0),
        ] {
            let d: Dur = text.parse().unwrap();
            assert_eq!(d.0.as_millis(), secs_ms, "{text}");
            assert_eq!(d.to_string().parse::<Dur>().unwrap(), d, "{text}");
        }
        for bad in ["", "5 parsecs", "-1s", "1.5h", "s", "99999999999999999999d"] {
            assert!(bad.parse::<Dur>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse_and_round_trip() {
        for (text, n) in [
            ("0", 0),
            ("256MiB", 256 << 20),
            ("4GiB", 4 << 30),
            ("32MiB", 32 << 20),
            ("1_000", 1000),
            ("8KB", 8000),
            ("1536", 1536),
        ] {
            let b: Bytes = text.parse().unwrap();
            assert_eq!(b.0, n, "{text}");
            assert_eq!(b.to_string().parse::<Bytes>().unwrap(), b, "{text}");
        }
        for bad in ["lots", "1.5GiB", "12 parsecs", "-3", "99999999999TiB"] {
            assert!(bad.parse::<Bytes>().is_err(), "{bad}");
        }
    }
}
