//! UUIDs (docs/spec/datasets.md, "Column types", `uuid`): the 36-character
//! form, any case, optional braces, stored in lower case.

use super::{Cell, Reason};

/// A `uuid` cell (docs/spec/datasets.md, "Column types"): text (trimmed) of
/// 32 hexadecimal digits in groups of 8-4-4-4-12 separated by `-`, in any
/// case, optionally between `{` and `}`; stored in Postgres's lower-case
/// form. Anything else (no hyphens, a `urn:uuid:` prefix, one brace, a
/// numeric cell) is `invalid_uuid`.
pub fn parse_uuid(cell: &Cell<'_>) -> Result<String, Reason> {
    let text = match *cell {
        Cell::Text(s) | Cell::Error(s) => s.trim(),
        _ => return Err(Reason::InvalidUuid),
    };
    let bare = match text.strip_prefix('{') {
        Some(inner) => inner.strip_suffix('}').ok_or(Reason::InvalidUuid)?,
        None => text,
    };
    let b = bare.as_bytes();
    let shaped = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if shaped {
        Ok(bare.to_ascii_lowercase())
    } else {
        Err(Reason::InvalidUuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        let want = "0f8fad5b-d9cb-469f-a165-70867728950e";
        for text in [
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            " {0f8fad5b-d9cb-469f-A165-70867728950e} ",
            "{0F8FAD5B-D9CB-469F-A165-70867728950E}",
        ] {
            assert_eq!(parse_uuid(&Cell::Text(text)).as_deref(), Ok(want), "{text}");
        }
        assert_eq!(
            parse_uuid(&Cell::Text("00000000-0000-0000-0000-000000000000")).as_deref(),
            Ok("00000000-0000-0000-0000-000000000000")
        );
        for text in [
            "",
            "0f8fad5bd9cb469fa16570867728950e",
            "{0f8fad5b-d9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950e}",
            "(0f8fad5b-d9cb-469f-a165-70867728950e)",
            "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0f8fad5b-d9cb-469f-a165-70867728950e0",
            "0f8fad5bd-9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165_70867728950e",
            "gf8fad5b-d9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950é",
            "{ 0f8fad5b-d9cb-469f-a165-70867728950e }",
        ] {
            assert_eq!(
                parse_uuid(&Cell::Text(text)),
                Err(Reason::InvalidUuid),
                "{text}"
            );
        }
        for cell in [Cell::Number(1.0), Cell::Bool(true), Cell::DateSerial(1.0)] {
            assert_eq!(parse_uuid(&cell), Err(Reason::InvalidUuid), "{cell:?}");
        }
    }
}
