//! Objects by (group, resource, namespace, name) with etcd's bookkeeping: one global revision
//! counter stamped into `metadata.resourceVersion`, a bounded history of changes for watches to
//! replay, and the side effects the real control plane has on a write (CRDs register their
//! resource, a deleted namespace takes its objects along, finalizers hold a deletion).

use super::deletion::{self, Plan};
use super::objects::{
    check_namespace, check_type, crd_status, initial_status, meta, now, random_suffix, spec_of,
    stamp, text, valid_name,
};
use super::quota;
use super::resources::{Registry, ResourceType, from_crd, openshift_projects, split_api_version};
use super::status::ApiError;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One write, as watches see it.
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub event: EventType,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub object: Value,
    /// The object before a modification, so a filtered watch can tell "stopped matching".
    pub previous: Option<Value>,
}

/// (namespace, name); the namespace is empty for cluster-scoped objects.
pub(crate) type Key = (String, String);

pub(crate) struct Store {
    pub registry: Registry,
    objects: BTreeMap<(String, String), BTreeMap<Key, Value>>,
    revision: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// The newest revision no longer in the history: watching from before it gets 410.
    compacted: u64,
    changes: broadcast::Sender<Arc<Change>>,
    openshift: bool,
    /// The simulated node, when the kubelet and controllers run: deletes then honour
    /// propagation policies and grace periods, which need something to finish them.
    pub kubelet_node: Option<String>,
}

impl Store {
    pub fn new(openshift: bool, history_limit: usize) -> Self {
        let (changes, _) = broadcast::channel(4096);
        let mut store = Store {
            registry: Registry::builtin(),
            objects: BTreeMap::new(),
            revision: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            changes,
            openshift: false,
            kubelet_node: None,
        };
        if openshift {
            store.enable_openshift();
        }
        store.ensure_namespace("default");
        store
    }

    /// Serves `project.openshift.io/v1` projects, one mirroring each namespace.
    pub fn enable_openshift(&mut self) {
        if self.openshift {
            return;
        }
        self.openshift = true;
        self.registry.insert(openshift_projects());
        let namespaces: Vec<Value> = self
            .list("", "namespaces", None)
            .map(|(_, o)| o.clone())
            .collect();
        for ns in namespaces {
            self.mirror_project(&ns);
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// The recorded changes after revision `rv`, or 410 when some were already dropped.
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Arc<Change>>, ApiError> {
        if rv < self.compacted {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                self.compacted + 1
            )));
        }
        Ok(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// A continue token or list made at revision `rv` can still be honoured.
    pub fn check_not_compacted(&self, rv: u64) -> Result<(), ApiError> {
        if rv < self.compacted {
            return Err(ApiError::expired(super::list::TOO_OLD));
        }
        Ok(())
    }

    /// The objects of a resource in (namespace, name) order, in one namespace or all.
    pub fn list<'a>(
        &'a self,
        group: &str,
        plural: &str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.objects
            .get(&(group.to_string(), plural.to_string()))
            .into_iter()
            .flat_map(|objects| objects.iter())
            .filter(move |((ns, _), _)| namespace.is_none_or(|want| want == ns))
    }

    /// Every stored object with its (group, plural).
    pub fn all_objects(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.objects.iter().flat_map(|((group, plural), objects)| {
            objects
                .values()
                .map(move |o| (group.as_str(), plural.as_str(), o))
        })
    }

    pub fn get(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(group.to_string(), plural.to_string()))?
            .get(&(namespace.to_string(), name.to_string()))
    }

    fn require(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<&Value, ApiError> {
        self.get(&rt.group, &rt.plural, namespace, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    fn ensure_namespace(&mut self, name: &str) {
        if self.get("", "namespaces", "", name).is_none() {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            self.upsert(ns).expect("a bare namespace is always valid");
        }
    }

    /// Stores `object` at a new revision and tells the watches.
    fn put(&mut self, rt: &ResourceType, mut object: Value, previous: Option<Value>) -> Value {
        self.revision += 1;
        meta(&mut object).insert("resourceVersion".into(), self.revision.to_string().into());
        let namespace = text(&object, "/metadata/namespace").to_string();
        let name = text(&object, "/metadata/name").to_string();
        self.objects
            .entry((rt.group.clone(), rt.plural.clone()))
            .or_default()
            .insert((namespace.clone(), name), object.clone());
        let event = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(rt, event, namespace, object.clone(), previous);
        self.after_put(rt, &object);
        object
    }

    fn record(
        &mut self,
        rt: &ResourceType,
        event: EventType,
        namespace: String,
        object: Value,
        previous: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv: self.revision,
            event,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace,
            object,
            previous,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = self.changes.send(change);
    }

    /// Removes an object at a new revision (the deleted object carries that revision).
    fn remove(&mut self, rt: &ResourceType, namespace: &str, name: &str) -> Option<Value> {
        let key = (rt.group.clone(), rt.plural.clone());
        let mut object = self
            .objects
            .get_mut(&key)?
            .remove(&(namespace.to_string(), name.to_string()))?;
        self.revision += 1;
        meta(&mut object).insert("resourceVersion".into(), self.revision.to_string().into());
        self.record(
            rt,
            EventType::Deleted,
            namespace.to_string(),
            object.clone(),
            None,
        );
        self.after_remove(rt, &object);
        Some(object)
    }

    fn after_put(&mut self, rt: &ResourceType, object: &Value) {
        self.refresh_quotas(text(object, "/metadata/namespace"));
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                if let Ok(declared) = from_crd(object) {
                    self.registry.insert(declared);
                }
            }
            ("", "namespaces") if self.openshift => self.mirror_project(object),
            _ => {}
        }
    }

    fn after_remove(&mut self, rt: &ResourceType, object: &Value) {
        self.refresh_quotas(text(object, "/metadata/namespace"));
        let name = text(object, "/metadata/name").to_string();
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let Ok(declared) = from_crd(object) else {
                    return;
                };
                let keys: Vec<Key> = self
                    .list(&declared.group, &declared.plural, None)
                    .map(|(k, _)| k.clone())
                    .collect();
                for (ns, name) in keys {
                    self.remove(&declared, &ns, &name);
                }
                self.registry.remove(&declared.group, &declared.plural);
            }
            ("", "namespaces") => {
                let namespaced: Vec<ResourceType> = self
                    .objects
                    .keys()
                    .filter_map(|(g, p)| self.registry.resource(g, p).cloned())
                    .filter(|rt| rt.namespaced)
                    .collect();
                for inner in namespaced {
                    let keys: Vec<Key> = self
                        .list(&inner.group, &inner.plural, Some(&name))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for (ns, n) in keys {
                        self.remove(&inner, &ns, &n);
                    }
                }
                if self.openshift {
                    self.remove(&openshift_projects(), "", &name);
                }
            }
            _ => {}
        }
    }

    /// Keeps `status.used` of the namespace's quotas current (a write that changes nothing
    /// is skipped, which also ends the recursion through `put`).
    fn refresh_quotas(&mut self, namespace: &str) {
        if namespace.is_empty() {
            return;
        }
        let quotas: Vec<Value> = self
            .list("", "resourcequotas", Some(namespace))
            .map(|(_, q)| q.clone())
            .collect();
        let Some(rt) = self.registry.resource("", "resourcequotas").cloned() else {
            return;
        };
        for existing in quotas {
            let status = quota::quota_status(self, &existing);
            if existing.get("status") != Some(&status) {
                let mut next = existing.clone();
                next["status"] = status;
                self.put(&rt, next, Some(existing));
            }
        }
    }

    fn mirror_project(&mut self, namespace: &Value) {
        let mut project = json!({
            "apiVersion": "project.openshift.io/v1",
            "kind": "Project",
            "metadata": namespace["metadata"].clone(),
            "status": namespace.get("status").cloned().unwrap_or(json!({"phase": "Active"})),
        });
        meta(&mut project).remove("resourceVersion");
        let _ = self.upsert(project);
    }

    /// Creates an object through the API: names it, stamps uid, timestamps and generation, and
    /// resets what the server owns (status).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        mut body: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        check_type(rt, version, &body)?;
        let m = meta(&mut body);
        let mut name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            let prefix = m
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.plural,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
            name = format!("{prefix}{}", random_suffix());
        }
        if !valid_name(&name) {
            return Err(ApiError::invalid(
                &rt.group,
                &rt.plural,
                &name,
                format!(
                    "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case \
                 alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                ),
            ));
        }
        let namespace = check_namespace(rt, namespace, m.get("namespace").and_then(Value::as_str))?;
        if rt.namespaced && self.get("", "namespaces", "", &namespace).is_none() {
            return Err(ApiError::not_found("", "namespaces", &namespace));
        }
        if self.get(&rt.group, &rt.plural, &namespace, &name).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            meta(&mut body).insert("name".into(), name.clone().into());
            from_crd(&body).map_err(|why| ApiError::invalid(&rt.group, &rt.plural, &name, why))?;
        }
        stamp(rt, version, &mut body, &name, &namespace);
        if rt.namespaced {
            quota::admit(self, &rt.group, &rt.plural, &namespace, &mut body)?;
        }
        let m = meta(&mut body);
        m.remove("deletionTimestamp");
        m.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        m.insert("creationTimestamp".into(), now().into());
        m.insert("generation".into(), 1.into());
        match initial_status(rt, &body) {
            Some(status) => body["status"] = status,
            None => {
                body.as_object_mut()
                    .expect("checked above")
                    .remove("status");
            }
        }
        if dry_run {
            return Ok(body);
        }
        Ok(self.put(rt, body, None))
    }

    /// Replaces an object (or only its status), refusing a stale `resourceVersion`. A write that
    /// changes nothing keeps the revision and tells no watch, as the real server does.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        version: &str,
        (namespace, name): (&str, &str),
        mut body: Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let existing = self.require(rt, namespace, name)?.clone();
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        check_type(rt, version, &body)?;
        let given = text(&body, "/metadata/name");
        if !given.is_empty() && given != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        check_namespace(
            rt,
            Some(namespace),
            body.pointer("/metadata/namespace").and_then(Value::as_str),
        )?;
        let rv = text(&body, "/metadata/resourceVersion");
        if !rv.is_empty() && rv != text(&existing, "/metadata/resourceVersion") {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        let mut next = if status_only {
            let mut next = existing.clone();
            match body.get("status") {
                Some(status) => next["status"] = status.clone(),
                None => {
                    next.as_object_mut()
                        .expect("stored objects are objects")
                        .remove("status");
                }
            }
            next
        } else {
            if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
                meta(&mut body).insert("name".into(), name.into());
                from_crd(&body)
                    .map_err(|why| ApiError::invalid(&rt.group, &rt.plural, name, why))?;
            }
            if rt.status {
                match existing.get("status") {
                    Some(status) => body["status"] = status.clone(),
                    None => {
                        body.as_object_mut()
                            .expect("checked above")
                            .remove("status");
                    }
                }
            }
            let m = meta(&mut body);
            for owned in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match existing["metadata"].get(owned) {
                    Some(v) => m.insert(owned.into(), v.clone()),
                    None => m.remove(owned),
                };
            }
            if spec_of(&body) != spec_of(&existing) {
                let generation = existing
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                meta(&mut body).insert("generation".into(), (generation + 1).into());
            }
            body
        };
        stamp(rt, version, &mut next, name, namespace);
        meta(&mut next).insert(
            "resourceVersion".into(),
            existing["metadata"]["resourceVersion"].clone(),
        );
        if next == existing || dry_run {
            return Ok(next);
        }
        let has_finalizers = |o: &Value| {
            o.pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
        };
        // Only the removal of the last finalizer ends a deletion: a pod in its grace period
        // has no finalizers and still takes status updates.
        let finalized = next.pointer("/metadata/deletionTimestamp").is_some()
            && has_finalizers(&existing)
            && !has_finalizers(&next);
        if finalized {
            // The last finalizer is gone from an object being deleted: watches see only DELETED.
            let key = (namespace.to_string(), name.to_string());
            if let Some(objects) = self.objects.get_mut(&(rt.group.clone(), rt.plural.clone())) {
                objects.insert(key, next);
            }
            return Ok(self
                .remove(rt, namespace, name)
                .expect("the object was just stored"));
        }
        Ok(self.put(rt, next, Some(existing)))
    }

    /// Deletes an object, or marks it for deletion while finalizers remain.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let existing = self.require(rt, namespace, name)?.clone();
        for (field, pointer) in [
            ("uid", "/preconditions/uid"),
            ("resourceVersion", "/preconditions/resourceVersion"),
        ] {
            if let Some(want) = options.pointer(pointer).and_then(Value::as_str)
                && want != text(&existing, &format!("/metadata/{field}"))
            {
                return Err(ApiError::conflict(&rt.group, &rt.plural, name));
            }
        }
        if dry_run {
            return Ok(existing);
        }
        if let Some(node) = self.kubelet_node.clone() {
            match deletion::plan(self, rt, &existing, options, &node) {
                Plan::Remove => {}
                Plan::Keep => return Ok(existing),
                Plan::Mark(marked) => return Ok(self.put(rt, marked, Some(existing))),
            }
        }
        let has_finalizers = existing
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if existing.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(existing);
            }
            let mut marked = existing.clone();
            let m = meta(&mut marked);
            m.insert("deletionTimestamp".into(), now().into());
            m.insert("deletionGracePeriodSeconds".into(), 0.into());
            return Ok(self.put(rt, marked, Some(existing)));
        }
        Ok(self.remove(rt, namespace, name).expect("checked above"))
    }

    /// Ends a deletion the kubelet or the garbage collector was waiting for: removes the
    /// object, or leaves it to its remaining finalizers.
    pub fn finish_deletion(&mut self, rt: &ResourceType, namespace: &str, name: &str) {
        let Some(existing) = self.get(&rt.group, &rt.plural, namespace, name).cloned() else {
            return;
        };
        let finalizers = existing
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if finalizers {
            let mut next = existing.clone();
            meta(&mut next).insert("deletionGracePeriodSeconds".into(), 0.into());
            if next != existing {
                self.put(rt, next, Some(existing));
            }
        } else {
            self.remove(rt, namespace, name);
        }
    }

    /// Stores an object as given (a fixture, or a test playing a controller): keeps its uid,
    /// timestamps and status, creates its namespace when missing, replaces an existing one.
    pub fn upsert(&mut self, mut object: Value) -> Result<Value, String> {
        let api_version = text(&object, "/apiVersion").to_string();
        let kind = text(&object, "/kind").to_string();
        if api_version.is_empty() || kind.is_empty() {
            return Err("apiVersion and kind are required".into());
        }
        let Some((rt, version)) = self
            .registry
            .by_kind(&api_version, &kind)
            .map(|(rt, v)| (rt.clone(), v))
        else {
            let (group, _) = split_api_version(&api_version);
            return Err(format!(
                "{kind} in {api_version} is not served here; seed or create the CustomResourceDefinition of group {group:?} first{}",
                if group == "project.openshift.io" {
                    " (or enable OpenShift projects)"
                } else {
                    ""
                }
            ));
        };
        let name = text(&object, "/metadata/name").to_string();
        if name.is_empty() {
            return Err("metadata.name is required".into());
        }
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            from_crd(&object)?;
            if object.pointer("/status/conditions").is_none() {
                object["status"] = crd_status(&object);
            }
        } else if object.get("status").is_none()
            && let Some(status) = initial_status(&rt, &object)
        {
            object["status"] = status;
        }
        let namespace = if rt.namespaced {
            let ns = Some(text(&object, "/metadata/namespace"))
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
                .to_string();
            self.ensure_namespace(&ns);
            ns
        } else {
            String::new()
        };
        stamp(&rt, &version, &mut object, &name, &namespace);
        let existing = self.get(&rt.group, &rt.plural, &namespace, &name).cloned();
        let m = meta(&mut object);
        for (field, fresh) in [
            ("uid", uuid::Uuid::new_v4().to_string()),
            ("creationTimestamp", now()),
        ] {
            if m.get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                let kept = existing
                    .as_ref()
                    .and_then(|e| e["metadata"].get(field).cloned());
                m.insert(field.into(), kept.unwrap_or(fresh.into()));
            }
        }
        Ok(self.put(&rt, object, existing))
    }
}
