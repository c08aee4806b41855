//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the
//! handlers' `#[utoipa::path]` annotations and the wire types, collected by
//! the same router that serves them (`routes::api`), so a route cannot be
//! served undocumented or documented unserved.

use std::sync::OnceLock;

use axum::Json;
use cloacina_wire::ErrorBody;
use utoipa::Modify;
use utoipa::OpenApi as _;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "cloacina server",
        description = "Wire-compatible with cloacina-client 0.8.0. Every error is {\"error\", \"code\"} (upload refusals add \"reason\"); lists are {\"items\", \"total\"}; 503 answers carry Retry-After."
    ),
    modifiers(&BearerKeys),
    components(schemas(ErrorBody, cloacina_wire::ws::ClientFrame, cloacina_wire::ws::ServerFrame))
)]
struct Base;

/// The `bearer` scheme every authenticated route names.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A clk_ API key"))
                    .build(),
            ),
        );
    }
}

/// The document's starting point: title, security scheme, shared schemas.
pub(crate) fn base() -> OpenApi {
    let mut base = Base::openapi();
    base.info.version = env!("CARGO_PKG_VERSION").to_owned();
    base
}

/// The whole document, built once.
pub fn spec() -> &'static OpenApi {
    static SPEC: OnceLock<OpenApi> = OnceLock::new();
    SPEC.get_or_init(|| {
        // Layers (body limits) leave the document as it is.
        let mut document = super::api(0).into_openapi();
        every_failure_is_an_error_body(&mut document);
        document
    })
}

/// One rule for every operation, stated once rather than on each
/// handler: any status it does not list answers `ErrorBody`.
fn every_failure_is_an_error_body(document: &mut OpenApi) {
    let failure = ResponseBuilder::new()
        .description("Every failure: `{error, code}` (uploads add `reason`)")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for item in document.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            operation
                .responses
                .responses
                .entry("default".to_owned())
                .or_insert_with(|| failure.clone().into());
        }
    }
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    summary = "This document",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn document() -> Json<&'static OpenApi> {
    Json(spec())
}
