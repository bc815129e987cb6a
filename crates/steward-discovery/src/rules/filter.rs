//! The parts of a payload that some rules can read, so that matching parses only those.
//!
//! Predicates read a payload only along their paths (a list met on the way is searched element
//! by element with the same rest of the path) and, for the special properties, whole label,
//! annotation or tag maps. A [`PayloadFilter`] is the tree of those keys; parsing through it
//! skips everything else without allocating, and the predicates give the same answers on the
//! result as on the whole payload. Cross-resource predicates read other resources, which are
//! parsed whole.

use super::path::PropertyPath;
use super::predicate::{Predicate, Property};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A tree of payload keys; a node marked `whole` keeps everything below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadFilter {
    whole: bool,
    keys: BTreeMap<String, PayloadFilter>,
}

impl PayloadFilter {
    /// Adds what `predicate` reads of the resource it is evaluated on.
    pub fn add_predicate(&mut self, predicate: &Predicate) {
        match predicate {
            Predicate::Pattern(p) if p.resource_type.is_none() => {
                for property in &p.properties {
                    match property {
                        Property::Name => {}
                        // Which of these a special property reads depends on the platform;
                        // keeping all of them is cheap and always enough.
                        Property::Special(s) => {
                            for path in [
                                &["metadata", "labels"][..],
                                &["metadata", "annotations"],
                                &["tags"],
                                &[s.name],
                            ] {
                                self.add_keys(path.iter().copied());
                            }
                        }
                        Property::Path(path) => self.add_path(path),
                    }
                }
            }
            Predicate::Pattern(_) | Predicate::CustomVariable { .. } => {}
            Predicate::Exists { path, .. } => self.add_path(path),
            Predicate::And(children) | Predicate::Or(children) => {
                children.iter().for_each(|c| self.add_predicate(c));
            }
            Predicate::Not(child) => self.add_predicate(child),
        }
    }

    /// Adds everything at and below `path`.
    pub fn add_path(&mut self, path: &PropertyPath) {
        self.add_keys(path.keys().iter().map(String::as_str));
    }

    fn add_keys<'k>(&mut self, keys: impl Iterator<Item = &'k str>) {
        let mut node = self;
        for key in keys {
            if node.whole {
                return;
            }
            node = node.keys.entry(key.to_string()).or_default();
        }
        node.whole = true;
        node.keys.clear();
    }

    /// Parses the parts of `text` (a JSON document) this filter keeps.
    pub fn parse(&self, text: &str) -> Json {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        Filtered(self)
            .deserialize(&mut deserializer)
            .expect("a stored payload is valid JSON")
    }
}

struct Filtered<'f>(&'f PayloadFilter);

impl<'de> DeserializeSeed<'de> for Filtered<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        if self.0.whole {
            serde::Deserialize::deserialize(deserializer)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Filtered<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        // Paths search lists element by element with the same rest of the path.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Filtered(self.0))? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut kept = serde_json::Map::new();
        while let Some(Key(key)) = map.next_key()? {
            match self.0.keys.get(key.as_ref()) {
                Some(child) => {
                    let value = map.next_value_seed(Filtered(child))?;
                    kept.insert(key.into_owned(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Json::Object(kept))
    }
}

/// A map key, borrowed from the text when it has no escapes (most keys are skipped).
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(paths: &[&str]) -> PayloadFilter {
        let mut f = PayloadFilter::default();
        for p in paths {
            f.add_path(&PropertyPath::new(p));
        }
        f
    }

    #[test]
    fn only_the_keys_along_the_paths_are_kept() {
        let payload = json!({
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "main", "image": "web:1", "env": [{"name": "X"}]},
                {"name": "side", "image": "proxy:2"}
            ]}}},
            "status": {"replicas": 2}
        });
        let f = filter(&["metadata/labels", "spec/template/spec/containers/image"]);
        assert_eq!(
            f.parse(&payload.to_string()),
            json!({
                "metadata": {"labels": {"app": "web"}},
                "spec": {"template": {"spec": {"containers": [{"image": "web:1"}, {"image": "proxy:2"}]}}}
            })
        );
    }

    #[test]
    fn a_path_that_ends_keeps_everything_below_and_scalars_are_exact() {
        let payload = json!({"spec": {"tls": [{"hosts": ["a", null]}], "n": 1.5, "m": -3, "b": true}, "x": {"y/z": 1}});
        let f = filter(&["spec", "spec/tls/hosts", "x/y//z"]);
        assert_eq!(f.parse(&payload.to_string()), payload);
        // An empty filter keeps the shape of the root only.
        assert_eq!(
            PayloadFilter::default().parse(&payload.to_string()),
            json!({})
        );
        assert_eq!(
            PayloadFilter::default().parse("[1, \"a\"]"),
            json!([1, "a"])
        );
    }
}
