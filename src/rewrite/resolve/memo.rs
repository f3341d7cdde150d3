//! The references of one document already resolved, so a repeated one costs a comparison.

use super::{Resolver, Skip};
use url::Url;

/// A reference resolved: the absolute original and its `url=` encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved<'m> {
    pub source: &'m str,
    pub encoded: &'m str,
}

/// One remembered reference; its buffers are kept when it is replaced.
#[derive(Debug)]
struct Slot {
    reference: String,
    source: String,
    encoded: String,
    outcome: Result<(), Skip>,
}

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            reference: String::new(),
            source: String::new(),
            encoded: String::new(),
            outcome: Err(Skip::Empty),
        }
    }
}

/// The last few references of one document and what they resolved to. Articles repeat their
/// images (`headimg` and `thumbnail`, the first picture of the body, an `img` inside the link
/// to its full size, `src` and `data-src` of one lazy image), and the repeats are near each
/// other, so a handful of slots searched in order catches them at a bounded cost (on the
/// corpus, 82 of 220 look-ups; more slots catch none more). Valid for one base: a document is
/// resolved against one, and [`Memo::clear`] starts the next (its buffers stay).
#[derive(Debug, Default)]
pub struct Memo {
    slots: Vec<Slot>,
    used: usize,
    next: usize,
}

impl Memo {
    const SLOTS: usize = 8;

    /// Forgets every reference, keeping the buffers.
    pub fn clear(&mut self) {
        self.used = 0;
        self.next = 0;
    }

    /// [`Resolver::source`] and [`Resolver::encode`] of `reference`, remembered.
    pub fn resolve(
        &mut self,
        resolver: &Resolver,
        reference: &str,
        base: Option<&Url>,
    ) -> Result<Resolved<'_>, Skip> {
        let found = self.slots[..self.used]
            .iter()
            .position(|s| s.reference == reference);
        let i = match found {
            Some(i) => i,
            None => {
                let i = if self.used < Memo::SLOTS {
                    self.used += 1;
                    self.used - 1
                } else {
                    let i = self.next;
                    self.next = (i + 1) % Memo::SLOTS;
                    i
                };
                if self.slots.len() <= i {
                    self.slots.push(Slot::default());
                }
                let slot = &mut self.slots[i];
                slot.reference.clear();
                slot.reference.push_str(reference);
                slot.source.clear();
                slot.encoded.clear();
                slot.outcome = resolver.source_into(reference, base, &mut slot.source);
                if slot.outcome.is_ok() {
                    resolver.encode_into(&slot.source, &mut slot.encoded);
                }
                i
            }
        };
        let slot = &self.slots[i];
        slot.outcome.map(|()| Resolved {
            source: &slot.source,
            encoded: &slot.encoded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::resolve::tests::resolver;

    #[test]
    fn the_memo_answers_as_the_resolver_does() {
        let r = resolver();
        let http = Url::parse("http://blog.example/p/").unwrap();
        let refs: Vec<String> = (0..12)
            .map(|i| format!("https://h{i}.example/a.jpg"))
            .chain(["//h.example/b.png".into(), "rel.gif".into(), "".into()])
            .collect();
        let mut memo = Memo::default();
        // more references than slots, each asked twice, the second time after others
        for round in 0..2 {
            for (i, reference) in refs.iter().enumerate().chain(refs.iter().enumerate().rev()) {
                let got = memo
                    .resolve(&r, reference, None)
                    .map(|v| (v.source.to_string(), v.encoded.to_string()));
                let want = r.source(reference, None).map(|s| (s.clone(), r.encode(&s)));
                assert_eq!(got, want, "{reference} ({i}, round {round})");
            }
        }
        // cleared, it resolves against another base
        assert_eq!(
            memo.resolve(&r, "//h.example/b.png", None).unwrap().source,
            "https://h.example/b.png"
        );
        memo.clear();
        let got = memo.resolve(&r, "//h.example/b.png", Some(&http)).unwrap();
        assert_eq!(got.source, "http://h.example/b.png");
        assert_eq!(
            memo.resolve(&r, "rel.gif", Some(&http)).unwrap().source,
            "http://blog.example/p/rel.gif"
        );
    }
}
