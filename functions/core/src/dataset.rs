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

use crate::cells::{
    Cell, Checks, FlagWords, FloatType, IntegerType, JsonType, Labels, Limit, Pattern,
    TimestampRule, parse_date, parse_decimal, parse_float, parse_integer, parse_timestamp,
    parse_zone,
};

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
    /// Text: the most characters a value may have (`varchar(n)`), else
    /// `too_long` (docs/spec/datasets.md, "Column types").
    #[serde(default)]
    pub max_length: Option<u32>,
    /// The column's Postgres type when the xlport type does not say it all:
    /// `smallint`/`integer`/`bigint` (the range of an integer column; bigint
    /// by default), `real`/`double precision`, `timestamptz`/`timestamp`,
    /// `json`/`jsonb` (docs/spec/datasets.md, "Column types").
    #[serde(default)]
    pub pg_type: Option<String>,
    /// Numbers, dates, timestamps: the smallest value accepted, read by the
    /// column's type rule at load, else `out_of_range` (docs/spec/datasets.md,
    /// "Column types").
    #[serde(default)]
    pub min: Option<toml::Value>,
    /// Numbers, dates, timestamps: the largest value accepted, as `min`.
    #[serde(default)]
    pub max: Option<toml::Value>,
    /// Text: a regular expression the whole trimmed text must match, else
    /// `pattern_mismatch` (docs/spec/datasets.md, "Column types").
    #[serde(default)]
    pub pattern: Option<String>,
    /// Text: the value must look like an email address, else
    /// `invalid_email` (docs/spec/datasets.md, "Column types").
    #[serde(default)]
    pub email: bool,
    /// Text: the values accepted, exactly, else `not_in_list`
    /// (docs/spec/datasets.md, "Column types").
    #[serde(default)]
    pub one_of: Vec<String>,
    /// Enum: the labels, matched case- and accent-insensitively and stored
    /// as declared, else `not_in_list` (docs/spec/datasets.md, "Column types").
    #[serde(default)]
    pub labels: Vec<String>,
    /// What loading made of the declaration for the cell rules (never in
    /// the file).
    #[serde(skip)]
    pub rules: ColumnRules,
}

/// A column's declaration as its cell rules use it (docs/spec/datasets.md,
/// "Column types"): built once, when the dataset is loaded and checked, so
/// no cell parses a `pg_type` or compiles a `pattern`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnRules {
    /// `integer` columns: the Postgres type, hence the range.
    pub integer: IntegerType,
    /// `float` columns: `real` or `double precision`.
    pub float: FloatType,
    /// `timestamp` columns: the dataset's zone, with or without time zone.
    pub timestamp: TimestampRule,
    /// `json` columns: `json` or `jsonb`.
    pub json: JsonType,
    /// `enum` columns: the labels.
    pub labels: Labels,
    /// `boolean` columns: the dataset's `true_words` and `false_words`.
    pub words: FlagWords,
    /// What the column adds to its type.
    pub checks: Checks,
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
    /// The zone of `timestamp` values without an offset: `UTC` (the default)
    /// or a fixed offset such as `-03:00` (docs/spec/datasets.md, "Column
    /// types").
    #[serde(default)]
    pub timezone: Option<String>,
    /// Words a `boolean` cell may hold for true, besides the flag rule's
    /// (`["sim", "s"]`; docs/spec/datasets.md, "Column types").
    #[serde(default)]
    pub true_words: Vec<String>,
    /// Words a `boolean` cell may hold for false (`["não", "nao", "n"]`).
    #[serde(default)]
    pub false_words: Vec<String>,
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

    /// Checks the declaration (errors name the dataset, the column and the
    /// problem) and builds each column's [`ColumnRules`].
    fn prepare(&mut self) -> Result<(), DatasetError> {
        self.validate()?;
        let invalid = |problem: String| DatasetError::Invalid {
            dataset: self.name.clone(),
            problem,
        };
        let zone = match &self.timezone {
            Some(text) => parse_zone(text).map_err(invalid)?,
            None => TimestampRule::default().zone,
        };
        let words = FlagWords::new(&self.true_words, &self.false_words).map_err(invalid)?;
        let mut rules = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            let built = column_rules(column, zone, &words)
                .map_err(|problem| invalid(format!("column `{}`: {problem}", column.name)))?;
            rules.push(built);
        }
        for (column, built) in self.columns.iter_mut().zip(rules) {
            column.rules = built;
        }
        Ok(())
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

/// The `pg_type` as compared: lower case, single spaces.
fn pg_type_name(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

/// `base` or `base(n)` / `base(p,s)`, `n` digits, for the types whose
/// length or precision other keys say (`varchar(40)`, `numeric(14,2)`).
fn is_type_with_modifier(name: &str, bases: &[&str]) -> bool {
    let (base, modifier) = match name.split_once('(') {
        Some((base, rest)) => (base.trim_end(), rest.strip_suffix(')')),
        None => (name, Some("")),
    };
    bases.contains(&base)
        && modifier.is_some_and(|m| {
            m.split(',')
                .all(|n| n.trim().bytes().all(|b| b.is_ascii_digit()))
        })
}

/// The Postgres types a column of `kind` may declare as its `pg_type`, for
/// the refusal of any other.
fn pg_types_of(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::Integer => "smallint, integer or bigint",
        ColumnType::Float => "real or double precision",
        ColumnType::Timestamp => "timestamptz or timestamp",
        ColumnType::Json => "json or jsonb",
        ColumnType::Decimal => "numeric",
        ColumnType::Date => "date",
        ColumnType::Boolean => "boolean",
        ColumnType::Uuid => "uuid",
        ColumnType::Enum => "the enum type's name, or text",
        ColumnType::Text | ColumnType::Cpf | ColumnType::Cnpj => "text, varchar(n) or char(n)",
    }
}

const TEXT_TYPES: &[&str] = &[
    "text",
    "varchar",
    "character varying",
    "char",
    "character",
    "bpchar",
    "citext",
];

/// A column's [`ColumnRules`], or what is wrong with its declaration (the
/// caller names the dataset and the column). `zone` and `words` are the
/// dataset's.
fn column_rules(
    column: &Column,
    zone: chrono::FixedOffset,
    words: &FlagWords,
) -> Result<ColumnRules, String> {
    let kind = column.kind;
    let mut rules = ColumnRules {
        timestamp: TimestampRule {
            zone,
            with_time_zone: true,
        },
        ..ColumnRules::default()
    };
    if kind == ColumnType::Boolean {
        rules.words = words.clone();
    }
    if let Some(declared) = &column.pg_type {
        let name = pg_type_name(declared);
        let known = match kind {
            ColumnType::Integer => IntegerType::of_pg_type(&name).map(|t| rules.integer = t),
            ColumnType::Float => FloatType::of_pg_type(&name).map(|t| rules.float = t),
            ColumnType::Timestamp => {
                TimestampRule::of_pg_type(&name).map(|zoned| rules.timestamp.with_time_zone = zoned)
            }
            ColumnType::Json => JsonType::of_pg_type(&name).map(|t| rules.json = t),
            ColumnType::Decimal => {
                is_type_with_modifier(&name, &["numeric", "decimal"]).then_some(())
            }
            ColumnType::Date => (name == "date").then_some(()),
            ColumnType::Boolean => matches!(name.as_str(), "boolean" | "bool").then_some(()),
            ColumnType::Uuid => (name == "uuid").then_some(()),
            ColumnType::Enum => (is_type_with_modifier(&name, TEXT_TYPES)
                || name.split('.').all(is_identifier) && name.split('.').count() <= 2)
                .then_some(()),
            ColumnType::Text | ColumnType::Cpf | ColumnType::Cnpj => {
                is_type_with_modifier(&name, TEXT_TYPES).then_some(())
            }
        };
        if known.is_none() {
            return Err(format!(
                "pg_type `{}` is not a Postgres type for `{kind}` columns (use {})",
                crate::job::clip(declared, 40),
                pg_types_of(kind)
            ));
        }
    }
    let only = |what: &str, applies: bool, types: &str| {
        if applies {
            Ok(())
        } else {
            Err(format!("{what} applies to {types} columns, not {kind}"))
        }
    };
    let text = kind == ColumnType::Text;
    if let Some(max_length) = column.max_length {
        only("max_length", text, "text")?;
        if max_length == 0 {
            return Err("max_length must be at least 1".into());
        }
        rules.checks.max_length = Some(max_length);
    }
    if !column.one_of.is_empty() {
        only("one_of", text, "text (an enum column has labels)")?;
        rules.checks.one_of = column.one_of.clone();
    }
    if let Some(source) = &column.pattern {
        only("pattern", text, "text")?;
        rules.checks.pattern = Some(Pattern::new(source)?);
    }
    if column.email {
        only("email", text, "text")?;
        rules.checks.email = true;
    }
    if kind == ColumnType::Enum {
        if column.labels.is_empty() {
            return Err("an enum column needs its labels".into());
        }
        rules.labels = Labels::new(&column.labels)?;
    } else if !column.labels.is_empty() {
        only("labels", false, "enum")?;
    }
    let ranged = matches!(
        kind,
        ColumnType::Integer
            | ColumnType::Float
            | ColumnType::Decimal
            | ColumnType::Date
            | ColumnType::Timestamp
    );
    for (key, bound) in [("min", &column.min), ("max", &column.max)] {
        if let Some(bound) = bound {
            only(key, ranged, "integer, float, decimal, date and timestamp")?;
            let limit = limit_of(column, &rules, bound).ok_or_else(|| {
                format!(
                    "{key} {} is not a value the {kind} column can hold",
                    bound_text(bound)
                )
            })?;
            if key == "min" {
                rules.checks.min = Some(limit);
            } else {
                rules.checks.max = Some(limit);
            }
        }
    }
    if let (Some(min), Some(max)) = (&rules.checks.min, &rules.checks.max)
        && min.compare(max).is_some_and(std::cmp::Ordering::is_gt)
    {
        return Err(format!("min {min} is greater than max {max}"));
    }
    Ok(rules)
}

/// A `min` or `max` as its declaration wrote it, for errors.
fn bound_text(bound: &toml::Value) -> String {
    let text = match bound {
        toml::Value::String(s) => format!("`{s}`"),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) => "(a list)".into(),
        toml::Value::Table(_) => "(a table)".into(),
    };
    crate::job::clip(&text, 40)
}

/// A `min` or `max` read as a cell of the column would be (a TOML number,
/// string or date/time), within the column's type; `None` if it is not one.
fn limit_of(column: &Column, rules: &ColumnRules, bound: &toml::Value) -> Option<Limit> {
    let text;
    let cell = match bound {
        toml::Value::Integer(n) => {
            text = n.to_string();
            Cell::Text(&text)
        }
        toml::Value::Float(x) => Cell::Number(*x),
        toml::Value::String(s) => Cell::Text(s),
        toml::Value::Datetime(d) => {
            text = d.to_string();
            Cell::Text(&text)
        }
        _ => return None,
    };
    match column.kind {
        ColumnType::Integer => parse_integer(&cell, rules.integer).ok().map(Limit::Integer),
        ColumnType::Float => parse_float(&cell, rules.float).ok().map(Limit::Float),
        ColumnType::Decimal => parse_decimal(&cell, column.precision?, column.scale?)
            .ok()
            .map(Limit::Decimal),
        ColumnType::Date => parse_date(&cell).ok().map(Limit::Date),
        ColumnType::Timestamp => parse_timestamp(&cell, rules.timestamp)
            .ok()
            .map(Limit::Timestamp),
        _ => None,
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
        for mut d in file.datasets {
            d.prepare()?;
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
    use crate::cells::JsonType;

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

    /// The error of a dataset `t` with a text key and the column declared
    /// by `column` (TOML keys), and `dataset` keys; empty if it loads.
    fn problem(dataset: &str, column: &str) -> String {
        let text = format!(
            "[[dataset]]\nname = \"t\"\ntable = \"t\"\nkey = \"k\"\n{dataset}\n\
             [[dataset.column]]\nname = \"k\"\nheader = \"K\"\ntype = \"text\"\n\
             [[dataset.column]]\nname = \"c\"\nheader = \"C\"\n{column}\n"
        );
        match Datasets::parse(&text, "inline") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn typed_columns_and_checks_are_read_at_load() {
        let text = r#"
            [[dataset]]
            name = "t"
            table = "t"
            key = "k"
            timezone = "-03:00"
            true_words = ["sim"]
            [[dataset.column]]
            name = "k"
            header = "K"
            type = "integer"
            pg_type = "SMALLINT"
            min = 1
            max = 100
            [[dataset.column]]
            name = "f"
            header = "F"
            type = "float"
            pg_type = "float4"
            [[dataset.column]]
            name = "at"
            header = "At"
            type = "timestamp"
            pg_type = "timestamp  without  time zone"
            max = 2030-01-01T00:00:00Z
            [[dataset.column]]
            name = "j"
            header = "J"
            type = "json"
            pg_type = "json"
            [[dataset.column]]
            name = "s"
            header = "S"
            type = "enum"
            pg_type = "public.order_status"
            labels = ["a", "b"]
            [[dataset.column]]
            name = "x"
            header = "X"
            type = "text"
            pg_type = "varchar(40)"
            max_length = 40
            pattern = "[a-z]+"
            [[dataset.column]]
            name = "flag"
            header = "Flag"
            type = "boolean"
        "#;
        let ds = Datasets::parse(text, "inline").unwrap();
        let t = ds.get("t").unwrap();
        let rules = |name: &str| &t.column(name).unwrap().rules;
        assert_eq!(rules("k").integer, IntegerType::Smallint);
        assert_eq!(rules("k").checks.min, Some(Limit::Integer(1)));
        assert_eq!(rules("k").checks.max, Some(Limit::Integer(100)));
        assert_eq!(rules("f").float, FloatType::Real);
        let at = rules("at").timestamp;
        assert!(!at.with_time_zone);
        assert_eq!(at.zone.local_minus_utc(), -3 * 3600);
        assert_eq!(
            rules("at").checks.max.as_ref().map(ToString::to_string),
            Some("2029-12-31 21:00:00".into())
        );
        assert_eq!(rules("j").json, JsonType::Json);
        assert_eq!(rules("s").labels.declared(), ["a", "b"]);
        assert_eq!(rules("x").checks.max_length, Some(40));
        assert!(
            rules("x")
                .checks
                .pattern
                .as_ref()
                .is_some_and(|p| p.matches("abc"))
        );
        assert!(!rules("flag").words.is_empty());
        assert!(rules("x").words.is_empty(), "words are for boolean columns");
        // Defaults: bigint, double precision, timestamptz in UTC, jsonb.
        let ds = Datasets::parse(
            "[[dataset]]\nname = \"d\"\ntable = \"d\"\nkey = \"k\"\n\
             [[dataset.column]]\nname = \"k\"\nheader = \"K\"\ntype = \"integer\"\n",
            "inline",
        )
        .unwrap();
        let rules = &ds.get("d").unwrap().columns[0].rules;
        assert_eq!(rules.integer, IntegerType::Bigint);
        assert_eq!(rules.float, FloatType::Double);
        assert_eq!(rules.timestamp, TimestampRule::default());
        assert_eq!(rules.json, JsonType::Jsonb);
        assert!(rules.checks.is_empty());
    }

    #[test]
    fn declarations_that_cannot_work_are_refused_naming_dataset_and_column() {
        for (dataset, column, want) in [
            (
                "",
                "type = \"integer\"\npg_type = \"numeric\"",
                "dataset `t`: column `c`: pg_type `numeric` is not a Postgres type for \
                 `integer` columns (use smallint, integer or bigint)",
            ),
            (
                "",
                "type = \"text\"\npg_type = \"integer\"",
                "dataset `t`: column `c`: pg_type `integer` is not a Postgres type for `text` \
                 columns (use text, varchar(n) or char(n))",
            ),
            (
                "",
                "type = \"integer\"\nmax_length = 3",
                "dataset `t`: column `c`: max_length applies to text columns, not integer",
            ),
            (
                "",
                "type = \"text\"\nmax_length = 0",
                "dataset `t`: column `c`: max_length must be at least 1",
            ),
            (
                "",
                "type = \"text\"\nmin = 1",
                "dataset `t`: column `c`: min applies to integer, float, decimal, date and \
                 timestamp columns, not text",
            ),
            (
                "",
                "type = \"integer\"\npg_type = \"smallint\"\nmax = 40000",
                "dataset `t`: column `c`: max 40000 is not a value the integer column can hold",
            ),
            (
                "",
                "type = \"date\"\nmin = \"yesterday\"",
                "dataset `t`: column `c`: min `yesterday` is not a value the date column can \
                 hold",
            ),
            (
                "",
                "type = \"integer\"\nmin = 10\nmax = 1",
                "dataset `t`: column `c`: min 10 is greater than max 1",
            ),
            (
                "",
                "type = \"float\"\nmin = true",
                "dataset `t`: column `c`: min true is not a value the float column can hold",
            ),
            (
                "",
                "type = \"enum\"",
                "dataset `t`: column `c`: an enum column needs its labels",
            ),
            (
                "",
                "type = \"enum\"\nlabels = [\"Sim\", \"sim\"]",
                "dataset `t`: column `c`: labels `Sim` and `sim` are the same once case and \
                 accents are ignored",
            ),
            (
                "",
                "type = \"text\"\nlabels = [\"a\"]",
                "dataset `t`: column `c`: labels applies to enum columns, not text",
            ),
            (
                "",
                "type = \"enum\"\nlabels = [\"a\"]\none_of = [\"a\"]",
                "dataset `t`: column `c`: one_of applies to text (an enum column has labels) \
                 columns, not enum",
            ),
            (
                "",
                "type = \"text\"\npattern = \"(\"",
                "dataset `t`: column `c`: pattern `(` is not a regular expression: unclosed \
                 group",
            ),
            (
                "",
                "type = \"uuid\"\nemail = true",
                "dataset `t`: column `c`: email applies to text columns, not uuid",
            ),
            (
                "timezone = \"America/Sao_Paulo\"",
                "type = \"timestamp\"",
                "dataset `t`: timezone `America/Sao_Paulo` is a named zone: use UTC or a fixed \
                 offset such as -03:00 (named zones and their daylight-saving rules are not \
                 supported)",
            ),
            (
                "true_words = [\"sim\"]\nfalse_words = [\"SIM\"]",
                "type = \"boolean\"",
                "dataset `t`: word `sim` means both true and false",
            ),
        ] {
            assert_eq!(problem(dataset, column), want, "{column}");
        }
        assert!(
            problem("", "type = \"text\"\nmaxlength = 3").contains("unknown field `maxlength`"),
            "unknown keys are refused"
        );
        assert_eq!(problem("", "type = \"text\"\nmax_length = 3"), "");
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
