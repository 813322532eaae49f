//! JSON (docs/spec/datasets.md, "Column types", `json`): text that parses
//! as JSON, stored as written, for Postgres `json` and `jsonb`.

use super::{Cell, Reason, Refusal, number_text};

/// The Postgres type of a `json` column (its `pg_type`;
/// docs/spec/datasets.md, "Column types"); `jsonb` when not declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonType {
    /// `json`: the text as written, checked for syntax only.
    Json,
    /// `jsonb`: parsed by Postgres, which also refuses `\u0000` and unpaired
    /// UTF-16 surrogates in strings.
    #[default]
    Jsonb,
}

impl JsonType {
    /// The type a `pg_type` names, if it is `json` or `jsonb`.
    pub fn of_pg_type(name: &str) -> Option<JsonType> {
        match name {
            "json" => Some(JsonType::Json),
            "jsonb" => Some(JsonType::Jsonb),
            _ => None,
        }
    }
}

/// A `json` cell (docs/spec/datasets.md, "Column types"): text (trimmed)
/// that is one JSON value (RFC 8259: an object, an array, a string, a
/// number, `true`, `false` or `null`), stored as written; a numeric cell is
/// its number. A `jsonb` column also refuses strings Postgres cannot store
/// (`\u0000`, an unpaired surrogate escape). Anything else is `invalid_json`,
/// with the parser's complaint (`expected value at line 1 column 1`) in the
/// refusal.
pub fn parse_json(cell: &Cell<'_>, kind: JsonType) -> Result<String, Refusal> {
    let text = match *cell {
        Cell::Text(s) | Cell::Error(s) => s.trim().to_owned(),
        Cell::Number(n) if n.is_finite() => number_text(n),
        _ => return Err(Reason::InvalidJson.into()),
    };
    // IgnoredAny checks the syntax without building the value (and so
    // without bounding numbers to a double, as Postgres does not).
    serde_json::from_str::<serde::de::IgnoredAny>(&text)
        .map_err(|e| Refusal::new(Reason::InvalidJson, e.to_string()))?;
    if kind == JsonType::Jsonb
        && let Some(problem) = jsonb_escape_problem(&text)
    {
        return Err(Refusal::new(Reason::InvalidJson, problem));
    }
    Ok(text)
}

/// What in valid JSON text `jsonb` would refuse: a `\u0000` escape or a
/// UTF-16 surrogate escape without its pair.
fn jsonb_escape_problem(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    let unit = |at: usize| {
        let hex = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    };
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        // In valid JSON a backslash starts an escape inside a string.
        if b.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let code = unit(i + 2)?;
        i += 6;
        match code {
            0 => return Some("jsonb cannot hold \\u0000"),
            0xD800..=0xDBFF => {
                let low = (b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u'))
                    .then(|| unit(i + 2))
                    .flatten();
                match low {
                    Some(0xDC00..=0xDFFF) => i += 6,
                    _ => return Some("a \\u surrogate escape without its pair"),
                }
            }
            0xDC00..=0xDFFF => return Some("a \\u surrogate escape without its pair"),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str, kind: JsonType) -> Result<String, Refusal> {
        parse_json(&Cell::Text(text), kind)
    }

    #[test]
    fn json_that_parses_is_kept_as_written() {
        for text in [
            "{}",
            "[]",
            r#"{"a": [1, 2.5e3, -0, true, false, null], "b": {"c": "d"}}"#,
            r#""text""#,
            "42",
            "-1.5E-7",
            "1e400",
            "true",
            "null",
            r#"{"a": 1, "a": 2}"#,
            r#""é \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00""#,
        ] {
            for kind in [JsonType::Json, JsonType::Jsonb] {
                assert_eq!(json(text, kind).as_deref(), Ok(text), "{text}");
            }
        }
        assert_eq!(
            json("  {\"a\": 1}\n", JsonType::Jsonb).as_deref(),
            Ok("{\"a\": 1}")
        );
        assert_eq!(
            parse_json(&Cell::Number(2.5), JsonType::Jsonb).as_deref(),
            Ok("2.5")
        );
    }

    #[test]
    fn json_that_does_not_parse_is_refused_with_the_reason() {
        assert_eq!(
            json("{a: 1}", JsonType::Json),
            Err(Refusal::new(
                Reason::InvalidJson,
                "key must be a string at line 1 column 2"
            ))
        );
        for text in [
            "",
            "{",
            "{\"a\": 1,}",
            "[1 2]",
            "'text'",
            "text",
            "NaN",
            "01",
            "1.",
            ".5",
            "{} {}",
            "\"tab\there\"",
            "\"\\x41\"",
            "True",
        ] {
            let got = json(text, JsonType::Json).map_err(|r| r.reason);
            assert_eq!(got, Err(Reason::InvalidJson), "{text}");
        }
        for cell in [Cell::Bool(true), Cell::DateSerial(1.0), Cell::Empty] {
            assert_eq!(
                parse_json(&cell, JsonType::Json),
                Err(Reason::InvalidJson.into()),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn jsonb_refuses_what_postgres_cannot_store() {
        for (text, problem) in [
            (r#""a\u0000b""#, "jsonb cannot hold \\u0000"),
            (r#"["\ud83d"]"#, "a \\u surrogate escape without its pair"),
            (r#""\ud83dx""#, "a \\u surrogate escape without its pair"),
            (r#""\ude00""#, "a \\u surrogate escape without its pair"),
            (
                r#""\ud83d\u0041""#,
                "a \\u surrogate escape without its pair",
            ),
        ] {
            assert_eq!(
                json(text, JsonType::Jsonb),
                Err(Refusal::new(Reason::InvalidJson, problem)),
                "{text}"
            );
            assert_eq!(json(text, JsonType::Json).as_deref(), Ok(text), "{text}");
        }
        // An escaped backslash before `u0000` is not an escape of U+0000.
        let text = r#""\\u0000""#;
        assert_eq!(json(text, JsonType::Jsonb).as_deref(), Ok(text));
    }
}
