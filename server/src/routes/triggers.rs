//! Cron schedules and poll triggers of the tenant's loaded packages.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use cloacina_registry::PackageStatus;
use cloacina_runtime::schedule::CronSchedule;
use cloacina_wire::TenantListResponse;
use cloacina_wire::triggers::{
    TriggerDetailResponse, TriggerExecution, TriggerScheduleInfo, TriggerScheduleSummary,
};

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::routes::workflows::catalog;
use crate::routes::{Page, rfc3339};
use crate::state::AppState;

/// One schedule as the API shows it.
struct Schedule {
    id: String,
    schedule_type: &'static str,
    name: String,
    workflow_name: String,
    cron_expression: Option<String>,
    poll_interval_ms: Option<u64>,
    /// A cron schedule's next occurrence.
    next_run_at_ms: Option<i64>,
    created_at_ms: i64,
}

impl Schedule {
    fn summary(&self) -> TriggerScheduleSummary {
        let info = self.info();
        TriggerScheduleSummary {
            id: info.id,
            schedule_type: info.schedule_type,
            workflow_name: info.workflow_name,
            enabled: info.enabled,
            cron_expression: info.cron_expression,
            trigger_name: info.trigger_name,
            schedule_name: self.name.clone(),
            poll_interval_ms: info.poll_interval_ms,
            next_run_at: self.next_run_at_ms.map(rfc3339),
            last_run_at: None,
            created_at: rfc3339(self.created_at_ms),
        }
    }

    fn info(&self) -> TriggerScheduleInfo {
        TriggerScheduleInfo {
            id: self.id.clone(),
            schedule_type: self.schedule_type.to_owned(),
            workflow_name: self.workflow_name.clone(),
            enabled: true,
            cron_expression: self.cron_expression.clone(),
            trigger_name: (self.schedule_type == "trigger").then(|| self.name.clone()),
            poll_interval_ms: self.poll_interval_ms,
        }
    }
}

async fn schedules(
    state: &AppState,
    tenant: &cloacina_host::TenantHost,
) -> ApiResult<Vec<Schedule>> {
    let mut schedules = Vec::new();
    let now = cloacina_runtime::clock::now_ms();
    for (record, declaration) in catalog(state, tenant).await? {
        if record.status != PackageStatus::Loaded {
            continue;
        }
        let id =
            |kind: &str, name: &str| format!("{}@{}/{kind}/{name}", record.name, record.version);
        for cron in &declaration.cron_schedules {
            schedules.push(Schedule {
                id: id("cron", cron.name.as_str()),
                schedule_type: "cron",
                name: cron.name.to_string(),
                workflow_name: cron.workflow.to_string(),
                cron_expression: Some(cron.expression.clone()),
                poll_interval_ms: None,
                next_run_at_ms: CronSchedule::from_declaration(cron)
                    .ok()
                    .and_then(|schedule| schedule.next_after(now)),
                created_at_ms: record.created_at_ms,
            });
        }
        for trigger in &declaration.triggers {
            schedules.push(Schedule {
                id: id("trigger", trigger.name.as_str()),
                schedule_type: "trigger",
                name: trigger.name.to_string(),
                workflow_name: trigger.workflow.to_string(),
                cron_expression: None,
                poll_interval_ms: Some(trigger.poll_interval_ms),
                next_run_at_ms: None,
                created_at_ms: record.created_at_ms,
            });
        }
    }
    Ok(schedules)
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/triggers",
    operation_id = "list_triggers",
    summary = "Cron schedules and poll triggers of loaded packages",
    tag = "triggers",
    params(("tenant_id" = String, Path, description = "The tenant"), ("limit" = Option<i64>, Query, description = "Page size"), ("offset" = Option<i64>, Query, description = "Items to skip")),
    responses((status = 200, body = TenantListResponse<TriggerScheduleSummary>)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<TenantListResponse<TriggerScheduleSummary>>> {
    caller.require(Role::Read)?;
    let Query(page) = page
        .map_err(|rejection| ApiError::bad_request("invalid_pagination", rejection.body_text()))?;
    let (limit, offset) = page.checked(100)?;
    let tenant = state.tenant_for(&caller, Role::Read, &tenant_id).await?;
    let all = schedules(&state, &tenant).await?;
    let items: Vec<_> = all
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(0))
        .map(Schedule::summary)
        .collect();
    Ok(Json(TenantListResponse {
        tenant_id: tenant.tenant().to_string(),
        total: all.len() as u64,
        items,
    }))
}

/// By trigger, schedule or workflow name, with its recent executions.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant_id}/triggers/{name}",
    operation_id = "get_trigger",
    summary = "A schedule or trigger with its recent executions",
    tag = "triggers",
    params(("tenant_id" = String, Path, description = "The tenant"), ("name" = String, Path, description = "Schedule, trigger or workflow name")),
    responses((status = 200, body = TriggerDetailResponse)),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((tenant_id, name)): Path<(String, String)>,
) -> ApiResult<Json<TriggerDetailResponse>> {
    let tenant = state.tenant_for(&caller, Role::Read, &tenant_id).await?;
    let all = schedules(&state, &tenant).await?;
    let Some(schedule) = all
        .iter()
        .find(|s| s.name == name)
        .or_else(|| all.iter().find(|s| s.workflow_name == name))
    else {
        return Err(ApiError::not_found(
            "trigger_not_found",
            format!("trigger '{name}' not found"),
        ));
    };
    let recent = tenant
        .runner()
        .executions(Some(&schedule.workflow_name), None, 10, 0)
        .await
        .map_err(|error| ApiError::internal("listing executions", error))?;
    Ok(Json(TriggerDetailResponse {
        tenant_id: tenant.tenant().to_string(),
        schedule: schedule.info(),
        recent_executions: recent
            .iter()
            .map(|execution| TriggerExecution {
                id: execution.execution_id.to_string(),
                scheduled_time: None,
                started_at: rfc3339(execution.started_at_ms),
                completed_at: execution.completed_at_ms.map(rfc3339),
            })
            .collect(),
    }))
}
