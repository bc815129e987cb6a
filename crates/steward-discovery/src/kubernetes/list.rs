//! Reading one cluster: paginated lists, single gets, and a kind across the cluster or, when
//! that is refused, namespace by namespace.

use super::index::{Limits, Progress};
use super::kinds::Kind;
use crate::resource::Resource;
use futures::StreamExt;
use kube::api::{GetParams, ListParams};
use kube::core::Request;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Issues the API calls of one context, at most `limits.lists` at a time whatever the nesting
/// (kinds in parallel, each possibly namespace by namespace), and counts them.
pub(super) struct Lister<'a> {
    client: &'a kube::Client,
    context: &'a str,
    progress: &'a dyn Progress,
    limits: Limits,
    in_flight: Semaphore,
    calls: AtomicUsize,
}

/// What listing one kind gave.
pub(super) struct Listing {
    /// The listed objects the caller's conversion kept, in listing order.
    pub objects: Vec<Resource>,
    /// Why some or all objects are missing (the rest are in `objects`).
    pub failure: Option<String>,
}

/// How many times a paginated list starts again after its revision was compacted.
const MAX_LIST_RESTARTS: usize = 3;

/// The objects a conversion kept, and how many were listed.
type Listed<T> = (Vec<T>, usize);

/// Turns a listed object into a resource, or drops it (`None`).
pub(super) type Convert<'c> = &'c (dyn Fn(Value) -> Option<Resource> + Sync);

impl<'a> Lister<'a> {
    pub fn new(
        client: &'a kube::Client,
        context: &'a str,
        progress: &'a dyn Progress,
        limits: Limits,
    ) -> Self {
        Lister {
            client,
            context,
            progress,
            limits,
            in_flight: Semaphore::new(limits.lists.max(1)),
            calls: AtomicUsize::new(0),
        }
    }

    /// API calls made so far (each page counts, refused calls too).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Waits for a free slot; the call is counted once it has one.
    async fn slot(&self) -> SemaphorePermit<'_> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.calls.fetch_add(1, Ordering::Relaxed);
        permit
    }

    fn collection(api_version: &str, plural: &str, namespace: Option<&str>) -> Request {
        let base = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        match namespace {
            Some(ns) => Request::new(format!("{base}/namespaces/{ns}/{plural}")),
            None => Request::new(format!("{base}/{plural}")),
        }
    }

    /// One object of a collection (cluster-scoped when `namespace` is `None`).
    pub async fn get(
        &self,
        api_version: &str,
        plural: &str,
        name: &str,
    ) -> Result<Value, kube::Error> {
        let request = Self::collection(api_version, plural, None)
            .get(name, &GetParams::default())
            .map_err(kube::Error::BuildRequest)?;
        let _slot = self.slot().await;
        self.client.request(request).await
    }

    /// Every page of a collection, `limits.page_size` objects at a time.
    pub async fn list_all(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, kube::Error> {
        self.list_converted(api_version, plural, namespace, &Some)
            .await
            .map(|(items, _)| items)
    }

    /// [`Self::list_all`], each object converted as its page arrives, so that only one page
    /// is held as JSON values at a time; also returns how many objects were listed.
    async fn list_converted<T>(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        convert: &(dyn Fn(Value) -> Option<T> + Sync),
    ) -> Result<Listed<T>, kube::Error> {
        let request = Self::collection(api_version, plural, namespace);
        let mut items = Vec::new();
        let mut listed = 0;
        let mut token: Option<String> = None;
        let mut restarts = 0;
        loop {
            let mut params = ListParams::default().limit(self.limits.page_size.max(1));
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let http = request.list(&params).map_err(kube::Error::BuildRequest)?;
            let answer = {
                let _slot = self.slot().await;
                self.client.request::<Value>(http).await
            };
            let mut page = match answer {
                // The cluster compacted the revision the list started at (etcd does every
                // five minutes): the rest cannot be read consistently, so the kind is listed
                // again from the start, which gives one consistent view of it.
                Err(e) if token.is_some() && status_code(&e) == Some(410) => {
                    if restarts == MAX_LIST_RESTARTS {
                        return Err(e);
                    }
                    restarts += 1;
                    tracing::info!(
                        context = self.context,
                        plural,
                        namespace,
                        "Listing again from the start: the cluster no longer keeps the revision \
                         the paginated list began at."
                    );
                    (items, listed, token) = (Vec::new(), 0, None);
                    continue;
                }
                other => other?,
            };
            if let Some(Value::Array(list)) = page.get_mut("items").map(Value::take) {
                listed += list.len();
                items.extend(list.into_iter().filter_map(convert));
            }
            token = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok((items, listed));
            }
        }
    }

    /// A kind across the cluster, or in each of `namespaces` when the cluster-wide list is
    /// forbidden (a user with RoleBindings in some namespaces only). A namespace that refuses
    /// too loses only its own objects.
    /// Objects are converted with `convert` page by page.
    pub async fn list_kind(
        &self,
        kind: &Kind,
        namespaces: &[String],
        convert: Convert<'_>,
    ) -> Listing {
        let api_version = kind.api_version();
        let (listing, listed) = match self
            .list_converted(&api_version, &kind.plural, None, convert)
            .await
        {
            Ok((objects, listed)) => (
                Listing {
                    objects,
                    failure: None,
                },
                listed,
            ),
            Err(e) if !kind.namespaced || status_code(&e) != Some(403) => (
                Listing {
                    objects: Vec::new(),
                    failure: Some(describe(&e)),
                },
                0,
            ),
            Err(_) => {
                self.list_in_each(kind, &api_version, namespaces, convert)
                    .await
            }
        };
        self.progress.listed(self.context, &kind.plural, listed);
        listing
    }

    async fn list_in_each(
        &self,
        kind: &Kind,
        api_version: &str,
        namespaces: &[String],
        convert: Convert<'_>,
    ) -> (Listing, usize) {
        let results: Vec<(&String, Result<Listed<Resource>, kube::Error>)> =
            futures::stream::iter(namespaces)
                .map(|ns| async move {
                    let result = self
                        .list_converted(api_version, &kind.plural, Some(ns), convert)
                        .await;
                    (ns, result)
                })
                .buffered(self.limits.lists.max(1))
                .collect()
                .await;
        let mut objects = Vec::new();
        let mut listed = 0;
        let mut refused = Vec::new();
        let mut first_cause = None;
        for (ns, result) in results {
            match result {
                Ok((items, count)) => {
                    objects.extend(items);
                    listed += count;
                }
                Err(e) => {
                    refused.push(ns.as_str());
                    first_cause.get_or_insert_with(|| describe(&e));
                }
            }
        }
        let failure = first_cause.map(|cause| {
            format!(
                "not listed in namespace{} {} (the cluster-wide list is refused as well): {cause}",
                if refused.len() == 1 { "" } else { "s" },
                refused.join(", ")
            )
        });
        (Listing { objects, failure }, listed)
    }
}

/// The HTTP status of an API error (`None` for connection and other errors).
pub(super) fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// A kube error in words a user can act on.
pub(super) fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => match status.code {
            401 => format!(
                "401 Unauthorized: the credentials were refused or have expired ({})",
                status.message
            ),
            403 => format!("403 Forbidden: {}", status.message),
            410 => format!(
                "410 Expired: the cluster compacted its history before a paginated list \
                 ended, {} times in a row ({}); run discovery again when the API server is \
                 less loaded",
                MAX_LIST_RESTARTS + 1,
                status.message
            ),
            code => format!("{code} {}: {}", status.reason, status.message),
        },
        other => {
            // Transport errors repeat their cause at each layer; keep each part once.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                let part = s.to_string();
                if !text.contains(&part) {
                    text.push_str(": ");
                    text.push_str(&part);
                }
                source = s.source();
            }
            text
        }
    }
}
