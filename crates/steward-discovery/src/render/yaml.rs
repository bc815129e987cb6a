//! Parsing rendered YAML the way PyYAML's `safe_load` accepts it: a key repeated in one
//! mapping is not an error, its last value wins (in the first one's place, as in a Python
//! dict). Real templates repeat keys (two `additionalContext:` blocks), and runwhen-local
//! renders them; the repeats are returned so the caller can warn.

use super::dom::Node;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// Parses one YAML document; also returns the keys that were repeated, in order.
pub(crate) fn parse(text: &str) -> Result<(Node<'_>, Vec<String>), serde_yaml::Error> {
    let mut repeated = Vec::new();
    if let Some(node) = super::yaml_block::parse(text, &mut repeated) {
        #[cfg(debug_assertions)]
        if let Ok((full, full_repeated)) = parse_full(text) {
            let fast = node.to_value();
            assert!(
                full == fast && full_repeated == repeated,
                "the block reader and the full parser disagree on:\n{text}\nblock: {fast:?}\nfull: {full:?}"
            );
        } else {
            panic!("the block reader accepted YAML the full parser refuses:\n{text}");
        }
        return Ok((node, repeated));
    }
    let (value, repeated) = parse_full(text)?;
    Ok((Node::from_value(value), repeated))
}

/// The full parser (serde_yaml), for everything.
fn parse_full(text: &str) -> Result<(Value, Vec<String>), serde_yaml::Error> {
    let repeated = RefCell::new(Vec::new());
    let value = Seed(&repeated).deserialize(serde_yaml::Deserializer::from_str(text))?;
    Ok((value, repeated.into_inner()))
}

#[derive(Clone, Copy)]
struct Seed<'a>(&'a RefCell<Vec<String>>);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(Number::from(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        while let Some(key) = map.next_key_seed(self)? {
            let value = map.next_value_seed(self)?;
            // IndexMap keeps the first key's place and takes the new value, as a Python dict.
            if let Some(_previous) = out.insert(key.clone(), value) {
                let name = match &key {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                self.0.borrow_mut().push(name);
            }
        }
        Ok(Value::Mapping(out))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess;
        let (tag, variant): (String, A::Variant) = data.variant()?;
        let value = variant.newtype_variant_seed(self)?;
        Ok(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_keeps_its_place_and_takes_the_last_value() {
        let (v, repeated) =
            parse_full("a: 1\nb: {x: 1}\na: 2\nc: [!t 3, null, 1.5, true]\n").unwrap();
        assert_eq!(
            serde_yaml::to_string(&v).unwrap(),
            "a: 2\nb:\n  x: 1\nc:\n- !t 3\n- null\n- 1.5\n- true\n"
        );
        assert_eq!(repeated, ["a"]);
    }

    #[test]
    fn the_block_reader_agrees_with_the_full_parser() {
        let cases = [
            "a: 1\nb:\n  c: [x]\n",
            "a:\n- 1\n- x: y\n  z: 'q''s' # c\n- - n\n  - m\n-\n  k: v\nb: \"t\\u00e9\\n\"\n",
            "k: 0777\nl: 0x1F\nm: -0o7\nn: 1e3\no: .inf\np: ~\nq: yes\ns: +5\nu: 1_000\nv: -0\nw: 0.5e-3\n",
            "r: 12345678901234567890123\n",
            "t: -\n",
            "'quoted key': 1\n\"x\": 2\n3: three\ntrue: t\n",
            "a: b\n  c\n",
            "a: {x: 1}\n",
            "a: |\n  text\n",
            "a: 1\na: 2\n",
            "- a\n- b: c\n  d: e\n",
            "a:\n  - x\n  - y\nb: 1\n",
            "a: b: c\n",
            "x\n",
            "a: 'unclosed\n",
            "url: https://x.example.com/a#b\nc: d # comment\n# only comment\n",
        ];
        for text in cases {
            let mut repeated = Vec::new();
            let fast = crate::render::yaml_block::parse(text, &mut repeated);
            let full = parse_full(text);
            match (fast.map(|n| n.to_value()), full) {
                (Some(v), Ok((f, r))) => {
                    assert_eq!(v, f, "{text}");
                    assert_eq!(repeated, r, "{text}");
                }
                (Some(v), Err(e)) => {
                    panic!("block reader accepted {text:?} as {v:?}; full parser: {e}")
                }
                (None, _) => {}
            }
        }
        // The common shapes take the fast path.
        for text in [
            cases[1], cases[2], cases[5], cases[9], cases[10], cases[11], cases[15],
        ] {
            assert!(
                crate::render::yaml_block::parse(text, &mut Vec::new()).is_some(),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_keep_their_location() {
        let e = parse_full("a: [1\nb: 2\n").unwrap_err();
        assert!(e.location().is_some());
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
    }
}
