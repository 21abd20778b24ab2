//! Numeric settings with their valid range, as types. A field declared `Int<1, 65_536>` or
//! [`Share`] is parsed from a flag (clap, through `FromStr`) and from a TOML key (serde) by the
//! same check, so every command and `signalkit run` refuse a bad value alike, before any work
//! starts: clap's message names the flag, the TOML parser's the key and its line.
//!
//! Integers carry their range in the type (`Int<MIN, MAX>`, inclusive); real numbers take one of
//! the named ranges below (NaN and infinities are never in one). Upper bounds keep an absurd
//! value from sizing an allocation or a loop.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A whole number from `MIN` to `MAX` inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Int<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Int<MIN, MAX> {
    /// The value `v`; panics (at compile time in a `const`) outside the range: for defaults.
    pub const fn new(v: u64) -> Self {
        assert!(v >= MIN && v <= MAX, "default outside its range");
        Int(v)
    }

    /// `v` if it is in range, else a message saying the range.
    pub fn checked(v: i128) -> std::result::Result<Self, String> {
        match u64::try_from(v) {
            Ok(u) if (MIN..=MAX).contains(&u) => Ok(Int(u)),
            _ => Err(format!("{v} is out of range: give a whole number from {MIN} to {MAX}")),
        }
    }

    /// The value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The value as a usize (every range here fits one).
    pub const fn usize(self) -> usize {
        self.0 as usize
    }

    /// The value as a u32 (for ranges that fit one).
    pub fn u32(self) -> u32 {
        u32::try_from(self.0).unwrap_or(u32::MAX)
    }
}

impl<const MIN: u64, const MAX: u64> FromStr for Int<MIN, MAX> {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let v: i128 = s
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("'{s}' is not a whole number: give one from {MIN} to {MAX}"))?;
        Self::checked(v)
    }
}

impl<const MIN: u64, const MAX: u64> fmt::Display for Int<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<const MIN: u64, const MAX: u64> Serialize for Int<MIN, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Self::checked(v.into()).map_err(serde::de::Error::custom)
    }
}

/// Declares a real-number setting type whose values lie in one range.
macro_rules! real {
    ($(#[$doc:meta])* $name:ident: $lo:literal $lo_kind:ident, $hi:literal $hi_kind:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
        pub struct $name(f64);

        impl $name {
            /// The range, in words.
            pub const RANGE: &'static str = $what;

            /// `v` if it is in range, else a message saying the range.
            pub fn checked(v: f64) -> std::result::Result<Self, String> {
                let above = real!(@lo v, $lo, $lo_kind);
                let below = real!(@hi v, $hi, $hi_kind);
                if v.is_finite() && above && below {
                    Ok($name(v))
                } else {
                    Err(format!("{v} is out of range: give {}", Self::RANGE))
                }
            }

            /// The value `v`; panics outside the range: for defaults.
            pub fn new(v: f64) -> Self {
                Self::checked(v).expect("default outside its range")
            }

            /// The value.
            pub fn get(self) -> f64 {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                let v: f64 = s.trim().parse().map_err(|_| format!("'{s}' is not a number: give {}", Self::RANGE))?;
                Self::checked(v)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_f64(self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                Self::checked(f64::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
    (@lo $v:ident, $lo:literal, above) => { $v > $lo };
    (@lo $v:ident, $lo:literal, from) => { $v >= $lo };
    (@hi $v:ident, $hi:literal, below) => { $v < $hi };
    (@hi $v:ident, $hi:literal, to) => { $v <= $hi };
}

real!(
    /// A share of a whole that may be zero but never all of it: 0 ≤ x < 1 (held-out share,
    /// warm-up share, a smoothing weight).
    Share: 0.0 from, 1.0 below, "a number from 0 up to (not including) 1"
);
real!(
    /// A learning rate: 0 < x ≤ 1.
    LearningRate: 0.0 above, 1.0 to, "a number above 0 and at most 1"
);
real!(
    /// A decay or penalty weight: 0 ≤ x ≤ 1.
    Weight: 0.0 from, 1.0 to, "a number from 0 to 1"
);
real!(
    /// A positive bound such as a gradient-norm clip: 0 < x ≤ 1e6.
    Positive: 0.0 above, 1e6 to, "a number above 0 and at most 1000000"
);
real!(
    /// Requests a minute: 0 < x ≤ 60,000 (a thousand a second).
    PerMinute: 0.0 above, 60000.0 to, "a number of requests a minute above 0 and at most 60000"
);
real!(
    /// Hours from Friday 00:00 UTC, a week either way: −168 ≤ x ≤ 168.
    Hours: -168.0 from, 168.0 to, "a number of hours from -168 to 168"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_nan_negative_zero_and_absurd_values() {
        type Batch = Int<1, 65_536>;
        assert_eq!("16".parse::<Batch>().unwrap().get(), 16);
        for bad in ["0", "-5", "NaN", "1e30", "99999999999999999999999", "", "x"] {
            let e = bad.parse::<Batch>().unwrap_err();
            assert!(e.contains("from 1 to 65536"), "{bad}: {e}");
        }
        assert_eq!("0.1".parse::<Share>().unwrap().get(), 0.1);
        for bad in ["NaN", "inf", "-0.1", "1", "1e30"] {
            assert!(bad.parse::<Share>().is_err(), "{bad}");
        }
        assert!("0".parse::<LearningRate>().is_err() && "-21".parse::<Hours>().is_ok());
        assert!("169".parse::<Hours>().is_err() && "0".parse::<PerMinute>().is_err());
    }

    #[test]
    fn toml_values_get_the_same_check() {
        #[derive(Deserialize)]
        struct T {
            #[allow(dead_code)]
            n: Int<1, 10>,
        }
        for (text, ok) in [("n = 3", true), ("n = 0", false), ("n = -1", false), ("n = nan", false), ("n = 11", false)]
        {
            let r = toml::from_str::<T>(text);
            assert_eq!(r.is_ok(), ok, "{text}");
            if let Err(e) = r {
                assert!(e.to_string().contains("n = "), "the key's line is shown: {e}");
            }
        }
        #[derive(Deserialize)]
        struct R {
            #[allow(dead_code)]
            lr: LearningRate,
        }
        assert!(toml::from_str::<R>("lr = 1").is_ok(), "an integer is a number");
        assert!(toml::from_str::<R>("lr = nan").is_err() && toml::from_str::<R>("lr = 0.0").is_err());
    }
}
