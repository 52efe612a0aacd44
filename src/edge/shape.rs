//! The one decision of how an error is answered: the API's JSON body
//! (`{"errors":[{"message"}]}`) or an HTML page for a person. Every path under `/api` is
//! answered in JSON, whatever the client asks for. Elsewhere a browser, which names
//! `text/html` in its `Accept`, gets the page; a client that prefers `application/json`, or
//! names no `text/html` at all (curl's `*/*`, a script's `fetch`, a probe), gets JSON.
//!
//! This decides only the shape of an error a route did not answer itself: `super::answer`
//! applies it to every error answer, whoever made it (the 404 of an unknown path, a 405, the
//! body limits, the overload shedding, an extractor's refusal, a page's error page).

use actix_web::http::header;
use actix_web::HttpRequest;

/// How an error is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The API's error body.
    Json,
    /// An error page.
    Html,
}

impl Shape {
    /// The shape `req` asks for (several `Accept` headers count as one list). Cheap for the
    /// API: its path decides.
    pub fn of(req: &HttpRequest) -> Self {
        let path = req.path();
        if is_api(path) {
            return Self::Json;
        }
        let mut accept = req.headers().get_all(header::ACCEPT).filter_map(|v| v.to_str().ok());
        match (accept.next(), accept.next()) {
            (None, _) => Self::asked(path, ""),
            (Some(one), None) => Self::asked(path, one),
            (Some(one), Some(two)) => {
                let all: Vec<&str> = [one, two].into_iter().chain(accept).collect();
                Self::asked(path, &all.join(","))
            }
        }
    }

    /// The shape for `path` and the client's `Accept` value (the rule in the module doc).
    /// A tie in quality goes to JSON when the client names `application/json` itself, and
    /// to the page when JSON is only covered by a wildcard (`text/html, */*`).
    pub fn asked(path: &str, accept: &str) -> Self {
        if is_api(path) {
            return Self::Json;
        }
        let mut html = 0.0f32;
        // The quality of the most specific range that covers `application/json`.
        let (mut json, mut json_specificity) = (0.0f32, 0u8);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .map(|q| q.trim().parse::<f32>().map_or(0.0, |q| q.clamp(0.0, 1.0)))
                .next()
                .unwrap_or(1.0);
            let specificity = if media.eq_ignore_ascii_case("application/json") {
                3
            } else if media.eq_ignore_ascii_case("application/*") {
                2
            } else if media == "*/*" {
                1
            } else {
                if media.eq_ignore_ascii_case("text/html") {
                    html = html.max(quality);
                }
                continue;
            };
            if specificity > json_specificity {
                (json, json_specificity) = (quality, specificity);
            }
        }
        let page = html > 0.0 && (html > json || (html == json && json_specificity < 3));
        if page {
            Self::Html
        } else {
            Self::Json
        }
    }
}

/// Whether `path` is the JSON API's: its errors are JSON for every client.
fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

#[cfg(test)]
mod tests {
    use super::Shape::{self, Html, Json};

    const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

    #[test]
    fn a_browser_gets_pages_outside_the_api_and_json_inside_it() {
        assert_eq!(Shape::asked("/tickets/x", BROWSER), Html);
        assert_eq!(Shape::asked("/no/such/page", "text/html"), Html);
        assert_eq!(Shape::asked("/admin/nothing", BROWSER), Html);
        assert_eq!(Shape::asked("/api/tickets/x", BROWSER), Json);
        assert_eq!(Shape::asked("/api", "text/html"), Json);
        assert_eq!(Shape::asked("/apix", "text/html"), Html, "only the /api tree is the API's");
    }

    #[test]
    fn a_client_that_names_no_html_or_prefers_json_gets_json() {
        for accept in ["", "*/*", "application/json", "application/*", "text/plain", "image/png,*/*;q=0.8"] {
            assert_eq!(Shape::asked("/tickets/x", accept), Json, "{accept:?}");
        }
        for accept in [
            "application/json, text/html",
            "text/html, application/json",
            "text/html;q=0.9, application/json",
            "text/html;q=0.5, */*;q=0.8",
            "text/html;q=0, */*",
            "text/html;q=nonsense",
        ] {
            assert_eq!(Shape::asked("/tickets/x", accept), Json, "{accept:?}");
        }
    }

    #[test]
    fn html_preferred_or_tied_with_a_wildcard_is_a_page() {
        for accept in [
            "text/html, */*",
            "TEXT/HTML",
            "text/html, application/json;q=0.9",
            "application/json;q=0.5, text/html;q=0.6",
            " text/html ; charset=utf-8 ; q=1 ",
        ] {
            assert_eq!(Shape::asked("/tickets/x", accept), Html, "{accept:?}");
        }
    }
}
