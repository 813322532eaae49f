//! Integers as JSON Schema counts them: `260` and `260.0` are the same
//! integer (JSON Schema 2020-12, Validation §6.1.1: "a number with a zero
//! fractional part"), so a client whose JSON library writes every number
//! as a float is not refused. A fraction, or a value out of the field's
//! range, is still an error naming it.

use serde::Deserialize;
use serde::de::{Deserializer, Error};

/// A JSON number that is an integer in `T`'s range.
fn integral<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    let n = serde_json::Number::deserialize(d)?;
    let whole: Option<i128> = if let Some(i) = n.as_i64() {
        Some(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Some(i128::from(u))
    } else {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e30)
            .map(|f| f as i128)
    };
    let whole = whole.ok_or_else(|| D::Error::custom(format!("{n} is not an integer")))?;
    T::try_from(whole).map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

/// For `#[serde(deserialize_with = "crate::integral::u64")]`.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    integral(d)
}

/// For `#[serde(deserialize_with = "crate::integral::i32")]`.
pub fn i32<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    integral(d)
}

/// For an optional list of `i32`s (`#[serde(default, deserialize_with =
/// "crate::integral::option_vec_i32")]`).
pub fn option_vec_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<i32>>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "i32")] i32);
    let items: Option<Vec<Item>> = Option::deserialize(d)?;
    Ok(items.map(|v| v.into_iter().map(|Item(n)| n).collect()))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Size {
        #[serde(deserialize_with = "super::u64")]
        size: u64,
        #[serde(default, deserialize_with = "super::option_vec_i32")]
        parts: Option<Vec<i32>>,
    }

    fn read(json: &str) -> Result<Size, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn an_integral_float_is_the_integer_and_a_fraction_is_refused() {
        assert_eq!(read(r#"{"size": 260}"#).unwrap().size, 260);
        assert_eq!(read(r#"{"size": 260.0}"#).unwrap().size, 260);
        assert_eq!(
            read(r#"{"size": 1, "parts": [1, 2.0]}"#).unwrap().parts,
            Some(vec![1, 2])
        );
        assert_eq!(read(r#"{"size": 1, "parts": null}"#).unwrap().parts, None);
        assert!(
            read(r#"{"size": 2.5}"#)
                .unwrap_err()
                .contains("2.5 is not an integer")
        );
        assert!(
            read(r#"{"size": -1}"#)
                .unwrap_err()
                .contains("-1 is out of range")
        );
        assert!(
            read(r#"{"size": 1, "parts": [3000000000]}"#)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(read(r#"{"size": "1"}"#).is_err());
    }
}
