//! xlport's pure logic: datasets and their column rules, the job model and its
//! state machine, API keys, and the ports the adapters implement. Nothing here
//! knows about AWS.

pub mod apikey;
pub mod cells;
pub mod dataset;
pub mod decode;
pub mod export;
pub mod import;
pub mod job;
pub mod message;
pub mod ports;
pub mod report;
pub mod sample;
pub mod xlsx;

pub use dataset::{Column, ColumnType, Dataset, Datasets};
pub use job::{JobKind, JobState};
