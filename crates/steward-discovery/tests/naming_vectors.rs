//! SLX names compared with runwhen-local's own output.
//!
//! `fixtures/naming-vectors.json` holds inputs and the names runwhen-local computed for them:
//! its `name_utils.py` at 0.11.12 (current mode, 255 characters) and just before 0.11.10
//! (legacy mode, 63 characters), run on 800 random combinations of workspace, base name and
//! qualifier values (including `_`, `/`, `:`, upper case and over-long values), plus
//! `shorten_name` on 232 inputs.

use serde::Deserialize;
use steward_discovery::naming::{NameMode, full_name, qualified_name, shorten_name};

#[derive(Deserialize)]
struct Vectors {
    shorten: Vec<Shorten>,
    names: Vec<Name>,
}

#[derive(Deserialize)]
struct Shorten {
    name: String,
    max: i64,
    out: String,
}

#[derive(Deserialize)]
struct Name {
    workspace: String,
    base: String,
    values: Vec<String>,
    mode: String,
    full: String,
    directory: String,
}

fn vectors() -> Vectors {
    let text = include_str!("fixtures/naming-vectors.json");
    serde_json::from_str(text).expect("the vectors parse")
}

#[test]
fn shorten_name_matches_upstream() {
    for case in vectors().shorten {
        assert_eq!(
            shorten_name(&case.name, case.max),
            case.out,
            "shorten_name({:?}, {})",
            case.name,
            case.max
        );
    }
}

#[test]
fn slx_names_match_upstream_in_both_modes() {
    let cases = vectors().names;
    assert!(cases.iter().any(|c| c.mode == "legacy") && cases.iter().any(|c| c.mode == "current"));
    for case in cases {
        let mode = NameMode::parse(&case.mode).unwrap();
        let q = qualified_name(
            &case.base,
            &case.values,
            mode.max_qualified_length(&case.workspace),
            mode,
        );
        let (full, directory) = full_name(&case.workspace, &q, mode).unwrap();
        assert_eq!(
            (full.as_str(), directory.as_str()),
            (case.full.as_str(), case.directory.as_str()),
            "{mode:?} {:?} {:?} {:?}",
            case.workspace,
            case.base,
            case.values
        );
    }
}
