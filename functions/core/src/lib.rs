//! xlport's pure logic: datasets and their column rules, file formats in and
//! out, the job model and its lifecycle, API keys, and the ports the adapters
//! implement (with in-memory implementations for tests). Nothing here knows
//! about AWS or Postgres.

pub mod apikey;
pub mod cells;
mod copy_format;
pub mod dataset;
pub mod decode;
pub mod describe;
pub mod export;
pub mod import;
pub mod job;
pub mod lifecycle;
pub mod message;
pub mod ports;
pub mod report;
pub mod sample;
pub mod xlsx;

pub use dataset::{Column, ColumnType, Dataset, Datasets};
pub use job::{JobKind, JobState};
