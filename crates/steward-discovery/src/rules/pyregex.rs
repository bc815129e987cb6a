//! Generation-rule patterns are Python `re` patterns; they are compiled with the `regex` crate
//! after rewriting the spellings the two read differently.
//!
//! Rewritten (same meaning as in Python):
//! - `{` that does not open a valid repetition is a literal (`{foo}`, `a{`, `a{}`); `{,n}` is
//!   `{0,n}`; a lone `}` is a literal.
//! - `\Z` (end of text) is `\z`.
//! - Inside a character class, `[` is a literal, and `&&`, `--`, `~~` are literal characters
//!   (the `regex` crate reads nested classes and set operations there).
//!
//! Not supported by the `regex` crate, so such a pattern is rejected and the rule using it is
//! skipped with a warning: look-around (`(?=`, `(?!`, `(?<=`, `(?<!`), back-references (`\1`,
//! `(?P=name)`), conditionals and possessive/atomic groups.
//!
//! Left as is, with a small difference: Python's `$` also matches before a final newline, the
//! crate's only at the very end (names and payload values seldom end in a newline).

use regex::Regex;

/// How a pattern is applied: `exact` = Python `re.match` (anchored at the start only, not a
/// full match), `substring` = `re.search` (anywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchMode {
    Exact,
    #[default]
    Substring,
}

impl MatchMode {
    /// Reads `exact` / `substring` (any case).
    pub fn parse(text: &str) -> Option<MatchMode> {
        match text.to_ascii_lowercase().as_str() {
            "exact" => Some(MatchMode::Exact),
            "substring" => Some(MatchMode::Substring),
            _ => None,
        }
    }
}

/// A Python pattern compiled for one match mode.
#[derive(Debug, Clone)]
pub struct PyPattern {
    source: String,
    mode: MatchMode,
    regex: Regex,
}

impl PyPattern {
    /// Compiles `source` for `mode`; the error says what the `regex` crate rejected.
    pub fn new(source: &str, mode: MatchMode) -> Result<PyPattern, regex::Error> {
        let translated = translate(source);
        let anchored = match mode {
            // `\A(?:...)` is `re.match`: the match must start at the beginning, and may end
            // anywhere.
            MatchMode::Exact => format!(r"\A(?:{translated})"),
            MatchMode::Substring => translated,
        };
        Ok(PyPattern {
            source: source.to_string(),
            mode,
            regex: Regex::new(&anchored)?,
        })
    }

    /// Whether `text` matches in this pattern's mode.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The pattern as written in the rule.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The mode the pattern was compiled for.
    pub fn mode(&self) -> MatchMode {
        self.mode
    }
}

/// Rewrites a Python pattern into the `regex` crate's syntax (see the module docs).
pub fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            match chars.get(i + 1) {
                Some('Z') if !in_class => out.push_str(r"\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(*n);
                }
                None => out.push('\\'),
            }
            i += 2;
            continue;
        }
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                '[' => out.push_str(r"\["),
                '&' | '-' | '~' if chars.get(i + 1) == Some(&c) => {
                    out.push(c);
                    out.push('\\');
                    out.push(c);
                    i += 1;
                }
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` right after the opening bracket is a literal in Python.
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
                continue;
            }
            '{' => match repetition(&chars[i..]) {
                Some((text, len)) => {
                    out.push_str(&text);
                    i += len;
                    continue;
                }
                None => out.push_str(r"\{"),
            },
            '}' => out.push_str(r"\}"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Python's repetition syntax at the start of `chars` (`{m}`, `{m,}`, `{,n}`, `{m,n}`,
/// `{,}`), rewritten for the `regex` crate, with the number of characters it spans.
fn repetition(chars: &[char]) -> Option<(String, usize)> {
    let mut i = 1;
    let mut lo = String::new();
    while let Some(d) = chars.get(i).filter(|c| c.is_ascii_digit()) {
        lo.push(*d);
        i += 1;
    }
    let mut hi = None;
    if chars.get(i) == Some(&',') {
        i += 1;
        let mut h = String::new();
        while let Some(d) = chars.get(i).filter(|c| c.is_ascii_digit()) {
            h.push(*d);
            i += 1;
        }
        hi = Some(h);
    }
    if chars.get(i) != Some(&'}') || (lo.is_empty() && hi.is_none()) {
        return None;
    }
    let lo = if lo.is_empty() { "0".to_string() } else { lo };
    let text = match hi {
        None => format!("{{{lo}}}"),
        Some(h) => format!("{{{lo},{h}}}"),
    };
    Some((text, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_spellings_are_rewritten() {
        assert_eq!(translate("a{,3}"), "a{0,3}");
        assert_eq!(translate("a{2,}"), "a{2,}");
        assert_eq!(translate("{foo}"), r"\{foo\}");
        assert_eq!(translate("a{}"), r"a\{\}");
        assert_eq!(translate(r"end\Z"), r"end\z");
        assert_eq!(translate("[[]"), r"[\[]");
        assert_eq!(translate("[]a]"), r"[\]a]");
        assert_eq!(translate("[a&&b]"), r"[a&\&b]");
        assert_eq!(translate(r"\{x\}"), r"\{x\}");
    }

    #[test]
    fn exact_is_anchored_at_the_start_only() {
        let p = PyPattern::new("front", MatchMode::Exact).unwrap();
        assert!(p.is_match("frontend"));
        assert!(!p.is_match("my-frontend"));
        let p = PyPattern::new("a|b", MatchMode::Exact).unwrap();
        assert!(p.is_match("bcd"));
        assert!(!p.is_match("cab"));
    }

    #[test]
    fn literal_braces_compile_as_python_reads_them() {
        let p = PyPattern::new("{{ name }}", MatchMode::Substring).unwrap();
        assert!(p.is_match("x {{ name }} y"));
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        assert!(PyPattern::new("foo(?=bar)", MatchMode::Substring).is_err());
        assert!(PyPattern::new(r"(a)\1", MatchMode::Substring).is_err());
    }
}
