//! `similar_to_escape(pattern [, escape])`: the POSIX regular expression a
//! SQL `SIMILAR TO` pattern means, as PostgreSQL's function of that name
//! makes it. `x SIMILAR TO p` is planned as `x ~ similar_to_escape(p)`
//! (see `tempora_sql::rewrite`), as PostgreSQL plans it; DataFusion's own
//! SIMILAR TO read the pattern as a regular expression, so `%` and `_`
//! matched themselves and the pattern matched anywhere in the text.
//!
//! The pattern matches the whole text (`^(?: ... )$`); `%` is `.*`, `_` is
//! `.`; `.`, `^`, `$` and `\` are literal; the escape character (default
//! `\`) makes the next character literal; a bracket expression is copied
//! as it is; `(` opens a non-capturing group; the two `\"` separators of
//! SUBSTRING's three-part pattern become PostgreSQL's groups.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::Error;
use crate::expr_rules::text_argument;

#[derive(Debug, PartialEq, Eq, Hash)]
struct SimilarToEscape {
    signature: Signature,
}

impl ScalarUDFImpl for SimilarToEscape {
    fn name(&self) -> &str {
        "similar_to_escape"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let patterns = text_argument(&args.args[0], rows)?;
        let patterns = patterns.as_string::<i32>();
        let escapes = match args.args.get(1) {
            Some(escape) => Some(text_argument(escape, rows)?),
            None => None,
        };
        let escapes = escapes.as_ref().map(|e| e.as_string::<i32>());
        let mut out = Vec::with_capacity(rows);
        for row in 0..patterns.len() {
            let escape = match &escapes {
                None => Some("\\"),
                Some(escapes) if escapes.is_null(row) => None,
                Some(escapes) => Some(escapes.value(row)),
            };
            out.push(match (patterns.is_null(row), escape) {
                (false, Some(escape)) => Some(similar_to_regex(patterns.value(row), escape)?),
                _ => None,
            });
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}

pub(crate) fn similar_to_escape() -> ScalarUDF {
    ScalarUDF::from(SimilarToEscape {
        signature: Signature::one_of(
            vec![
                datafusion::logical_expr::TypeSignature::Any(1),
                datafusion::logical_expr::TypeSignature::Any(2),
            ],
            Volatility::Immutable,
        ),
    })
}

/// The regular expression of SIMILAR TO pattern `pattern` with escape
/// character `escape` (empty for none).
fn similar_to_regex(pattern: &str, escape: &str) -> Result<String> {
    let mut escape_chars = escape.chars();
    let escape = match (escape_chars.next(), escape_chars.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => {
            // PostgreSQL hints: the escape string must be empty or one character.
            return Err(Error::InvalidEscape.into());
        }
    };
    let mut out = String::with_capacity(pattern.len() + 10);
    out.push_str("^(?:");
    let (mut after_escape, mut in_class, mut quotes) = (false, false, 0);
    for c in pattern.chars() {
        if after_escape {
            after_escape = false;
            if c == '"' && !in_class {
                quotes += 1;
                match quotes {
                    1 => out.push_str("){1,1}?("),
                    2 => out.push_str("){1,1}(?:"),
                    _ => {
                        return Err(Error::InvalidRegex {
                            message: "SQL regular expression may not contain more than two escape-double-quote separators".to_owned(),
                        }
                        .into());
                    }
                }
            } else {
                out.push('\\');
                out.push(c);
            }
        } else if Some(c) == escape {
            after_escape = true;
        } else if in_class {
            if c == '\\' {
                out.push('\\');
            }
            out.push(c);
            if c == ']' {
                in_class = false;
            }
        } else {
            match c {
                '[' => {
                    in_class = true;
                    out.push('[');
                }
                '%' => out.push_str(".*"),
                '_' => out.push('.'),
                '(' => out.push_str("(?:"),
                '\\' | '.' | '^' | '$' => {
                    out.push('\\');
                    out.push(c);
                }
                other => out.push(other),
            }
        }
    }
    out.push_str(")$");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_become_postgres_regular_expressions() {
        let cases = [
            ("a%", "\\", "^(?:a.*)$"),
            ("_b.c", "\\", "^(?:.b\\.c)$"),
            ("(ab|cd)*", "\\", "^(?:(?:ab|cd)*)$"),
            ("a\\%b", "\\", "^(?:a\\%b)$"),
            ("a#_b", "#", "^(?:a\\_b)$"),
            ("[a-c%]x", "\\", "^(?:[a-c%]x)$"),
            ("a\\b", "", "^(?:a\\\\b)$"),
            ("$^", "\\", "^(?:\\$\\^)$"),
            ("a\\\"b\\\"c", "\\", "^(?:a){1,1}?(b){1,1}(?:c)$"),
        ];
        for (pattern, escape, regex) in cases {
            assert_eq!(
                similar_to_regex(pattern, escape).unwrap(),
                regex,
                "{pattern}"
            );
        }
        assert!(similar_to_regex("a", "ab").is_err());
        assert!(similar_to_regex("\\\"a\\\"b\\\"", "\\").is_err());
    }
}
