//! Export filters (docs/api.md, "Export filters"): the `filter` of an export
//! request validated against the dataset. Only its `filterable` columns and
//! its check-digit flags can be used: flags and booleans compared for
//! equality, dates within an inclusive range of the years 0001 to 9999; the
//! store renders the resulting [`Condition`]s as SQL.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::dataset::{ColumnType, Dataset};

/// A value as an error message shows it: at most 40 characters, so an
/// answer stays small whatever was sent.
fn clip(s: &str) -> String {
    crate::job::clip(s, 40)
}

/// One validated export condition, ready for the store to render as SQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Condition {
    /// `column = value` on a boolean column (validity flags included).
    Equals { column: String, value: bool },
    /// `column` between `from` and `to`, both inclusive, on a date column.
    DateRange {
        column: String,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct FilterError(pub String);

/// Parses the `filter` of an export request:
/// `{"private": true, "cpf_valido": false, "data_ultima_compra": {"from": "2020-01-01", "to": "2020-12-31"}}`.
/// Only columns declared `filterable` and the validity flags can be used.
pub fn parse_filter(
    dataset: &Dataset,
    filter: &serde_json::Value,
) -> Result<Vec<Condition>, FilterError> {
    let map = match filter {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Object(m) => m,
        _ => return Err(FilterError("`filter` must be a JSON object".into())),
    };
    let allowed = || {
        let mut names: Vec<String> = dataset
            .columns
            .iter()
            .filter(|c| c.filterable)
            .map(|c| c.name.clone())
            .collect();
        names.extend(dataset.validity_columns().map(|(_, n, _)| n.to_string()));
        names.join(", ")
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let is_flag = dataset.validity_columns().any(|(_, n, _)| n == name);
        let column = dataset.column(name).filter(|c| c.filterable);
        let kind = match (is_flag, column) {
            (true, _) => ColumnType::Boolean,
            (false, Some(c)) => c.kind,
            (false, None) => {
                return Err(FilterError(format!(
                    "unknown filter `{}`; filters for {}: {}",
                    clip(name),
                    dataset.name,
                    allowed()
                )));
            }
        };
        match kind {
            ColumnType::Boolean => {
                let v = value.as_bool().ok_or_else(|| {
                    FilterError(format!("filter `{name}` takes true or false, not {value}"))
                })?;
                out.push(Condition::Equals {
                    column: name.clone(),
                    value: v,
                });
            }
            ColumnType::Date => {
                let range = value.as_object().ok_or_else(|| {
                    FilterError(format!(
                        "filter `{name}` takes {{\"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\"}}"
                    ))
                })?;
                let date = |key: &str| -> Result<Option<NaiveDate>, FilterError> {
                    match range.get(key) {
                        None | Some(serde_json::Value::Null) => Ok(None),
                        Some(serde_json::Value::String(s)) => {
                            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                                FilterError(format!(
                                    "filter `{name}.{key}`: `{}` is not a date (YYYY-MM-DD)",
                                    clip(s)
                                ))
                            })?;
                            // Postgres has no year 0, and spreadsheets stop at 9999.
                            if !(1..=9999).contains(&d.year()) {
                                return Err(FilterError(format!(
                                    "filter `{name}.{key}`: `{}` is outside the years 0001 to 9999",
                                    clip(s)
                                )));
                            }
                            Ok(Some(d))
                        }
                        Some(other) => Err(FilterError(format!(
                            "filter `{name}.{key}`: {} is not a date (YYYY-MM-DD)",
                            clip(&other.to_string())
                        ))),
                    }
                };
                if let Some(k) = range.keys().find(|k| *k != "from" && *k != "to") {
                    return Err(FilterError(format!(
                        "filter `{name}`: unknown key `{k}` (use from, to)"
                    )));
                }
                let (from, to) = (date("from")?, date("to")?);
                if let (Some(f), Some(t)) = (from, to)
                    && f > t
                {
                    return Err(FilterError(format!(
                        "filter `{name}`: from {f} is after to {t}"
                    )));
                }
                out.push(Condition::DateRange {
                    column: name.clone(),
                    from,
                    to,
                });
            }
            other => {
                return Err(FilterError(format!(
                    "filter `{name}`: {other:?} columns cannot be filtered"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::export::test_support::up;

    #[test]
    fn filters_are_validated_against_the_dataset() {
        let d = up();
        let conds = parse_filter(
            &d,
            &json!({"private": true, "cpf_valido": false, "data_ultima_compra": {"from": "2020-01-01"}}),
        )
        .unwrap();
        assert_eq!(conds.len(), 3);
        assert!(conds.contains(&Condition::DateRange {
            column: "data_ultima_compra".into(),
            from: NaiveDate::from_ymd_opt(2020, 1, 1),
            to: None
        }));
        let err = parse_filter(&d, &json!({"ticket_medio": 3})).unwrap_err();
        assert!(err.0.contains("unknown filter `ticket_medio`"), "{err}");
        assert!(
            err.0.contains("data_ultima_compra"),
            "lists the allowed ones: {err}"
        );
        assert!(parse_filter(&d, &json!({"private": "yes"})).is_err());
        // A date Postgres cannot hold is refused here, not by a failed COPY.
        let e =
            parse_filter(&d, &json!({"data_ultima_compra": {"from": "0000-01-01"}})).unwrap_err();
        assert!(
            e.to_string().contains("outside the years 0001 to 9999"),
            "{e}"
        );
        // An echoed value is bounded.
        let huge = "9".repeat(100_000);
        let e = parse_filter(&d, &json!({"data_ultima_compra": {"from": huge}})).unwrap_err();
        assert!(e.to_string().len() < 200, "{}", e.to_string().len());
        assert!(
            parse_filter(&d, &json!({"data_ultima_compra": {"from": "2020-02-30"}}))
                .unwrap_err()
                .0
                .contains("not a date")
        );
        assert!(
            parse_filter(
                &d,
                &json!({"data_ultima_compra": {"from": "2021-01-01", "to": "2020-01-01"}})
            )
            .is_err()
        );
        assert!(parse_filter(&d, &json!([1])).is_err());
        assert_eq!(parse_filter(&d, &serde_json::Value::Null).unwrap(), vec![]);
    }
}
