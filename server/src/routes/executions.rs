//! Executions: start one, list with filters and pages, read one, its
//! events and its tasks. Each lives in its tenant's own database.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use cloacina_runtime::{
    Event, ExecutionId, ExecutionResult, ExecutionStatus, Runner, RuntimeError,
};
use cloacina_wire::TenantListResponse;
use cloacina_wire::executions::{
    ExecuteRequest, ExecuteResponse, ExecutionCancelResponse, ExecutionDetail, ExecutionEvent,
    ExecutionEventsResponse, ExecutionSummary, ExecutionTasksResponse, TaskExecutionDetail,
};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::routes::{MAX_PAGE, Page, rfc3339};
use crate::state::AppState;

/// Starts the workflow's highest registered version (or the `version`
/// asked for); 202 at once.
/// How soon to ask again for a workflow that is registered but still
/// loading on this host.
const WORKFLOW_LOADING_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant_id}/workflows/{name}/execute",
    operation_id = "execute_workflow",
    summary = "Start an execution (202 at once)",
    tag = "executions",
    params(("tenant_id" = String, Path, description = "The tenant"), ("name" = String, Path, description = "Workflow name")),
    request_body = ExecuteRequest,
    responses((status = 202, body = ExecuteResponse)),
    security(("bearer" = []))
)]
pub async fn execute(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((tenant_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<ExecuteResponse>)> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "invalid_request"
        };
        ApiError::new(status, code, rejection.body_text())
    })?;
    let tenant = state.tenant_for(&caller, Role::Write, &tenant_id).await?;
    // The body is optional; when there is one it is a JSON object.
    let context = if body.iter().all(u8::is_ascii_whitespace) {
        (json!({}), None)
    } else {
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be application/json",
            ));
        }
        let request: ExecuteRequest = serde_json::from_slice(&body).map_err(|error| {
            ApiError::bad_request("invalid_request", format!("malformed JSON: {error}"))
        })?;
        let version = request
            .version
            .as_deref()
            .map(|text| {
                semver::Version::parse(text).map_err(|error| {
                    ApiError::bad_request("invalid_request", format!("version `{text}`: {error}"))
                })
            })
            .transpose()?;
        (request.context.unwrap_or_else(|| json!({})), version)
    };
    let (context, version) = context;
    let started = match &version {
        Some(version) => {
            tenant
                .runner()
                .execute_version(&name, version, context)
                .await
        }
        None => tenant.runner().execute_async(&name, context).await,
    };
    let id = match started {
        Ok(id) => id,
        Err(RuntimeError::UnknownWorkflow(_))
            if super::workflows::is_registered(&state, &tenant, &name, version.as_ref())
                .await? =>
        {
            // Registered, and being loaded here (a host that just started,
            // a package just uploaded): it will run in a moment.
            state.metrics.execution_started("refused");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "workflow_loading",
                format!(
                    "workflow `{name}` is registered but not loaded on this host yet; retry shortly"
                ),
            )
            .retry_after(WORKFLOW_LOADING_RETRY));
        }
        Err(error) => {
            state.metrics.execution_started("refused");
            return Err(match error {
                RuntimeError::UnknownWorkflow(_)
                | RuntimeError::ContextNotAnObject(_)
                | RuntimeError::ContextNotJson(_) => {
                    ApiError::bad_request("execution_failed", error.to_string())
                }
                other => ApiError::internal("starting an execution", other),
            });
        }
    };
    state.metrics.execution_started("started");
    Ok((
        StatusCode::ACCEPTED,
        Json(ExecuteResponse {
            execution_id: id.to_string(),
            workflow_name: name,
            tenant_id: tenant.tenant().to_string(),
            status: "scheduled".to_owned(),
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    workflow: Option<String>,
    // Not flattened: serde_urlencoded cannot read numbers through flatten.
    limit: Option<i64>,
    offset: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/executions",
    operation_id = "list_executions",
    summary = "Executions, newest first",
    tag = "executions",
    params(("tenant_id" = String, Path, description = "The tenant"), ("status" = Option<String>, Query, description = "Running, Completed, Failed or Cancelled"), ("workflow" = Option<String>, Query, description = "Only this workflow"), ("limit" = Option<i64>, Query, description = "1 to 1000 (default 50)"), ("offset" = Option<i64>, Query, description = "Items to skip")),
    responses((status = 200, body = TenantListResponse<ExecutionSummary>)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<TenantListResponse<ExecutionSummary>>> {
    caller.require(Role::Read)?;
    let Query(query) = query
        .map_err(|rejection| ApiError::bad_request("invalid_pagination", rejection.body_text()))?;
    let (limit, offset) = Page {
        limit: query.limit,
        offset: query.offset,
    }
    .checked(50)?;
    let tenant = state.tenant_for(&caller, Role::Read, &tenant_id).await?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(ExecutionStatus::parse(&text.to_lowercase()).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_request",
                format!("unknown status `{text}` (Running, Completed, Failed, Cancelled)"),
            )
        })?),
    };
    let workflow = query.workflow.as_deref();
    let runner = tenant.runner();
    let (executions, total) = tokio::try_join!(
        runner.executions(workflow, status, limit.min(MAX_PAGE), offset),
        runner.count_executions(workflow, status),
    )
    .map_err(|error| ApiError::internal("listing executions", error))?;
    Ok(Json(TenantListResponse {
        tenant_id: tenant.tenant().to_string(),
        total: u64::try_from(total).unwrap_or(0),
        items: executions.iter().map(summary).collect(),
    }))
}

fn summary(execution: &ExecutionResult) -> ExecutionSummary {
    ExecutionSummary {
        id: execution.execution_id.to_string(),
        workflow_name: execution.workflow_name.clone(),
        package_name: execution.package_name.clone(),
        package_version: execution.package_version.to_string(),
        status: status_name(execution.status).to_owned(),
        started_at: rfc3339(execution.started_at_ms),
        completed_at: execution.completed_at_ms.map(rfc3339),
    }
}

/// The reference's capitalized status names.
pub fn status_name(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Running => "Running",
        ExecutionStatus::Completed => "Completed",
        ExecutionStatus::Failed => "Failed",
        ExecutionStatus::Cancelled => "Cancelled",
    }
}

fn execution_id(text: &str) -> ApiResult<ExecutionId> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_request", "invalid execution ID"))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/executions/{exec_id}",
    operation_id = "get_execution",
    summary = "An execution",
    tag = "executions",
    params(("tenant_id" = String, Path, description = "The tenant"), ("exec_id" = String, Path, description = "The execution's id (UUID)")),
    responses((status = 200, body = ExecutionDetail)),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((tenant_id, exec_id)): Path<(String, String)>,
) -> ApiResult<Json<ExecutionDetail>> {
    let id = execution_id(&exec_id)?;
    let tenant = state.tenant_for(&caller, Role::Read, &tenant_id).await?;
    if let Some(answer) = state.ended.get(tenant.tenant(), id) {
        return Ok(Json((*answer).clone()));
    }
    let execution = current(tenant.runner(), id).await?;
    let input_context = tenant
        .runner()
        .input_context(id)
        .await
        .map_err(|error| ApiError::internal("reading an execution's input", error))?;
    let answer = ExecutionDetail {
        tenant_id: tenant.tenant().to_string(),
        execution_id: id.to_string(),
        status: status_name(execution.status).to_owned(),
        package_version: execution.package_version.to_string(),
        started_at: rfc3339(execution.started_at_ms),
        completed_at: execution.completed_at_ms.map(rfc3339),
        workflow_name: execution.workflow_name,
        package_name: execution.package_name,
        final_context: execution.final_context,
        input_context,
        error: execution.error,
        failed_task: execution.failed_task,
    };
    if execution.status.is_terminal() {
        state
            .ended
            .insert(tenant.tenant(), id, Arc::new(answer.clone()));
    }
    Ok(Json(answer))
}

/// Cancels an execution: its waiting tasks end cancelled and its running
/// tasks are asked to stop, on whichever host runs them; no further task
/// starts. Cancelling an execution that has ended changes nothing (200,
/// `cancelled: false`).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant_id}/executions/{exec_id}/cancel",
    operation_id = "cancel_execution",
    summary = "Cancel an execution (idempotent)",
    tag = "executions",
    params(("tenant_id" = String, Path, description = "The tenant"), ("exec_id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, body = ExecutionCancelResponse),
        (status = 404, description = "No such execution", body = cloacina_wire::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((tenant_id, exec_id)): Path<(String, String)>,
) -> ApiResult<Json<ExecutionCancelResponse>> {
    let id = execution_id(&exec_id)?;
    let tenant = state.tenant_for(&caller, Role::Write, &tenant_id).await?;
    let runner = tenant.runner();
    current(runner, id).await?;
    let cancelled = runner
        .cancel(id)
        .await
        .map_err(|error| ApiError::internal("cancelling an execution", error))?;
    let now = current(runner, id).await?;
    if cancelled {
        tracing::info!(tenant = %tenant.tenant(), execution = %id, "execution cancelled");
    }
    Ok(Json(ExecutionCancelResponse {
        tenant_id: tenant.tenant().to_string(),
        execution_id: id.to_string(),
        cancelled,
        status: status_name(now.status).to_owned(),
    }))
}

/// Execution `id` as it stands, or 404 `execution_not_found`.
async fn current(runner: &Runner, id: ExecutionId) -> ApiResult<ExecutionResult> {
    match runner.status(id).await {
        Ok(execution) => Ok(execution),
        Err(RuntimeError::UnknownExecution(_)) => Err(ApiError::not_found(
            "execution_not_found",
            format!("execution {id} not found"),
        )),
        Err(error) => Err(ApiError::internal("reading an execution", error)),
    }
}

/// The event as the REST API and the delivery socket show it.
pub fn wire_event(event: &Event) -> ExecutionEvent {
    ExecutionEvent {
        id: format!("{}-{}", event.execution_id, event.sequence_num),
        execution_id: event.execution_id.to_string(),
        event_type: event.event_type.as_str().to_owned(),
        task_name: event.task_name.clone(),
        event_data: event.event_data.as_ref().map(|data| data.to_string()),
        sequence_num: event.sequence_num,
        created_at: rfc3339(event.created_at_ms),
    }
}

/// Events in order; an unknown id has none (200, empty).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/executions/{exec_id}/events",
    operation_id = "execution_events",
    summary = "An execution's events in order (an unknown id has none)",
    tag = "executions",
    params(("tenant_id" = String, Path, description = "The tenant"), ("exec_id" = String, Path, description = "The execution's id (UUID)")),
    responses((status = 200, body = ExecutionEventsResponse)),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((tenant_id, exec_id)): Path<(String, String)>,
) -> ApiResult<Json<ExecutionEventsResponse>> {
    let id = execution_id(&exec_id)?;
    let tenant = state.tenant_for(&caller, Role::Read, &tenant_id).await?;
    let events = tenant
        .runner()
        .events(id, 0)
        .await
        .map_err(|error| ApiError::internal("reading events", error))?;
    Ok(Json(ExecutionEventsResponse {
        tenant_id: tenant.tenant().to_string(),
        execution_id: id.to_string(),
        events: events.iter().map(wire_event).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/executions/{exec_id}/tasks",
    operation_id = "execution_tasks",
    summary = "An execution's tasks",
    tag = "executions",
    params(("tenant_id" = String, Path, description = "The tenant"), ("exec_id" = String, Path, description = "The execution's id (UUID)")),
    responses((status = 200, body = ExecutionTasksResponse)),
    security(("bearer" = []))
)]
pub async fn tasks(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((tenant_id, exec_id)): Path<(String, String)>,
) -> ApiResult<Json<ExecutionTasksResponse>> {
    let id = execution_id(&exec_id)?;
    let tenant = state.tenant_for(&caller, Role::Read, &tenant_id).await?;
    let tasks = tenant
        .runner()
        .tasks(id)
        .await
        .map_err(|error| ApiError::internal("reading tasks", error))?;
    let tasks = tasks
        .iter()
        .map(|task| TaskExecutionDetail {
            id: format!("{id}-{}", task.task_name),
            task_name: task.task_name.clone(),
            status: task.status.as_str().to_owned(),
            attempt: task.attempt,
            max_attempts: task.max_attempts,
            created_at: rfc3339(task.created_at_ms),
            updated_at: rfc3339(
                task.completed_at_ms
                    .or(task.started_at_ms)
                    .unwrap_or(task.created_at_ms),
            ),
            started_at: task.started_at_ms.map(rfc3339),
            completed_at: task.completed_at_ms.map(rfc3339),
            last_error: task.last_error.clone(),
            error_details: task.last_error.clone(),
            sub_status: None,
            output: task.output.clone(),
            package_version: task.package_version.to_string(),
        })
        .collect();
    Ok(Json(ExecutionTasksResponse {
        tenant_id: tenant.tenant().to_string(),
        execution_id: id.to_string(),
        tasks,
    }))
}
