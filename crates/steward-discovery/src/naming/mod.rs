//! SLX names: the upstream algorithm ([`algorithm`]) plus a ledger ([`Ledger`]) so that a name,
//! once given, stays with its SLX.
//!
//! Upstream names depend on what else is generated: a new codebundle whose short base name
//! equals an existing one renumbers both, and collision indices follow listing order. Steward
//! computes the upstream name for a new SLX, then keeps it: an SLX found in the ledger keeps its
//! recorded name even when the algorithm would now give another, and a new SLX whose name is
//! taken gets the next free number instead of taking it over.

pub mod algorithm;
mod ledger;

pub use algorithm::{NameMode, NameTooLong, full_name, qualified_name, shorten_name};
pub use ledger::{Ledger, LedgerError};

use std::collections::{BTreeMap, BTreeSet};

/// One SLX to name.
#[derive(Debug, Clone)]
pub struct SlxCandidate {
    /// Stable identity: CodeCollection, codebundle, SLX definition and qualifier values.
    pub key: String,
    /// The short base name after the load-time de-duplication ([`dedupe_short_bases`]).
    pub short_base: String,
    pub qualifier_values: Vec<String>,
}

/// The name given to a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlxName {
    /// `<workspace>--<qualified>`: `metadata.name`.
    pub full: String,
    /// The qualified part: the directory under `slxs/`.
    pub directory: String,
}

/// Something about naming the user should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameEvent {
    /// Several SLXs had the same name and were numbered (upstream behaviour).
    Collision { name: String, count: usize },
    /// The ledger kept an SLX's earlier name; the algorithm now gives another.
    Kept { kept: String, computed: String },
    /// A new SLX's name belongs to another SLX in the ledger; it was numbered instead.
    Taken { computed: String, given: String },
    /// No name fits the mode's length limit; the SLX is skipped.
    TooLong(NameTooLong),
}

/// Appends `1..n` to every short base name that occurs more than once, in order (upstream's
/// load-time de-duplication across all loaded codebundles).
pub fn dedupe_short_bases(bases: &mut [String]) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for b in bases.iter() {
        *counts.entry(b.clone()).or_default() += 1;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for b in bases.iter_mut() {
        if counts[b.as_str()] > 1 {
            let n = seen.entry(b.clone()).or_default();
            *n += 1;
            b.push_str(&n.to_string());
        }
    }
}

/// Names every candidate the way upstream would, in order: equal qualified names are numbered
/// `1..n` on the short base, then names that only became equal after sanitizing likewise.
pub fn upstream_names(
    workspace: &str,
    candidates: &[SlxCandidate],
    mode: NameMode,
) -> Vec<Result<SlxName, NameTooLong>> {
    let max_q = mode.max_qualified_length(workspace);
    let name_with = |c: &SlxCandidate, base: &str| {
        let q = qualified_name(base, &c.qualifier_values, max_q, mode);
        full_name(workspace, &q, mode).map(|(full, directory)| SlxName { full, directory })
    };
    let first: Vec<String> = candidates
        .iter()
        .map(|c| qualified_name(&c.short_base, &c.qualifier_values, max_q, mode))
        .collect();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, q) in first.iter().enumerate() {
        groups.entry(q.as_str()).or_default().push(i);
    }
    let mut names: Vec<Option<Result<SlxName, NameTooLong>>> = vec![None; candidates.len()];
    for members in groups.values() {
        if members.len() == 1 {
            let i = members[0];
            names[i] = Some(
                full_name(workspace, &first[i], mode)
                    .map(|(full, directory)| SlxName { full, directory }),
            );
        } else {
            for (n, &i) in members.iter().enumerate() {
                let base = format!("{}{}", candidates[i].short_base, n + 1);
                names[i] = Some(name_with(&candidates[i], &base));
            }
        }
    }
    let mut by_full: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(Ok(n)) = n {
            by_full.entry(n.full.clone()).or_default().push(i);
        }
    }
    for members in by_full.values().filter(|m| m.len() > 1) {
        for (n, &i) in members.iter().enumerate() {
            let base = format!("{}{}", candidates[i].short_base, n + 1);
            names[i] = Some(name_with(&candidates[i], &base));
        }
    }
    names
        .into_iter()
        .map(|n| n.expect("every candidate named"))
        .collect()
}

/// Names the candidates, keeping every name the ledger already holds, and records new names in
/// the ledger. Returns a name per candidate (`None` when no name fits) and what happened.
pub fn assign(
    workspace: &str,
    candidates: &[SlxCandidate],
    mode: NameMode,
    ledger: &mut Ledger,
) -> (Vec<Option<SlxName>>, Vec<NameEvent>) {
    let computed = upstream_names(workspace, candidates, mode);
    let mut events = Vec::new();
    let mut collisions: BTreeMap<String, usize> = BTreeMap::new();
    for c in candidates.iter() {
        let q = qualified_name(
            &c.short_base,
            &c.qualifier_values,
            mode.max_qualified_length(workspace),
            mode,
        );
        *collisions.entry(q).or_default() += 1;
    }
    for (name, count) in collisions.into_iter().filter(|(_, n)| *n > 1) {
        events.push(NameEvent::Collision {
            name: format!("{workspace}--{name}"),
            count,
        });
    }

    // Names taken this run or recorded for another SLX.
    let mut taken: BTreeSet<String> = ledger.names().map(str::to_string).collect();
    let mut result: Vec<Option<SlxName>> = vec![None; candidates.len()];
    // SLXs known to the ledger first, so that a new SLX can never take their name.
    for (i, c) in candidates.iter().enumerate() {
        if let Some(known) = ledger.get(&c.key) {
            if let Ok(now) = &computed[i]
                && now.full != known.full
            {
                events.push(NameEvent::Kept {
                    kept: known.full.clone(),
                    computed: now.full.clone(),
                });
            }
            result[i] = Some(known.clone());
        }
    }
    for (i, c) in candidates.iter().enumerate() {
        if result[i].is_some() {
            continue;
        }
        let name = match &computed[i] {
            Ok(n) => n.clone(),
            Err(e) => {
                events.push(NameEvent::TooLong(e.clone()));
                continue;
            }
        };
        let name = if taken.contains(&name.full) {
            match next_free(workspace, c, mode, &taken) {
                Some(given) => {
                    events.push(NameEvent::Taken {
                        computed: name.full.clone(),
                        given: given.full.clone(),
                    });
                    given
                }
                None => continue,
            }
        } else {
            name
        };
        taken.insert(name.full.clone());
        ledger.record(&c.key, name.clone());
        result[i] = Some(name);
    }
    (result, events)
}

/// The first `<base><n>` name (n = 2, 3, ...) nobody holds.
fn next_free(
    workspace: &str,
    c: &SlxCandidate,
    mode: NameMode,
    taken: &BTreeSet<String>,
) -> Option<SlxName> {
    let max_q = mode.max_qualified_length(workspace);
    (2..10_000).find_map(|n| {
        let q = qualified_name(
            &format!("{}{n}", c.short_base),
            &c.qualifier_values,
            max_q,
            mode,
        );
        let (full, directory) = full_name(workspace, &q, mode).ok()?;
        (!taken.contains(&full)).then_some(SlxName { full, directory })
    })
}

#[cfg(test)]
mod tests;
