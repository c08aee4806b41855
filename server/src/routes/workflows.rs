//! Workflow packages: multipart upload into the tenant's registry, list,
//! detail with the task graph and load status, delete a version.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use cloacina_contract::Declaration;
use cloacina_host::{OnRunning, TenantHost};
use cloacina_package::reader::detect;
use cloacina_package::{Package, PackageError, ReadError, ReadLimits};
use cloacina_registry::{Archive, PackageRecord, PackageStatus, Refusal, RegistryError};
use cloacina_wire::TenantListResponse;
use cloacina_wire::workflows::{
    LoadStatus, PackageFacts, PackageUploadForm, WorkflowDeletedResponse, WorkflowDetail,
    WorkflowSummary, WorkflowTaskNode, WorkflowUploadedResponse,
};
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use crate::audit::Action;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::limits::Limits;
use crate::routes::rfc3339;
use crate::state::AppState;
use cloacina_wire::ErrorBody;

/// A package's id on the wire: its archive digest, shaped as a UUID.
fn package_id(record: &PackageRecord) -> String {
    let bytes = hex::decode(record.sha256.get(..32).unwrap_or_default()).unwrap_or_default();
    uuid::Uuid::from_slice(&bytes)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| record.sha256.clone())
}

/// Every registered package of the tenant with its declaration.
pub(crate) async fn catalog(
    state: &AppState,
    tenant: &TenantHost,
) -> ApiResult<Vec<(PackageRecord, Arc<Declaration>)>> {
    let records = tenant
        .registry()
        .list()
        .await
        .map_err(|error| ApiError::internal("listing packages", error))?;
    let mut catalog = Vec::with_capacity(records.len());
    for record in records {
        let cached = state
            .declarations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&record.sha256)
            .cloned();
        let declaration = match cached {
            Some(declaration) => declaration,
            None => {
                let bytes = match tenant
                    .registry()
                    .archive(&record.name, &record.version)
                    .await
                {
                    Ok(bytes) => bytes,
                    // Removed meanwhile.
                    Err(RegistryError::NotFound { .. }) => continue,
                    Err(error) => return Err(ApiError::internal("reading a package", error)),
                };
                // Only the manifest is held; the rest is hashed past.
                let declaration = tokio::task::spawn_blocking(move || {
                    Package::peek_manifest(
                        std::io::Cursor::new(&bytes),
                        bytes.len() as u64,
                        &ReadLimits::default(),
                    )
                    .map(|manifest| manifest.declaration().clone())
                    .unwrap_or_default()
                })
                .await
                .map_err(|error| ApiError::internal("reading a package", error))?;
                let declaration = Arc::new(declaration);
                state
                    .declarations
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(record.sha256.clone(), declaration.clone());
                declaration
            }
        };
        catalog.push((record, declaration));
    }
    Ok(catalog)
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/workflows",
    operation_id = "list_workflows",
    summary = "Every workflow of every registered package version",
    tag = "workflows",
    params(("tenant_id" = String, Path, description = "The tenant")),
    responses((status = 200, body = TenantListResponse<WorkflowSummary>)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<TenantListResponse<WorkflowSummary>>> {
    let tenant = state.tenant_for(&caller, Role::Read, &tenant_id).await?;
    let names = signer_names(&state).await?;
    let mut items = Vec::new();
    for (record, declaration) in catalog(&state, &tenant).await? {
        for workflow in &declaration.workflows {
            // The version new executions of this workflow start on.
            let live = tenant
                .runner()
                .workflow_owner(workflow.name.as_str())
                .is_some_and(|owner| owner.name == record.name && owner.version == record.version);
            items.push(WorkflowSummary {
                id: package_id(&record),
                package_name: record.name.clone(),
                version: record.version.to_string(),
                workflow_name: workflow.name.to_string(),
                description: non_empty(&workflow.description),
                tasks: workflow.tasks.iter().map(ToString::to_string).collect(),
                task_graph: task_graph(&declaration, workflow),
                created_at: rfc3339(record.created_at_ms),
                status: load_status(&record.status),
                live,
                package: Some(package_facts(&record, &names)),
            });
        }
    }
    Ok(Json(TenantListResponse {
        tenant_id: tenant.tenant().to_string(),
        total: items.len() as u64,
        items,
    }))
}

/// Whether a registered package (of `version`, when given) declares
/// workflow `name`, loaded on this host or not.
pub(crate) async fn is_registered(
    state: &AppState,
    tenant: &TenantHost,
    name: &str,
    version: Option<&semver::Version>,
) -> ApiResult<bool> {
    Ok(catalog(state, tenant)
        .await?
        .iter()
        .filter(|(record, _)| version.is_none_or(|version| &record.version == version))
        .any(|(_, declaration)| {
            declaration
                .workflows
                .iter()
                .any(|workflow| workflow.name.as_str() == name)
        }))
}

/// The highest version of the workflow (by workflow or package name).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/workflows/{name}",
    operation_id = "get_workflow",
    summary = "The highest version of a workflow (by workflow or package name)",
    tag = "workflows",
    params(("tenant_id" = String, Path, description = "The tenant"), ("name" = String, Path, description = "Workflow or package name")),
    responses((status = 200, body = WorkflowDetail)),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((tenant_id, name)): Path<(String, String)>,
) -> ApiResult<Json<WorkflowDetail>> {
    let tenant = state.tenant_for(&caller, Role::Read, &tenant_id).await?;
    let names = signer_names(&state).await?;
    let found = catalog(&state, &tenant)
        .await?
        .into_iter()
        .flat_map(|(record, declaration)| {
            declaration
                .workflows
                .iter()
                .filter(|w| w.name.as_str() == name || record.name == name)
                .map(|w| (record.clone(), declaration.clone(), w.clone()))
                .collect::<Vec<_>>()
        })
        // A workflow of that name first (a package may hold several, one
        // of them named like the package), then the highest version.
        .max_by(|a, b| {
            let named = |found: &(_, _, cloacina_contract::manifest::WorkflowDeclaration)| {
                found.2.name.as_str() == name
            };
            (named(a), &a.0.version).cmp(&(named(b), &b.0.version))
        });
    let Some((record, declaration, workflow)) = found else {
        return Err(ApiError::not_found(
            "workflow_not_found",
            format!("workflow '{name}' not found"),
        ));
    };
    let task_graph = task_graph(&declaration, &workflow);
    let (build_status, build_error) = match &record.status {
        PackageStatus::Pending => ("pending", None),
        PackageStatus::Loaded => ("loaded", None),
        PackageStatus::Failed(error) => ("failed", Some(error.clone())),
    };
    Ok(Json(WorkflowDetail {
        tenant_id: tenant.tenant().to_string(),
        id: package_id(&record),
        version: record.version.to_string(),
        workflow_name: workflow.name.to_string(),
        description: non_empty(&workflow.description),
        tasks: workflow.tasks.iter().map(ToString::to_string).collect(),
        task_graph,
        build_status: build_status.to_owned(),
        build_error,
        created_at: rfc3339(record.created_at_ms),
        package: Some(package_facts(&record, &names)),
        package_name: record.name,
        signer_key_id: record.signer_key_id,
        sha256: record.sha256,
    }))
}

/// Uploads: each spooled to a temporary file (never held whole in memory
/// before it is verified), then a few verified at once.
#[derive(Debug)]
pub struct UploadGate {
    permits: Arc<tokio::sync::Semaphore>,
    max_bytes: u64,
}

impl UploadGate {
    pub fn new(limits: &Limits) -> Self {
        UploadGate {
            permits: Arc::new(tokio::sync::Semaphore::new(
                limits.concurrent_uploads.max(1),
            )),
            max_bytes: limits.max_upload_bytes,
        }
    }

    /// The body limit of the upload route: the file and its multipart
    /// framing.
    pub fn body_limit(&self) -> usize {
        usize::try_from(self.max_bytes + MULTIPART_SLACK).unwrap_or(usize::MAX)
    }

    fn too_large(&self) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("uploads are limited to {} MiB", self.max_bytes >> 20),
        )
    }
}

/// Room for multipart boundaries and part headers around the file.
const MULTIPART_SLACK: u64 = 64 << 10;

/// Multipart field `file`: refused at its first bytes when it is not an
/// archive, spooled to a temporary file up to the size limit, verified
/// against the trust store off the async workers in bounded memory,
/// registered, and the host woken to load it.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant_id}/workflows",
    operation_id = "upload_workflow",
    summary = "Upload a .cloacina package (verified, then registered)",
    tag = "workflows",
    params(("tenant_id" = String, Path, description = "The tenant")),
    request_body(content = PackageUploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = WorkflowUploadedResponse), (status = 503, description = "The host cannot decide now; retry after Retry-After", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn upload(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<(StatusCode, Json<WorkflowUploadedResponse>)> {
    // Too large by its own account: refused before a byte is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.uploads.body_limit() as u64) {
        return Err(state.uploads.too_large());
    }
    let tenant = state.tenant_for(&caller, Role::Write, &tenant_id).await?;
    let mut multipart = multipart.map_err(|rejection| {
        ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
    })?;
    let result = receive_and_register(&state, &tenant, &mut multipart).await;
    state.metrics.upload(if result.is_ok() {
        "registered"
    } else {
        "refused"
    });
    let (record, created) = result?;
    if created {
        tracing::info!(tenant = %tenant.tenant(), package = %record.name, version = %record.version, "package uploaded");
        state
            .audit
            .record(
                &caller,
                Action::PackageUpload,
                Some(tenant.tenant().as_str()),
                &format!("{}@{}", record.name, record.version),
                Some(serde_json::json!({"sha256": record.sha256})),
            )
            .await;
    }
    state.host.wake();
    Ok((
        StatusCode::CREATED,
        Json(WorkflowUploadedResponse {
            package_id: package_id(&record),
            tenant_id: tenant.tenant().to_string(),
            version: record.version.to_string(),
            package_name: record.name,
            created,
        }),
    ))
}

async fn receive_and_register(
    state: &AppState,
    tenant: &TenantHost,
    multipart: &mut Multipart,
) -> ApiResult<(PackageRecord, bool)> {
    let spooled = loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|error| ApiError::new(error.status(), "invalid_request", error.body_text()))?;
        let Some(field) = field else {
            return Err(ApiError::bad_request(
                "invalid_request",
                "no 'file' field in multipart request",
            ));
        };
        if field.name() == Some("file") {
            break spool(&state.uploads, field).await?;
        }
    };
    // A few verifications at once; the permit lives as long as the
    // verification does, even if the request is dropped meanwhile.
    let Ok(permit) = state.uploads.permits.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_busy",
            "the server is verifying as many uploads as it may; retry shortly",
        )
        .retry_after(std::time::Duration::from_secs(2)));
    };
    let admission = state.admission();
    let tenant_id = tenant.tenant().clone();
    let admitted = tokio::spawn(async move {
        let _permit = permit;
        admission
            .verify(Archive::Spooled(spooled.file), &tenant_id)
            .await
    })
    .await
    .map_err(|error| ApiError::internal("verifying an upload", error))??;
    let upload = admitted.register(tenant.registry(), None).await?;
    Ok((upload.record, upload.created))
}

/// An upload written to a temporary file (deleted when dropped).
struct Spooled {
    file: std::fs::File,
}

/// Streams the field into a temporary file: refused at its first bytes
/// when they start no archive, and as soon as it passes the size limit.
async fn spool(
    gate: &UploadGate,
    mut field: axum::extract::multipart::Field<'_>,
) -> ApiResult<Spooled> {
    let failed =
        |error: std::io::Error| ApiError::from(Refusal::host("spooling the upload", error));
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|error| ApiError::internal("spooling an upload", error))?
        .map_err(failed)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut size = 0u64;
    let mut head = Vec::with_capacity(4);
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|error| ApiError::new(error.status(), "upload_failed", error.body_text()))?
    {
        if head.len() < 4 {
            let wanted = (4 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..wanted]);
            if head.len() == 4 && detect(&head).is_none() {
                return Err(not_an_archive());
            }
        }
        size += chunk.len() as u64;
        if size > gate.max_bytes {
            return Err(gate.too_large());
        }
        file.write_all(&chunk).await.map_err(failed)?;
    }
    if size == 0 {
        return Err(ApiError {
            reason: Some(cloacina_wire::RefusalKind::InvalidPackage),
            ..ApiError::bad_request("upload_failed", "empty package file")
        });
    }
    if detect(&head).is_none() {
        return Err(not_an_archive());
    }
    file.flush().await.map_err(failed)?;
    Ok(Spooled {
        file: file.into_std().await,
    })
}

fn not_an_archive() -> ApiError {
    ApiError::from(Refusal::Invalid(PackageError::Read(
        ReadError::NotAnArchive,
    )))
}

#[derive(Debug, Deserialize)]
pub struct DeleteOptions {
    /// Cancel executions still running on the version instead of letting
    /// them finish.
    #[serde(default)]
    cancel: bool,
}

/// Unregisters a version; idempotent. Says which executions still run on
/// it (they finish there, or are cancelled with `?cancel=true`).
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant_id}/workflows/{name}/{version}",
    operation_id = "delete_workflow",
    summary = "Unregister a package version (idempotent)",
    tag = "workflows",
    params(("tenant_id" = String, Path, description = "The tenant"), ("name" = String, Path, description = "Package name"), ("version" = String, Path, description = "Package version"), ("cancel" = Option<bool>, Query, description = "Cancel executions still running on it")),
    responses((status = 200, body = WorkflowDeletedResponse)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((tenant_id, name, version)): Path<(String, String, String)>,
    Query(options): Query<DeleteOptions>,
) -> ApiResult<Json<WorkflowDeletedResponse>> {
    let tenant = state.tenant_for(&caller, Role::Write, &tenant_id).await?;
    let parsed = semver::Version::parse(&version).map_err(|error| {
        ApiError::bad_request("invalid_request", format!("version `{version}`: {error}"))
    })?;
    let on_running = if options.cancel {
        OnRunning::Cancel
    } else {
        OnRunning::Wait
    };
    let removal = state
        .host
        .remove_package(tenant.tenant(), &name, &parsed, on_running)
        .await
        .map_err(|error| ApiError::internal("removing a package", error))?;
    if removal.removed {
        state
            .audit
            .record(
                &caller,
                Action::PackageDelete,
                Some(tenant.tenant().as_str()),
                &format!("{name}@{version}"),
                Some(serde_json::json!({"cancelled": removal.cancelled})),
            )
            .await;
    }
    Ok(Json(WorkflowDeletedResponse {
        status: "deleted".to_owned(),
        package_name: name,
        version,
        was_registered: removal.removed,
        running_executions: removal.running.iter().map(ToString::to_string).collect(),
        cancelled: removal.cancelled,
    }))
}

/// A workflow's tasks with their dependencies (`WorkflowTaskNode`s).
fn task_graph(
    declaration: &Declaration,
    workflow: &cloacina_contract::manifest::WorkflowDeclaration,
) -> Vec<WorkflowTaskNode> {
    workflow
        .tasks
        .iter()
        .filter_map(|id| declaration.tasks.iter().find(|t| t.id == *id))
        .map(|task| WorkflowTaskNode {
            id: task.id.to_string(),
            dependencies: task.dependencies.iter().map(ToString::to_string).collect(),
            description: non_empty(&task.description),
            max_attempts: task.retry.max_attempts,
            backoff: task.retry.backoff.to_string(),
            retry_delay_ms: task.retry.delay_ms,
            timeout_ms: task.timeout_ms,
        })
        .collect()
}

/// Signer key ids and their names in the host's trust store.
type SignerNames = std::collections::HashMap<String, String>;

async fn signer_names(state: &AppState) -> ApiResult<SignerNames> {
    let entries = state
        .host
        .trust()
        .list()
        .await
        .map_err(|error| ApiError::internal("reading the trust store", error))?;
    Ok(entries
        .into_iter()
        .map(|entry| (entry.key_id, entry.name))
        .collect())
}

/// What a package version is made of and where it came from.
fn package_facts(record: &PackageRecord, names: &SignerNames) -> PackageFacts {
    PackageFacts {
        signer_name: record
            .signer_key_id
            .as_ref()
            .and_then(|id| names.get(id).cloned()),
        signer_key_id: record.signer_key_id.clone(),
        size_bytes: record.size,
        artifacts: record.runtimes.clone(),
        source: record.source.clone().unwrap_or_else(|| "upload".to_owned()),
    }
}

fn load_status(status: &PackageStatus) -> LoadStatus {
    match status {
        PackageStatus::Pending => LoadStatus::Pending,
        PackageStatus::Loaded => LoadStatus::Loaded,
        PackageStatus::Failed(error) => LoadStatus::Failed(error.clone()),
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}
