//! Which SLX a metric pushed over OTLP belongs to. Tasks push `RW_SLI_METRIC_NAME`
//! (`<slx>__sli`), optionally followed by `__<sub-metric>`, with a `workspace` attribute.

use crate::error::ApiResult;
use crate::store::{Batch, Sample, SeriesKey, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::{Duration, Instant};
use steward_model::metrics::MetricPoint;
use steward_model::names::sli_metric_name;
use steward_model::otlp::{ExportMetricsServiceRequest, for_each_point};

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

    /// Maps the points of an OTLP request to SLI series.
    pub(crate) async fn map_request(
        &self,
        store: &Store,
        request: &ExportMetricsServiceRequest,
    ) -> ApiResult<Mapped> {
        self.refresh(store).await?;
        let entries = self.entries.read().expect("poisoned");
        let mut mapper = Mapper::new(&entries.0);
        mapper.skipped = for_each_point(request, |p| {
            let workspace = p.attribute("workspace");
            mapper.add(
                p.name,
                workspace.as_deref(),
                p.value,
                p.time().timestamp_millis(),
            );
        });
        Ok(mapper.done())
    }

    /// Maps points a runner relayed to SLI series.
    pub(crate) async fn map_points(
        &self,
        store: &Store,
        points: &[MetricPoint],
    ) -> ApiResult<Mapped> {
        self.refresh(store).await?;
        let entries = self.entries.read().expect("poisoned");
        let mut mapper = Mapper::new(&entries.0);
        for p in points {
            let workspace = p.attributes.get("workspace").map(String::as_str);
            mapper.add(&p.name, workspace, p.value, p.time.timestamp_millis());
        }
        Ok(mapper.done())
    }
}

/// Points mapped to series, and an account of the others.
#[derive(Debug, Default)]
pub(crate) struct Mapped {
    /// What is to be stored.
    pub(crate) batch: Batch,
    /// Points with no SLX, by reason.
    pub(crate) unmapped: BTreeMap<&'static str, usize>,
    /// The first unmapped metric name and why, for the response message.
    pub(crate) first_unmapped: Option<(String, Unmapped)>,
    /// Summary and exponential-histogram points, which have no single value.
    pub(crate) skipped: usize,
}

impl Mapped {
    /// Points not stored, for whatever reason.
    pub(crate) fn rejected(&self) -> usize {
        self.unmapped.values().sum::<usize>() + self.skipped
    }
}

/// Builds a [`Mapped`]; consecutive points of one metric (the usual OTLP layout) share one
/// name lookup and one series key.
struct Mapper<'e> {
    entries: &'e Entries,
    index: HashMap<SeriesKey, u32>,
    last: Option<(String, Option<String>, Result<u32, Unmapped>)>,
    out: Mapped,
    skipped: usize,
}

impl<'e> Mapper<'e> {
    fn new(entries: &'e Entries) -> Self {
        Mapper {
            entries,
            index: HashMap::new(),
            last: None,
            out: Mapped::default(),
            skipped: 0,
        }
    }

    fn add(&mut self, name: &str, workspace: Option<&str>, value: f64, time: i64) {
        let cached = self
            .last
            .as_ref()
            .filter(|(n, w, _)| n == name && w.as_deref() == workspace)
            .map(|(_, _, key)| *key);
        let key = match cached {
            Some(key) => key,
            None => {
                let key = lookup(self.entries, name, workspace).map(|(workspace, slx, metric)| {
                    let key = SeriesKey {
                        workspace: workspace.into(),
                        slx: slx.into(),
                        metric,
                    };
                    self.out.batch.key_index(key, &mut self.index)
                });
                self.last = Some((name.to_string(), workspace.map(str::to_string), key));
                key
            }
        };
        match key {
            Ok(key) => self.out.batch.samples.push(Sample {
                key,
                time,
                value,
                run: None,
            }),
            Err(why) => {
                *self.out.unmapped.entry(why.label()).or_default() += 1;
                self.out
                    .first_unmapped
                    .get_or_insert_with(|| (name.to_string(), why));
            }
        }
    }

    fn done(mut self) -> Mapped {
        self.out.skipped = self.skipped;
        self.out
    }
}

fn lookup<'a>(
    entries: &'a Entries,
    name: &str,
    workspace: Option<&str>,
) -> Result<(&'a str, &'a str, String), Unmapped> {
    // `<slx>__sli` or `<slx>__sli__<sub>`: the base ends at the first "__sli" boundary.
    let (base, sub) = match name.find("__sli") {
        Some(at) => {
            let end = at + "__sli".len();
            let rest = &name[end..];
            match rest.strip_prefix("__") {
                Some(sub) => (&name[..end], sub.to_string()),
                None if rest.is_empty() => (&name[..end], String::new()),
                None => return Err(Unmapped::UnknownMetric),
            }
        }
        None => return Err(Unmapped::UnknownMetric),
    };
    let candidates = entries.get(base).ok_or(Unmapped::UnknownMetric)?;
    let chosen = match workspace {
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

    fn point<'a>(name: &'a str, workspace: Option<&'a str>) -> (&'a str, Option<&'a str>) {
        (name, workspace)
    }

    fn lookup<'a>(
        entries: &'a Entries,
        (name, workspace): (&str, Option<&str>),
    ) -> Result<(&'a str, &'a str, String), Unmapped> {
        super::lookup(entries, name, workspace)
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
            lookup(&entries, point("web__sli", Some("b"))).unwrap(),
            ("b", "web", String::new())
        );
        assert_eq!(
            lookup(&entries, point("web__sli__latency", Some("a"))).unwrap(),
            ("a", "web", "latency".into())
        );
        assert_eq!(lookup(&entries, point("db__sli", None)).unwrap().1, "db");
        assert_eq!(
            lookup(&entries, point("web__sli", None)).unwrap_err(),
            Unmapped::Ambiguous
        );
        assert_eq!(
            lookup(&entries, point("web__slix", Some("a"))).unwrap_err(),
            Unmapped::UnknownMetric
        );
        assert_eq!(
            lookup(&entries, point("cpu", Some("a"))).unwrap_err(),
            Unmapped::UnknownMetric
        );
        assert_eq!(
            lookup(&entries, point("web__sli", Some("c"))).unwrap_err(),
            Unmapped::UnknownMetric
        );
    }
}
