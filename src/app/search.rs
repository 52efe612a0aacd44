//! Finding a ticket: `GET /api/tickets?q=&minPrice=&maxPrice=&sort=` and the landing page's
//! search box, answered from this in-memory index of the tickets for sale, never by a scan of
//! the store.
//!
//! Every ticket the read model has seen for sale is a document, numbered in the order this
//! node learned of it (at start-up, in id order: UUIDv7 ids are creation-ordered), so
//! "newest" is the documents from the last. Beside each: its id and price, and whether it is for
//! sale now. A title's words (lowercase, without accents) each list their documents in
//! ascending order, the words in alphabetical order; the listed documents are also kept by
//! price. A query's last word of [`PREFIX_CHARS`] or more is the start of a word (as typed:
//! "conc" finds "concert"), the union of the lists of the words it begins. A query intersects
//! its words' lists (the shortest first), then walks the result newest first, or walks the price
//! order keeping the matches (many matches) or sorts the matches by price (few), and stops
//! once it has its page.
//!
//! The index is rebuilt from the read model's rows when the node starts (before it is ready)
//! and kept by the read model as it applies each event.

use crate::domain::{Ticket, TicketId};
use parking_lot::RwLock;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// How results are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Newest,
    /// Cheapest first (the newest first among equal prices: ties are by document).
    Price,
    /// Dearest first.
    PriceDescending,
}

impl Sort {
    /// As the API and the pages spell it: `newest`, `price`, `-price`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::Price => "price",
            Self::PriceDescending => "-price",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Newest, Self::Price, Self::PriceDescending].into_iter().find(|s| s.as_str() == text)
    }
}

/// A search: words of the title (all of them), a price range in cents, an order, a page.
#[derive(Clone, Debug)]
pub struct Query {
    pub words: Vec<String>,
    pub min_cents: u64,
    pub max_cents: u64,
    pub sort: Sort,
    /// Results skipped (pages before this one).
    pub offset: usize,
    pub limit: usize,
}

/// Below this many matches, matches are sorted by price; above, the price order is walked.
const SORT_MATCHES_BELOW: usize = 20_000;
/// A query's last word this long or longer also finds the longer words it begins (a shorter
/// one, such as a seat number, only itself).
pub const PREFIX_CHARS: usize = 3;

/// The words of `text` as the index keeps them: lowercase, accents dropped, split on anything
/// that is not a letter or a digit; each once, where it last comes (a query's last word is the
/// one being typed).
pub fn words(text: &str) -> Vec<String> {
    let plain: String = text.nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect();
    let mut out: Vec<String> = Vec::new();
    for word in plain.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if let Some(at) = out.iter().position(|w| w == word) {
            out.remove(at);
        }
        out.push(word.to_string());
    }
    out
}

/// Whether a query's last word is long enough to find the words it begins: [`PREFIX_CHARS`]
/// characters as written (composed again: a Hangul syllable is one, not its three jamo).
pub fn begins_words(word: &str) -> bool {
    word.nfc().count() >= PREFIX_CHARS
}

#[derive(Default)]
struct Inner {
    /// Document → ticket id, price (cents), for sale now.
    ids: Vec<TicketId>,
    prices: Vec<u32>,
    listed: Vec<bool>,
    /// Ticket id → document.
    docs: BTreeMap<TicketId, u32>,
    /// (price, document) of the documents for sale.
    by_price: BTreeSet<(u32, u32)>,
    /// Word → documents whose title has it, ascending; in word order, for the words a
    /// prefix begins.
    words: BTreeMap<Box<str>, Vec<u32>>,
}

/// The index (shared by the read model's writers and the readers).
#[derive(Default)]
pub struct TicketIndex(RwLock<Inner>);

/// Prices are at most 1,000,000.00 (`Price`): cents fit 32 bits.
fn cents(ticket: &Ticket) -> u32 {
    u32::try_from(ticket.price.cents()).unwrap_or(u32::MAX)
}

impl TicketIndex {
    /// The index of `tickets` (each with whether it is for sale now: a reserved one may be
    /// released), in the order they were listed (the read model's rows come in id order).
    /// Built in bulk: its B-trees are packed full, and its lists hold no spare room, where one
    /// ticket at a time would leave them half empty.
    pub fn build(tickets: impl IntoIterator<Item = (Ticket, bool)>) -> Self {
        let mut inner = Inner::default();
        let mut words: HashMap<String, Vec<u32>> = HashMap::new();
        for (ticket, listed) in tickets {
            let doc = u32::try_from(inner.ids.len()).unwrap_or(u32::MAX);
            inner.ids.push(ticket.id);
            inner.prices.push(cents(&ticket));
            inner.listed.push(listed);
            for word in self::words(&ticket.title) {
                words.entry(word).or_default().push(doc);
            }
        }
        inner.docs = inner.ids.iter().enumerate().map(|(doc, id)| (*id, doc as u32)).collect();
        let listed = inner.prices.iter().zip(&inner.listed).enumerate().filter(|(_, (_, listed))| **listed);
        inner.by_price = listed.map(|(doc, (price, _))| (*price, doc as u32)).collect();
        inner.words = words
            .into_iter()
            .map(|(word, mut docs)| {
                docs.shrink_to_fit();
                (word.into_boxed_str(), docs)
            })
            .collect();
        inner.ids.shrink_to_fit();
        inner.prices.shrink_to_fit();
        inner.listed.shrink_to_fit();
        Self(RwLock::new(inner))
    }

    /// Keeps `ticket` as it now is, for sale (`listed`) or not; `before`: as the index last
    /// had it (its old title's words are dropped).
    pub fn set(&self, before: Option<&Ticket>, ticket: &Ticket, listed: bool) {
        self.0.write().set(before, ticket, listed);
    }

    /// The page of ticket ids `query` asks for, and whether more follow.
    pub fn search(&self, query: &Query) -> (Vec<TicketId>, bool) {
        self.0.read().search(query)
    }

    /// Tickets for sale in the index.
    pub fn listed(&self) -> usize {
        self.0.read().by_price.len()
    }

    /// An estimate of the index's heap, in bytes (its collections' sizes).
    pub fn heap_bytes(&self) -> usize {
        let inner = self.0.read();
        let per_doc = size_of::<TicketId>() + size_of::<u32>() + size_of::<bool>();
        // A B-tree node holds up to 11 entries and a few words more: built in bulk it is
        // full; later insertions split nodes in halves.
        let docs = inner.docs.len() * (size_of::<TicketId>() + size_of::<u32>()) * 5 / 4;
        let by_price = inner.by_price.len() * size_of::<(u32, u32)>() * 5 / 4;
        let postings: usize = inner.words.iter().map(|(w, d)| w.len() + 16 + 24 + d.capacity() * 4).sum();
        inner.ids.capacity() * per_doc + docs + by_price + postings
    }
}

impl Inner {
    fn set(&mut self, before: Option<&Ticket>, ticket: &Ticket, listed: bool) {
        let price = cents(ticket);
        let Some(&doc) = self.docs.get(&ticket.id) else {
            if !listed {
                // Never for sale here: nothing to find it by.
                return;
            }
            let doc = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
            self.ids.push(ticket.id);
            self.prices.push(price);
            self.listed.push(true);
            self.docs.insert(ticket.id, doc);
            self.by_price.insert((price, doc));
            for word in words(&ticket.title) {
                // The newest document: its place is at the end of every list.
                self.words.entry(word.into_boxed_str()).or_default().push(doc);
            }
            return;
        };
        let i = doc as usize;
        if (self.listed[i], self.prices[i]) != (listed, price) {
            if self.listed[i] {
                self.by_price.remove(&(self.prices[i], doc));
            }
            self.prices[i] = price;
            self.listed[i] = listed;
            if listed {
                self.by_price.insert((price, doc));
            }
        }
        // Most changes (a reservation, a release) keep the title: nothing more to do.
        if before.is_some_and(|b| b.title == ticket.title) {
            return;
        }
        // The title changed: its words' lists follow it.
        let before = before.map(|b| words(&b.title)).unwrap_or_default();
        let now = words(&ticket.title);
        for word in before.iter().filter(|w| !now.contains(w)) {
            if let Some(docs) = self.words.get_mut(word.as_str()) {
                if let Ok(at) = docs.binary_search(&doc) {
                    docs.remove(at);
                }
                if docs.is_empty() {
                    self.words.remove(word.as_str());
                }
            }
        }
        for word in now.into_iter().filter(|w| !before.contains(w)) {
            let docs = self.words.entry(word.into_boxed_str()).or_default();
            if let Err(at) = docs.binary_search(&doc) {
                docs.insert(at, doc);
            }
        }
    }

    /// The documents having every word of `words`, ascending (`None`: no words, every
    /// document). The last word may be the start of a longer one.
    fn matching(&self, words: &[String]) -> Option<Vec<u32>> {
        let (last, whole) = words.split_last()?;
        let mut lists: Vec<Cow<'_, [u32]>> = Vec::with_capacity(words.len());
        for word in whole {
            match self.words.get(word.as_str()) {
                Some(docs) => lists.push(Cow::Borrowed(docs)),
                None => return Some(Vec::new()),
            }
        }
        match self.beginning_with(last) {
            Some(docs) => lists.push(docs),
            None => return Some(Vec::new()),
        }
        lists.sort_by_key(|docs| docs.len());
        let mut out: Vec<u32> = lists[0].to_vec();
        for other in &lists[1..] {
            out.retain(|doc| other.binary_search(doc).is_ok());
        }
        Some(out)
    }

    /// The documents of `word`, or with [`PREFIX_CHARS`] characters or more, of every word it
    /// begins (ascending, each once); `None` if there are none.
    fn beginning_with(&self, word: &str) -> Option<Cow<'_, [u32]>> {
        if !begins_words(word) {
            return self.words.get(word).map(|docs| Cow::Borrowed(docs.as_slice()));
        }
        let begun = self.words.range::<str, _>((std::ops::Bound::Included(word), std::ops::Bound::Unbounded));
        let lists: Vec<&Vec<u32>> = begun.take_while(|(w, _)| w.starts_with(word)).map(|(_, docs)| docs).collect();
        match lists.as_slice() {
            [] => return None,
            [only] => return Some(Cow::Borrowed(only.as_slice())),
            _ => {}
        }
        // Several words: their union, marked on a bitmap when large (sorting a million
        // documents would cost more than walking them).
        let total: usize = lists.iter().map(|docs| docs.len()).sum();
        if total > self.ids.len() / 16 {
            let member = self.bitmap(lists.into_iter().flatten());
            let union = member.iter().enumerate().filter(|(_, m)| **m).map(|(d, _)| d as u32);
            return Some(Cow::Owned(union.collect()));
        }
        let mut union: Vec<u32> = lists.into_iter().flatten().copied().collect();
        union.sort_unstable();
        union.dedup();
        Some(Cow::Owned(union))
    }

    /// One flag per document, set for `docs`.
    fn bitmap<'a>(&self, docs: impl Iterator<Item = &'a u32>) -> Vec<bool> {
        let mut bits = vec![false; self.ids.len()];
        for doc in docs {
            bits[*doc as usize] = true;
        }
        bits
    }

    fn search(&self, q: &Query) -> (Vec<TicketId>, bool) {
        let in_range = |doc: u32| {
            let price = u64::from(self.prices[doc as usize]);
            self.listed[doc as usize] && price >= q.min_cents && price <= q.max_cents
        };
        let matches = self.matching(&q.words);
        let docs: Vec<u32> = match (q.sort, &matches) {
            (Sort::Newest, Some(matches)) => {
                matches.iter().rev().copied().filter(|d| in_range(*d)).skip(q.offset).take(q.limit + 1).collect()
            }
            (Sort::Newest, None) => {
                let all = (0..self.ids.len() as u32).rev();
                all.filter(|d| in_range(*d)).skip(q.offset).take(q.limit + 1).collect()
            }
            (sort, Some(matches)) if matches.len() < SORT_MATCHES_BELOW => {
                let mut found: Vec<(u32, u32)> =
                    matches.iter().filter(|d| in_range(**d)).map(|d| (self.prices[*d as usize], *d)).collect();
                if sort == Sort::Price {
                    found.sort_unstable();
                } else {
                    found.sort_unstable_by(|a, b| b.cmp(a));
                }
                found.into_iter().skip(q.offset).take(q.limit + 1).map(|(_, d)| d).collect()
            }
            (sort, matches) => {
                // Many matches (or all): the price order, walked, keeping the matches.
                let member = matches.as_ref().map(|m| self.bitmap(m.iter()));
                let low = u32::try_from(q.min_cents).unwrap_or(u32::MAX);
                let high = u32::try_from(q.max_cents).unwrap_or(u32::MAX);
                if low > high {
                    return (Vec::new(), false);
                }
                let range = self.by_price.range((low, 0)..=(high, u32::MAX));
                let keep = |(_, d): &&(u32, u32)| member.as_ref().is_none_or(|m| m[*d as usize]);
                let walked: Box<dyn Iterator<Item = &(u32, u32)>> =
                    if sort == Sort::Price { Box::new(range) } else { Box::new(range.rev()) };
                walked.filter(keep).skip(q.offset).take(q.limit + 1).map(|(_, d)| *d).collect()
            }
        };
        let more = docs.len() > q.limit;
        let ids = docs.into_iter().take(q.limit).map(|d| self.ids[d as usize]).collect();
        (ids, more)
    }
}

#[cfg(test)]
#[path = "search_test.rs"]
mod tests;
