//! The point-in-time window: a row's cutoff (Friday 00:00 UTC plus an offset) and how far back
//! it looks. The join applies it; provenance records it.

use super::time::{US_PER_DAY, US_PER_HOUR};
use crate::error::{Error, Result};

/// Cutoff and look-back window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Look-back window in days (default 30).
    pub days: u32,
    /// Cutoff offset from Friday 00:00 UTC, in hours (default 0; 21 = US close).
    pub cutoff_hours: f64,
}

impl Default for Window {
    fn default() -> Self {
        Window { days: 30, cutoff_hours: 0.0 }
    }
}

impl Window {
    /// The cutoff of the row for `friday` (days since epoch), UTC microseconds.
    pub fn cutoff_us(&self, friday: i32) -> i64 {
        friday as i64 * US_PER_DAY + (self.cutoff_hours * US_PER_HOUR as f64).round() as i64
    }

    /// The window length in microseconds.
    pub fn len_us(&self) -> i64 {
        self.days as i64 * US_PER_DAY
    }

    /// Refuses a window that makes no sense: 1 to 3,660 days, a finite cutoff within a week of
    /// Friday 00:00 UTC.
    pub fn check(&self) -> Result<()> {
        if !(1..=MAX_WINDOW_DAYS).contains(&self.days) {
            return Err(Error::Config(format!(
                "--window-days {}: the look-back window must be 1 to {MAX_WINDOW_DAYS} days (30 is the usual choice)",
                self.days
            )));
        }
        if !self.cutoff_hours.is_finite() || self.cutoff_hours.abs() > MAX_CUTOFF_HOURS {
            return Err(Error::Config(format!(
                "--cutoff-hours {}: the cutoff must be a number of hours within ±{MAX_CUTOFF_HOURS} of Friday 00:00 UTC (0 = strictest, 21 = US close)",
                self.cutoff_hours
            )));
        }
        Ok(())
    }
}

/// The longest look-back window accepted, in days (ten years).
pub const MAX_WINDOW_DAYS: u32 = 3_660;
/// Look-back days as a setting: 1 to [`MAX_WINDOW_DAYS`] (flag and TOML alike).
pub type WindowDays = crate::settings::Int<1, { MAX_WINDOW_DAYS as u64 }>;
/// The furthest the cutoff may move from Friday 00:00 UTC, in hours (a week).
pub const MAX_CUTOFF_HOURS: f64 = 168.0;
