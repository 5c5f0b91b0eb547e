//! The typed, borrowing view of one Tetragon JSON export line: only the fields the agent uses.
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::scalars::{FlexI64, FlexU64, Str};
use super::scan_cache::PodMemo;

/// One export line. `kprobe` is set when the line carries `process_kprobe`; `other_kind` when
/// it carries another event object (`process_exec`, `process_exit`, ...).
#[derive(Debug, Default, PartialEq)]
pub struct Envelope<'a> {
    pub kprobe: Option<Kprobe<'a>>,
    /// `process_kprobe` was present but not an object (e.g. `null`).
    pub kprobe_invalid: bool,
    pub other_kind: bool,
    pub node_name: Option<Str<'a>>,
    pub time: Option<Str<'a>>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Kprobe<'a> {
    #[serde(borrow, default)]
    pub process: Option<Process<'a>>,
    #[serde(borrow, default)]
    pub function_name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub args: Args<'a>,
    #[serde(borrow, rename = "return", default)]
    pub ret: Option<Arg<'a>>,
    /// The TracingPolicy that produced the event (absent before Tetragon 1.0).
    #[serde(borrow, default)]
    pub policy_name: Option<Str<'a>>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Process<'a> {
    #[serde(borrow, default)]
    pub pod: Option<Pod<'a>>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Pod<'a> {
    #[serde(borrow, default)]
    pub namespace: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub workload: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub workload_kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub pod_labels: Option<HelmLabels<'a>>,
}

/// The two pod labels that name a Helm release; every other label is skipped unparsed.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct HelmLabels<'a> {
    #[serde(borrow, default, rename = "app.kubernetes.io/instance")]
    pub instance: Option<Str<'a>>,
    #[serde(borrow, default, rename = "app.kubernetes.io/managed-by")]
    pub managed_by: Option<Str<'a>>,
}

/// One kprobe argument (or the return value): the variants the policies produce.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Arg<'a> {
    #[serde(borrow, default)]
    pub sock_arg: Option<Sock<'a>>,
    #[serde(default)]
    pub size_arg: Option<FlexU64>,
    #[serde(default)]
    pub int_arg: Option<FlexI64>,
    #[serde(default)]
    pub long_arg: Option<FlexI64>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Sock<'a> {
    #[serde(borrow, default)]
    pub saddr: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub daddr: Option<Str<'a>>,
    #[serde(default)]
    pub sport: Option<FlexU64>,
    #[serde(default)]
    pub dport: Option<FlexU64>,
}

/// The first socket and the first size among the arguments; the list itself is not kept.
#[derive(Debug, Default, PartialEq)]
pub struct Args<'a> {
    pub sock: Option<Sock<'a>>,
    pub size: Option<u64>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Args<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Args<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of kprobe arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Args<'a>, A::Error> {
                let mut out = Args::default();
                while let Some(arg) = seq.next_element::<Arg<'a>>()? {
                    if out.sock.is_none() {
                        out.sock = arg.sock_arg;
                    }
                    if out.size.is_none() {
                        out.size = arg.size_arg.map(|v| v.0);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Envelope<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Tetragon event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'a>, A::Error> {
                let mut out = Envelope::default();
                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        Field::ProcessKprobe => match map.next_value::<Option<Kprobe<'a>>>()? {
                            Some(k) => out.kprobe = Some(k),
                            None => out.kprobe_invalid = true,
                        },
                        Field::NodeName => out.node_name = map.next_value()?,
                        Field::Time => out.time = map.next_value()?,
                        Field::Other => out.other_kind |= map.next_value::<IsObject>()?.0,
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    ProcessKprobe,
    NodeName,
    Time,
    #[serde(other)]
    Other,
}

/// Whether a value is a JSON object; its content is skipped.
struct IsObject(bool);

impl<'de> Deserialize<'de> for IsObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IsObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IsObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IsObject(true))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IsObject, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IsObject(false))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_unit<E: de::Error>(self) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses one line into `env` (a fresh `Envelope::default()`, filled in place: it is large,
/// and moving it costs); false when the line is not UTF-8, not JSON or not an object.
pub fn parse_line<'a>(line: &'a [u8], env: &mut Envelope<'a>, memo: &mut PodMemo) -> bool {
    // simdutf8 agrees with std on what is UTF-8, and is much faster on ASCII.
    let Ok(text) = simdutf8::basic::from_utf8(line) else {
        return false;
    };
    if super::scan::scan_into(text, env, memo).is_some() {
        return true;
    }
    match serde_json::from_str(text) {
        Ok(parsed) => {
            *env = parsed;
            true
        }
        Err(_) => false,
    }
}

/// serde alone, for the property test that holds the fast scanner to the same answers.
#[cfg(test)]
pub fn parse_line_serde(line: &[u8]) -> Option<Envelope<'_>> {
    serde_json::from_str(std::str::from_utf8(line).ok()?).ok()
}
