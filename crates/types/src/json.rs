//! `json` and `jsonb` values in PostgreSQL's text forms.
//!
//! `json` keeps its input text verbatim (after validation). `jsonb` is stored
//! normalised the way PostgreSQL prints it: object keys ordered by length then
//! bytes, the last of duplicate keys kept, `", "` and `": "` separators.

use std::borrow::Cow;

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

/// Parses `jsonb` text into PostgreSQL's normalised output form, in one
/// pass over the text: only objects are gathered, to order their keys.
pub fn normalize_jsonb(input: &str) -> Result<String> {
    let mut out = String::with_capacity(input.len() + input.len() / 8);
    let mut parser = Normalizer {
        input: input.as_bytes(),
        at: 0,
        depth: 0,
        text: String::new(),
    };
    let parsed = parser.value(&mut out).and_then(|()| {
        parser.skip_whitespace();
        if parser.at == parser.input.len() {
            Ok(())
        } else {
            Err(Malformed)
        }
    });
    parsed
        .map(|()| out)
        .map_err(|Malformed| invalid("json", input))
}

/// Input that is not JSON.
struct Malformed;

/// Nesting deeper than this is refused (serde_json's limit, so every
/// document the parser takes can also be read back by the operators).
const MAX_DEPTH: usize = 127;

/// A recursive-descent JSON parser that writes what it reads in jsonb's
/// output form: scalars as they are (numbers with exponents expanded,
/// strings re-escaped), objects' members ordered by key length then bytes
/// with the last of equal keys kept, `", "` and `": "` between.
struct Normalizer<'a> {
    input: &'a [u8],
    at: usize,
    depth: usize,
    /// A string value's decoded text, before it is written out again.
    text: String,
}

impl<'a> Normalizer<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.input.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), Malformed> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    fn literal(&mut self, word: &str, out: &mut String) -> Result<(), Malformed> {
        if self.input[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            out.push_str(word);
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    fn value(&mut self, out: &mut String) -> Result<(), Malformed> {
        match self.peek().ok_or(Malformed)? {
            b'{' => self.nested(|parser| parser.object(out)),
            b'[' => self.nested(|parser| parser.array(out)),
            b'"' => {
                if let Some(text) = self.plain_string() {
                    out.push('"');
                    out.push_str(text);
                    out.push('"');
                    return Ok(());
                }
                let mut text = std::mem::take(&mut self.text);
                text.clear();
                let read = self.string(&mut text);
                write_string(&text, out);
                self.text = text;
                read
            }
            b't' => self.literal("true", out),
            b'f' => self.literal("false", out),
            b'n' => self.literal("null", out),
            b'-' | b'0'..=b'9' => self.number(out),
            _ => Err(Malformed),
        }
    }

    fn nested(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Malformed);
        }
        parse(self)?;
        self.depth -= 1;
        Ok(())
    }

    fn array(&mut self, out: &mut String) -> Result<(), Malformed> {
        self.at += 1;
        out.push('[');
        if self.peek() == Some(b']') {
            self.at += 1;
            out.push(']');
            return Ok(());
        }
        loop {
            self.value(out)?;
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    out.push_str(", ");
                }
                Some(b']') => {
                    self.at += 1;
                    out.push(']');
                    return Ok(());
                }
                _ => return Err(Malformed),
            }
        }
    }

    fn object(&mut self, out: &mut String) -> Result<(), Malformed> {
        self.at += 1;
        // Each member's value is written to `values`; the keys are ordered
        // and the members written out once the object is read.
        let mut members: Vec<(Cow<'a, str>, std::ops::Range<usize>)> = Vec::new();
        let mut values = String::new();
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(Malformed);
                }
                let key = self.key()?;
                self.expect(b':')?;
                let start = values.len();
                self.value(&mut values)?;
                members.push((key, start..values.len()));
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b'}') => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(Malformed),
                }
            }
        }
        // Stable: equal keys stay in input order, and the last one wins.
        members.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
        out.push('{');
        let mut first = true;
        for (index, (key, range)) in members.iter().enumerate() {
            if members.get(index + 1).is_some_and(|next| next.0 == *key) {
                continue;
            }
            if !first {
                out.push_str(", ");
            }
            first = false;
            write_string(key, out);
            out.push_str(": ");
            out.push_str(&values[range.clone()]);
        }
        out.push('}');
        Ok(())
    }

    /// Reads a string literal without escapes or control characters, if
    /// the one at the input is such: its text is then the input's bytes,
    /// and it prints as it was written.
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        let end = self.run_end(start);
        if self.input.get(end) != Some(&b'"') {
            return None;
        }
        let text = self.run(start, end).ok()?;
        self.at = end + 1;
        Some(text)
    }

    /// Where the run of plain string bytes from `from` ends: at a quote, a
    /// backslash, a control character or the end of the input.
    fn run_end(&self, from: usize) -> usize {
        let mut end = from;
        while let Some(&byte) = self.input.get(end) {
            if byte == b'"' || byte == b'\\' || byte < 0x20 {
                break;
            }
            end += 1;
        }
        end
    }

    /// The text of a run; the input is a &str and a run ends only at an
    /// ASCII byte, so this fails only on input that is not UTF-8.
    fn run(&self, start: usize, end: usize) -> Result<&'a str, Malformed> {
        let input: &'a [u8] = self.input;
        std::str::from_utf8(&input[start..end]).map_err(|_| Malformed)
    }

    /// Reads an object's key: borrowed from the input unless it has escapes.
    fn key(&mut self) -> Result<Cow<'a, str>, Malformed> {
        if let Some(text) = self.plain_string() {
            return Ok(Cow::Borrowed(text));
        }
        let mut text = String::new();
        self.string(&mut text)?;
        Ok(Cow::Owned(text))
    }

    /// Reads a string literal, its escapes decoded, into `text`.
    fn string(&mut self, text: &mut String) -> Result<(), Malformed> {
        self.at += 1;
        loop {
            let start = self.at;
            self.at = self.run_end(start);
            text.push_str(self.run(start, self.at)?);
            match self.input.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escape = *self.input.get(self.at).ok_or(Malformed)?;
                    self.at += 1;
                    text.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{08}',
                        b'f' => '\u{0c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(Malformed),
                    });
                }
                // A control character, or the end of the input.
                _ => return Err(Malformed),
            }
        }
    }

    /// The character of a `\uXXXX` escape (its `\u` read), with a UTF-16
    /// surrogate pair taken as one character.
    fn unicode_escape(&mut self) -> Result<char, Malformed> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                if !self.input[self.at..].starts_with(b"\\u") {
                    return Err(Malformed);
                }
                self.at += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(Malformed);
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(Malformed),
            code => code,
        };
        char::from_u32(code).ok_or(Malformed)
    }

    fn hex4(&mut self) -> Result<u32, Malformed> {
        let digits = self.input.get(self.at..self.at + 4).ok_or(Malformed)?;
        let mut code = 0;
        for &digit in digits {
            code = code * 16 + (digit as char).to_digit(16).ok_or(Malformed)?;
        }
        self.at += 4;
        Ok(code)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self, out: &mut String) -> Result<(), Malformed> {
        let start = self.at;
        let digits = |parser: &mut Self| {
            let from = parser.at;
            while parser.input.get(parser.at).is_some_and(u8::is_ascii_digit) {
                parser.at += 1;
            }
            parser.at - from
        };
        if self.input[self.at] == b'-' {
            self.at += 1;
        }
        match self.input.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(Malformed),
        }
        if self.input.get(self.at) == Some(&b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return Err(Malformed);
            }
        }
        if let Some(b'e' | b'E') = self.input.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.input.get(self.at) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(Malformed);
            }
        }
        // Only ASCII digits and signs were read.
        let text = std::str::from_utf8(&self.input[start..self.at]).map_err(|_| Malformed)?;
        write_number(text, out);
        Ok(())
    }
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
    use proptest::prelude::*;

    /// What the normaliser must give: serde_json's reading of the text,
    /// written out by `write_jsonb`.
    fn through_serde(input: &str) -> Option<String> {
        let value: Value = serde_json::from_str(input).ok()?;
        let mut out = String::new();
        write_jsonb(&value, &mut out);
        Some(out)
    }

    fn assert_agrees(input: &str) {
        assert_eq!(
            normalize_jsonb(input).ok(),
            through_serde(input),
            "{input:?}"
        );
    }

    #[test]
    fn jsonb_is_normalised_like_postgres() {
        assert_eq!(
            normalize_jsonb(r#"{"bb":1,"a":[1,2,{"z":null}],"a":true}"#).unwrap(),
            r#"{"a": true, "bb": 1}"#
        );
        assert_eq!(normalize_jsonb("1.50").unwrap(), "1.50");
        assert_eq!(normalize_jsonb("-2.5E+2").unwrap(), "-250");
        assert_eq!(normalize_jsonb(" \"x\\ty\" ").unwrap(), "\"x\\ty\"");
        assert_eq!(
            normalize_jsonb(r#"{"k": "\u00e9\ud83d\ude00\/", "": {}, "kk": [ ]}"#).unwrap(),
            "{\"\": {}, \"k\": \"é😀/\", \"kk\": []}"
        );
        assert!(normalize_jsonb("{bad").is_err());
    }

    #[test]
    fn malformed_text_is_refused_as_serde_json_refuses_it() {
        for input in [
            "",
            " ",
            "{",
            "}",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{1:2}",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "-",
            "+1",
            "--1",
            "tru",
            "nulll",
            "[1] 2",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\ud800\\u0041\"",
            "\"\\udc00\"",
            "\"tab\there\"",
            "[1 2]",
            "{\"a\" 1}",
            "\u{a0}1",
            "NaN",
            "Infinity",
            "1e400",
            "\"\\u0000\"",
        ] {
            assert_agrees(input);
        }
        for depth in [126, 127, 128, 129] {
            assert_agrees(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
            assert_agrees(&format!(
                "{}1{}",
                "{\"a\":".repeat(depth),
                "}".repeat(depth)
            ));
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,8})?([eE][+-]?[0-9]{1,2})?"
                .prop_map(|n| serde_json::from_str(&n).unwrap()),
            "[a-z \"\\\\/\t\n\u{1}é😀]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-c]{0,3}", inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn values_normalise_as_serde_json_reads_them(value in json_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            assert_agrees(&text);
        }

        #[test]
        fn any_text_is_taken_or_refused_as_serde_json_does(
            text in "[\\[\\]{}\",: 0-9.eE+\\-a-u\\\\\t\n]{0,24}"
        ) {
            assert_agrees(&text);
        }

        /// Duplicate keys in any order: the last one written wins.
        #[test]
        fn the_last_of_equal_keys_is_kept(keys in prop::collection::vec("[ab]{0,2}", 0..8)) {
            let members: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(index, key)| format!("\"{key}\": {index}"))
                .collect();
            assert_agrees(&format!("{{{}}}", members.join(", ")));
        }
    }
}
