//! API keys: from environment variables, else from a credentials file (`KEY = value` lines,
//! mode 0600), never printed.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Keys by variable name (`ALPACA_API_KEY_ID`, `FINNHUB_API_KEY`, ...); `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Keys {
    values: HashMap<String, String>,
    origin: String,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.values.keys().collect();
        names.sort();
        write!(f, "Keys {{ {names:?} from {} }}", self.origin)
    }
}

impl Keys {
    /// Keys given directly (tests, library callers).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let values = pairs.iter().map(|(k, v)| (k.to_ascii_uppercase(), v.to_string())).collect();
        Keys { values, origin: "the caller".into() }
    }

    /// The default credentials file, `~/.signalkit/credentials`.
    pub fn default_file() -> Option<PathBuf> {
        std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".signalkit/credentials"))
    }

    /// `file` (or the default file when it exists) read for `names`, each overridden by its
    /// environment variable when that is set.
    pub fn discover(file: Option<&Path>, names: &[&str]) -> Result<Self> {
        let mut keys = match file.map(Path::to_path_buf).or_else(|| Keys::default_file().filter(|f| f.exists())) {
            Some(f) => Keys::from_file(&f)?,
            None => Keys::default(),
        };
        for n in names {
            if let Some(v) = std::env::var(n).ok().filter(|v| !v.trim().is_empty()) {
                keys.values.insert(n.to_string(), v.trim().to_string());
            }
        }
        Ok(keys)
    }

    /// Reads `KEY = value` lines (quotes, `#` comments, `[sections]` and `export` allowed).
    pub fn from_file(path: &Path) -> Result<Self> {
        let values = crate::http::read_key_file(path, "FINNHUB_API_KEY = \"...\"", str::to_ascii_uppercase)?
            .into_iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v))
            .collect();
        Ok(Keys { values, origin: path.display().to_string() })
    }

    /// Sets the key `name` (from another variable the user named).
    pub fn insert(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_ascii_uppercase(), value.to_string());
    }

    /// The key `name`, when it is given (for optional keys).
    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// The key `name`, or an error saying where to put it.
    pub fn require(&self, name: &str, what: &str) -> Result<String> {
        self.values.get(name).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
            Error::Config(format!(
                "{what} needs {name}: export {name}=... or put `{name} = \"...\"` in ~/.signalkit/credentials (chmod 600) or the file given with --credentials"
            ))
        })
    }
}
