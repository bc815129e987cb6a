//! The document post-processing reads and rewrites: YAML values whose text borrows from the
//! rendered output where it can, and whose mappings are small ordered lists. Every rendered
//! item goes through it, so it avoids what serde_yaml's `Value` costs per node (an owned
//! string, a hash per key).

use serde_yaml::{Mapping, Number, Value};
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    Seq(Vec<Node<'a>>),
    Map(Map<'a>),
    Tagged(String, Box<Node<'a>>),
}

/// A mapping in document order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Map<'a> {
    entries: Vec<(Node<'a>, Node<'a>)>,
}

impl<'a> Map<'a> {
    pub fn with_capacity(n: usize) -> Self {
        Map {
            entries: Vec::with_capacity(n),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node<'a>> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Adds an entry; a key already present keeps its place and takes the new value (as a
    /// Python dict), and the old value is returned.
    pub fn insert(&mut self, key: Node<'a>, value: Node<'a>) -> Option<Node<'a>> {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &(Node<'a>, Node<'a>)> {
        self.entries.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a> Node<'a> {
    pub fn str(text: &'a str) -> Node<'a> {
        Node::Str(Cow::Borrowed(text))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Map(m) => m.get(key),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node<'a>> {
        match self {
            Node::Map(m) => m.get_mut(key),
            _ => None,
        }
    }

    pub fn is_scalar(&self) -> bool {
        match self {
            Node::Seq(_) | Node::Map(_) => false,
            Node::Tagged(_, inner) => inner.is_scalar(),
            _ => true,
        }
    }

    /// An owned copy of a serde_yaml value (from the full parser).
    pub fn from_value(value: Value) -> Node<'static> {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => Node::Number(n),
            Value::String(s) => Node::Str(Cow::Owned(s)),
            Value::Sequence(items) => Node::Seq(items.into_iter().map(Node::from_value).collect()),
            Value::Mapping(m) => {
                let mut map = Map::with_capacity(m.len());
                for (k, v) in m {
                    map.entries.push((Node::from_value(k), Node::from_value(v)));
                }
                Node::Map(map)
            }
            Value::Tagged(t) => {
                Node::Tagged(t.tag.to_string(), Box::new(Node::from_value(t.value)))
            }
        }
    }

    /// The same document as a serde_yaml value.
    pub fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.to_string()),
            Node::Seq(items) => Value::Sequence(items.iter().map(Node::to_value).collect()),
            Node::Map(m) => {
                let mut out = Mapping::with_capacity(m.entries.len());
                for (k, v) in &m.entries {
                    out.insert(k.to_value(), v.to_value());
                }
                Value::Mapping(out)
            }
            Node::Tagged(tag, inner) => Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
                tag: serde_yaml::value::Tag::new(tag.trim_start_matches('!')),
                value: inner.to_value(),
            })),
        }
    }
}
