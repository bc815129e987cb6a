//! Who may do what: bearer tokens with a policy each (everything, nothing, 401, or rules),
//! errors injected on chosen paths, and a count of requests per (verb, resource).

use super::status::ApiError;
use std::collections::{BTreeMap, HashMap};

/// What requests made with one bearer token may do.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Everything, like a cluster administrator.
    AllowAll,
    /// `401 Unauthorized` for every request, as with expired or revoked credentials.
    Unauthorized,
    /// `403 Forbidden` for every request, discovery included.
    Forbidden,
    /// Everything except what the rules match (those get `403`).
    Deny(Vec<Rule>),
    /// Only what the rules match; `403` otherwise. Discovery (`/version`, `/api`, `/apis`...)
    /// stays open, as the `system:discovery` role grants it to every authenticated user.
    AllowOnly(Vec<Rule>),
}

impl Access {
    /// [`Access::Deny`] from `(verb, resource)` pairs, e.g. `&[("list", "namespaces")]`.
    pub fn deny(pairs: &[(&str, &str)]) -> Self {
        Access::Deny(pairs.iter().map(|&(v, r)| Rule::new(v, r)).collect())
    }

    /// [`Access::AllowOnly`] from `(verb, resource)` pairs.
    pub fn allow_only(pairs: &[(&str, &str)]) -> Self {
        Access::AllowOnly(pairs.iter().map(|&(v, r)| Rule::new(v, r)).collect())
    }
}

/// A verb on a resource, optionally in one namespace only.
///
/// Verbs are the API's: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
/// `deletecollection`, or `*`. A resource is a plural (`pods`), a plural with its group
/// (`projects.project.openshift.io`), a subresource (`pods/status`) or `*`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    verb: String,
    resource: String,
    namespace: Option<String>,
}

impl Rule {
    /// `verb` on `resource` in every namespace and at the cluster scope.
    pub fn new(verb: &str, resource: &str) -> Self {
        Rule {
            verb: verb.into(),
            resource: resource.into(),
            namespace: None,
        }
    }

    /// Narrows the rule to requests inside `namespace` (a cluster-wide list is then not
    /// covered, as with a RoleBinding).
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    fn matches(&self, request: &Attributes) -> bool {
        let resource = match &request.resource {
            Some(r) => r,
            None => return false,
        };
        (self.verb == "*" || self.verb == request.verb)
            && (self.resource == "*"
                || self.resource == *resource
                || self.resource == request.qualified_resource())
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| request.namespace.as_deref() == Some(ns.as_str()))
    }
}

/// What a request does, as authorization sees it.
#[derive(Debug, Clone)]
pub(crate) struct Attributes {
    pub verb: String,
    /// `None` for non-resource paths such as discovery.
    pub resource: Option<String>,
    pub group: String,
    pub namespace: Option<String>,
    pub path: String,
}

impl Attributes {
    fn qualified_resource(&self) -> String {
        let resource = self.resource.as_deref().unwrap_or_default();
        if self.group.is_empty() {
            resource.to_string()
        } else {
            match resource.split_once('/') {
                Some((plural, sub)) => format!("{plural}.{}/{sub}", self.group),
                None => format!("{resource}.{}", self.group),
            }
        }
    }

    /// The key requests are counted under: (verb, resource) or ("get", path) for discovery.
    pub fn count_key(&self) -> (String, String) {
        match &self.resource {
            Some(r) => (self.verb.clone(), r.clone()),
            None => (self.verb.clone(), self.path.clone()),
        }
    }
}

/// Tokens, injected faults and request counts, behind one lock in the server state.
#[derive(Debug)]
pub(crate) struct Gate {
    pub tokens: HashMap<String, Access>,
    /// Requests without an `Authorization` header.
    pub anonymous: Access,
    pub faults: Vec<(String, u16)>,
    /// How many more lists carrying a `continue` token are answered 410 Expired.
    pub expire_continues: usize,
    pub counts: BTreeMap<(String, String), usize>,
}

impl Gate {
    pub fn new(admin_token: &str) -> Self {
        Gate {
            tokens: HashMap::from([(admin_token.to_string(), Access::AllowAll)]),
            anonymous: Access::AllowAll,
            faults: Vec::new(),
            expire_continues: 0,
            counts: BTreeMap::new(),
        }
    }

    /// Counts the request, then decides: `Err` is the answer to send instead of serving it.
    pub fn admit(&mut self, token: Option<&str>, request: &Attributes) -> Result<(), ApiError> {
        *self.counts.entry(request.count_key()).or_default() += 1;
        let access = match token {
            None => &self.anonymous,
            Some(t) => match self.tokens.get(t) {
                Some(access) => access,
                None => return Err(unauthorized()),
            },
        };
        let allowed = match access {
            Access::AllowAll => true,
            Access::Unauthorized => return Err(unauthorized()),
            Access::Forbidden => false,
            Access::Deny(rules) => !rules.iter().any(|r| r.matches(request)),
            Access::AllowOnly(rules) => {
                request.resource.is_none() || rules.iter().any(|r| r.matches(request))
            }
        };
        if !allowed {
            return Err(forbidden(token.unwrap_or("system:anonymous"), request));
        }
        match self.faults.iter().find(|(path, _)| *path == request.path) {
            Some((path, code)) => Err(ApiError::from_code(
                *code,
                format!("injected failure for {path} (KubeApiServer::fail_path)"),
            )),
            None => Ok(()),
        }
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The real server's wording, which names the verb, resource, group and scope.
fn forbidden(user: &str, request: &Attributes) -> ApiError {
    let message = match &request.resource {
        Some(resource) => {
            let scope = match &request.namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_string(),
            };
            let (plural, sub) = resource.split_once('/').unwrap_or((resource, ""));
            let what = if request.group.is_empty() {
                plural.to_string()
            } else {
                format!("{plural}.{}", request.group)
            };
            let sub = if sub.is_empty() {
                String::new()
            } else {
                format!("/{sub}")
            };
            format!(
                "{what} is forbidden: User \"{user}\" cannot {} resource \"{plural}{sub}\" in API group \"{}\" {scope}",
                request.verb, request.group
            )
        }
        None => format!(
            "forbidden: User \"{user}\" cannot get path \"{}\"",
            request.path
        ),
    };
    ApiError::new(403, "Forbidden", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(verb: &str, resource: &str, group: &str, ns: Option<&str>) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: Some(resource.into()),
            group: group.into(),
            namespace: ns.map(Into::into),
            path: "/x".into(),
        }
    }

    #[test]
    fn rules_match_verb_resource_group_and_namespace() {
        let mut gate = Gate::new("admin");
        gate.tokens.insert(
            "restricted".into(),
            Access::AllowOnly(vec![
                Rule::new("list", "projects.project.openshift.io"),
                Rule::new("*", "pods").in_namespace("team"),
            ]),
        );
        let t = Some("restricted");
        assert!(
            gate.admit(
                t,
                &request("list", "projects", "project.openshift.io", None)
            )
            .is_ok()
        );
        assert!(
            gate.admit(t, &request("get", "pods", "", Some("team")))
                .is_ok()
        );
        let denied = gate
            .admit(t, &request("list", "pods", "", None))
            .unwrap_err();
        assert_eq!(denied.code, 403);
        assert!(
            denied
                .message
                .contains("cannot list resource \"pods\" in API group \"\" at the cluster scope"),
            "{}",
            denied.message
        );
        assert_eq!(
            gate.admit(Some("nobody"), &request("list", "pods", "", None))
                .unwrap_err()
                .code,
            401
        );
        assert_eq!(gate.counts[&("list".to_string(), "pods".to_string())], 2);
    }
}
