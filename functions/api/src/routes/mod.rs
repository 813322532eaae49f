//! One module per resource: each adds its handlers to [`crate::App`].

pub mod datasets;
pub mod exports;
pub mod health;
pub mod imports;
pub mod jobs;
