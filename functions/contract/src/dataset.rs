//! `GET /datasets` (docs/api.md): what can be imported and exported.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::names::ColumnType;

/// A dataset: a table with its columns, configured in `datasets.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DatasetView {
    /// What requests name it by.
    pub name: String,
    /// For people.
    #[schema(required = true)]
    pub title: Option<String>,
    /// The column whose value identifies a row (conflicts are on it).
    pub key: String,
    /// In file order.
    pub columns: Vec<ColumnView>,
    /// The validity flags an export adds after the columns (`cpf_valido`...),
    /// filterable like a boolean column.
    pub flags: Vec<FlagView>,
}

/// A column of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ColumnView {
    /// What the API and files call it (snake_case).
    pub name: String,
    /// The header a file has (and an export writes).
    pub header: String,
    /// Other headers a file may have for it.
    pub aliases: Vec<String>,
    /// Which cell rules apply (`type` on the wire).
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Whether a cell may be empty.
    pub nullable: bool,
    /// Whether an export's `filter` may name it.
    pub filterable: bool,
}

/// A validity flag of a dataset: a boolean an export derives from a cpf or
/// cnpj column's check digits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlagView {
    /// What an export's `filter` names it by.
    pub name: String,
    /// The header an export writes.
    pub header: String,
}
