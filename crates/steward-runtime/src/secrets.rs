//! Secret values at the edge of a run: written to private files for `RW_SECRETS_KEYS`, and
//! scrubbed from everything the run produced before it leaves the machine.

use crate::{Error, Result};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A resolved secret: the name the robot file imports and its value.
#[derive(Clone)]
pub struct SecretValue {
    /// Name used with `Import Secret`.
    pub name: String,
    /// The value.
    pub value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue({}, ***)", self.name)
    }
}

/// Values shorter than this are not scrubbed from outputs (they would match everywhere).
pub const MIN_REDACTED_LEN: usize = 4;

/// What replaces a secret value in outputs.
pub const MASK: &str = "********";

/// Writes each secret to its own file, mode 0400, in `dir` (created with mode 0700).
pub fn materialize(dir: &Path, secrets: &[SecretValue]) -> Result<Vec<(String, PathBuf)>> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::with_capacity(secrets.len());
    for (index, secret) in secrets.iter().enumerate() {
        let safe: String = secret
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{index}-{safe}"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.write_all(secret.value.as_bytes())
            .map_err(|e| Error::io(&path, e))?;
        out.push((secret.name.clone(), path));
    }
    Ok(out)
}

/// Every form in which a value may appear in an output: as is, trimmed (the keyword library
/// strips whitespace), JSON-escaped (jsonl files), HTML-escaped, and, for multi-line values,
/// each long line and each long word on its own (keys and certificates inside a kubeconfig).
fn needles(secrets: &[SecretValue]) -> Vec<String> {
    let mut out = Vec::new();
    for secret in secrets {
        let mut forms = vec![secret.value.clone(), secret.value.trim().to_string()];
        let json = serde_json::to_string(secret.value.trim()).unwrap_or_default();
        forms.push(json.trim_matches('"').to_string());
        forms.push(
            secret
                .value
                .trim()
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;"),
        );
        if secret.value.trim().contains('\n') {
            forms.extend(
                secret
                    .value
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= 16)
                    .map(str::to_string),
            );
            forms.extend(
                secret
                    .value
                    .split_whitespace()
                    .filter(|w| w.len() >= 16)
                    .map(str::to_string),
            );
        }
        out.extend(forms.into_iter().filter(|f| f.len() >= MIN_REDACTED_LEN));
    }
    // Longest first, so a value is masked whole before any of its lines.
    out.sort_by_key(|n| std::cmp::Reverse(n.len()));
    out.dedup();
    out
}

/// Replaces every secret value in `text`; returns how many replacements were made.
pub fn redact_text(text: &mut String, secrets: &[SecretValue]) -> usize {
    let mut count = 0;
    for needle in needles(secrets) {
        let found = text.matches(needle.as_str()).count();
        if found > 0 {
            count += found;
            *text = text.replace(needle.as_str(), MASK);
        }
    }
    count
}

/// Scrubs a file in place (text files only; other files are left alone).
pub fn redact_file(path: &Path, secrets: &[SecretValue]) -> Result<usize> {
    if secrets.is_empty() {
        return Ok(0);
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let Ok(mut text) = String::from_utf8(bytes) else {
        return Ok(0);
    };
    let count = redact_text(&mut text, secrets);
    if count > 0 {
        std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn secret(name: &str, value: &str) -> SecretValue {
        SecretValue {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn files_are_private_and_named_safely() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("secrets");
        let files = materialize(
            &root,
            &[secret("api/token", "s3cr3t\n"), secret("kubeconfig", "k")],
        )
        .unwrap();
        assert_eq!(
            std::fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for (_, path) in &files {
            assert_eq!(
                std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
                0o400
            );
            assert_eq!(path.parent().unwrap(), root);
        }
        assert_eq!(files[0].0, "api/token");
        assert_eq!(std::fs::read_to_string(&files[0].1).unwrap(), "s3cr3t\n");
    }

    #[test]
    fn values_are_masked_in_every_form() {
        let secrets = [secret("tok", "  abc\"<d>&e  "), secret("short", "ab")];
        let mut text = String::from(
            "raw abc\"<d>&e | json abc\\\"<d>&e | html abc&quot;&lt;d&gt;&amp;e | ab stays",
        );
        let n = redact_text(&mut text, &secrets);
        assert_eq!(n, 3, "{text}");
        assert!(!text.contains("abc"), "{text}");
        assert!(text.ends_with("ab stays"));
    }

    #[test]
    fn multi_line_values_are_masked_line_by_line_too() {
        let kubeconfig = "apiVersion: v1\nclient-key-data: QUJDREVGR0hJSktMTU5PUFFSU1RVVldY\n";
        let mut text = String::from("leaked: QUJDREVGR0hJSktMTU5PUFFSU1RVVldY");
        redact_text(&mut text, &[secret("kubeconfig", kubeconfig)]);
        assert_eq!(text, format!("leaked: {MASK}"));
    }
}
