//! Writing post-processed documents as block YAML in PyYAML's layout (two-space indent, lists
//! not indented under their key, keys in document order).
//!
//! The reason for not using serde_yaml's writer: it quotes only what YAML 1.2 would read as
//! something else, so `value: "YES"` comes out as `value: YES`, which YAML 1.1 readers
//! (PyYAML, go-yaml v2, and so the RunWhen platform) read as the boolean true. Here a string is
//! written plain only when neither YAML 1.1 nor 1.2 could read it as anything but that string.

use super::dom::{Map, Node};
use regex::Regex;
use std::fmt::Write as _;
use std::sync::LazyLock;

/// Strings YAML 1.1 or YAML 1.2 resolve to null, a boolean, a number, a timestamp, or the
/// merge/value keys.
static NOT_A_STRING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:",
        r"~|null|Null|NULL",
        r"|y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
        // integers: binary, octal (1.1 and 1.2), decimal, hex, sexagesimal, with `_`
        r"|[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+",
        r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
        // floats: 1.1 (dot required) and 1.2 (exponent alone), sexagesimal, inf and nan
        r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+",
        r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        // timestamps
        r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?",
        r"|<<|=",
        r")$"
    ))
    .expect("the YAML resolver pattern compiles")
});

/// The document as YAML text, ending with a newline.
pub(crate) fn to_yaml(doc: &Node<'_>) -> String {
    if has_complex_key(doc) {
        // `? ` keys never come out of templates in practice; let serde_yaml handle them.
        return serde_yaml::to_string(&doc.to_value()).unwrap_or_default();
    }
    let mut out = String::with_capacity(2048);
    match doc {
        Node::Map(m) if !m.is_empty() => mapping(&mut out, m, 0),
        Node::Seq(s) if !s.is_empty() => sequence(&mut out, s, 0),
        // A bare scalar document never comes out of a template that passed validation;
        // quoting keeps a multi-line one off column 0.
        Node::Str(s) if s.contains('\n') => {
            double_quoted(&mut out, s);
            out.push('\n');
        }
        other => {
            inline(&mut out, other, 0);
            out.push('\n');
        }
    }
    out
}

fn has_complex_key(v: &Node<'_>) -> bool {
    match v {
        Node::Map(m) => m.iter().any(|(k, v)| {
            matches!(k, Node::Map(_) | Node::Seq(_) | Node::Tagged(..)) || has_complex_key(v)
        }),
        Node::Seq(s) => s.iter().any(has_complex_key),
        Node::Tagged(_, inner) => has_complex_key(inner),
        _ => false,
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Entries of a mapping, the first one already positioned when `first_inline`.
fn mapping_entries(out: &mut String, m: &Map<'_>, indent: usize, first_inline: bool) {
    for (i, (key, value)) in m.iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        match key {
            Node::Str(k) if k.contains('\n') => double_quoted(out, k),
            other => scalar(out, other, indent),
        }
        out.push(':');
        value_after_key(out, value, indent);
    }
}

fn mapping(out: &mut String, m: &Map<'_>, indent: usize) {
    mapping_entries(out, m, indent, false);
}

fn sequence(out: &mut String, s: &[Node<'_>], indent: usize) {
    for item in s {
        pad(out, indent);
        item_after_dash(out, item, indent);
    }
}

/// `- ` and the item; a mapping or list item starts on the dash's line.
fn item_after_dash(out: &mut String, item: &Node<'_>, indent: usize) {
    out.push_str("- ");
    match item {
        Node::Map(m) if !m.is_empty() => mapping_entries(out, m, indent + 2, true),
        Node::Seq(s) if !s.is_empty() => {
            for (i, inner) in s.iter().enumerate() {
                if i > 0 {
                    pad(out, indent + 2);
                }
                item_after_dash(out, inner, indent + 2);
            }
        }
        other => {
            inline(out, other, indent + 2);
            out.push('\n');
        }
    }
}

/// What follows `key:`.
fn value_after_key(out: &mut String, value: &Node<'_>, indent: usize) {
    match value {
        Node::Map(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, indent + 2);
        }
        // Lists sit at their key's indent, as PyYAML writes them.
        Node::Seq(s) if !s.is_empty() => {
            out.push('\n');
            sequence(out, s, indent);
        }
        Node::Tagged(tag, inner)
            if !inner.is_scalar()
                && !matches!(&**inner, Node::Map(m) if m.is_empty())
                && !matches!(&**inner, Node::Seq(s) if s.is_empty()) =>
        {
            let _ = write!(out, " {tag}");
            value_after_key(out, inner, indent);
        }
        other => {
            out.push(' ');
            inline(out, other, indent + 2);
            out.push('\n');
        }
    }
}

/// A scalar, an empty collection or a tagged scalar, on the current line. `indent` is where
/// continuation lines of a block scalar go.
fn inline(out: &mut String, v: &Node<'_>, indent: usize) {
    match v {
        Node::Map(_) => out.push_str("{}"),
        Node::Seq(_) => out.push_str("[]"),
        Node::Tagged(tag, inner) => {
            let _ = write!(out, "{tag} ");
            inline(out, inner, indent);
        }
        scalar_value => scalar(out, scalar_value, indent),
    }
}

fn scalar(out: &mut String, v: &Node<'_>, indent: usize) {
    match v {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Number(n) => number(out, n),
        Node::Str(s) => string(out, s, indent),
        other => inline(out, other, indent),
    }
}

fn number(out: &mut String, n: &serde_yaml::Number) {
    match n.as_f64().filter(|_| n.is_f64()) {
        Some(f) if f.is_nan() => out.push_str(".nan"),
        Some(f) if f.is_infinite() => out.push_str(if f > 0.0 { ".inf" } else { "-.inf" }),
        Some(f) => {
            // YAML 1.1 wants a dot and a signed exponent: 1.0e+20.
            let text = format!("{f:?}");
            match text.split_once('e') {
                Some((mantissa, exp)) => {
                    let mantissa = if mantissa.contains('.') {
                        mantissa.to_string()
                    } else {
                        format!("{mantissa}.0")
                    };
                    let exp = if exp.starts_with('-') {
                        exp.to_string()
                    } else {
                        format!("+{exp}")
                    };
                    let _ = write!(out, "{mantissa}e{exp}");
                }
                None => out.push_str(&text),
            }
        }
        None => {
            let _ = write!(out, "{n}");
        }
    }
}

fn string(out: &mut String, s: &str, indent: usize) {
    if is_plain(s) {
        out.push_str(s);
    } else if s.contains('\n') && literal_ok(s) {
        literal(out, s, indent);
    } else if s.chars().all(|c| !c.is_control()) {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        double_quoted(out, s);
    }
}

fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let second = s.chars().nth(1);
    let indicator_start = match first {
        '-' | '?' | ':' => second.is_none_or(|c| c == ' '),
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' => true,
        c => c.is_whitespace(),
    };
    if indicator_start || s.ends_with([' ', ':']) || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    // One pass for what would end a plain scalar early (`: `, ` #`) or cannot be in one;
    // this runs for every string of every file, so it avoids a search per pattern.
    let mut previous = first;
    for c in s.chars().skip(1) {
        if (previous == ':' && c == ' ') || (previous == ' ' && c == '#') {
            return false;
        }
        previous = c;
    }
    if s.chars()
        .any(|c| c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}')
    {
        return false;
    }
    !(may_resolve_to_another_type(s) && NOT_A_STRING.is_match(s))
}

/// Whether `s` can be one of the plain scalars YAML reads as something other than a string
/// (see [`NOT_A_STRING`]): those start with a digit, sign, dot, `~`, `<` or `=`, or are one of
/// the short null and boolean words. Most strings are not, and skip the regular expression.
fn may_resolve_to_another_type(s: &str) -> bool {
    match s.as_bytes().first() {
        Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'~' | b'<' | b'=') => true,
        Some(b'n' | b'N' | b'y' | b'Y' | b't' | b'T' | b'f' | b'F' | b'o' | b'O') => s.len() <= 5,
        _ => false,
    }
}

/// A literal block keeps a multi-line string readable; it cannot hold control characters or
/// lines of only spaces (those read back as empty lines).
fn literal_ok(s: &str) -> bool {
    s.chars().all(|c| c == '\n' || c == '\t' || !c.is_control())
        && !s.contains('\r')
        && s.split('\n')
            .all(|line| line.is_empty() || !line.trim_matches(' ').is_empty())
}

fn literal(out: &mut String, s: &str, indent: usize) {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    out.push('|');
    if s.starts_with([' ', '\n']) {
        out.push('2');
    }
    match trailing {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    let lines: Vec<&str> = if trailing > 1 {
        s[..s.len() - 1].split('\n').collect()
    } else {
        body.split('\n').collect()
    };
    for line in lines {
        out.push('\n');
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
    }
}

fn double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{85}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_yaml::{Mapping, Value};

    fn roundtrip(v: &Value) -> String {
        let text = to_yaml(&Node::from_value(v.clone()));
        let back: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(&back, v, "{text}");
        text
    }

    #[test]
    fn strings_yaml_1_1_reads_otherwise_are_quoted() {
        for s in [
            "YES",
            "no",
            "on",
            "Off",
            "y",
            "~",
            "null",
            "",
            "12",
            "0777",
            "1_000",
            "1:20",
            "1.5",
            "1e3",
            ".inf",
            "2024-01-31",
            "<<",
            "-",
            "- x",
            "a: b",
            "a #b",
            "x:",
            " lead",
            "[k8s]app",
            "'q'",
        ] {
            let text = roundtrip(&Value::String(s.into()));
            assert!(text.starts_with(['\'', '"']), "{s:?} written as {text}");
        }
        for s in [
            "kubernetes",
            "10m",
            "-l app=x",
            "k8s:file@secret/kubeconfig:kubeconfig",
            "https://x.example.com/a#b",
            "yes-please",
            "v1.2.3",
            "a b",
            "it's",
        ] {
            assert_eq!(roundtrip(&Value::String(s.into())), format!("{s}\n"));
        }
    }

    #[test]
    fn documents_keep_pyyaml_layout_and_round_trip() {
        let doc: Value = serde_yaml::from_str(
            "b: 1\na:\n  list:\n  - x\n  - {k: v, w: [1, [2, 3]]}\n  - []\n  empty: {}\n  multi: \"line 1\\n  line 2\\n\"\n  ctl: \"bell\\a\"\n  tagged: !t 5\nf: 1.0e+20\ng: -0.5\n",
        )
        .unwrap();
        let text = roundtrip(&doc);
        assert_eq!(
            text,
            "b: 1\na:\n  list:\n  - x\n  - k: v\n    w:\n    - 1\n    - - 2\n      - 3\n  - []\n  empty: {}\n  multi: |\n    line 1\n      line 2\n  ctl: \"bell\\u0007\"\n  tagged: !t 5\nf: 1.0e+20\ng: -0.5\n"
        );
    }

    #[test]
    fn literal_blocks_keep_leading_spaces_and_trailing_newlines() {
        for s in [
            "  indented\nnext",
            "a\n\n",
            "a\nb\n",
            "a\nb",
            "\nstarts with a newline",
            "tab\there\nx",
        ] {
            let mut doc = Mapping::new();
            doc.insert("k".into(), Value::Sequence(vec![Value::String(s.into())]));
            doc.insert("m".into(), Value::String(s.into()));
            let text = roundtrip(&Value::Mapping(doc));
            assert!(text.contains("- |") && text.contains("m: |"), "{text}");
        }
        assert_eq!(to_yaml(&Node::str("a\nb")), "\"a\\nb\"\n");
    }
}
