//! Unpacks the archive of an upload (base64 of a `tar.gz` of the workspace directory) into the
//! `path → text` map an import takes. Nothing is written to disk; still, a member that would
//! leave the tree, a link, or an archive that unpacks beyond the import limit is refused, so
//! the map holds exactly what a directory on disk would.

use base64::Engine as _;
use flate2::read::MultiGzDecoder;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use steward_model::workspace::LoadProblem;
use tar::EntryType;

/// Why an archive was refused; each message names the member or the layer that is wrong.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArchiveError {
    /// `output` is not base64.
    #[error(
        "output is not valid base64 ({0}); send the tar.gz encoded with the standard base64 alphabet"
    )]
    Base64(base64::DecodeError),
    /// The decoded bytes are not gzip.
    #[error(
        "output is not gzip-compressed (it holds {0}); send a tar.gz of the workspace directory"
    )]
    NotGzip(&'static str),
    /// The gzip stream breaks off or is damaged.
    #[error("output: the gzip stream is damaged: {0}")]
    Gzip(io::Error),
    /// The tar inside the gzip stream is damaged.
    #[error("output: not a valid tar archive ({at}): {source}")]
    Tar {
        /// Where it went wrong: the member read last.
        at: String,
        /// What the tar reader said.
        source: io::Error,
    },
    /// A member whose path is absolute or climbs out with `..`.
    #[error(
        "archive member {member:?}: {why}; members must be relative paths inside the workspace directory"
    )]
    UnsafePath {
        /// The member's name as stored.
        member: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A member that is neither a regular file nor a directory.
    #[error(
        "archive member {member:?} is a {kind}; an upload holds regular files and directories only"
    )]
    NotAFile {
        /// The member's name as stored.
        member: String,
        /// Its tar type, in words.
        kind: &'static str,
    },
    /// `workspace.yaml` is not UTF-8 text.
    #[error("workspace.yaml is not UTF-8 text ({0}); the workspace was not imported")]
    WorkspaceNotText(std::string::FromUtf8Error),
    /// The archive unpacks to more than the import limit.
    #[error("the archive unpacks to more than {} MiB (the import limit); upload a smaller workspace", .limit / (1024 * 1024))]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

impl ArchiveError {
    /// A short, stable name of the error for clients that branch on it.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ArchiveError::Base64(_) => "invalid_base64",
            ArchiveError::NotGzip(_) | ArchiveError::Gzip(_) => "invalid_gzip",
            ArchiveError::Tar { .. } => "invalid_tar",
            ArchiveError::UnsafePath { .. } => "unsafe_member",
            ArchiveError::NotAFile { .. } => "unsupported_member",
            ArchiveError::WorkspaceNotText(_) => "invalid_workspace",
            ArchiveError::TooLarge { .. } => "too_large",
        }
    }
}

/// The files of an archive, ready for [`WorkspaceTree::from_files`].
///
/// [`WorkspaceTree::from_files`]: steward_model::workspace::WorkspaceTree::from_files
#[derive(Debug, Default)]
pub(crate) struct Unpacked {
    /// Path relative to the workspace directory → text.
    pub files: BTreeMap<String, String>,
    /// SLXs left out because one of their files is not text: their stored version stays.
    pub keep: Vec<String>,
    /// What was left out, and why.
    pub problems: Vec<LoadProblem>,
}

/// Decodes, decompresses and reads `output`, the archive of workspace `ws`.
///
/// Members may carry a leading `./` (`tar -C <dir> .`) or sit under one `<ws>/` or
/// `workspaces/<ws>/` directory; either is taken off. Hidden files are ignored, as when a
/// tree is loaded from disk. `limit` caps the bytes the gzip stream may unpack to.
pub(crate) fn unpack(output: &str, ws: &str, limit: u64) -> Result<Unpacked, ArchiveError> {
    let compressed = decode_base64(output)?;
    check_gzip(&compressed)?;
    let mut archive = tar::Archive::new(Capped {
        inner: MultiGzDecoder::new(compressed.as_slice()),
        read: 0,
        limit,
        fault: None,
    });
    let members = read_members(&mut archive);
    // A failure of the layer below the tar reader explains the tar error it caused.
    match (members, archive.into_inner().fault) {
        (_, Some(Fault::TooLarge)) => Err(ArchiveError::TooLarge { limit }),
        (Err(_), Some(Fault::Gzip(error))) => Err(ArchiveError::Gzip(error)),
        (members, _) => sort_members(strip_root(members?, ws)),
    }
}

fn decode_base64(output: &str) -> Result<Vec<u8>, ArchiveError> {
    let engine = base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
    // Wrapped base64 (`base64` without `-w0`) is still base64.
    let decoded = if output.bytes().any(|b| b.is_ascii_whitespace()) {
        let joined: String = output.split_ascii_whitespace().collect();
        engine.decode(joined)
    } else {
        engine.decode(output)
    };
    decoded.map_err(ArchiveError::Base64)
}

fn check_gzip(bytes: &[u8]) -> Result<(), ArchiveError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(());
    }
    Err(ArchiveError::NotGzip(if bytes.is_empty() {
        "nothing"
    } else if bytes.get(257..262) == Some(b"ustar") {
        "an uncompressed tar"
    } else if bytes.starts_with(b"PK") {
        "a zip archive"
    } else {
        "something else"
    }))
}

/// What went wrong below the tar reader.
enum Fault {
    Gzip(io::Error),
    TooLarge,
}

/// The gzip stream, cut off (with the fault noted) once it unpacks beyond `limit`, so a small
/// archive cannot expand without bound.
struct Capped<R> {
    inner: R,
    read: u64,
    limit: u64,
    fault: Option<Fault>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the limit is enough to tell "exactly at" from "beyond".
        let room = (self.limit + 1).saturating_sub(self.read);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..want]) {
            Ok(n) => {
                self.read += n as u64;
                if self.read > self.limit {
                    self.fault = Some(Fault::TooLarge);
                    return Err(io::Error::other("the archive is over the size limit"));
                }
                Ok(n)
            }
            Err(error) => {
                let kind = error.kind();
                self.fault = Some(Fault::Gzip(error));
                Err(io::Error::new(kind, "the gzip stream failed"))
            }
        }
    }
}

/// A file member: its normalized path and its bytes, as text when they are UTF-8.
type Member = (String, Result<String, std::string::FromUtf8Error>);

fn read_members<R: Read>(archive: &mut tar::Archive<R>) -> Result<Vec<Member>, ArchiveError> {
    let mut members = Vec::new();
    let mut last: Option<String> = None;
    let broken = |last: &Option<String>, source| ArchiveError::Tar {
        at: match last {
            Some(name) => format!("after member {name:?}"),
            None => "at the first member".into(),
        },
        source,
    };
    let entries = archive.entries().map_err(|e| broken(&last, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| broken(&last, e))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = member_path(&name)?;
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Directory | EntryType::XGlobalHeader => {
                last = Some(name);
                continue;
            }
            other => {
                return Err(ArchiveError::NotAFile {
                    member: name,
                    kind: kind_name(other),
                });
            }
        }
        let Some(path) = path else {
            return Err(ArchiveError::UnsafePath {
                member: name,
                why: "a file needs a name",
            });
        };
        // No capacity from the header: its size is the sender's claim, the stream is the cap.
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| broken(&Some(name.clone()), e))?;
        if !path.split('/').any(|part| part.starts_with('.')) {
            members.push((path, String::from_utf8(bytes)));
        }
        last = Some(name);
    }
    Ok(members)
}

/// The member's path relative to the archive root with `.` and empty segments removed (`None`
/// for the root itself), or why it cannot be inside the tree.
fn member_path(name: &str) -> Result<Option<String>, ArchiveError> {
    let unsafe_path = |why| ArchiveError::UnsafePath {
        member: name.to_string(),
        why,
    };
    if name.starts_with(['/', '\\']) {
        return Err(unsafe_path("an absolute path"));
    }
    // Backslashes count as separators, so `..\x` cannot slip through as one odd name.
    let parts: Vec<&str> = name
        .split(['/', '\\'])
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(unsafe_path("'..' climbs out of the workspace directory"));
    }
    if parts
        .first()
        .is_some_and(|first| first.len() == 2 && first.ends_with(':'))
    {
        return Err(unsafe_path("a path with a drive letter"));
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Symlink => "symbolic link",
        EntryType::Link => "hard link",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "FIFO",
        EntryType::GNUSparse => "sparse file",
        _ => "member of an unsupported type",
    }
}

/// Takes off one leading `<ws>/` or `workspaces/<ws>/` shared by every member (an archive of
/// the directory rather than of its contents).
fn strip_root(mut members: Vec<Member>, ws: &str) -> Vec<Member> {
    if members.is_empty() || members.iter().any(|(path, _)| path == "workspace.yaml") {
        return members;
    }
    for root in [format!("{ws}/"), format!("workspaces/{ws}/")] {
        if members.iter().all(|(path, _)| path.starts_with(&root)) {
            for (path, _) in &mut members {
                path.replace_range(..root.len(), "");
            }
            break;
        }
    }
    members
}

/// Text files go to the import. A file that is not text is reported and left out; so is the
/// rest of its SLX, whose stored version is kept rather than replaced by an incomplete one.
fn sort_members(members: Vec<Member>) -> Result<Unpacked, ArchiveError> {
    let mut unpacked = Unpacked::default();
    let mut binary_slxs = BTreeSet::new();
    for (path, text) in members {
        match text {
            Ok(text) => {
                unpacked.files.insert(path, text);
            }
            Err(error) if path == "workspace.yaml" => {
                return Err(ArchiveError::WorkspaceNotText(error));
            }
            Err(error) => {
                let skipped = match slx_of(&path) {
                    Some(slx) => {
                        let skipped = format!("SLX {slx} skipped");
                        binary_slxs.insert(slx);
                        skipped
                    }
                    None => "file skipped".to_string(),
                };
                unpacked.problems.push(LoadProblem {
                    path,
                    line: None,
                    column: None,
                    message: format!(
                        "not UTF-8 text ({error}); workspace files are YAML or Markdown"
                    ),
                    skipped,
                });
            }
        }
    }
    unpacked
        .files
        .retain(|path, _| slx_of(path).is_none_or(|slx| !binary_slxs.contains(&slx)));
    unpacked.keep = binary_slxs.into_iter().collect();
    Ok(unpacked)
}

/// The SLX a path under `slxs/<name>/` belongs to.
fn slx_of(path: &str) -> Option<String> {
    let mut parts = path.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("slxs"), Some(slx), Some(_)) => Some(slx.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    const MIB: u64 = 1024 * 1024;

    /// A tar.gz, base64-encoded, of `(name, type, data)` members; names go into the header
    /// as they are, so the tests can build archives a well-behaved writer would refuse.
    fn archive(members: &[(&str, EntryType, &[u8])]) -> String {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (name, kind, data) in members {
            let mut header = tar::Header::new_ustar();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        let gz = builder.into_inner().unwrap().finish().unwrap();
        base64::engine::general_purpose::STANDARD.encode(gz)
    }

    fn file(name: &str) -> (&str, EntryType, &'static [u8]) {
        (name, EntryType::Regular, b"text\n")
    }

    #[test]
    fn a_leading_dot_or_workspace_directory_is_taken_off() {
        for root in ["", "./", "demo/", "./demo/", "workspaces/demo/"] {
            let names = [
                format!("{root}workspace.yaml"),
                format!("{root}slxs/web/slx.yaml"),
            ];
            let unpacked = unpack(
                &archive(&[
                    (".", EntryType::Directory, b""),
                    file(&names[0]),
                    file(&names[1]),
                ]),
                "demo",
                MIB,
            )
            .unwrap();
            let paths: Vec<&String> = unpacked.files.keys().collect();
            assert_eq!(
                paths,
                ["slxs/web/slx.yaml", "workspace.yaml"],
                "root {root:?}"
            );
        }
    }

    #[test]
    fn members_outside_the_tree_and_links_are_refused_by_name() {
        for (name, kind, expected) in [
            ("../../etc/passwd", EntryType::Regular, "climbs out"),
            ("slxs/..\\..\\x", EntryType::Regular, "climbs out"),
            ("/etc/passwd", EntryType::Regular, "absolute"),
            ("slxs/web/slx.yaml", EntryType::Symlink, "symbolic link"),
            ("slxs/web/slx.yaml", EntryType::Link, "hard link"),
            ("slxs/web/x", EntryType::Fifo, "FIFO"),
        ] {
            let error = unpack(
                &archive(&[file("workspace.yaml"), (name, kind, b"")]),
                "demo",
                MIB,
            )
            .unwrap_err();
            let text = error.to_string();
            assert!(text.contains(&format!("{name:?}")), "{text}");
            assert!(text.contains(expected), "{text}");
        }
    }

    #[test]
    fn an_archive_that_unpacks_beyond_the_limit_is_refused() {
        let zeros = vec![0u8; 3 * MIB as usize];
        let output = archive(&[("slxs/web/big", EntryType::Regular, &zeros)]);
        assert!(output.len() < 64 * 1024, "the test archive is small");
        let error = unpack(&output, "demo", 2 * MIB).unwrap_err();
        assert!(matches!(error, ArchiveError::TooLarge { .. }), "{error}");
        assert!(unpack(&output, "demo", 4 * MIB).is_ok());
    }

    #[test]
    fn each_broken_layer_is_named() {
        let error = unpack("not base64!", "demo", MIB).unwrap_err();
        assert_eq!(error.code(), "invalid_base64", "{error}");

        let plain = base64::engine::general_purpose::STANDARD.encode(b"workspace.yaml");
        let error = unpack(&plain, "demo", MIB).unwrap_err();
        assert_eq!(error.code(), "invalid_gzip", "{error}");

        let mut gz = base64::engine::general_purpose::STANDARD
            .decode(archive(&[file("workspace.yaml")]))
            .unwrap();
        gz.truncate(gz.len() / 2);
        let error = unpack(
            &base64::engine::general_purpose::STANDARD.encode(&gz),
            "demo",
            MIB,
        )
        .unwrap_err();
        assert_eq!(error.code(), "invalid_gzip", "{error}");

        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(&[7u8; 1024]).unwrap();
        let not_tar = base64::engine::general_purpose::STANDARD.encode(encoder.finish().unwrap());
        let error = unpack(&not_tar, "demo", MIB).unwrap_err();
        assert_eq!(error.code(), "invalid_tar", "{error}");
        assert!(error.to_string().contains("first member"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_text_skips_its_slx_and_is_reported() {
        let unpacked = unpack(
            &archive(&[
                file("workspace.yaml"),
                file("slxs/web/slx.yaml"),
                ("slxs/web/logo.png", EntryType::Regular, &[0xff, 0xfe, 0x00]),
                file("slxs/api/slx.yaml"),
                file(".git/config"),
            ]),
            "demo",
            MIB,
        )
        .unwrap();
        let paths: Vec<&String> = unpacked.files.keys().collect();
        assert_eq!(paths, ["slxs/api/slx.yaml", "workspace.yaml"]);
        assert_eq!(unpacked.keep, ["web"]);
        assert_eq!(unpacked.problems[0].path, "slxs/web/logo.png");
        assert_eq!(unpacked.problems[0].skipped, "SLX web skipped");
    }
}
