//! Unit tests of `search`: the words, and every query against a brute-force answer.

use super::*;
use crate::domain::{Price, Slot, UserId};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn ticket(title: &str, cents: u64) -> Ticket {
    Ticket {
        id: TicketId::new_in(Slot(3)),
        title: title.into(),
        price: Price::from_cents(cents),
        user_id: UserId::new_in(Slot(3)),
        version: 1,
        order_id: None,
        updated_at_ms: 0,
    }
}

fn query(words: &str, sort: Sort) -> Query {
    Query { words: super::words(words), min_cents: 0, max_cents: u64::MAX, sort, offset: 0, limit: 100 }
}

#[test]
fn words_ignore_case_accents_punctuation_and_repeats() {
    assert_eq!(words("Beyoncé — LIVE at the Café, café!"), ["beyonce", "live", "at", "the", "cafe"]);
    assert_eq!(words("Ångström Straße 12b"), ["angstrom", "straße", "12b"]);
    assert!(words(" -- ").is_empty());
    // A repeated word is kept where it last comes: the one being typed stays last.
    assert_eq!(words("conc paris conc"), ["paris", "conc"]);
}

#[test]
fn a_word_begins_others_from_three_characters_as_written() {
    assert!(begins_words("con") && !begins_words("co"));
    // One Hangul syllable is three jamo once decomposed: still one character.
    assert_eq!(words("한국"), ["한국".nfd().collect::<String>()]);
    assert!(!begins_words(&words("한")[0]));
    assert!(begins_words(&words("한국어")[0]));
}

#[test]
fn a_ticket_is_found_by_its_words_until_it_is_not_for_sale_and_again_once_released() {
    let index = TicketIndex::default();
    let t = ticket("Opéra de Paris", 5000);
    index.set(None, &t, true);
    assert_eq!(index.search(&query("OPERA paris", Sort::Newest)).0, [t.id]);
    assert!(index.search(&query("opera london", Sort::Newest)).0.is_empty());
    index.set(Some(&t), &t, false);
    assert!(index.search(&query("opera", Sort::Newest)).0.is_empty());
    assert!(index.search(&query("", Sort::Price)).0.is_empty(), "not in the price order either");
    index.set(Some(&t), &t, true);
    assert_eq!(index.search(&query("opera", Sort::Price)).0, [t.id]);
    // Retitled: found by its new words only.
    let renamed = Ticket { title: "Ballet de Lyon".into(), version: 2, ..t.clone() };
    index.set(Some(&t), &renamed, true);
    assert!(index.search(&query("opera", Sort::Newest)).0.is_empty());
    assert_eq!(index.search(&query("ballet de", Sort::Newest)).0, [t.id]);
}

#[test]
fn the_last_word_finds_the_words_it_begins_once_it_has_three_characters() {
    let index = TicketIndex::default();
    let concert = ticket("Concert in Paris", 5000);
    let conference = ticket("Conference concert", 7000);
    let seat = ticket("Seat 12", 1000);
    for t in [&concert, &conference, &seat] {
        index.set(None, t, true);
    }
    // Few matches among many tickets: their union is sorted (the brute-force test below, with
    // many matches, takes the bitmap).
    for n in 0..100 {
        index.set(None, &ticket(&format!("filler {n}"), 100), true);
    }
    let found = |q: &str| index.search(&query(q, Sort::Price)).0;
    assert_eq!(found("conc"), [concert.id, conference.id]);
    assert_eq!(found("paris CONC"), [concert.id]);
    // Two words it begins in one title: that ticket once.
    assert_eq!(found("con"), [concert.id, conference.id]);
    assert_eq!(found("conference"), [conference.id]);
    // Only the last word: an earlier one is a whole word.
    assert!(found("conc paris").is_empty());
    // Shorter than three characters: a whole word only (seat 1 is not seat 12).
    assert!(found("co").is_empty());
    assert!(found("seat 1").is_empty());
    assert_eq!(found("seat 12"), [seat.id]);
    assert!(found("concerts").is_empty());
}

/// The answer by brute force: every ticket for sale, filtered, sorted, paged.
fn brute(all: &[(Ticket, bool)], q: &Query) -> (Vec<TicketId>, bool) {
    let mut found: Vec<(usize, &Ticket)> = all
        .iter()
        .enumerate()
        .filter(|(_, (t, listed))| {
            let mine = words(&t.title);
            // The last word, of PREFIX_CHARS or more, may begin a longer one.
            let has = |w: &String, last: bool| {
                mine.iter().any(|m| m == w || (last && begins_words(w) && m.starts_with(w.as_str())))
            };
            *listed
                && q.words.iter().enumerate().all(|(i, w)| has(w, i + 1 == q.words.len()))
                && (q.min_cents..=q.max_cents).contains(&t.price.cents())
        })
        .map(|(doc, (t, _))| (doc, t))
        .collect();
    match q.sort {
        Sort::Newest => found.reverse(),
        Sort::Price => found.sort_by_key(|(doc, t)| (t.price.cents(), *doc)),
        Sort::PriceDescending => found.sort_by_key(|(doc, t)| std::cmp::Reverse((t.price.cents(), *doc))),
    }
    let more = found.len() > q.offset + q.limit;
    (found.into_iter().skip(q.offset).take(q.limit).map(|(_, t)| t.id).collect(), more)
}

#[test]
fn every_query_answers_as_a_brute_force_scan_would() {
    let mut rng = StdRng::seed_from_u64(20261205);
    // Words that begin others ("rock", "rocket", "rockabilly"), for the last word's prefixes.
    let vocabulary =
        ["rock", "rocket", "rockabilly", "jazz", "opera", "operetta", "paris", "lyon", "row", "rows", "vip", "late"];
    // Over the few-matches threshold, so both ways of ordering by price are taken. Built in
    // bulk (some reserved, as at a start-up), then a ticket at a time.
    let mut all: Vec<(Ticket, bool)> = Vec::new();
    for _ in 0..SORT_MATCHES_BELOW + 5_000 {
        let title: Vec<&str> =
            (0..rng.gen_range(1..4)).map(|_| vocabulary[rng.gen_range(0..vocabulary.len())]).collect();
        all.push((ticket(&title.join(" "), rng.gen_range(1..500) * 100), rng.gen_bool(0.9)));
    }
    let index = TicketIndex::build(all[..10_000].iter().cloned());
    // After the bulk: one at a time; a ticket never seen for sale is not in the index (the
    // read model's way), so it is left out of the answer too.
    let late: Vec<(Ticket, bool)> = all.split_off(10_000).into_iter().filter(|(_, listed)| *listed).collect();
    for (t, _) in &late {
        index.set(None, t, true);
    }
    all.extend(late);
    // Some reserved, some retitled or repriced, some released again.
    for _ in 0..3_000 {
        let i = rng.gen_range(0..all.len());
        let before = all[i].0.clone();
        match rng.gen_range(0..3) {
            0 => all[i].1 = !all[i].1,
            1 => all[i].0.title = format!("{} {}", vocabulary[rng.gen_range(0..vocabulary.len())], before.title),
            _ => all[i].0.price = Price::from_cents(rng.gen_range(1..500) * 100),
        }
        index.set(Some(&before), &all[i].0, all[i].1);
    }
    for n in 0..150 {
        // Now and then a word cut short, as if still being typed.
        let words: Vec<&str> = (0..rng.gen_range(0..3))
            .map(|_| {
                let word = vocabulary[rng.gen_range(0..vocabulary.len())];
                if rng.gen_bool(0.3) {
                    &word[..rng.gen_range(1..=word.len())]
                } else {
                    word
                }
            })
            .collect();
        let sort = [Sort::Newest, Sort::Price, Sort::PriceDescending][n % 3];
        let mut q = query(&words.join(" "), sort);
        if rng.gen_bool(0.5) {
            q.min_cents = rng.gen_range(0..300) * 100;
            q.max_cents = q.min_cents + rng.gen_range(0..300) * 100;
        }
        q.offset = [0, 20, 980][rng.gen_range(0..3)];
        q.limit = 20;
        assert_eq!(index.search(&q), brute(&all, &q), "{q:?}");
    }
}
