//! A fast reader for the YAML templates usually render: block mappings and sequences of
//! one-line scalars. It gives exactly what the full parser (`yaml.rs`) gives, or `None` for
//! anything else (flow collections, block scalars, anchors, tags, multi-line scalars, tabs,
//! unusual escapes, malformed input), which the caller then hands to the full parser. The
//! full parser is about ten times slower, and every rendered item is parsed.
//!
//! Plain scalars resolve as serde_yaml resolves them (YAML 1.2 core schema, with its reading
//! of ints, floats and leading zeros). Debug builds check every result against the full parser.
//! Scalars without escapes borrow their text from the document.

use super::dom::{Map, Node};
use serde_yaml::Number;
use std::borrow::Cow;
use std::num::ParseIntError;

#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

struct Reader<'a, 'r> {
    lines: Vec<Line<'a>>,
    pos: usize,
    repeated: &'r mut Vec<String>,
}

/// The document, or `None` when it is not in the subset this reader handles.
pub(crate) fn parse<'a>(text: &'a str, repeated: &mut Vec<String>) -> Option<Node<'a>> {
    if text.contains(['\t', '\r']) {
        return None;
    }
    let mut lines = Vec::with_capacity(64);
    for raw in text.split('\n') {
        let content = raw.trim_start_matches(' ');
        let content = content.trim_end_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        if indent == 0
            && (content.starts_with("---")
                || content.starts_with("...")
                || content.starts_with('%'))
        {
            return None;
        }
        lines.push(Line {
            indent,
            text: content,
        });
    }
    if lines.is_empty() {
        return None;
    }
    let mut reader = Reader {
        lines,
        pos: 0,
        repeated,
    };
    let value = reader.node(None, false)?;
    (reader.pos == reader.lines.len()).then_some(value)
}

fn is_sequence_entry(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

impl<'a> Reader<'a, '_> {
    /// The node below a parent at `parent` indent (`None` for the document); a list may sit
    /// at the parent's own indent when it is a mapping value.
    fn node(&mut self, parent: Option<usize>, list_at_parent: bool) -> Option<Node<'a>> {
        let Some(line) = self.lines.get(self.pos).copied() else {
            return Some(Node::Null);
        };
        let deeper = parent.is_none_or(|p| line.indent > p);
        if !deeper {
            if list_at_parent && Some(line.indent) == parent && is_sequence_entry(line.text) {
                return self.sequence(line.indent);
            }
            return Some(Node::Null);
        }
        if is_sequence_entry(line.text) {
            return self.sequence(line.indent);
        }
        if split_key(line.text)?.is_some() {
            return self.mapping(line.indent);
        }
        // A scalar on a line of its own; a deeper next line would continue it.
        let value = scalar(line.text)?;
        self.pos += 1;
        if let Some(next) = self.lines.get(self.pos)
            && parent.is_none_or(|p| next.indent > p)
        {
            return None;
        }
        Some(value)
    }

    fn sequence(&mut self, indent: usize) -> Option<Node<'a>> {
        let mut items = Vec::new();
        while let Some(line) = self.lines.get(self.pos).copied() {
            if line.indent != indent || !is_sequence_entry(line.text) {
                break;
            }
            let rest = &line.text[1..];
            let trimmed = rest.trim_start_matches(' ');
            if trimmed.is_empty() || trimmed.starts_with('#') {
                self.pos += 1;
            } else {
                // `- x` becomes a line holding `x` two (or more) columns in.
                self.lines[self.pos] = Line {
                    indent: indent + 1 + (rest.len() - trimmed.len()),
                    text: trimmed,
                };
            }
            items.push(self.node(Some(indent), false)?);
        }
        if self.lines.get(self.pos).is_some_and(|l| l.indent > indent) {
            return None;
        }
        Some(Node::Seq(items))
    }

    fn mapping(&mut self, indent: usize) -> Option<Node<'a>> {
        let mut map = Map::with_capacity(8);
        while let Some(line) = self.lines.get(self.pos).copied() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent || is_sequence_entry(line.text) {
                return None;
            }
            let (key, rest) = split_key(line.text)??;
            self.pos += 1;
            let value = if rest.is_empty() || rest.starts_with('#') {
                self.node(Some(indent), true)?
            } else {
                let value = scalar(rest)?;
                if self.lines.get(self.pos).is_some_and(|l| l.indent > indent) {
                    return None;
                }
                value
            };
            let name = match &key {
                Node::Str(s) => s.to_string(),
                other => super::emit::to_yaml(other).trim_end().to_string(),
            };
            if map.insert(key, value).is_some() {
                self.repeated.push(name);
            }
        }
        Some(Node::Map(map))
    }
}

/// `key: rest` → the key and what follows the colon (trimmed); `Some(None)` when the line is
/// not a mapping entry; `None` when it is beyond this reader.
fn split_key(text: &str) -> Option<Option<(Node<'_>, &str)>> {
    let (key, after) = if text.starts_with(['\'', '"']) {
        let (key, after) = quoted(text)?;
        let after = after.trim_start_matches(' ');
        match after.strip_prefix(':') {
            Some(rest) if rest.is_empty() || rest.starts_with(' ') => (key, rest),
            _ => {
                return if after.is_empty() || after.starts_with('#') {
                    Some(None)
                } else {
                    None
                };
            }
        }
    } else {
        if text.starts_with([
            '[', '{', '&', '*', '!', '|', '>', '%', '@', '`', '?', ',', ':',
        ]) {
            return None;
        }
        let colon = text.match_indices(':').map(|(i, _)| i).find(|&i| {
            let next = text.as_bytes().get(i + 1);
            next.is_none() || next == Some(&b' ')
        });
        let comment = text.find(" #");
        match (colon, comment) {
            (None, _) => return Some(None),
            (Some(c), Some(h)) if h < c => return None,
            (Some(c), _) => (
                resolve_plain(text[..c].trim_end_matches(' '))?,
                &text[c + 1..],
            ),
        }
    };
    Some(Some((key, after.trim_start_matches(' '))))
}

/// A one-line scalar: quoted, or plain up to a comment.
fn scalar(text: &str) -> Option<Node<'_>> {
    if text.starts_with(['\'', '"']) {
        let (value, after) = quoted(text)?;
        let rest = after.trim_start_matches(' ');
        let separated = rest.len() < after.len();
        return (rest.is_empty() || (separated && rest.starts_with('#'))).then_some(value);
    }
    if text.starts_with(['[', '{', '&', '*', '!', '|', '>', '%', '@', '`', '?', ','])
        || text == "-"
        || text.starts_with("- ")
        || text.starts_with(": ")
        || text == ":"
    {
        return None;
    }
    let plain = match text.find(" #") {
        Some(h) => text[..h].trim_end_matches(' '),
        None => text,
    };
    if plain.contains(": ") || plain.ends_with(':') {
        return None;
    }
    resolve_plain(plain)
}

/// A quoted scalar closed on this line, and the text after it.
fn quoted(text: &str) -> Option<(Node<'_>, &str)> {
    if let Some(body) = text.strip_prefix('\'') {
        // Without a doubled quote the content is the text up to the closing quote.
        let close = body.find('\'')?;
        if !body[close + 1..].starts_with('\'') {
            return Some((Node::str(&body[..close]), &body[close + 1..]));
        }
        let mut out = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().map(|(_, n)| *n) == Some('\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    return Some((Node::Str(Cow::Owned(out)), &body[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        return None;
    }
    let body = text.strip_prefix('"')?;
    let end = body.find(['"', '\\'])?;
    if body[end..].starts_with('"') {
        return Some((Node::str(&body[..end]), &body[end + 1..]));
    }
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((Node::Str(Cow::Owned(out)), &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                let simple = match e {
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    't' => '\t',
                    'n' => '\n',
                    'v' => '\u{b}',
                    'f' => '\u{c}',
                    'r' => '\r',
                    'e' => '\u{1b}',
                    ' ' => ' ',
                    '"' => '"',
                    '/' => '/',
                    '\\' => '\\',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' | 'u' | 'U' => {
                        let len = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let start = i + 2;
                        let hex = body.get(start..start + len)?;
                        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return None;
                        }
                        for _ in 0..len {
                            chars.next();
                        }
                        char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
                    }
                    _ => return None,
                };
                out.push(simple);
            }
            c => out.push(c),
        }
    }
    None
}

/// A plain scalar as serde_yaml resolves it; `None` for integers it would read as 128-bit.
fn resolve_plain(v: &str) -> Option<Node<'_>> {
    if v.is_empty() || matches!(v, "~" | "null" | "Null" | "NULL") {
        return Some(Node::Null);
    }
    match v {
        "true" | "True" | "TRUE" => return Some(Node::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Node::Bool(false)),
        _ => {}
    }
    // Numbers start with a digit or a dot, after an optional sign; most scalars are words.
    let unsigned_text = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !unsigned_text.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Some(Node::str(v));
    }
    if let Some(n) = unsigned(v, u64::from_str_radix) {
        return Some(Node::Number(n.into()));
    }
    if let Some(n) = negative(v, i64::from_str_radix) {
        return Some(Node::Number(n.into()));
    }
    if unsigned(v, u128::from_str_radix).is_some() || negative(v, i128::from_str_radix).is_some() {
        return None;
    }
    if !leading_zero_digits(v)
        && let Some(f) = float(v)
    {
        return Some(Node::Number(Number::from(f)));
    }
    Some(Node::str(v))
}

fn leading_zero_digits(v: &str) -> bool {
    let v = v.strip_prefix(['-', '+']).unwrap_or(v);
    v.len() > 1 && v.starts_with('0') && v[1..].bytes().all(|b| b.is_ascii_digit())
}

type Radix<T> = fn(&str, u32) -> Result<T, ParseIntError>;

fn unsigned<T>(v: &str, parse: Radix<T>) -> Option<T> {
    let rest = v.strip_prefix('+').unwrap_or(v);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = rest.strip_prefix(prefix) {
            if digits.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(n) = parse(digits, radix) {
                return Some(n);
            }
        }
    }
    if rest.starts_with(['+', '-']) || leading_zero_digits(v) {
        return None;
    }
    parse(rest, 10).ok()
}

fn negative<T>(v: &str, parse: Radix<T>) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(digits) = v.strip_prefix(prefix)
            && let Ok(n) = parse(&format!("-{digits}"), radix)
        {
            return Some(n);
        }
    }
    if leading_zero_digits(v) {
        return None;
    }
    parse(v, 10).ok()
}

fn float(v: &str) -> Option<f64> {
    let unsigned = match v.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return None,
        Some(rest) => rest,
        None => v,
    };
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return Some(f64::INFINITY);
    }
    if matches!(v, "-.inf" | "-.Inf" | "-.INF") {
        return Some(f64::NEG_INFINITY);
    }
    if matches!(v, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN.copysign(1.0));
    }
    unsigned.parse::<f64>().ok().filter(|f| f.is_finite())
}
