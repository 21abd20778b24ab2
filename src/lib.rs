//! signalkit: financial news → Numerai Signals.
//!
//! Stages (ARCHITECTURE.md draws the data flow): [`data`] ingest, [`pit`] point-in-time join, [`encode`] headline encoder
//! and store, [`features`] feature table, [`train`] LightGBM, [`metrics`] Numerai scoring,
//! [`evaluate`] out-of-sample reports, [`run`] the whole chain from a [`config`], [`sample`] synthetic data.
//! [`numerai`]: the Numerai API client, submission validation and upload. [`news`]: headlines
//! fetched point-in-time from news APIs (SEC EDGAR, Alpaca, Finnhub, Polygon, Tiingo).
//! Each stage is a library function and a CLI subcommand; each writes parquet.

pub mod ask;
pub mod bert;
pub mod blend;
pub mod categorical;
pub mod config;
pub mod data;
pub mod encode;
pub mod env;
pub mod era;
pub mod error;
pub mod evaluate;
pub mod features;
pub mod finetune;
pub mod http;
pub mod metrics;
pub mod model;
pub mod news;
pub mod numerai;
pub mod pit;
pub mod provenance;
pub mod report;
pub mod run;
pub mod sample;
pub mod settings;
pub mod smooth;
pub mod split;
pub mod train;

pub use encode::{EncodeArgs, EncodeSummary, encode_files};
pub use error::{Error, Result};
pub use features::{FeatureArgs, FeatureSummary, build_features};
pub use pit::{JoinArgs, JoinSummary, Window, join, join_files};
pub use sample::{SampleOptions, write_sample};
