//! YAML helpers shared by the configuration and rule parsers: key paths, finding the line of a
//! key path in the source text, and converting YAML values to JSON.
//!
//! `serde_yaml` values carry no positions, so errors about a key (rather than about the syntax)
//! find their line by walking the text's indentation ([`locate`]). This covers block-style YAML,
//! which is what configuration files and generation rules are written in; inside a flow
//! collection (`{...}`, `[...]`) the line of the enclosing key is given instead.

use std::fmt;

/// One step of a key path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where a value sits in a document: `cloudConfig.kubernetes.contexts."prod-1".namespaces[2]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        KeyPath(segs)
    }

    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        KeyPath(segs)
    }

    pub fn segments(&self) -> &[Seg] {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    // Keys that contain the separator are quoted so the path stays readable.
                    if k.is_empty() || k.contains(['.', ' ', '/', '"']) {
                        write!(f, "{k:?}")?;
                    } else {
                        f.write_str(k)?;
                    }
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A source line reduced to what the locator needs.
#[derive(Debug)]
struct Line<'t> {
    /// 1-based line number.
    number: usize,
    /// Columns of the `- ` sequence indicators that open the line.
    dashes: Vec<usize>,
    /// Column of the content after the indentation and dashes.
    content_col: usize,
    content: &'t str,
}

impl Line<'_> {
    /// The column of the first token: a dash or the content.
    fn first_col(&self) -> usize {
        self.dashes.first().copied().unwrap_or(self.content_col)
    }

    /// The mapping key this line starts with, if it starts with one.
    fn key(&self) -> Option<(&str, &str)> {
        mapping_key(self.content)
    }
}

/// Splits `key: value` (plain, single- or double-quoted key); returns the key and the rest of
/// the line after the colon.
fn mapping_key(content: &str) -> Option<(&str, &str)> {
    let (key, rest) = if let Some(quoted) = content.strip_prefix('"') {
        let end = quoted.find('"')?;
        (&quoted[..end], quoted[end + 1..].trim_start())
    } else if let Some(quoted) = content.strip_prefix('\'') {
        let end = quoted.find('\'')?;
        (&quoted[..end], quoted[end + 1..].trim_start())
    } else {
        let bytes = content.as_bytes();
        let mut at = None;
        for (i, b) in bytes.iter().enumerate() {
            if *b == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ' || bytes[i + 1] == b'\t')
            {
                at = Some(i);
                break;
            }
            // A flow collection or a comment before any colon: not a key.
            if i == 0 && matches!(b, b'[' | b'{' | b'#') {
                return None;
            }
        }
        let i = at?;
        return Some((content[..i].trim_end(), &content[i + 1..]));
    };
    let rest = rest.strip_prefix(':')?;
    Some((key, rest))
}

fn scan(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start_matches(' ');
        if trimmed.trim().is_empty()
            || trimmed.starts_with('#')
            || trimmed.starts_with("---")
            || trimmed.starts_with("...")
            || trimmed.starts_with('%')
        {
            continue;
        }
        let mut col = raw.len() - trimmed.len();
        let mut rest = trimmed;
        let mut dashes = Vec::new();
        while rest == "-" || rest.starts_with("- ") || rest.starts_with("-\t") {
            dashes.push(col);
            let after = &rest[1..];
            let spaces = after.len() - after.trim_start().len();
            col += 1 + spaces;
            rest = after.trim_start();
        }
        lines.push(Line {
            number: i + 1,
            dashes,
            content_col: col,
            content: rest,
        });
    }
    lines
}

/// The value written inline after `key:` (empty when the value is a nested block).
fn inline_value(after_colon: &str) -> &str {
    let v = after_colon.trim();
    if v.starts_with('#') { "" } else { v }
}

/// The 1-based line of the deepest part of `path` found in `text`, or `None` when not even
/// the first key is found.
pub fn locate(text: &str, path: &KeyPath) -> Option<usize> {
    let lines = scan(text);
    let mut start = 0;
    let mut end = lines.len();
    let mut col = lines.first()?.first_col();
    let mut best = None;
    let segs = path.segments();
    for (n, seg) in segs.iter().enumerate() {
        if start >= end {
            break;
        }
        match seg {
            Seg::Key(k) => {
                let found = (start..end).find(|&i| {
                    lines[i].content_col == col && lines[i].key().is_some_and(|(key, _)| key == k)
                });
                let Some(i) = found else { break };
                best = Some(lines[i].number);
                let (_, after) = lines[i].key().unwrap_or_default();
                let inline = inline_value(after);
                // A scalar or flow value written on the key's line: nothing below to descend into.
                if !inline.is_empty() && !inline.starts_with(['|', '>', '&', '!']) {
                    break;
                }
                let value_end = (i + 1..end)
                    .find(|&j| {
                        let first = lines[j].first_col();
                        first < col || (first == col && lines[j].dashes.first() != Some(&col))
                    })
                    .unwrap_or(end);
                start = i + 1;
                end = value_end;
                if start < end {
                    col = lines[start].first_col();
                }
            }
            Seg::Index(wanted) => {
                let items: Vec<usize> = (start..end)
                    .filter(|&i| lines[i].dashes.first() == Some(&col))
                    .collect();
                let Some(&i) = items.get(*wanted) else { break };
                best = Some(lines[i].number);
                let item_end = items.get(wanted + 1).copied().unwrap_or(end);
                start = i;
                end = item_end;
                // The item's own content starts after its dash: another dash or the content.
                col = lines[i]
                    .dashes
                    .get(1)
                    .copied()
                    .unwrap_or(lines[i].content_col);
                if n + 1 < segs.len() && lines[i].dashes.len() == 1 {
                    // A scalar item (`- foo`) has nothing below it.
                    if lines[i].key().is_none() && !lines[i].content.is_empty() {
                        break;
                    }
                }
            }
        }
    }
    best
}

/// A YAML value as JSON, the way templates and payload paths see it: mapping keys become
/// strings, tags are dropped, non-finite floats become `null`.
pub fn to_json(value: &serde_yaml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    use serde_yaml::Value as Y;
    match value {
        Y::Null => J::Null,
        Y::Bool(b) => J::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                J::from(i)
            } else if let Some(u) = n.as_u64() {
                J::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(J::Null, J::Number)
            }
        }
        Y::String(s) => J::String(s.clone()),
        Y::Sequence(items) => J::Array(items.iter().map(to_json).collect()),
        Y::Mapping(map) => J::Object(
            map.iter()
                .map(|(k, v)| (key_string(k), to_json(v)))
                .collect(),
        ),
        Y::Tagged(tagged) => to_json(&tagged.value),
    }
}

/// A mapping key as text (YAML allows any scalar as a key; namespaces like `123` are numbers).
pub fn key_string(key: &serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Null => "null".into(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => serde_json::to_string(&to_json(other)).unwrap_or_default(),
    }
}

/// What kind of value this is, for error messages.
pub fn describe(value: &serde_yaml::Value) -> &'static str {
    match value {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(t) => describe(&t.value),
    }
}

/// The line and column of a YAML syntax error, and its message without the position suffix
/// `serde_yaml` appends (the caller prints the position itself).
pub fn syntax_error(error: &serde_yaml::Error) -> (usize, usize, String) {
    let (line, column) = error.location().map_or((1, 1), |l| (l.line(), l.column()));
    let message = error.to_string();
    let message = match message.find(" at line ") {
        Some(i) => {
            // Keep any context after the position (", while parsing a block mapping").
            let tail = &message[i + " at line ".len()..];
            let context = tail.find(", ").map(|j| &tail[j..]).unwrap_or("");
            format!("{}{}", &message[..i], context)
        }
        None => message,
    };
    (line, column, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segs: &[&str]) -> KeyPath {
        let mut p = KeyPath::root();
        for s in segs {
            p = match s.parse::<usize>() {
                Ok(n) => p.index(n),
                Err(_) => p.key(s),
            };
        }
        p
    }

    const DOC: &str = "\
# comment
workspaceName: ws
cloudConfig:
  kubernetes:
    contexts:
      - a
      - b
    namespaces: [x, y]
  azure: {}
codeCollections:
- repoURL: https://example.invalid/a.git
  branch: main
- repoURL: https://example.invalid/b.git
  codeBundles:
    - \"k8s-*\"
spec:
  generationRules:
    - resourceTypes: [deployment]
      slxs:
        - baseName: one
          outputItems:
            - type: slx
        - qualifiers: [resource]
";

    #[test]
    fn finds_nested_keys_and_items() {
        assert_eq!(locate(DOC, &path(&["workspaceName"])), Some(2));
        assert_eq!(
            locate(DOC, &path(&["cloudConfig", "kubernetes", "contexts"])),
            Some(5)
        );
        assert_eq!(
            locate(DOC, &path(&["cloudConfig", "kubernetes", "contexts", "1"])),
            Some(7)
        );
        assert_eq!(locate(DOC, &path(&["cloudConfig", "azure"])), Some(9));
        assert_eq!(locate(DOC, &path(&["codeCollections", "1"])), Some(13));
        assert_eq!(
            locate(DOC, &path(&["codeCollections", "0", "branch"])),
            Some(12)
        );
        assert_eq!(
            locate(DOC, &path(&["codeCollections", "1", "codeBundles", "0"])),
            Some(15)
        );
        assert_eq!(
            locate(DOC, &path(&["spec", "generationRules", "0", "slxs", "1"])),
            Some(23)
        );
        assert_eq!(
            locate(
                DOC,
                &path(&[
                    "spec",
                    "generationRules",
                    "0",
                    "slxs",
                    "0",
                    "outputItems",
                    "0",
                    "type"
                ])
            ),
            Some(22)
        );
    }

    #[test]
    fn stops_at_the_deepest_known_part() {
        // Inside a flow sequence: the key's line.
        assert_eq!(
            locate(
                DOC,
                &path(&["cloudConfig", "kubernetes", "namespaces", "1"])
            ),
            Some(8)
        );
        // A missing key below a known one: the known one's line.
        assert_eq!(locate(DOC, &path(&["cloudConfig", "gcp"])), Some(3));
        assert_eq!(locate(DOC, &path(&["nothing"])), None);
    }

    #[test]
    fn key_paths_display_dotted_with_quotes_where_needed() {
        let p = KeyPath::root()
            .key("cloudConfig")
            .key("kubernetes")
            .key("namespaceLODs")
            .key("app.io/x");
        assert_eq!(
            p.to_string(),
            "cloudConfig.kubernetes.namespaceLODs.\"app.io/x\""
        );
        assert_eq!(
            KeyPath::root().key("a").index(2).key("b").to_string(),
            "a[2].b"
        );
    }

    #[test]
    fn syntax_errors_lose_the_duplicate_position() {
        let err = serde_yaml::from_str::<serde_yaml::Value>("a: [1, 2\nb: 3").unwrap_err();
        let (line, column, message) = syntax_error(&err);
        assert_eq!((line, column), (2, 2));
        assert!(!message.contains("at line 2"), "{message}");
    }
}
