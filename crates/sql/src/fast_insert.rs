//! A direct reader for the statement bulk loaders send most:
//! `INSERT INTO t [(cols)] VALUES (literal, ...), ... [;]`.
//!
//! A 1000-row INSERT is about 100 KB of SQL. The general parser builds an
//! expression tree for each of its thousands of values (and, trying typed
//! literals first, formats a discarded error message for each), which cost
//! more than the rest of the statement. This reader accepts only what it can
//! read exactly: names, quoted strings, numbers, NULL, TRUE, FALSE and `$n`
//! parameters. For anything else (comments, casts, expressions, `DEFAULT`,
//! `E''` strings, RETURNING, ON CONFLICT, a second statement) it returns None
//! and the statement takes the general path, so both paths give the same
//! results and the same errors.

use std::borrow::Cow;

use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

/// One value of a VALUES list, as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawValue<'a> {
    Null,
    String(Cow<'a, str>),
    /// Unsigned numeric literal text.
    Number(&'a str),
    /// `-` followed by a numeric literal (the text without the sign).
    NegativeNumber(&'a str),
    Bool(bool),
    /// `$n`, 1-based.
    Parameter(usize),
}

impl RawValue<'_> {
    /// The same value, borrowing its text from `self`.
    pub(crate) fn reborrow(&self) -> RawValue<'_> {
        match self {
            RawValue::String(text) => RawValue::String(Cow::Borrowed(text.as_ref())),
            other => other.clone(),
        }
    }
}

/// A parsed `INSERT ... VALUES` of literals.
#[derive(Debug)]
pub(crate) struct ValuesInsert<'a> {
    pub table: ObjectName,
    pub columns: Vec<Ident>,
    /// Values of each row, in order.
    pub rows: Vec<Vec<RawValue<'a>>>,
}

/// Reads `sql` if it is exactly one literal-only INSERT ... VALUES.
pub(crate) fn parse(sql: &str) -> Option<ValuesInsert<'_>> {
    let mut reader = Reader { sql, at: 0 };
    reader.keyword("insert")?;
    reader.keyword("into")?;
    let mut table = vec![reader.name()?];
    while reader.punct(b'.') {
        table.push(reader.name()?);
    }
    let mut columns = Vec::new();
    if reader.punct(b'(') {
        loop {
            columns.push(reader.name()?);
            if reader.punct(b')') {
                break;
            }
            reader.expect(b',')?;
        }
    }
    reader.keyword("values")?;
    let mut rows = Vec::new();
    loop {
        reader.expect(b'(')?;
        let mut row = Vec::with_capacity(columns.len().max(rows.first().map_or(0, Vec::len)));
        loop {
            row.push(reader.value()?);
            if reader.punct(b')') {
                break;
            }
            reader.expect(b',')?;
        }
        rows.push(row);
        if !reader.punct(b',') {
            break;
        }
    }
    reader.punct(b';');
    reader.skip_space();
    if reader.at != sql.len() {
        return None;
    }
    Some(ValuesInsert {
        table: ObjectName(table.into_iter().map(ObjectNamePart::Identifier).collect()),
        columns,
        rows,
    })
}

/// PostgreSQL's reserved key words (and the non-reserved ones that may not
/// name a table or column), which are no names unquoted.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "overriding",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "system_user",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];

struct Reader<'a> {
    sql: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.sql.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.at += 1;
        }
    }

    fn punct(&mut self, byte: u8) -> bool {
        self.skip_space();
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.punct(byte).then_some(())
    }

    /// An unquoted word: letters, digits, `_` and `$`, starting with a letter or `_`.
    fn word(&mut self) -> Option<&'a str> {
        self.skip_space();
        let start = self.at;
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.at += 1,
            _ => return None,
        }
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' {
                self.at += 1;
            } else if b >= 0x80 {
                // Non-ASCII identifiers: leave them to the general parser.
                return None;
            } else {
                break;
            }
        }
        Some(&self.sql[start..self.at])
    }

    fn keyword(&mut self, keyword: &str) -> Option<()> {
        self.word()?.eq_ignore_ascii_case(keyword).then_some(())
    }

    /// A table or column name; reserved words are left to the general parser.
    fn name(&mut self) -> Option<Ident> {
        self.skip_space();
        if self.peek() == Some(b'"') {
            let text = self.quoted(b'"')?;
            if text.is_empty() {
                return None;
            }
            return Some(Ident::with_quote('"', text));
        }
        let word = self.word()?;
        if RESERVED.iter().any(|r| word.eq_ignore_ascii_case(r)) {
            return None;
        }
        Some(Ident::new(word))
    }

    /// The text between `quote`s, with doubled quotes undone.
    fn quoted(&mut self, quote: u8) -> Option<Cow<'a, str>> {
        let bytes = self.bytes();
        let start = self.at + 1;
        let mut at = start;
        let mut owned: Option<String> = None;
        let mut piece = start;
        loop {
            let offset = bytes[at..].iter().position(|b| *b == quote)?;
            at += offset;
            if bytes.get(at + 1) == Some(&quote) {
                owned
                    .get_or_insert_with(String::new)
                    .push_str(&self.sql[piece..=at]);
                at += 2;
                piece = at;
                continue;
            }
            let text = match owned {
                Some(mut text) => {
                    text.push_str(&self.sql[piece..at]);
                    Cow::Owned(text)
                }
                None => Cow::Borrowed(&self.sql[start..at]),
            };
            self.at = at + 1;
            return Some(text);
        }
    }

    fn value(&mut self) -> Option<RawValue<'a>> {
        self.skip_space();
        let value = match self.peek()? {
            b'\'' => {
                let text = self.quoted(b'\'')?;
                // `'a' 'b'` on separate lines is one string in SQL; a cast
                // (`'x'::t`) is an expression: both go the general way.
                self.skip_space();
                if self.peek() == Some(b'\'') {
                    return None;
                }
                RawValue::String(text)
            }
            b'-' => {
                self.at += 1;
                if self.peek() == Some(b'-') {
                    return None;
                }
                RawValue::NegativeNumber(self.number()?)
            }
            b'0'..=b'9' | b'.' => RawValue::Number(self.number()?),
            b'$' => {
                self.at += 1;
                let start = self.at;
                while let Some(b'0'..=b'9') = self.peek() {
                    self.at += 1;
                }
                let index: usize = self.sql[start..self.at].parse().ok()?;
                if index == 0 {
                    return None;
                }
                RawValue::Parameter(index)
            }
            _ => {
                let word = self.word()?;
                if word.eq_ignore_ascii_case("null") {
                    RawValue::Null
                } else if word.eq_ignore_ascii_case("true") {
                    RawValue::Bool(true)
                } else if word.eq_ignore_ascii_case("false") {
                    RawValue::Bool(false)
                } else {
                    return None;
                }
            }
        };
        // Only a separator may follow: anything else makes an expression.
        self.skip_space();
        match self.peek() {
            Some(b',' | b')') => Some(value),
            _ => None,
        }
    }

    /// digits [. digits] [e [+-] digits], or . digits [...]
    fn number(&mut self) -> Option<&'a str> {
        let start = self.at;
        let digits = |reader: &mut Self| {
            let from = reader.at;
            while let Some(b'0'..=b'9') = reader.peek() {
                reader.at += 1;
            }
            reader.at - from
        };
        let mut count = digits(self);
        if self.peek() == Some(b'.') {
            self.at += 1;
            count += digits(self);
        }
        if count == 0 {
            return None;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        // `1abc` or `1.2.3` is not a number followed by a separator.
        match self.peek() {
            Some(b) if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' => None,
            _ => Some(&self.sql[start..self.at]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_literal_values() {
        let insert = parse(
            "insert INTO public.\"My Table\" (a, \"B\") VALUES ('x''y', -1.5e3), (NULL, $2), (TRUE, .5);",
        )
        .unwrap();
        assert_eq!(insert.table.to_string(), "public.\"My Table\"");
        assert_eq!(insert.columns.len(), 2);
        assert_eq!(insert.columns[1].quote_style, Some('"'));
        assert_eq!(
            insert.rows,
            vec![
                vec![
                    RawValue::String(Cow::Owned("x'y".to_owned())),
                    RawValue::NegativeNumber("1.5e3")
                ],
                vec![RawValue::Null, RawValue::Parameter(2)],
                vec![RawValue::Bool(true), RawValue::Number(".5")],
            ]
        );
    }

    #[test]
    fn leaves_everything_else_to_the_general_parser() {
        for sql in [
            "INSERT INTO t VALUES ('a'::text)",
            "INSERT INTO t VALUES ('a' 'b')",
            "INSERT INTO t VALUES ('a'\n'b')",
            "INSERT INTO t VALUES (1 + 2)",
            "INSERT INTO t VALUES (E'a\\n')",
            "INSERT INTO t VALUES (DEFAULT)",
            "INSERT INTO t VALUES (now())",
            "INSERT INTO t VALUES (1) RETURNING *",
            "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING",
            "INSERT INTO t VALUES (1); SELECT 1",
            "INSERT INTO t VALUES (1) -- comment",
            "INSERT INTO t VALUES (--1\n2)",
            "INSERT INTO t VALUES (1abc)",
            "INSERT INTO t VALUES ('unterminated)",
            "INSERT INTO t SELECT 1",
            "INSERT INTO t (a) SELECT 1",
            "INSERT INTO t VALUES ($0)",
            "INSERT INTO t VALUES ()",
            "INSERT INTO \"\" VALUES (1)",
            "INSERT INTO t VALUES (+1)",
            "INSERT INTO t VALUES (1e)",
            "INSERT INTO t VALUES (1,)",
            "INSERT INTO t VALUES (1),",
            "INSERT INTO user VALUES (1)",
            "INSERT INTO t (order) VALUES (1)",
        ] {
            assert!(parse(sql).is_none(), "{sql}");
        }
    }
}
