//! The garbage collector: dependents whose owners are all gone are deleted (in the
//! background), an owner being deleted with the `foregroundDeletion` finalizer has its
//! dependents deleted first, and one with the `orphan` finalizer has its owner references
//! removed from them; then the finalizer is removed, which ends the owner's deletion.

use super::super::deletion::owned_by;
use super::super::objects::text;
use super::super::store::Store;
use super::{delete, is_deleting, write};
use serde_json::Value;
use std::collections::HashSet;

pub(super) fn sync(store: &mut Store) {
    let uids: HashSet<String> = store
        .all_objects()
        .map(|(_, _, o)| text(o, "/metadata/uid").to_string())
        .collect();
    let mut orphans = Vec::new();
    let mut finalizing = Vec::new();
    for (group, plural, object) in store.all_objects() {
        let refs = object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array);
        if let Some(refs) = refs.filter(|r| !r.is_empty())
            && !is_deleting(object)
            && refs.iter().all(|r| !uids.contains(text(r, "/uid")))
        {
            orphans.push((group.to_string(), plural.to_string(), object.clone()));
        }
        let finalizers = object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array);
        if is_deleting(object)
            && finalizers
                .is_some_and(|f| f.iter().any(|f| f == "foregroundDeletion" || f == "orphan"))
        {
            finalizing.push((group.to_string(), plural.to_string(), object.clone()));
        }
    }
    for (group, plural, object) in orphans {
        delete(store, &group, &plural, &object, "Background");
    }
    for (group, plural, owner) in finalizing {
        let uid = text(&owner, "/metadata/uid").to_string();
        let dependents: Vec<(String, String, Value)> = store
            .all_objects()
            .filter(|(_, _, o)| owned_by(o, &uid))
            .map(|(g, p, o)| (g.to_string(), p.to_string(), o.clone()))
            .collect();
        let has = |f: &str| {
            owner
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|list| list.iter().any(|x| x == f))
        };
        if has("orphan") {
            for (g, p, mut dependent) in dependents {
                if let Some(refs) = dependent
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| text(r, "/uid") != uid);
                }
                write(store, &g, &p, dependent);
            }
            remove_finalizer(store, &group, &plural, "orphan", &owner);
        } else if dependents.is_empty() {
            remove_finalizer(store, &group, &plural, "foregroundDeletion", &owner);
        } else {
            for (g, p, dependent) in dependents.iter().filter(|(_, _, d)| !is_deleting(d)) {
                delete(store, g, p, dependent, "Background");
            }
        }
    }
}

fn remove_finalizer(store: &mut Store, group: &str, plural: &str, finalizer: &str, owner: &Value) {
    let Some(current) = store
        .get(
            group,
            plural,
            text(owner, "/metadata/namespace"),
            text(owner, "/metadata/name"),
        )
        .cloned()
    else {
        return;
    };
    let mut next = current;
    if let Some(list) = next
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    {
        list.retain(|f| f != finalizer);
    }
    write(store, group, plural, next);
}
