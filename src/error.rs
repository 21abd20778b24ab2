//! Library error type: every input problem names the file, and the row/column where known.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in an input file a problem was found (1-based data row, column name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// 1-based data row (the header is not counted).
    pub row: Option<usize>,
    /// Column name.
    pub column: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.row, &self.column) {
            (Some(r), Some(c)) => write!(f, "row {r}, column '{c}': "),
            (Some(r), None) => write!(f, "row {r}: "),
            (None, Some(c)) => write!(f, "column '{c}': "),
            (None, None) => Ok(()),
        }
    }
}

/// Errors callers may branch on; everything else is wrapped with context by `anyhow` at the top.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad content in an input file: says where and what to do.
    #[error("{}: {at}{message}", file.display())]
    Input {
        /// The file being read.
        file: PathBuf,
        /// Row/column of the problem.
        at: Location,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Reading or writing a file failed. (The cause is in the message, not a `source`, so a
    /// report prints it once, not again under "Caused by".)
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A polars error while reading or writing a table (its cause printed once, as for `Io`).
    #[error("{}: {cause}", path.display())]
    Table {
        /// The file involved.
        path: PathBuf,
        /// The underlying polars error.
        cause: polars::prelude::PolarsError,
    },
    /// Invalid options or configuration.
    #[error("{0}")]
    Config(String),
    /// LightGBM failed (training, prediction, loading a model).
    #[error("LightGBM: {0}")]
    Lightgbm(String),
    /// The encoder failed: tokenizer, tensors, device.
    #[error("encoder: {0}")]
    Encoder(String),
    /// Drawing or writing a plot failed.
    #[error("{}: drawing the plot failed: {message}", path.display())]
    Plot {
        /// The plot file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The Numerai API refused or failed a request: says what happened and what to do.
    #[error("Numerai API: {0}")]
    Api(String),
    /// A news vendor's API refused or failed a request (the message names the URL, hence the
    /// vendor; `news fetch` adds the source's name).
    #[error("news API: {0}")]
    News(String),
}

/// Library result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An input error for a whole file.
    pub fn input(file: &Path, message: impl Into<String>) -> Self {
        Error::Input { file: file.to_path_buf(), at: Location::default(), message: message.into() }
    }

    /// An input error at a row (1-based) and column.
    pub fn at(file: &Path, row: Option<usize>, column: &str, message: impl Into<String>) -> Self {
        Error::Input {
            file: file.to_path_buf(),
            at: Location { row, column: Some(column.to_string()) },
            message: message.into(),
        }
    }

    /// Wraps a polars error with the file it concerns.
    pub fn table(path: &Path, source: polars::prelude::PolarsError) -> Self {
        Error::Table { path: path.to_path_buf(), cause: source }
    }

    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), cause: source }
    }
}
