//! What the server and its clients say to each other: every request body,
//! reply and WebSocket frame, as serde types with no behaviour of their
//! own. The server writes them and documents them (feature `openapi`: the
//! OpenAPI schemas); `cloacinactl`'s client reads them. Field names and
//! shapes are those the published Python SDK (`cloacina-client` 0.8)
//! parses; additions are optional fields it ignores.

pub mod audit;
pub mod error;
pub mod executions;
pub mod graphs;
pub mod hosts;
pub mod keys;
pub mod list;
pub mod tenants;
pub mod triggers;
pub mod workflows;
pub mod ws;

pub use error::{ErrorBody, RefusalKind};
pub use list::{ListResponse, TenantListResponse};

/// Declares a wire type: serde both ways, and an OpenAPI schema when the
/// server asks for one.
macro_rules! wire {
    ($($item:item)*) => {
        $(
            #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
            #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
            $item
        )*
    };
}
pub(crate) use wire;
