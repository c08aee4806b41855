//! One method per route.

use std::path::Path;
use std::time::Duration;

use cloacina_wire::executions::{
    ExecuteRequest, ExecuteResponse, ExecutionDetail, ExecutionEventsResponse, ExecutionSummary,
    ExecutionTasksResponse,
};
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

use crate::{ClientError, EventStream};

/// A server, the key to call it with, and the tenant tenant-scoped routes
/// address.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    server: String,
    key: String,
    tenant: String,
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
    /// `server` is the base URL (`http://host:port`).
    pub fn new(server: &str, key: &str, tenant: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        Client {
            agent,
            server: server.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            tenant: tenant.to_owned(),
        }
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

    pub fn tasks(&self, id: &str) -> Result<ExecutionTasksResponse, ClientError> {
        self.get(&self.tenant_route(&format!("/executions/{id}/tasks")))
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
        EventStream::open(&format!(
            "{base}/v1/ws/delivery/exec_events:{execution}?token={ticket}"
        ))
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
        let mut reply = reply.map_err(|source| ClientError::Unreachable {
            server: self.server.clone(),
            source: Box::new(source),
        })?;
        let status = reply.status().as_u16();
        let retry_after = reply
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok());
        let text =
            reply
                .body_mut()
                .read_to_string()
                .map_err(|source| ClientError::Unreachable {
                    server: self.server.clone(),
                    source: Box::new(source),
                })?;
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
