//! `{company}`: company names by headline ticker, from a `ticker,name` file (`ask --names`).

use std::collections::HashMap;
use std::path::Path;

use crate::data::{find_column, missing_column, read_table, rows_text, str_values};
use crate::error::{Error, Result};

/// Company names by headline ticker (trimmed, upper case).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    by_ticker: HashMap<String, String>,
    /// xxh3 of the file's bytes (hex).
    hash: String,
}

impl Names {
    /// Reads a `ticker,name` CSV (or Parquet); refuses a missing column, a row with a ticker or
    /// a name but not both, and a ticker given two different names, naming the rows.
    pub fn read(path: &Path) -> Result<Names> {
        let fix = "a names file needs columns ticker,name (one company name per headline ticker)";
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let hash = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes));
        let df = read_table(path, true)?;
        let column =
            |wanted: &str| find_column(&df, &[wanted]).ok_or_else(|| missing_column(path, &df, &[wanted], fix));
        let (t, n) = (column("ticker")?, column("name")?);
        let (tickers, names) = (str_values(path, &df, &t)?, str_values(path, &df, &n)?);
        let mut by_ticker: HashMap<String, (String, usize)> = HashMap::with_capacity(tickers.len());
        for (i, (t, n)) in tickers.iter().zip(names.iter()).enumerate() {
            let (t, n) = (t.unwrap_or("").trim().to_ascii_uppercase(), n.unwrap_or("").trim().to_string());
            if t.is_empty() != n.is_empty() {
                let what = if t.is_empty() {
                    format!("name '{n}' has no ticker")
                } else {
                    format!("ticker '{t}' has no name")
                };
                return Err(Error::input(
                    path,
                    format!(
                        "{} ({what}): fill it or remove the row (a ticker not in the file is named by its ticker)",
                        rows_text(path, &[i + 1])
                    ),
                ));
            }
            match by_ticker.get(&t) {
                Some((prev, j)) if *prev != n => {
                    return Err(Error::input(
                        path,
                        format!(
                            "ticker '{t}' has two names, '{prev}' and '{n}' ({}): keep one",
                            rows_text(path, &[j + 1, i + 1])
                        ),
                    ));
                }
                Some(_) => {}
                None if t.is_empty() => {}
                None => {
                    by_ticker.insert(t, (n, i));
                }
            }
        }
        Ok(Names { by_ticker: by_ticker.into_iter().map(|(t, (n, _))| (t, n)).collect(), hash })
    }

    /// The company name of a headline ticker (compared trimmed, case-insensitively).
    pub fn get(&self, ticker: &str) -> Option<&str> {
        self.by_ticker.get(&ticker.trim().to_ascii_uppercase()).map(String::as_str)
    }

    /// The content hash of the file read (xxh3, hex): recorded with the answers it shaped.
    pub fn hash(&self) -> String {
        self.hash.clone()
    }

    /// Tickers named.
    pub fn len(&self) -> usize {
        self.by_ticker.len()
    }

    /// True when no ticker is named.
    pub fn is_empty(&self) -> bool {
        self.by_ticker.is_empty()
    }
}
