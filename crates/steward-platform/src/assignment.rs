//! Which runner of a location runs which SLI. Every online runner of the location takes a
//! share, chosen by rendezvous hashing on (SLI, runner): each SLI runs on exactly one runner,
//! shares stay put when runners come and go except for the SLIs of the runner that changed,
//! and every platform replica computes the same answer without coordination.

use crate::AppState;
use crate::error::ApiResult;
use crate::store::RunnerRecord;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use steward_model::wire::{DesiredState, SliAssignment};
use uuid::Uuid;

/// How long a location's list of online runners is reused. Runners count as online for a
/// whole lease, so a second more changes nothing that matters, and polls do not each read
/// every runner of the location.
const ONLINE_TTL: Duration = Duration::from_secs(1);

/// A location's online runners (sorted, each with whether it takes SLIs), and when they were
/// read.
type Online = (Instant, Arc<Vec<(Uuid, bool)>>);

/// What every poll needs, kept between polls: each location's SLI set (by version) and its
/// online runners.
#[derive(Default)]
pub(crate) struct Assignments {
    slis: Mutex<HashMap<String, Arc<DesiredState>>>,
    online: Mutex<HashMap<String, Online>>,
}

/// The SLIs `runner` should schedule now. The version covers exactly this runner's share, so
/// runners coming and going change it only for the runners whose share moved.
pub(crate) async fn desired_state_for(
    state: &AppState,
    runner: &RunnerRecord,
) -> ApiResult<DesiredState> {
    let location = location_slis(state, &runner.location).await?;
    let mine = share(state, runner, &location).await?;
    Ok(DesiredState {
        version: share_version(&location.version, &mine),
        location: location.location.clone(),
        slis: mine.into_iter().cloned().collect(),
    })
}

/// The version of [`desired_state_for`], without copying the share (every poll asks).
pub(crate) async fn version_for(state: &AppState, runner: &RunnerRecord) -> ApiResult<String> {
    let location = location_slis(state, &runner.location).await?;
    let mine = share(state, runner, &location).await?;
    Ok(share_version(&location.version, &mine))
}

/// The SLIs of `location` that `runner` owns.
async fn share<'a>(
    state: &AppState,
    runner: &RunnerRecord,
    location: &'a DesiredState,
) -> ApiResult<Vec<&'a SliAssignment>> {
    if location.slis.is_empty() {
        return Ok(Vec::new());
    }
    let online = online_runners(state, runner).await?;
    Ok(location
        .slis
        .iter()
        .filter(|sli| owner(sli, &online) == Some(runner.id))
        .collect())
}

/// The location's SLI set, parsed once per version.
async fn location_slis(state: &AppState, location: &str) -> ApiResult<Arc<DesiredState>> {
    let version = state.store.desired_state_version(location).await?;
    if let Some(known) = state
        .assignments
        .slis
        .lock()
        .expect("poisoned")
        .get(location)
        && known.version == version
    {
        return Ok(known.clone());
    }
    let desired = Arc::new(state.store.desired_state(location).await?);
    state
        .assignments
        .slis
        .lock()
        .expect("poisoned")
        .insert(location.to_string(), desired.clone());
    Ok(desired)
}

/// The online runners of the runner's location that share its SLIs, sorted: those that take
/// SLIs (a replica that is not its group's leader declines them), or all of them when none
/// does, so SLIs never go unscheduled. The runner asking counts as online; one not yet seen
/// counts as taking SLIs until its poll is read back (within [`ONLINE_TTL`]).
async fn online_runners(state: &AppState, runner: &RunnerRecord) -> ApiResult<Vec<Uuid>> {
    let cached = state
        .assignments
        .online
        .lock()
        .expect("poisoned")
        .get(&runner.location)
        .filter(|(at, _)| at.elapsed() < ONLINE_TTL)
        .map(|(_, online)| online.clone());
    let online = match cached {
        Some(online) => online,
        None => {
            let mut online = state
                .store
                .online_runners(&runner.location, state.config.lease_ttl.as_millis() as i64)
                .await?;
            online.sort();
            let online = Arc::new(online);
            state
                .assignments
                .online
                .lock()
                .expect("poisoned")
                .insert(runner.location.clone(), (Instant::now(), online.clone()));
            online
        }
    };
    Ok(sharing(&online, runner.id))
}

/// Who shares the SLIs among `online` (sorted), with `asking` online too.
fn sharing(online: &[(Uuid, bool)], asking: Uuid) -> Vec<Uuid> {
    let mut all: Vec<(Uuid, bool)> = online.to_vec();
    if let Err(at) = all.binary_search_by_key(&asking, |(id, _)| *id) {
        all.insert(at, (asking, true));
    }
    let takers: Vec<Uuid> = all
        .iter()
        .filter(|(_, takes)| *takes)
        .map(|(id, _)| *id)
        .collect();
    if takers.is_empty() {
        all.into_iter().map(|(id, _)| id).collect()
    } else {
        takers
    }
}

fn score(sli: &SliAssignment, runner: Uuid) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(sli.workspace.as_bytes());
    hash.update([0]);
    hash.update(sli.slx.as_bytes());
    hash.update([0]);
    hash.update(runner.as_bytes());
    hash.finalize().into()
}

/// The runner with the highest score for this SLI.
fn owner(sli: &SliAssignment, runners: &[Uuid]) -> Option<Uuid> {
    runners
        .iter()
        .copied()
        .max_by_key(|runner| score(sli, *runner))
}

fn share_version(location_version: &str, share: &[&SliAssignment]) -> String {
    let mut hash = Sha256::new();
    hash.update(location_version.as_bytes());
    for sli in share {
        hash.update(sli.workspace.as_bytes());
        hash.update([0]);
        hash.update(sli.slx.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_model::workspace::CodeBundleRef;

    fn sli(name: &str) -> SliAssignment {
        SliAssignment {
            workspace: "ws".into(),
            slx: name.into(),
            interval_seconds: 60,
            code_bundle: CodeBundleRef::default(),
            config: vec![],
            secrets: vec![],
            timeout_seconds: 60,
        }
    }

    #[test]
    fn every_sli_has_one_owner_and_only_a_leaving_runners_slis_move() {
        let slis: Vec<SliAssignment> = (0..200).map(|i| sli(&format!("slx-{i}"))).collect();
        let runners: Vec<Uuid> = (1..=4).map(Uuid::from_u128).collect();
        let before: Vec<Uuid> = slis.iter().map(|s| owner(s, &runners).unwrap()).collect();
        for runner in &runners {
            let share = before.iter().filter(|o| *o == runner).count();
            assert!(share > 20, "runner {runner} got only {share} of 200");
        }
        let fewer = &runners[..3];
        for (sli, old) in slis.iter().zip(&before) {
            let new = owner(sli, fewer).unwrap();
            if *old != runners[3] {
                assert_eq!(new, *old, "{} moved although its runner stayed", sli.slx);
            }
        }
    }

    #[test]
    fn runners_that_decline_slis_get_none_unless_all_decline() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        // b declines: only a and c (asking, not seen yet) share.
        assert_eq!(sharing(&[(a, true), (b, false)], c), vec![a, c]);
        // b asks: it still gets nothing.
        assert_eq!(sharing(&[(a, true), (b, false)], b), vec![a]);
        // Everyone declines (no leader yet): everyone shares rather than no one.
        assert_eq!(sharing(&[(a, false), (b, false)], a), vec![a, b]);
    }
}
