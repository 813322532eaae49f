//! Datasets are data: the tables xlport imports and exports are declared in a
//! TOML file (see `datasets/datasets.toml`), loaded at start and checked here,
//! so every other module can trust what it is handed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The datasets file compiled into the binaries; `XLPORT_DATASETS_FILE` overrides it.
pub const BUILTIN_DATASETS: &str = include_str!("../../../datasets/datasets.toml");

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read datasets file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("datasets file {path} is not valid TOML: {message}")]
    Parse { path: String, message: String },
    #[error("dataset `{dataset}`: {problem}")]
    Invalid { dataset: String, problem: String },
}

/// The column types (the names `datasets.toml` and `GET /datasets` use)
/// are the API's.
pub use xlport_contract::ColumnType;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    pub header: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    #[serde(default)]
    pub nullable: bool,
    #[serde(default)]
    pub precision: Option<u32>,
    #[serde(default)]
    pub scale: Option<u32>,
    /// Derived boolean column filled from the check digits (cpf/cnpj only).
    #[serde(default)]
    pub validity_column: Option<String>,
    #[serde(default)]
    pub validity_header: Option<String>,
    /// Whether exports may filter on this column (booleans by value, dates by range).
    #[serde(default)]
    pub filterable: bool,
    /// Column width in the exported sheet, in characters.
    #[serde(default)]
    pub width: Option<f64>,
}

impl Column {
    pub fn headers(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.header.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    pub table: String,
    pub key: String,
    #[serde(default)]
    pub sheet_name: Option<String>,
    #[serde(rename = "column")]
    pub columns: Vec<Column>,
}

impl Dataset {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn key_index(&self) -> usize {
        // validate() guarantees the key is a column.
        self.columns
            .iter()
            .position(|c| c.name == self.key)
            .unwrap_or(0)
    }

    /// Validity columns in table order, with the index of the column they describe.
    pub fn validity_columns(&self) -> impl Iterator<Item = (usize, &str, &str)> {
        self.columns.iter().enumerate().filter_map(|(i, c)| {
            let name = c.validity_column.as_deref()?;
            let header = c.validity_header.as_deref().unwrap_or(name);
            Some((i, name, header))
        })
    }

    /// Every stored column name, data columns first then validity flags: the
    /// order used by COPY on import and by the SELECT on export.
    pub fn stored_columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        out.extend(self.validity_columns().map(|(_, name, _)| name));
        out
    }

    fn validate(&self) -> Result<(), DatasetError> {
        let invalid = |problem: String| DatasetError::Invalid {
            dataset: self.name.clone(),
            problem,
        };
        for ident in std::iter::once(self.table.as_str())
            .chain(self.stored_columns())
            .chain(std::iter::once(self.name.as_str()))
        {
            if !is_identifier(ident) {
                return Err(invalid(format!(
                    "`{ident}` is not a plain lower-case SQL identifier"
                )));
            }
        }
        if self.columns.is_empty() {
            return Err(invalid("has no columns".into()));
        }
        let key = self
            .column(&self.key)
            .ok_or_else(|| invalid(format!("key `{}` is not one of its columns", self.key)))?;
        if key.nullable {
            return Err(invalid(format!("key `{}` cannot be nullable", self.key)));
        }
        let mut seen = BTreeMap::new();
        for c in &self.columns {
            for h in c.headers() {
                if let Some(other) = seen.insert(normalize_header(h), c.name.clone())
                    && other != c.name
                {
                    return Err(invalid(format!(
                        "header `{h}` is claimed by both `{other}` and `{}`",
                        c.name
                    )));
                }
            }
            if c.kind == ColumnType::Decimal {
                match (c.precision, c.scale) {
                    (Some(p), Some(s)) if s <= p && p <= 38 && p > 0 => {}
                    _ => {
                        return Err(invalid(format!(
                            "decimal column `{}` needs precision (1..=38) and scale (<= precision)",
                            c.name
                        )));
                    }
                }
            }
            if c.validity_column.is_some() && c.kind.document_len().is_none() {
                return Err(invalid(format!(
                    "column `{}` has a validity column but is not a cpf or cnpj",
                    c.name
                )));
            }
        }
        Ok(())
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

/// Header matching key: case-, accent- and whitespace-insensitive, blind to
/// invisible format characters (spec "File-level rules", header).
pub fn normalize_header(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    // NFD splits `Ú` into `U` and a combining accent (category Mn), which is
    // then dropped with the whitespace and the invisible format characters
    // (category Cf: zero-width space, BOM, soft hyphen, direction marks...)
    // that spreadsheets and copy-paste leave in headers.
    s.nfd()
        .filter(|c| {
            !c.is_whitespace()
                && !matches!(
                    c.general_category(),
                    GeneralCategory::Format | GeneralCategory::NonspacingMark
                )
        })
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, Clone)]
pub struct Datasets {
    by_name: BTreeMap<String, Dataset>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetsFile {
    #[serde(rename = "dataset")]
    datasets: Vec<Dataset>,
}

impl Datasets {
    pub fn parse(text: &str, origin: &str) -> Result<Self, DatasetError> {
        let file: DatasetsFile = toml::from_str(text).map_err(|e| DatasetError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        let mut by_name = BTreeMap::new();
        for d in file.datasets {
            d.validate()?;
            if by_name.contains_key(&d.name) {
                return Err(DatasetError::Invalid {
                    dataset: d.name.clone(),
                    problem: "declared twice".into(),
                });
            }
            by_name.insert(d.name.clone(), d);
        }
        Ok(Self { by_name })
    }

    pub fn builtin() -> Result<Self, DatasetError> {
        Self::parse(BUILTIN_DATASETS, "built-in datasets.toml")
    }

    /// Loads `path` when given, the built-in file otherwise.
    pub fn load(path: Option<&Path>) -> Result<Self, DatasetError> {
        match path {
            None => Self::builtin(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| DatasetError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                Self::parse(&text, &p.display().to_string())
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Dataset> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.by_name.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Dataset> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_declares_user_purchase_as_the_spec_says() {
        let ds = Datasets::builtin().expect("built-in datasets parse");
        let up = ds.get("user_purchase").expect("user_purchase declared");
        let names: Vec<_> = up.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpf",
                "private",
                "incompleto",
                "data_ultima_compra",
                "ticket_medio",
                "ticket_ultima_compra",
                "loja_mais_frequente",
                "loja_ultima_compra"
            ]
        );
        assert_eq!(up.key, "cpf");
        assert_eq!(
            up.stored_columns()[8..],
            [
                "cpf_valido",
                "loja_mais_frequente_valida",
                "loja_ultima_compra_valida"
            ]
        );
        assert!(!up.column("cpf").unwrap().nullable);
        assert!(up.column("ticket_medio").unwrap().nullable);
    }

    #[test]
    fn headers_match_ignoring_case_accents_and_spaces() {
        assert_eq!(
            normalize_header(" Data da Ultima  Compra"),
            normalize_header("DATA DA ÚLTIMA COMPRA")
        );
        assert_eq!(
            normalize_header("LOJA MAIS FREQUÊNTE"),
            normalize_header("loja mais frequente")
        );
        assert_ne!(normalize_header("CPF"), normalize_header("CPF VÁLIDO"));
    }

    #[test]
    fn rejects_a_dataset_whose_key_is_not_a_column() {
        let text = r#"
            [[dataset]]
            name = "t"
            table = "t"
            key = "id"
            [[dataset.column]]
            name = "x"
            header = "X"
            type = "text"
        "#;
        let err = Datasets::parse(text, "inline").unwrap_err().to_string();
        assert!(err.contains("key `id`"), "{err}");
    }

    #[test]
    fn rejects_sql_injection_in_identifiers() {
        let text = r#"
            [[dataset]]
            name = "t"
            table = "t; drop table jobs"
            key = "x"
            [[dataset.column]]
            name = "x"
            header = "X"
            type = "text"
        "#;
        let err = Datasets::parse(text, "inline").unwrap_err().to_string();
        assert!(
            err.contains("not a plain lower-case SQL identifier"),
            "{err}"
        );
    }

    #[test]
    fn rejects_decimal_without_scale() {
        let text = r#"
            [[dataset]]
            name = "t"
            table = "t"
            key = "x"
            [[dataset.column]]
            name = "x"
            header = "X"
            type = "decimal"
        "#;
        assert!(Datasets::parse(text, "inline").is_err());
    }
}
