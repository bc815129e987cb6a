//! Which SLX a metric pushed over OTLP belongs to. Tasks push `RW_SLI_METRIC_NAME`
//! (`<slx>__sli`), optionally followed by `__<sub-metric>`, with a `workspace` attribute.

use crate::error::ApiResult;
use crate::store::{SeriesPoint, Store};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};
use steward_model::metrics::MetricPoint;
use steward_model::names::sli_metric_name;

/// How long the index is trusted before it is rebuilt (imports rebuild it at once; this bounds
/// how long another platform replica's import takes to be seen).
const REFRESH: Duration = Duration::from_secs(10);

/// Why a point was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unmapped {
    /// No SLX has a metric of that name.
    UnknownMetric,
    /// Several workspaces have one and the point names none of them.
    Ambiguous,
}

impl Unmapped {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Unmapped::UnknownMetric => "unknown_metric",
            Unmapped::Ambiguous => "ambiguous_workspace",
        }
    }
}

/// Metric base name → the (workspace, SLX) pairs it may belong to.
type Entries = HashMap<String, Vec<(String, String)>>;

/// The index and when it was built (`None`: stale).
pub(crate) struct MetricIndex {
    entries: RwLock<(Entries, Option<Instant>)>,
}

impl MetricIndex {
    pub(crate) fn new() -> Self {
        MetricIndex {
            entries: RwLock::new((HashMap::new(), None)),
        }
    }

    /// Forgets the index; the next lookup rebuilds it.
    pub(crate) fn invalidate(&self) {
        self.entries.write().expect("poisoned").1 = None;
    }

    async fn refresh(&self, store: &Store) -> ApiResult<()> {
        let fresh = self
            .entries
            .read()
            .expect("poisoned")
            .1
            .is_some_and(|at| at.elapsed() < REFRESH);
        if fresh {
            return Ok(());
        }
        let mut map = Entries::new();
        for workspace in store.workspaces().await? {
            for slx in store.slx_views(&workspace.name).await? {
                map.entry(sli_metric_name(&slx.name))
                    .or_default()
                    .push((workspace.name.clone(), slx.name));
            }
        }
        *self.entries.write().expect("poisoned") = (map, Some(Instant::now()));
        Ok(())
    }

    /// Maps decoded OTLP points to series points; the others come back with the reason.
    pub(crate) async fn map(
        &self,
        store: &Store,
        points: Vec<MetricPoint>,
    ) -> ApiResult<(Vec<SeriesPoint>, Vec<(MetricPoint, Unmapped)>)> {
        self.refresh(store).await?;
        let entries = self.entries.read().expect("poisoned");
        let mut mapped = Vec::with_capacity(points.len());
        let mut unmapped = Vec::new();
        for point in points {
            match lookup(&entries.0, &point) {
                Ok((workspace, slx, metric)) => mapped.push(SeriesPoint {
                    workspace: workspace.to_string(),
                    slx: slx.to_string(),
                    metric,
                    value: point.value,
                    time: point.time.timestamp_millis(),
                    run: None,
                }),
                Err(why) => unmapped.push((point, why)),
            }
        }
        Ok((mapped, unmapped))
    }
}

fn lookup<'a>(
    entries: &'a Entries,
    point: &MetricPoint,
) -> Result<(&'a str, &'a str, String), Unmapped> {
    // `<slx>__sli` or `<slx>__sli__<sub>`: the base ends at the first "__sli" boundary.
    let (base, sub) = match point.name.find("__sli") {
        Some(at) => {
            let end = at + "__sli".len();
            let rest = &point.name[end..];
            match rest.strip_prefix("__") {
                Some(sub) => (&point.name[..end], sub.to_string()),
                None if rest.is_empty() => (&point.name[..end], String::new()),
                None => return Err(Unmapped::UnknownMetric),
            }
        }
        None => return Err(Unmapped::UnknownMetric),
    };
    let candidates = entries.get(base).ok_or(Unmapped::UnknownMetric)?;
    let chosen = match point.attributes.get("workspace") {
        Some(ws) => candidates
            .iter()
            .find(|(w, _)| w == ws)
            .ok_or(Unmapped::UnknownMetric)?,
        None if candidates.len() == 1 => &candidates[0],
        None => return Err(Unmapped::Ambiguous),
    };
    Ok((&chosen.0, &chosen.1, sub))
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_model::metrics::MetricKind;

    fn point(name: &str, workspace: Option<&str>) -> MetricPoint {
        MetricPoint {
            name: name.into(),
            value: 1.0,
            kind: MetricKind::Gauge,
            count: None,
            attributes: workspace
                .map(|w| [("workspace".to_string(), w.to_string())].into())
                .unwrap_or_default(),
            time: chrono::Utc::now(),
        }
    }

    #[test]
    fn names_and_workspaces_pick_the_series() {
        let mut entries = HashMap::new();
        entries.insert(
            "web__sli".to_string(),
            vec![
                ("a".to_string(), "web".to_string()),
                ("b".to_string(), "web".to_string()),
            ],
        );
        entries.insert(
            "db__sli".to_string(),
            vec![("a".to_string(), "db".to_string())],
        );
        assert_eq!(
            lookup(&entries, &point("web__sli", Some("b"))).unwrap(),
            ("b", "web", String::new())
        );
        assert_eq!(
            lookup(&entries, &point("web__sli__latency", Some("a"))).unwrap(),
            ("a", "web", "latency".into())
        );
        assert_eq!(lookup(&entries, &point("db__sli", None)).unwrap().1, "db");
        assert_eq!(
            lookup(&entries, &point("web__sli", None)).unwrap_err(),
            Unmapped::Ambiguous
        );
        assert_eq!(
            lookup(&entries, &point("web__slix", Some("a"))).unwrap_err(),
            Unmapped::UnknownMetric
        );
        assert_eq!(
            lookup(&entries, &point("cpu", Some("a"))).unwrap_err(),
            Unmapped::UnknownMetric
        );
        assert_eq!(
            lookup(&entries, &point("web__sli", Some("c"))).unwrap_err(),
            Unmapped::UnknownMetric
        );
    }
}
