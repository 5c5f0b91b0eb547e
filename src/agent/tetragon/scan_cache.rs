//! Memo of `process.pod` objects: every event of a pod repeats the same pod object (names,
//! container, image, labels: about half of a line), so the scanner keeps the ones it has read
//! and, when the line continues with exactly the same bytes, takes the fields from the memo
//! instead of scanning them again.
//!
//! Why that is exact: a JSON value's extent is decided by its own bytes, so if the line at the
//! pod's position starts with the bytes of an object the scanner already accepted, scanning
//! would accept that same prefix again and fill the same fields. The memo keeps the object's
//! bytes and where each field sits in them; a hit is a hash of the first bytes, one byte
//! comparison of the whole object, and slices of the current line.
use std::borrow::Cow;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap};

use crate::agent::tetragon::scalars::Str;

pub(super) type R<T> = Option<T>;

/// How many bytes of a pod object the lookup hashes: enough to reach the pod's name.
pub(super) const KEY_BYTES: usize = 64;
/// Distinct pod objects kept; a node runs a few hundred pods at most. When full, the memo
/// starts over, so memory stays bounded whatever the input.
pub(super) const MAX_PODS: usize = 4096;

/// A field as a byte range inside the pod object.
pub(super) type Span = Option<(u32, u32)>;

pub(super) struct Memo {
    pub(super) bytes: Box<[u8]>,
    pub(super) namespace: Span,
    pub(super) name: Span,
    pub(super) workload: Span,
    pub(super) workload_kind: Span,
    pub(super) labels: Option<(Span, Span)>,
}

#[derive(Default)]
pub struct PodMemo {
    hasher: DefaultHashBuilder,
    pub(super) pods: HashMap<u64, Memo>,
    pub hits: u64,
}

impl PodMemo {
    pub(super) fn key(&self, rest: &[u8]) -> u64 {
        self.hasher.hash_one(&rest[..rest.len().min(KEY_BYTES)])
    }
}

/// Where `s` (a slice of `base`) sits, relative to `base`.
pub(super) fn span(base: &str, s: &Option<Str<'_>>) -> R<Span> {
    let Some(Str(Cow::Borrowed(s))) = s else {
        // The scanner only borrows; anything else is not memoised.
        return s.is_none().then_some(None);
    };
    let from = (s.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
    (from + s.len() <= base.len()).then_some(())?;
    Some(Some((
        u32::try_from(from).ok()?,
        u32::try_from(s.len()).ok()?,
    )))
}

#[cfg(test)]
mod tests {
    use super::PodMemo;
    use crate::agent::tetragon::event::Envelope;
    use crate::agent::tetragon::parse_line_serde;
    use crate::agent::tetragon::scan::scan_into;

    const POD: &str = r#"{"namespace":"team-1","name":"api-7d9f-x2x","container":{"id":"containerd://00112233445566778899"},"pod_labels":{"app.kubernetes.io/instance":"shop-1","app.kubernetes.io/managed-by":"Helm"},"workload":"api","workload_kind":"Deployment"}"#;

    fn line(pod: &str, tail: &str) -> String {
        format!(
            r#"{{"process_kprobe":{{"process":{{"pid":1,"pod":{pod}}},"function_name":"tcp_connect"{tail}}},"node_name":"n1"}}"#
        )
    }

    fn scan<'a>(text: &'a str, memo: &mut PodMemo) -> Option<Envelope<'a>> {
        let mut env = Envelope::default();
        scan_into(text, &mut env, memo).map(|()| env)
    }

    #[test]
    fn a_repeated_pod_object_is_a_hit_with_the_same_fields() {
        let mut memo = PodMemo::default();
        let first = line(POD, "");
        let again = line(POD, r#","args":[]"#);
        assert_eq!(scan(&first, &mut memo), parse_line_serde(first.as_bytes()));
        assert_eq!(memo.hits, 0);
        let got = scan(&again, &mut memo);
        assert_eq!(memo.hits, 1);
        assert_eq!(got, parse_line_serde(again.as_bytes()));
        let pod = got.and_then(|e| e.kprobe?.process?.pod).expect("pod");
        assert_eq!(
            pod.workload_kind.map(|s| s.0.into_owned()).as_deref(),
            Some("Deployment")
        );
    }

    #[test]
    fn a_pod_object_that_differs_past_the_hashed_bytes_is_read_again() {
        let mut memo = PodMemo::default();
        let first = line(POD, "");
        let other = line(
            &POD.replace(r#""api","workload_kind""#, r#""web","workload_kind""#),
            "",
        );
        assert!(scan(&first, &mut memo).is_some());
        let got = scan(&other, &mut memo);
        assert_eq!(memo.hits, 0);
        assert_eq!(got, parse_line_serde(other.as_bytes()));
        let pod = got.and_then(|e| e.kprobe?.process?.pod).expect("pod");
        assert_eq!(
            pod.workload.map(|s| s.0.into_owned()).as_deref(),
            Some("web")
        );
    }

    #[test]
    fn a_hit_does_not_excuse_the_rest_of_the_line() {
        let mut memo = PodMemo::default();
        assert!(scan(&line(POD, ""), &mut memo).is_some());
        let broken = line(POD, ",}");
        assert_eq!(scan(&broken, &mut memo), None);
        assert_eq!(parse_line_serde(broken.as_bytes()), None);
        assert_eq!(memo.hits, 1);
    }

    #[test]
    fn the_memo_stays_bounded() {
        let mut memo = PodMemo::default();
        for i in 0..(super::MAX_PODS + 10) {
            let pod = POD.replace("api-7d9f-x2x", &format!("api-{i:08}"));
            assert!(scan(&line(&pod, ""), &mut memo).is_some());
            assert!(memo.pods.len() <= super::MAX_PODS);
        }
    }
}
