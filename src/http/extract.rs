//! JSON bodies arrive as a [`JsonObject`], so a wrong shape is a 400 in the API's format and
//! field rules can report every failure; an oversize body is a 413.

use crate::edge::error::{unreadable_body, ApiError};
use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::Future;
use std::pin::Pin;

/// A JSON object body (an array, a string or `null` is a 400).
pub struct JsonObject(pub serde_json::Map<String, serde_json::Value>);

impl JsonObject {
    pub fn get(&self, field: &str) -> Option<&serde_json::Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// A field as text, if it is a string.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.get(field).and_then(|v| v.as_str())
    }
}

impl FromRequest for JsonObject {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            match json.await {
                Ok(web::Json(serde_json::Value::Object(map))) => Ok(JsonObject(map)),
                Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
                Err(e) => Err(json_error(e)),
            }
        })
    }
}

/// Maps actix's JSON errors to the API's: a wrong content type or malformed JSON is a 400 that
/// says so; the body itself is judged as every body is (oversize 413, `unreadable_body`).
pub fn json_error(e: actix_web::Error) -> ApiError {
    match e.as_error::<JsonPayloadError>() {
        Some(JsonPayloadError::ContentType) => ApiError::bad_request("Content-Type must be application/json"),
        Some(JsonPayloadError::Deserialize(err)) => ApiError::bad_request(format!("Malformed JSON: {err}")),
        _ => unreadable_body(&e),
    }
}
