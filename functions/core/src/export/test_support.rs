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

/// A dataset with a column of each type docs/spec/datasets.md adds
/// ("Column types"), keyed by a text column.
pub(super) fn typed() -> Dataset {
    let text = r#"
        [[dataset]]
        name = "typed"
        table = "typed"
        key = "k"
        [[dataset.column]]
        name = "k"
        header = "K"
        type = "text"
        [[dataset.column]]
        name = "n"
        header = "N"
        type = "integer"
        nullable = true
        [[dataset.column]]
        name = "x"
        header = "X"
        type = "float"
        nullable = true
        [[dataset.column]]
        name = "at"
        header = "At"
        type = "timestamp"
        nullable = true
        [[dataset.column]]
        name = "id"
        header = "Id"
        type = "uuid"
        nullable = true
        [[dataset.column]]
        name = "status"
        header = "Status"
        type = "enum"
        labels = ["paid", "Em Trânsito"]
        nullable = true
        [[dataset.column]]
        name = "doc"
        header = "Doc"
        type = "json"
        nullable = true
    "#;
    Datasets::parse(text, "test")
        .unwrap()
        .get("typed")
        .unwrap()
        .clone()
}

/// Rows of [`typed`] as Postgres prints them (`COPY ... TO STDOUT`):
/// ordinary values, values beyond what a spreadsheet number holds exactly
/// or with an offset, and the values Postgres has that files never bring.
pub(super) const TYPED_ROWS: [&str; 3] = [
    "k1\t42\t-1.5\t2026-01-02 03:04:05.5+00\t0f8fad5b-d9cb-469f-a165-70867728950e\tEm Trânsito\t{\"a\": 1}",
    "k2\t9223372036854775807\t1e+20\t2026-01-02 03:04:05-03:30\t00000000-0000-0000-0000-000000000000\tpaid\t[1]",
    "k3\t\\N\tNaN\tinfinity\t\\N\t\\N\t\\N",
];
