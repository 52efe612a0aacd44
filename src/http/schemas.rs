//! The bodies the API's document names that no type of the handlers is: what a request sends
//! (credentials, a ticket's draft, an order, a payment) and a few answers (the error body, a
//! user). The handlers read and write plain JSON; these types exist for the schema
//! (`super::openapi`), so a handler and the document can both name them without naming each
//! other.

use serde::Serialize;
use utoipa::ToSchema;

/// The API's error body: one entry per failure, `field` naming the body field or query
/// parameter that is not right, where there is one.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<ErrorEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorEntry {
    pub message: String,
    #[schema(nullable = false)]
    pub field: Option<String>,
}

/// Sign-up and sign-in.
#[derive(Serialize, ToSchema)]
pub struct Credentials {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    #[schema(min_length = 4, max_length = 20)]
    pub password: String,
}

/// A password reset request.
#[derive(Serialize, ToSchema)]
pub struct EmailBody {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
}

/// A password reset: the link's token and the new password.
#[derive(Serialize, ToSchema)]
pub struct ResetBody {
    #[schema(min_length = 96, max_length = 96, pattern = "^[0-9a-f]{96}$")]
    pub token: String,
    #[schema(min_length = 4, max_length = 20)]
    pub password: String,
}

/// An answer in words.
#[derive(Serialize, ToSchema)]
pub struct MessageBody {
    pub message: String,
}

/// A signed-in user.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    #[schema(format = "uuid")]
    pub id: String,
    pub email: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentUser {
    /// `null` when signed out.
    pub current_user: Option<CurrentUserClaims>,
}

#[derive(Serialize, ToSchema)]
pub struct CurrentUserClaims {
    #[schema(format = "uuid")]
    pub id: String,
    pub email: String,
    pub iat: i64,
}

/// A ticket's title and price (a number, or a numeric string).
#[derive(Serialize, ToSchema)]
pub struct TicketDraftBody {
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    #[schema(value_type = f64, minimum = 0.01, maximum = 1_000_000)]
    pub price: f64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    #[schema(format = "uuid")]
    pub ticket_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewPayment {
    /// A card token (`tok_visa` pays, `tok_chargeDeclined` is declined).
    #[schema(min_length = 1)]
    pub token: String,
    #[schema(format = "uuid")]
    pub order_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentView {
    #[schema(format = "uuid")]
    pub id: String,
}
