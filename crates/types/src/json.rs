//! `json` and `jsonb` values in PostgreSQL's text forms.
//!
//! `json` keeps its input text verbatim (after validation). `jsonb` is stored
//! normalised the way PostgreSQL prints it: object keys ordered by length then
//! bytes, the last of duplicate keys kept, `", "` and `": "` separators.

use serde_json::Value;

use crate::{Error, Result};

fn invalid(type_name: &str, input: &str) -> Error {
    Error::InvalidText {
        type_name: type_name.to_owned(),
        input: input.to_owned(),
    }
}

/// Validates `json` text; the text itself is what is stored.
pub fn parse_json(input: &str) -> Result<()> {
    serde_json::from_str::<Value>(input)
        .map(|_| ())
        .map_err(|_| invalid("json", input))
}

/// Parses `jsonb` text into PostgreSQL's normalised output form.
pub fn normalize_jsonb(input: &str) -> Result<String> {
    let value: Value = serde_json::from_str(input).map_err(|_| invalid("json", input))?;
    let mut out = String::with_capacity(input.len());
    write_jsonb(&value, &mut out);
    Ok(out)
}

/// Writes a JSON value the way PostgreSQL prints `jsonb`.
pub fn write_jsonb(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(&n.to_string(), out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_jsonb(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(b.0)));
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_string(key, out);
                out.push_str(": ");
                write_jsonb(item, out);
            }
            out.push('}');
        }
    }
}

/// jsonb numbers are `numeric`: exponent notation is expanded (`1e2` prints `100`).
fn write_number(text: &str, out: &mut String) {
    if !text.contains(['e', 'E']) {
        out.push_str(text);
        return;
    }
    match text.parse::<f64>() {
        Ok(value) if value.fract() == 0.0 && value.abs() < 1e21 => {
            out.push_str(&format!("{value:.0}"))
        }
        Ok(value) => out.push_str(&value.to_string()),
        Err(_) => out.push_str(text),
    }
}

/// Writes a JSON string with the escapes PostgreSQL uses.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonb_is_normalised_like_postgres() {
        assert_eq!(
            normalize_jsonb(r#"{"bb":1,"a":[1,2,{"z":null}],"a":true}"#).unwrap(),
            r#"{"a": true, "bb": 1}"#
        );
        assert_eq!(normalize_jsonb("1.50").unwrap(), "1.50");
        assert_eq!(normalize_jsonb(" \"x\\ty\" ").unwrap(), "\"x\\ty\"");
        assert!(normalize_jsonb("{bad").is_err());
    }
}
