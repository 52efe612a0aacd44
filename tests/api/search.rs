//! `GET /api/tickets` with `q`, `minPrice`, `maxPrice`, `sort` and `page`: words of the title
//! without case or accents (the last one may be the start of a word), a price range, three orders, numbered pages with a `Link`; bad
//! values get the API's 400; without any of them the list is what the seeds' clients expect.
//! And the landing page's search form, without JavaScript.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn titles(body: &Value) -> Vec<String> {
    body.as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap().to_string()).collect()
}

async fn listed(app: &TestApp) -> TestAppWithTickets<'_> {
    let seller = app.signin().await;
    let mut ids = Vec::new();
    for (title, price) in [
        ("Café Concert", 30.0),
        ("cafe jazz night", 12.5),
        ("Opera gala", 1500.0),
        ("Jazz brunch", 45.0),
        ("Rock", 9.0),
    ] {
        ids.push(app.create_ticket(&seller, title, json!(price)).await["id"].as_str().unwrap().to_string());
    }
    TestAppWithTickets { app, ids }
}

struct TestAppWithTickets<'a> {
    app: &'a TestApp,
    ids: Vec<String>,
}

impl TestAppWithTickets<'_> {
    async fn search(&self, query: &str) -> (StatusCode, Value) {
        self.app.get_json(&format!("/api/tickets?{query}"), None).await
    }
}

#[actix_web::test]
async fn words_match_without_case_or_accents_and_every_word_must_match() {
    let app = spawn_app().await;
    let t = listed(&app).await;
    let (status, body) = t.search("q=CAFE").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(titles(&body), ["cafe jazz night", "Café Concert"], "newest first");
    assert_eq!(titles(&t.search("q=caf%C3%A9%20concert").await.1), ["Café Concert"]);
    assert_eq!(titles(&t.search("q=jazz").await.1), ["Jazz brunch", "cafe jazz night"]);
    assert!(titles(&t.search("q=jazz%20opera").await.1).is_empty());
    // The last word, as typed, finds the words it begins once it has three characters.
    assert_eq!(titles(&t.search("q=caf").await.1), ["cafe jazz night", "Café Concert"]);
    assert_eq!(titles(&t.search("q=cafe%20CONC").await.1), ["Café Concert"]);
    assert!(titles(&t.search("q=conc%20cafe").await.1).is_empty(), "an earlier word is whole");
    assert!(titles(&t.search("q=ca").await.1).is_empty(), "two characters: a whole word");
}

#[actix_web::test]
async fn prices_filter_and_order_and_pages_follow_the_link() {
    let app = spawn_app().await;
    let t = listed(&app).await;
    assert_eq!(
        titles(&t.search("sort=price").await.1),
        ["Rock", "cafe jazz night", "Café Concert", "Jazz brunch", "Opera gala"]
    );
    assert_eq!(
        titles(&t.search("sort=-price&maxPrice=45").await.1),
        ["Jazz brunch", "Café Concert", "cafe jazz night", "Rock"]
    );
    assert_eq!(titles(&t.search("minPrice=12.50&maxPrice=30&sort=price").await.1), ["cafe jazz night", "Café Concert"]);
    assert_eq!(titles(&t.search("minPrice=0&q=rock").await.1), ["Rock"]);
    // Two a page: the next page is in the Link header, with the search.
    let res = app.get("/api/tickets?sort=price&limit=2").send().await.unwrap();
    let link = res.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(link, "</api/tickets?limit=2&sort=price&page=2>; rel=\"next\"");
    let (_, page2) = app.get_json("/api/tickets?limit=2&sort=price&page=2", None).await;
    assert_eq!(titles(&page2), ["Café Concert", "Jazz brunch"]);
    let res = app.get("/api/tickets?sort=price&limit=2&page=3").send().await.unwrap();
    assert!(res.headers().get("link").is_none(), "the last page has no next");
    assert_eq!(titles(&res.json().await.unwrap()), ["Opera gala"]);
}

#[actix_web::test]
async fn a_reserved_ticket_is_not_found_and_the_plain_list_is_unchanged() {
    let app = spawn_app().await;
    let t = listed(&app).await;
    let buyer = app.signin().await;
    app.order_ok(&buyer, &t.ids[1]).await;
    assert_eq!(titles(&t.search("q=cafe").await.1), ["Café Concert"]);
    // No search parameter: oldest first, as the seeds' clients expect.
    let (_, plain) = app.get_json("/api/tickets", None).await;
    assert_eq!(titles(&plain), ["Café Concert", "Opera gala", "Jazz brunch", "Rock"]);
}

#[actix_web::test]
async fn bad_search_values_get_a_clear_400_in_the_api_format_naming_the_parameter() {
    let app = spawn_app().await;
    let long = "a".repeat(201);
    let cursor = uuid::Uuid::now_v7();
    for (query, message, field) in [
        ("sort=cheapest", "sort must be newest, price or -price", Some("sort")),
        ("minPrice=-1", "minPrice must be a price from 0 to 1000000", Some("minPrice")),
        ("maxPrice=abc", "maxPrice must be a price from 0 to 1000000", Some("maxPrice")),
        ("minPrice=1000001", "minPrice must be a price from 0 to 1000000", Some("minPrice")),
        ("page=0", "page must be between 1 and 10000", Some("page")),
        ("page=5000&limit=1000", "page × limit must stay within 100000 results", Some("page")),
        ("limit=0", "limit must be between 1 and 1000", Some("limit")),
        (&format!("q={long}"), "q must be at most 200 characters", Some("q")),
        ("q=a%20b%20c%20d%20e%20f%20g%20h%20i%20j%20k", "q must have at most 10 words", Some("q")),
        (&format!("q=x&cursor={cursor}"), "cursor is for the list without a search: use page", Some("cursor")),
        ("cursor=x", "Invalid cursor", Some("cursor")),
        ("minPrice=20&maxPrice=10", "minPrice must not be above maxPrice", Some("minPrice")),
        // Not one of the request's parameters: its name is in the message.
        ("colour=red", "colour is not a parameter of this request", None),
    ] {
        let res = app.get(&format!("/api/tickets?{query}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{query}: {body}");
        assert_eq!(body["errors"][0]["message"], message, "{query}");
        assert_eq!(body["errors"][0]["field"].as_str(), field, "{query}: {body}");
    }
}

#[actix_web::test]
async fn the_landing_page_searches_and_sorts_without_javascript() {
    let app = spawn_app().await;
    listed(&app).await;
    let page = app.browse("/?q=jazz&sort=price").send().await.unwrap().text().await.unwrap();
    let (brunch, night) = (page.find("Jazz brunch").unwrap(), page.find("cafe jazz night").unwrap());
    assert!(night < brunch, "cheapest first");
    assert!(!page.contains("Opera gala") && !page.contains("Rock<"), "only the matches");
    assert!(page.contains(r#"<option value="price" selected>"#), "the choice is kept");
    assert!(page.contains(r#"value="jazz""#), "the words are kept");
    let none = app.browse("/?q=nothing%20matches").send().await.unwrap().text().await.unwrap();
    assert!(none.contains("No tickets match."), "{none}");
    let bad = app.browse("/?sort=cheapest").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("sort must be newest, price or -price"));
}
