//! Which runner of a location runs which SLI. Every online runner of the location takes a
//! share, chosen by rendezvous hashing on (SLI, runner): each SLI runs on exactly one runner,
//! shares stay put when runners come and go except for the SLIs of the runner that changed,
//! and every platform replica computes the same answer without coordination.

use crate::AppState;
use crate::error::ApiResult;
use crate::store::RunnerRecord;
use sha2::{Digest, Sha256};
use steward_model::wire::{DesiredState, SliAssignment};
use uuid::Uuid;

/// The SLIs `runner` should schedule now.
pub(crate) async fn desired_state_for(
    state: &AppState,
    runner: &RunnerRecord,
) -> ApiResult<DesiredState> {
    let mut desired = state.store.desired_state(&runner.location).await?;
    let online = online_runners(state, runner).await?;
    desired
        .slis
        .retain(|sli| owner(sli, &online) == Some(runner.id));
    desired.version = combined_version(&desired.version, &online, runner.id);
    Ok(desired)
}

/// The version of [`desired_state_for`], without building the state.
pub(crate) async fn version_for(state: &AppState, runner: &RunnerRecord) -> ApiResult<String> {
    let location_version = state.store.desired_state_version(&runner.location).await?;
    let online = online_runners(state, runner).await?;
    Ok(combined_version(&location_version, &online, runner.id))
}

/// Online runners of the runner's location, sorted, always including the runner asking.
async fn online_runners(state: &AppState, runner: &RunnerRecord) -> ApiResult<Vec<Uuid>> {
    let mut online = state
        .store
        .online_runners(&runner.location, state.config.lease_ttl.as_millis() as i64)
        .await?;
    if !online.contains(&runner.id) {
        online.push(runner.id);
    }
    online.sort();
    Ok(online)
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

fn combined_version(location_version: &str, online: &[Uuid], runner: Uuid) -> String {
    let mut hash = Sha256::new();
    hash.update(location_version.as_bytes());
    for id in online {
        hash.update(id.as_bytes());
    }
    hash.update(runner.as_bytes());
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
}
