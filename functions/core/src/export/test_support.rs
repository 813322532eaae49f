//! Fixtures shared by the export's tests: the built-in dataset and a COPY
//! line split into fields.

use std::borrow::Cow;

use super::split_copy_line;
use crate::Datasets;
use crate::dataset::Dataset;

pub(super) fn up() -> Dataset {
    Datasets::builtin()
        .unwrap()
        .get("user_purchase")
        .unwrap()
        .clone()
}

pub(super) fn row(line: &str) -> Vec<Option<Cow<'_, str>>> {
    let mut f = Vec::new();
    split_copy_line(line, &mut f);
    f
}
