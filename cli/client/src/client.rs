//! One method per route.

use std::path::Path;
use std::time::Duration;

use cloacina_wire::audit::AuditListResponse;
use cloacina_wire::executions::{
    ExecuteRequest, ExecuteResponse, ExecutionCancelResponse, ExecutionDetail,
    ExecutionEventsResponse, ExecutionSummary, ExecutionTasksResponse,
};
use cloacina_wire::graphs::{
    AccumulatorStatus, FireRequest, FireResponse, Firing, GraphStatus, InjectRequest,
    InjectResponse, PauseResponse, ReactorStatus,
};
use cloacina_wire::hosts::HostListResponse;
use cloacina_wire::keys::{
    CreateKeyRequest, KeyCreatedResponse, KeyInfo, KeyRevokedResponse, WsTicketResponse,
};
use cloacina_wire::tenants::{
    CreateTenantRequest, TenantCreatedResponse, TenantRemovedResponse, TenantSummary,
};
use cloacina_wire::workflows::{
    WorkflowDeletedResponse, WorkflowDetail, WorkflowSummary, WorkflowUploadedResponse,
};
use cloacina_wire::{ErrorBody, ListResponse, TenantListResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{AccumulatorSocket, ClientError, EventStream, TlsRoots};

/// A server, the key to call it with, and the tenant tenant-scoped routes
/// address.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// Whom an `https://` server's certificate must come from (the
    /// agent's, and the sockets').
    roots: TlsRoots,
    server: String,
    key: String,
    tenant: String,
    /// The tenant was chosen (not the `public` default): the graph routes,
    /// which otherwise act in the key's own tenant, name it (`?tenant=`).
    tenant_chosen: bool,
}

/// Filters and page of `GET .../executions`.
#[derive(Debug, Clone, Default)]
pub struct ExecutionQuery {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

type Reply = Result<ureq::http::Response<ureq::Body>, ureq::Error>;

impl Client {
    /// `server` is the base URL (`http://host:port`, or `https://`
    /// verified against the public certificate authorities; see
    /// [`Client::with_tls_roots`]).
    pub fn new(server: &str, key: &str, tenant: &str) -> Self {
        let roots = TlsRoots::public();
        Client {
            agent: agent(&roots),
            roots,
            server: server.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            tenant: tenant.to_owned(),
            tenant_chosen: false,
        }
    }

    /// Whether the tenant was chosen by the caller rather than defaulted.
    /// The graph routes and sockets act in the key's own tenant (a key of
    /// no tenant: `public`, and its lists span every tenant); a chosen
    /// tenant is passed to them as `?tenant=`, which a key of no tenant
    /// may set and a tenant key may only set to its own.
    pub fn with_tenant_chosen(mut self, chosen: bool) -> Self {
        self.tenant_chosen = chosen;
        self
    }

    /// Trust an `https://` server's certificate only if it comes from
    /// `roots` (a private CA, a self-signed server certificate), for HTTP
    /// and sockets alike.
    pub fn with_tls_roots(mut self, roots: TlsRoots) -> Self {
        self.agent = agent(&roots);
        self.roots = roots;
        self
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn upload_package(&self, file: &Path) -> Result<WorkflowUploadedResponse, ClientError> {
        let bytes = std::fs::read(file).map_err(|source| ClientError::File {
            path: file.display().to_string(),
            source,
        })?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "package.cloacina".to_owned());
        let form = ureq::unversioned::multipart::Form::new().part(
            "file",
            ureq::unversioned::multipart::Part::bytes(&bytes).file_name(&name),
        );
        let route = self.tenant_route("/workflows");
        let reply = self
            .agent
            .post(self.url(&route))
            .header("authorization", self.bearer())
            .send(form);
        self.answer(&route, reply)
    }

    pub fn workflows(&self) -> Result<TenantListResponse<WorkflowSummary>, ClientError> {
        self.get(&self.tenant_route("/workflows"))
    }

    pub fn workflow(&self, name: &str) -> Result<WorkflowDetail, ClientError> {
        self.get(&self.tenant_route(&format!("/workflows/{name}")))
    }

    pub fn delete_package(
        &self,
        name: &str,
        version: &str,
        cancel: bool,
    ) -> Result<WorkflowDeletedResponse, ClientError> {
        let route = self.tenant_route(&format!("/workflows/{name}/{version}"));
        let reply = self
            .agent
            .delete(self.url(&route))
            .header("authorization", self.bearer())
            .query("cancel", if cancel { "true" } else { "false" })
            .call();
        self.answer(&route, reply)
    }

    pub fn execute(
        &self,
        workflow: &str,
        request: &ExecuteRequest,
    ) -> Result<ExecuteResponse, ClientError> {
        self.post(
            &self.tenant_route(&format!("/workflows/{workflow}/execute")),
            request,
        )
    }

    pub fn executions(
        &self,
        query: &ExecutionQuery,
    ) -> Result<TenantListResponse<ExecutionSummary>, ClientError> {
        let route = self.tenant_route("/executions");
        let mut request = self
            .agent
            .get(self.url(&route))
            .header("authorization", self.bearer())
            .query("limit", query.limit.to_string())
            .query("offset", query.offset.to_string());
        if let Some(status) = &query.status {
            request = request.query("status", status);
        }
        if let Some(workflow) = &query.workflow {
            request = request.query("workflow", workflow);
        }
        self.answer(&route, request.call())
    }

    pub fn execution(&self, id: &str) -> Result<ExecutionDetail, ClientError> {
        self.get(&self.tenant_route(&format!("/executions/{id}")))
    }

    pub fn events(&self, id: &str) -> Result<ExecutionEventsResponse, ClientError> {
        self.get(&self.tenant_route(&format!("/executions/{id}/events")))
    }

    /// Cancels execution `id` (idempotent).
    pub fn cancel_execution(&self, id: &str) -> Result<ExecutionCancelResponse, ClientError> {
        self.post(
            &self.tenant_route(&format!("/executions/{id}/cancel")),
            &serde_json::json!({}),
        )
    }

    pub fn tasks(&self, id: &str) -> Result<ExecutionTasksResponse, ClientError> {
        self.get(&self.tenant_route(&format!("/executions/{id}/tasks")))
    }

    /// The hosts serving the tenant, oldest first.
    pub fn hosts(&self) -> Result<HostListResponse, ClientError> {
        self.get(&self.tenant_route("/hosts"))
    }

    /// The audit log, newest first (god-mode key).
    pub fn audit(&self, limit: u32, offset: u32) -> Result<AuditListResponse, ClientError> {
        self.get(&format!("/v1/audit?limit={limit}&offset={offset}"))
    }

    pub fn tenants(&self) -> Result<ListResponse<TenantSummary>, ClientError> {
        self.get("/v1/tenants")
    }

    pub fn create_tenant(
        &self,
        request: &CreateTenantRequest,
    ) -> Result<TenantCreatedResponse, ClientError> {
        self.post("/v1/tenants", request)
    }

    pub fn remove_tenant(&self, name: &str) -> Result<TenantRemovedResponse, ClientError> {
        self.delete(&format!("/v1/tenants/{name}"))
    }

    pub fn keys(&self) -> Result<ListResponse<KeyInfo>, ClientError> {
        self.get("/v1/auth/keys")
    }

    /// A key in the caller's scope, or (god mode) for `tenant`.
    pub fn create_key(
        &self,
        request: &CreateKeyRequest,
        tenant: Option<&str>,
    ) -> Result<KeyCreatedResponse, ClientError> {
        match tenant {
            Some(tenant) => self.post(&format!("/v1/tenants/{tenant}/keys"), request),
            None => self.post("/v1/auth/keys", request),
        }
    }

    pub fn revoke_key(&self, id: &str) -> Result<KeyRevokedResponse, ClientError> {
        self.delete(&format!("/v1/auth/keys/{id}"))
    }

    pub fn ws_ticket(&self) -> Result<WsTicketResponse, ClientError> {
        self.post("/v1/auth/ws-ticket", &serde_json::json!({}))
    }

    /// The execution's events pushed on the delivery socket, from the
    /// first (a fresh ticket, hello; each push acked as it is read).
    pub fn follow(&self, execution: &str) -> Result<EventStream, ClientError> {
        let ticket = self.ws_ticket()?.ticket;
        let base = self
            .server
            .strip_prefix("http")
            .map(|rest| format!("ws{rest}"))
            .ok_or_else(|| ClientError::Socket("the server URL is not http(s)".to_owned()))?;
        EventStream::open(
            &format!("{base}/v1/ws/delivery/exec_events:{execution}?token={ticket}"),
            &self.roots,
            &self.server,
        )
    }

    /// The computation graphs the key sees (`GET /v1/health/graphs`).
    pub fn graphs(&self) -> Result<ListResponse<GraphStatus>, ClientError> {
        self.get_graph_route("/v1/health/graphs", &[])
    }

    /// One graph (404 `graph_not_found`).
    pub fn graph(&self, name: &str) -> Result<GraphStatus, ClientError> {
        self.get_graph_route(&format!("/v1/health/graphs/{}", segment(name)), &[])
    }

    pub fn accumulators(&self) -> Result<ListResponse<AccumulatorStatus>, ClientError> {
        self.get_graph_route("/v1/health/accumulators", &[])
    }

    pub fn reactors(&self) -> Result<ListResponse<ReactorStatus>, ClientError> {
        self.get_graph_route("/v1/health/reactors", &[])
    }

    /// Fires a graph's reactor (named like the graph), answered once the
    /// firing is committed; 409 `reactor_paused` while it is paused.
    pub fn fire(&self, reactor: &str, request: &FireRequest) -> Result<FireResponse, ClientError> {
        self.post_graph_route(
            &format!("/v1/health/reactors/{}/fire", segment(reactor)),
            request,
        )
    }

    pub fn pause(&self, reactor: &str) -> Result<PauseResponse, ClientError> {
        self.post_graph_route(
            &format!("/v1/health/reactors/{}/pause", segment(reactor)),
            &serde_json::json!({}),
        )
    }

    pub fn resume(&self, reactor: &str) -> Result<PauseResponse, ClientError> {
        self.post_graph_route(
            &format!("/v1/health/reactors/{}/resume", segment(reactor)),
            &serde_json::json!({}),
        )
    }

    /// A reactor's firing log, newest first, at most `limit` (the server
    /// caps it at 1000).
    pub fn firings(&self, reactor: &str, limit: u32) -> Result<ListResponse<Firing>, ClientError> {
        self.get_graph_route(
            &format!("/v1/health/reactors/{}/fires", segment(reactor)),
            &[("limit", limit.to_string())],
        )
    }

    /// One event, answered once it is durable.
    pub fn inject(
        &self,
        accumulator: &str,
        event: serde_json::Value,
    ) -> Result<InjectResponse, ClientError> {
        self.post_graph_route(
            &format!("/v1/health/accumulators/{}/inject", segment(accumulator)),
            &InjectRequest { event },
        )
    }

    /// The accumulator socket in acknowledged mode, to push many events
    /// pipelined (see [`AccumulatorSocket`]).
    pub fn accumulator_socket(&self, accumulator: &str) -> Result<AccumulatorSocket, ClientError> {
        let base = self
            .server
            .strip_prefix("http")
            .map(|rest| format!("ws{rest}"))
            .ok_or_else(|| ClientError::Socket("the server URL is not http(s)".to_owned()))?;
        let mut url = format!("{base}/v1/ws/accumulator/{}?ack=1", segment(accumulator));
        if let Some(tenant) = self.tenant_query() {
            url.push_str(&format!("&tenant={}", segment(tenant)));
        }
        AccumulatorSocket::open(&url, &self.bearer(), &self.roots, &self.server)
    }

    /// `?tenant=` for the graph routes: only a chosen tenant.
    fn tenant_query(&self) -> Option<&str> {
        self.tenant_chosen.then_some(self.tenant.as_str())
    }

    fn get_graph_route<T: DeserializeOwned>(
        &self,
        route: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let mut request = self
            .agent
            .get(self.url(route))
            .header("authorization", self.bearer());
        for (name, value) in query {
            request = request.query(*name, value);
        }
        if let Some(tenant) = self.tenant_query() {
            request = request.query("tenant", tenant);
        }
        self.answer(route, request.call())
    }

    fn post_graph_route<B: Serialize, T: DeserializeOwned>(
        &self,
        route: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let mut request = self
            .agent
            .post(self.url(route))
            .header("authorization", self.bearer());
        if let Some(tenant) = self.tenant_query() {
            request = request.query("tenant", tenant);
        }
        self.answer(route, request.send_json(body))
    }

    fn get<T: DeserializeOwned>(&self, route: &str) -> Result<T, ClientError> {
        let reply = self
            .agent
            .get(self.url(route))
            .header("authorization", self.bearer())
            .call();
        self.answer(route, reply)
    }

    fn delete<T: DeserializeOwned>(&self, route: &str) -> Result<T, ClientError> {
        let reply = self
            .agent
            .delete(self.url(route))
            .header("authorization", self.bearer())
            .call();
        self.answer(route, reply)
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        route: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let reply = self
            .agent
            .post(self.url(route))
            .header("authorization", self.bearer())
            .send_json(body);
        self.answer(route, reply)
    }

    /// A 2xx body as `T`; any other status as [`ClientError::Refused`] with
    /// the server's error body.
    fn answer<T: DeserializeOwned>(&self, route: &str, reply: Reply) -> Result<T, ClientError> {
        let mut reply = reply.map_err(|source| self.unreachable(source))?;
        let status = reply.status().as_u16();
        let retry_after = reply
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok());
        let text = reply
            .body_mut()
            .read_to_string()
            .map_err(|source| self.unreachable(source))?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|source| ClientError::Unreadable {
                route: route.to_owned(),
                source: Box::new(source),
            });
        }
        let body = serde_json::from_str(&text).unwrap_or_else(|_| ErrorBody {
            error: if text.trim().is_empty() {
                "no details".to_owned()
            } else {
                text
            },
            code: "unknown".to_owned(),
            reason: None,
        });
        Err(ClientError::Refused {
            status,
            body,
            retry_after,
        })
    }

    /// No answer: a failed TLS handshake as such (not worth retrying as
    /// it stands), anything else as an unreachable server.
    fn unreachable(&self, source: ureq::Error) -> ClientError {
        match crate::tls::in_http(&source) {
            Some(source) => ClientError::Tls {
                server: self.server.clone(),
                source,
            },
            None => ClientError::Unreachable {
                server: self.server.clone(),
                source: Box::new(source),
            },
        }
    }

    fn url(&self, route: &str) -> String {
        format!("{}{route}", self.server)
    }

    fn tenant_route(&self, rest: &str) -> String {
        format!("/v1/tenants/{}{rest}", self.tenant)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.key)
    }
}

/// The HTTP agent: statuses are answers, not errors; `https://` servers
/// verified against `roots`.
fn agent(roots: &TlsRoots) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .tls_config(roots.http())
        .build()
        .into()
}

/// A name as one path segment (or query value): unreserved characters as
/// they are, every other byte percent-encoded.
fn segment(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(super::segment("climate_2"), "climate_2");
        assert_eq!(super::segment("a/b c?"), "a%2Fb%20c%3F");
    }
}
