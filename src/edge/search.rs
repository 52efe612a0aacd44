//! A ticket search's parameters (`q`, `minPrice`, `maxPrice`, `sort`, `page`), checked once
//! for the API (`GET /api/tickets`) and the landing page, with the words for what is wrong.

use super::ApiError;
use crate::app::search::{Query, Sort};

/// A search's parameters, checked (shared by the API and the landing page).
pub struct SearchParams {
    pub q: String,
    pub min_price: Option<String>,
    pub max_price: Option<String>,
    pub sort: Sort,
    pub page: usize,
}

/// Searches skip at most this many results (deeper pages are refused).
const MAX_OFFSET: usize = 100_000;
/// A search's words at most.
const MAX_WORDS: usize = 10;

impl SearchParams {
    /// The search asked for (`None` when none of its parameters is given).
    pub fn given(
        q: Option<&str>,
        min_price: Option<&str>,
        max_price: Option<&str>,
        sort: Option<&str>,
        page: Option<&str>,
    ) -> Result<Option<Self>, ApiError> {
        if [q, min_price, max_price, sort, page].iter().all(|p| p.is_none()) {
            return Ok(None);
        }
        Self::parse(q, min_price, max_price, sort, page).map(Some)
    }

    /// Checks each parameter: a clear 400 for any that is not right.
    pub fn parse(
        q: Option<&str>,
        min_price: Option<&str>,
        max_price: Option<&str>,
        sort: Option<&str>,
        page: Option<&str>,
    ) -> Result<Self, ApiError> {
        let q = q.unwrap_or_default();
        if q.chars().count() > 200 {
            return Err(ApiError::bad_parameter("q", "q must be at most 200 characters"));
        }
        if crate::app::search::words(q).len() > MAX_WORDS {
            return Err(ApiError::bad_parameter("q", format!("q must have at most {MAX_WORDS} words")));
        }
        let sort = match sort {
            None => Sort::Newest,
            Some(raw) => Sort::parse(raw)
                .ok_or_else(|| ApiError::bad_parameter("sort", "sort must be newest, price or -price"))?,
        };
        let page = match page {
            None => 1,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => return Err(ApiError::bad_parameter("page", "page must be between 1 and 10000")),
            },
        };
        let mut bounds = [None, None];
        for (at, (name, bound)) in [("minPrice", min_price), ("maxPrice", max_price)].into_iter().enumerate() {
            if let Some(raw) = bound {
                bounds[at] = Some(price_bound(raw).ok_or_else(|| {
                    ApiError::bad_parameter(name, format!("{name} must be a price from 0 to 1000000"))
                })?);
            }
        }
        if let [Some(min), Some(max)] = bounds {
            if min > max {
                return Err(ApiError::bad_parameter("minPrice", "minPrice must not be above maxPrice"));
            }
        }
        let text = |s: Option<&str>| s.map(str::to_string);
        Ok(Self { q: q.to_string(), min_price: text(min_price), max_price: text(max_price), sort, page })
    }

    /// The index query for pages of `limit`.
    pub fn query(&self, limit: usize) -> Result<Query, ApiError> {
        let offset = (self.page - 1) * limit;
        if offset > MAX_OFFSET {
            return Err(ApiError::bad_parameter("page", format!("page × limit must stay within {MAX_OFFSET} results")));
        }
        let bound = |raw: &Option<String>, none: u64| raw.as_deref().and_then(price_bound).unwrap_or(none);
        Ok(Query {
            words: crate::app::search::words(&self.q),
            min_cents: bound(&self.min_price, 0),
            max_cents: bound(&self.max_price, u64::MAX),
            sort: self.sort,
            offset,
            limit,
        })
    }

    /// The query string of the next page.
    pub fn next(&self, limit: usize) -> String {
        let sort = self.sort.as_str();
        let mut pairs =
            vec![("limit", limit.to_string()), ("sort", sort.to_string()), ("page", (self.page + 1).to_string())];
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        for (name, bound) in [("minPrice", &self.min_price), ("maxPrice", &self.max_price)] {
            if let Some(raw) = bound {
                pairs.push((name, raw.clone()));
            }
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// A price bound in cents: `0` or a price (`12.50`).
fn price_bound(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    if raw.chars().all(|c| c == '0' || c == '.') && raw.starts_with('0') && raw.len() <= 4 {
        return Some(0);
    }
    crate::domain::Price::parse(raw).map(|p| p.cents())
}
