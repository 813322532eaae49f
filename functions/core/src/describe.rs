//! `xlport-admin dataset describe`: a dataset declaration written from what
//! the Postgres catalog says of a table (docs/spec/datasets.md, "What a
//! dataset is"): column types, nullability, primary key, enum labels,
//! `varchar(n)` lengths, `numeric(p,s)`, column comments. The adapters read
//! the catalog into a [`TableShape`]; this module only writes the TOML, so
//! its every rule is tested here without a database.

use std::fmt::Write;

use crate::{ColumnType, Dataset};

/// A table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    /// `schema.table` as given (`public.` may be left out).
    pub table: String,
    /// The primary key's columns, in key order; empty when the table has none.
    pub primary_key: Vec<String>,
    pub columns: Vec<CatalogColumn>,
}

/// One column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    pub name: String,
    /// The type's name in `pg_type` (`int8`, `varchar`, `numeric`, an enum's
    /// own name...).
    pub base: String,
    /// The type as Postgres prints it (`format_type`: `character varying(40)`).
    pub formatted: String,
    /// Whether the type is an enum (`pg_type.typtype = 'e'`); its labels in
    /// their declared order.
    pub enum_labels: Option<Vec<String>>,
    pub not_null: bool,
    /// `varchar(n)` / `char(n)`: n.
    pub max_length: Option<u32>,
    /// `numeric(p, s)`: (p, s); `None` for an unconstrained numeric.
    pub numeric: Option<(u32, u32)>,
    /// The column's comment (`COMMENT ON COLUMN`), the header when present.
    pub comment: Option<String>,
}

/// The columns xlport keeps on a dataset's table itself (the import's merge
/// writes them: which job last wrote the row, and when), so not columns of
/// the dataset.
pub const BOOKKEEPING_COLUMNS: [&str; 2] = ["last_job_id", "updated_at"];

/// Why a table cannot be declared (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DescribeError(pub String);

/// The header a column gets: its comment, else its name in Title Case
/// (`placed_at` → `Placed At`).
pub fn header_of(column: &CatalogColumn) -> String {
    if let Some(comment) = column.comment.as_deref().map(str::trim)
        && !comment.is_empty()
    {
        return comment.to_string();
    }
    column
        .name
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A TOML basic string (TOML 1.0 "String"): JSON's escapes are TOML's.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// The `type` and type-specific keys of a column (datasets.md, "Column
/// types"), and a note when the column's type has no rule of its own.
fn type_lines(c: &CatalogColumn) -> (Vec<String>, Option<String>) {
    let pg = |t: &str| format!("pg_type = {}", quoted(t));
    let line = |t: &str| format!("type = {}", quoted(t));
    if let Some(labels) = &c.enum_labels {
        let labels: Vec<String> = labels.iter().map(|l| quoted(l)).collect();
        return (
            vec![line("enum"), format!("labels = [{}]", labels.join(", "))],
            None,
        );
    }
    let lines = match c.base.as_str() {
        "int2" => vec![line("integer"), pg("smallint")],
        "int4" => vec![line("integer"), pg("integer")],
        "int8" => vec![line("integer"), pg("bigint")],
        "float4" => vec![line("float"), pg("real")],
        "float8" => vec![line("float"), pg("double precision")],
        "numeric" => {
            let (p, s) = c.numeric.unwrap_or((38, 10));
            let mut v = vec![
                line("decimal"),
                format!("precision = {p}"),
                format!("scale = {s}"),
            ];
            if c.numeric.is_none() {
                v.push("# an unconstrained numeric: 38 digits, 10 after the point".into());
            }
            v
        }
        "bool" => vec![line("boolean")],
        "date" => vec![line("date")],
        "timestamp" => vec![line("timestamp"), pg("timestamp")],
        "timestamptz" => vec![line("timestamp"), pg("timestamptz")],
        "uuid" => vec![line("uuid")],
        "json" => vec![line("json"), pg("json")],
        "jsonb" => vec![line("json"), pg("jsonb")],
        "text" | "varchar" | "bpchar" => {
            let mut v = vec![line("text")];
            if let Some(n) = c.max_length {
                v.push(format!("max_length = {n}"));
            }
            v
        }
        _ => {
            return (
                vec![line("text")],
                Some(format!(
                    "{} has no rule of its own in xlport: read and written as text",
                    c.formatted
                )),
            );
        }
    };
    (lines, None)
}

/// The declaration of `table` as dataset `name`: a `[[dataset]]` block
/// `Datasets::parse` reads as it is. Errors: a table without a primary
/// key, or with a composite one (keyless and composite-key datasets are
/// not served yet: issue #14).
pub fn declaration(name: &str, table: &TableShape) -> Result<String, DescribeError> {
    let key = match table.primary_key.as_slice() {
        [] => {
            return Err(DescribeError(format!(
                "{} has no primary key: a dataset needs a key (a primary key or a unique \
                 constraint); add one, then describe it again",
                table.table
            )));
        }
        [key] => key,
        keys => {
            return Err(DescribeError(format!(
                "{} has a composite primary key ({}): composite keys are not served yet",
                table.table,
                keys.join(", ")
            )));
        }
    };
    // Datasets name plain tables of `public` so far (issue #14).
    let plain = match table.table.split_once('.') {
        None => table.table.as_str(),
        Some(("public", name)) => name,
        Some(_) => {
            return Err(DescribeError(format!(
                "{} is outside the public schema: tables of other schemas are not served yet",
                table.table
            )));
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by `xlport-admin dataset describe {}` from the Postgres catalog.",
        table.table
    );
    let _ = writeln!(out, "[[dataset]]");
    let _ = writeln!(out, "name = {}", quoted(name));
    let _ = writeln!(out, "table = {}", quoted(plain));
    let _ = writeln!(out, "key = {}", quoted(key));
    for c in table
        .columns
        .iter()
        .filter(|c| !BOOKKEEPING_COLUMNS.contains(&c.name.as_str()))
    {
        let _ = writeln!(out);
        let (lines, note) = type_lines(c);
        if let Some(note) = note {
            let _ = writeln!(out, "# {note}");
        }
        let _ = writeln!(out, "[[dataset.column]]");
        let _ = writeln!(out, "name = {}", quoted(&c.name));
        let _ = writeln!(out, "header = {}", quoted(&header_of(c)));
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "nullable = {}", !c.not_null);
    }
    Ok(out)
}

/// The Postgres types a column of `kind` can be stored in (by `pg_type`
/// name); `None` for an enum, checked by its labels instead.
fn storable(kind: ColumnType) -> &'static [&'static str] {
    match kind {
        ColumnType::Cpf | ColumnType::Cnpj | ColumnType::Text => &["text", "varchar", "bpchar"],
        ColumnType::Boolean => &["bool"],
        ColumnType::Date => &["date"],
        ColumnType::Decimal => &["numeric"],
        ColumnType::Integer => &["int2", "int4", "int8", "numeric"],
        ColumnType::Float => &["float4", "float8", "numeric"],
        ColumnType::Timestamp => &["timestamp", "timestamptz"],
        ColumnType::Uuid => &["uuid"],
        ColumnType::Json => &["json", "jsonb"],
        ColumnType::Enum => &["text", "varchar", "bpchar"],
    }
}

/// Where `dataset` and its table disagree (docs/spec/datasets.md, "What a
/// dataset is": the table, not the file, is the truth), one line each: a
/// column the table lacks, a type that cannot hold the declared values, a
/// NOT NULL column declared nullable, an enum label the type does not have,
/// a key that is not the table's primary key. Empty when they agree.
pub fn mismatches(dataset: &Dataset, table: &TableShape) -> Vec<String> {
    let mut problems = Vec::new();
    let find = |name: &str| table.columns.iter().find(|c| c.name == name);
    for column in &dataset.columns {
        let Some(found) = find(&column.name) else {
            problems.push(format!(
                "column `{}` is not in table {}",
                column.name, table.table
            ));
            continue;
        };
        let fits = match &found.enum_labels {
            Some(labels) => {
                for label in column.labels.iter().filter(|l| !labels.contains(l)) {
                    problems.push(format!(
                        "column `{}`: label {label:?} is not one of the type's ({})",
                        column.name,
                        labels.join(", ")
                    ));
                }
                matches!(column.kind, ColumnType::Enum | ColumnType::Text)
            }
            // Text goes in as COPY text, which every Postgres type reads
            // (a value the type refuses is the database's to refuse).
            None => {
                column.kind == ColumnType::Text
                    || storable(column.kind).contains(&found.base.as_str())
            }
        };
        if !fits {
            problems.push(format!(
                "column `{}` is declared {} but the table holds {}",
                column.name,
                column.kind.as_str(),
                found.formatted
            ));
        }
        if column.nullable && found.not_null {
            problems.push(format!(
                "column `{}` is declared nullable but the table's is NOT NULL",
                column.name
            ));
        }
        if let (Some(limit), Some(declared)) = (found.max_length, column.max_length)
            && declared > limit
        {
            problems.push(format!(
                "column `{}`: max_length {declared} is over the table's {}",
                column.name, found.formatted
            ));
        }
    }
    for (_, name, _) in dataset.validity_columns() {
        match find(name) {
            None => problems.push(format!(
                "validity column `{name}` is not in table {}",
                table.table
            )),
            Some(found) if found.base != "bool" => problems.push(format!(
                "validity column `{name}` must be boolean, the table holds {}",
                found.formatted
            )),
            Some(_) => {}
        }
    }
    if table.primary_key != [dataset.key.clone()] {
        problems.push(format!(
            "key `{}` is not the table's primary key ({})",
            dataset.key,
            if table.primary_key.is_empty() {
                "none".to_string()
            } else {
                table.primary_key.join(", ")
            }
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Datasets;

    fn column(name: &str, base: &str) -> CatalogColumn {
        CatalogColumn {
            name: name.into(),
            base: base.into(),
            formatted: base.into(),
            enum_labels: None,
            not_null: false,
            max_length: None,
            numeric: None,
            comment: None,
        }
    }

    fn orders() -> TableShape {
        TableShape {
            table: "public.orders".into(),
            primary_key: vec!["id".into()],
            columns: vec![
                CatalogColumn {
                    not_null: true,
                    comment: Some("Order".into()),
                    ..column("id", "int8")
                },
                CatalogColumn {
                    enum_labels: Some(vec!["paid".into(), "shipped \"fast\"".into()]),
                    not_null: true,
                    ..column("status", "order_status")
                },
                column("placed_at", "timestamptz"),
                column("quantity", "int4"),
                CatalogColumn {
                    numeric: Some((12, 2)),
                    ..column("total", "numeric")
                },
                column("ratio", "numeric"),
                column("reference", "uuid"),
                CatalogColumn {
                    max_length: Some(120),
                    ..column("email", "varchar")
                },
                column("paid", "bool"),
                column("due", "date"),
                column("extra", "jsonb"),
                CatalogColumn {
                    formatted: "inet".into(),
                    ..column("ip", "inet")
                },
                column("last_job_id", "uuid"),
                column("updated_at", "timestamptz"),
            ],
        }
    }

    #[test]
    fn a_table_is_declared_as_a_dataset_the_loader_reads_as_it_is() {
        let toml = declaration("orders", &orders()).unwrap();
        let datasets =
            Datasets::parse(&toml, "described").unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let d = datasets.get("orders").unwrap();
        assert_eq!((d.table.as_str(), d.key.as_str()), ("orders", "id"));
        let kinds: Vec<&str> = d.columns.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "integer",
                "enum",
                "timestamp",
                "integer",
                "decimal",
                "decimal",
                "uuid",
                "text",
                "boolean",
                "date",
                "json",
                "text"
            ]
        );
        assert!(d.column("last_job_id").is_none() && d.column("updated_at").is_none());
        let headers: Vec<&str> = d.columns.iter().map(|c| c.header.as_str()).collect();
        assert_eq!(headers[..3], ["Order", "Status", "Placed At"]);
        let status = d.column("status").unwrap();
        assert_eq!(status.labels, ["paid", "shipped \"fast\""]);
        assert!(!status.nullable && d.column("email").unwrap().nullable);
        assert_eq!(d.column("email").unwrap().max_length, Some(120));
        let total = d.column("total").unwrap();
        assert_eq!((total.precision, total.scale), (Some(12), Some(2)));
        assert_eq!(
            d.column("quantity").unwrap().pg_type.as_deref(),
            Some("integer")
        );
        assert!(toml.contains("# inet has no rule of its own in xlport: read and written as text"));
        assert!(toml.contains("# an unconstrained numeric"));
    }

    #[test]
    fn a_table_without_a_single_column_key_is_refused_with_why() {
        let mut t = orders();
        t.primary_key.clear();
        assert!(
            declaration("o", &t)
                .unwrap_err()
                .0
                .contains("has no primary key")
        );
        t.primary_key = vec!["id".into(), "status".into()];
        assert_eq!(
            declaration("o", &t).unwrap_err().0,
            "public.orders has a composite primary key (id, status): composite keys are not served yet"
        );
        let mut elsewhere = orders();
        elsewhere.table = "shop.orders".into();
        assert_eq!(
            declaration("o", &elsewhere).unwrap_err().0,
            "shop.orders is outside the public schema: tables of other schemas are not served yet"
        );
    }

    #[test]
    fn a_dataset_that_agrees_with_its_table_has_no_mismatch_and_each_disagreement_is_named() {
        let shape = orders();
        let toml = declaration("orders", &shape).unwrap();
        let datasets = Datasets::parse(&toml, "described").unwrap();
        let orders = datasets.get("orders").unwrap();
        assert_eq!(mismatches(orders, &shape), Vec::<String>::new());

        let mut table = shape.clone();
        table.columns.retain(|c| c.name != "due");
        for c in table.columns.iter_mut() {
            match c.name.as_str() {
                "quantity" => c.base = "text".into(),
                "email" => c.not_null = true,
                "status" => c.enum_labels = Some(vec!["paid".into()]),
                _ => {}
            }
        }
        table.primary_key = vec!["reference".into()];
        let mut problems = mismatches(orders, &table);
        problems.sort();
        assert_eq!(
            problems,
            [
                "column `due` is not in table public.orders",
                "column `email` is declared nullable but the table's is NOT NULL",
                "column `quantity` is declared integer but the table holds int4",
                "column `status`: label \"shipped \\\"fast\\\"\" is not one of the type's (paid)",
                "key `id` is not the table's primary key (reference)",
            ]
        );
    }

    #[test]
    fn user_purchase_agrees_with_its_migration() {
        let up = Datasets::builtin()
            .unwrap()
            .get("user_purchase")
            .unwrap()
            .clone();
        let text = |name: &str, not_null: bool| CatalogColumn {
            not_null,
            ..column(name, "text")
        };
        let bool_ = |name: &str, not_null: bool| CatalogColumn {
            not_null,
            ..column(name, "bool")
        };
        let numeric = |name: &str| CatalogColumn {
            numeric: Some((14, 2)),
            ..column(name, "numeric")
        };
        let table = TableShape {
            table: "public.user_purchase".into(),
            primary_key: vec!["cpf".into()],
            columns: vec![
                text("cpf", true),
                bool_("private", true),
                bool_("incompleto", true),
                column("data_ultima_compra", "date"),
                numeric("ticket_medio"),
                numeric("ticket_ultima_compra"),
                text("loja_mais_frequente", false),
                text("loja_ultima_compra", false),
                bool_("cpf_valido", true),
                bool_("loja_mais_frequente_valida", false),
                bool_("loja_ultima_compra_valida", false),
            ],
        };
        assert_eq!(mismatches(&up, &table), Vec::<String>::new());
    }

    #[test]
    fn a_header_is_the_comment_or_the_name_in_title_case() {
        assert_eq!(header_of(&column("placed_at", "x")), "Placed At");
        assert_eq!(header_of(&column("__a__b", "x")), "A B");
        let commented = CatalogColumn {
            comment: Some("  Data da compra ".into()),
            ..column("d", "x")
        };
        assert_eq!(header_of(&commented), "Data da compra");
    }
}
