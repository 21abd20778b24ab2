//! Headline tickers to the rows' form: a suffix rule (`AAPL` → `AAPL US`) or a ticker-map file.

use std::collections::HashMap;
use std::path::Path;

use super::{find_column, missing_column, read_table, rows_text, str_values};
use crate::error::{Error, Result};

/// The suffix that turns a US headline ticker into Numerai's Bloomberg-style ticker (AAPL → "AAPL US"),
/// the default of `join`, `news fetch` and `[data]`.
pub const DEFAULT_SUFFIX: &str = " US";

/// How a headline's ticker becomes a Numerai row ticker.
#[derive(Debug, Clone)]
pub enum TickerRule {
    /// Append this suffix to tickers that have no exchange part yet (default `" US"`).
    Suffix(String),
    /// Look tickers up in a map (headline ticker → row ticker), e.g. Numerai's
    /// `signals_ticker_map_w_bbg.csv` with columns `ticker,bloomberg_ticker`.
    Map(HashMap<String, String>),
}

impl Default for TickerRule {
    fn default() -> Self {
        TickerRule::Suffix(DEFAULT_SUFFIX.to_string())
    }
}

impl TickerRule {
    /// Reads a ticker map (CSV/parquet with `ticker` and `bloomberg_ticker` columns; or
    /// `numerai_ticker`, or `composite_figi` for rows keyed by FIGI alone, as `tickers map` writes).
    pub fn from_map_file(path: &Path) -> Result<Self> {
        let df = read_table(path, true)?;
        let from = find_column(&df, &["ticker", "yahoo"]).ok_or_else(|| {
            missing_column(path, &df, &["ticker"], "a ticker map needs columns ticker,bloomberg_ticker")
        })?;
        let to = find_column(&df, &["bloomberg_ticker", "numerai_ticker", "composite_figi"]).ok_or_else(|| {
            missing_column(
                path,
                &df,
                &["bloomberg_ticker", "numerai_ticker", "composite_figi"],
                "a ticker map needs columns ticker,bloomberg_ticker",
            )
        })?;
        let (a, b) = (str_values(path, &df, &from)?, str_values(path, &df, &to)?);
        // Several headline tickers may name one row ticker; one headline ticker naming two is
        // refused (the last would win silently).
        let mut map: HashMap<String, (String, usize)> = HashMap::with_capacity(a.len());
        for (i, (a, b)) in a.iter().zip(b.iter()).enumerate() {
            let (Some(a), Some(b)) = (a, b) else { continue };
            let (a, b) = (a.trim().to_ascii_uppercase(), b.trim().to_ascii_uppercase());
            if a.is_empty() || b.is_empty() {
                continue;
            }
            match map.get(&a) {
                Some((prev, j)) if *prev != b => {
                    return Err(Error::input(
                        path,
                        format!(
                            "{from} '{a}' maps to two tickers, '{prev}' and '{b}' ({}); a {from} must map to one {to} — remove the wrong row (several {from} values mapping to the same {to} is fine)",
                            rows_text(path, &[j + 1, i + 1])
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    map.insert(a, (b, i));
                }
            }
        }
        let map = map.into_iter().map(|(a, (b, _))| (a, b)).collect();
        Ok(TickerRule::Map(map))
    }

    /// Candidate row tickers for a headline ticker, best first (the ticker as given is always the
    /// last resort, so feeds that already use the rows' form work under any rule).
    pub fn candidates(&self, raw: &str) -> [Option<String>; 2] {
        let t = raw.trim().to_ascii_uppercase();
        let first = match self {
            TickerRule::Suffix(sfx) if !t.contains(' ') && !sfx.is_empty() => {
                Some(format!("{t}{}", sfx.to_ascii_uppercase()))
            }
            TickerRule::Suffix(_) => None,
            TickerRule::Map(m) => m.get(&t).cloned(),
        };
        [first, Some(t)]
    }

    /// The universe id of a headline ticker, if it is in the universe.
    pub fn resolve(&self, raw: &str, universe: &HashMap<&str, u32>) -> Option<u32> {
        self.candidates(raw).into_iter().flatten().find_map(|c| universe.get(c.as_str()).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_and_map() {
        let uni: HashMap<&str, u32> = [("AAPL US", 0), ("BRK/B US", 1), ("VOD LN", 2)].into_iter().collect();
        let r = TickerRule::default();
        assert_eq!(r.resolve("aapl", &uni), Some(0));
        assert_eq!(r.resolve(" AAPL US ", &uni), Some(0));
        assert_eq!(r.resolve("VOD LN", &uni), Some(2));
        assert_eq!(r.resolve("MSFT", &uni), None);
        let m = TickerRule::Map([("BRK-B".to_string(), "BRK/B US".to_string())].into_iter().collect());
        assert_eq!(m.resolve("brk-b", &uni), Some(1));
        assert_eq!(m.resolve("AAPL", &uni), None);
    }
}
