use super::*;

fn cand(key: &str, base: &str, values: &[&str]) -> SlxCandidate {
    SlxCandidate {
        key: key.into(),
        short_base: base.into(),
        qualifier_values: values.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn load_time_dedup_numbers_every_holder() {
    let mut bases = vec!["a".to_string(), "b".into(), "a".into(), "a".into()];
    dedupe_short_bases(&mut bases);
    assert_eq!(bases, ["a1", "b", "a2", "a3"]);
}

#[test]
fn equal_qualified_names_are_numbered_in_order() {
    let cands = [
        cand("k1", "base", &["x"]),
        cand("k2", "base", &["x"]),
        cand("k3", "base", &["y"]),
    ];
    let names: Vec<String> = upstream_names("ws", &cands, NameMode::Current)
        .into_iter()
        .map(|n| n.unwrap().full)
        .collect();
    let hx = algorithm::qualifier_hash(&["x".into()]);
    assert_eq!(names[0], format!("ws--x-base1-{hx}"));
    assert_eq!(names[1], format!("ws--x-base2-{hx}"));
    assert!(names[2].starts_with("ws--y-base-"));
}

#[test]
fn bases_equal_after_sanitizing_are_numbered() {
    let cands = [cand("k1", "b", &[]), cand("k2", "b/", &[])];
    let names: Vec<String> = upstream_names("ws", &cands, NameMode::Current)
        .into_iter()
        .map(|n| n.unwrap().full)
        .collect();
    assert_eq!(names, ["ws--b1", "ws--b-2"]);
}

#[test]
fn the_ledger_keeps_names_when_the_algorithm_changes_its_mind() {
    let mut ledger = Ledger::new("ws", NameMode::Current);
    let first = [cand(
        "cc|health|depl-health|frontend",
        "depl-health",
        &["frontend"],
    )];
    let (names, events) = assign("ws", &first, NameMode::Current, &mut ledger);
    let original = names[0].clone().unwrap();
    assert!(events.is_empty());

    // An unrelated codebundle with the same short base name renumbers both upstream.
    let mut bases = vec!["depl-health".to_string(), "depl-health".into()];
    dedupe_short_bases(&mut bases);
    let second = [
        cand("cc|health|depl-health|frontend", &bases[0], &["frontend"]),
        cand("cc|other|depl-health|frontend", &bases[1], &["frontend"]),
    ];
    let (names, events) = assign("ws", &second, NameMode::Current, &mut ledger);
    assert_eq!(
        names[0].as_ref().unwrap(),
        &original,
        "an existing SLX is never renamed"
    );
    assert_ne!(names[1].as_ref().unwrap().full, original.full);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, NameEvent::Kept { kept, .. } if *kept == original.full))
    );
}

#[test]
fn a_new_slx_never_takes_a_recorded_name() {
    let mut ledger = Ledger::new("ws", NameMode::Current);
    let (names, _) = assign(
        "ws",
        &[cand("old", "base", &[])],
        NameMode::Current,
        &mut ledger,
    );
    assert_eq!(names[0].as_ref().unwrap().full, "ws--base");
    // The old SLX is gone this run; a new one computes the same name but gets another.
    let (names, events) = assign(
        "ws",
        &[cand("new", "base", &[])],
        NameMode::Current,
        &mut ledger,
    );
    assert_eq!(names[0].as_ref().unwrap().full, "ws--base2");
    assert_eq!(
        events,
        [NameEvent::Taken {
            computed: "ws--base".into(),
            given: "ws--base2".into()
        }]
    );
}

#[test]
fn the_ledger_round_trips_and_ignores_another_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("names.json");
    let mut ledger = Ledger::new("ws", NameMode::Legacy);
    ledger.record(
        "k",
        SlxName {
            full: "ws--n".into(),
            directory: "n".into(),
        },
    );
    ledger.save(&path).unwrap();
    let back = Ledger::load(&path, "ws", NameMode::Current).unwrap();
    assert_eq!(back.get("k").unwrap().full, "ws--n");
    assert_eq!(back.mode(), NameMode::Legacy);
    assert!(
        Ledger::load(&path, "other", NameMode::Current)
            .unwrap()
            .is_empty()
    );
    std::fs::write(&path, "{not json").unwrap();
    let err = Ledger::load(&path, "ws", NameMode::Current)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("names.json") && err.contains("delete it"),
        "{err}"
    );
}
