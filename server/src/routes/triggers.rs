//! Cron schedules and poll triggers of the tenant's loaded packages.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use cloacina_registry::PackageStatus;
use serde_json::json;

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
    created_at_ms: i64,
}

impl Schedule {
    fn summary(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "schedule_type": self.schedule_type,
            "workflow_name": self.workflow_name,
            "enabled": true,
            "cron_expression": self.cron_expression,
            "trigger_name": (self.schedule_type == "trigger").then_some(&self.name),
            "schedule_name": self.name,
            "poll_interval_ms": self.poll_interval_ms,
            "next_run_at": serde_json::Value::Null,
            "last_run_at": serde_json::Value::Null,
            "created_at": rfc3339(self.created_at_ms),
        })
    }
}

async fn schedules(
    state: &AppState,
    tenant: &cloacina_host::TenantHost,
) -> ApiResult<Vec<Schedule>> {
    let mut schedules = Vec::new();
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
                created_at_ms: record.created_at_ms,
            });
        }
    }
    Ok(schedules)
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
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
    Ok(Json(json!({
        "tenant_id": tenant.tenant().as_str(),
        "total": all.len(),
        "items": items,
    })))
}

/// By trigger, schedule or workflow name, with its recent executions.
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((tenant_id, name)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
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
    Ok(Json(json!({
        "tenant_id": tenant.tenant().as_str(),
        "schedule": {
            "id": schedule.id,
            "schedule_type": schedule.schedule_type,
            "workflow_name": schedule.workflow_name,
            "enabled": true,
            "cron_expression": schedule.cron_expression,
            "trigger_name": (schedule.schedule_type == "trigger").then_some(&schedule.name),
            "poll_interval_ms": schedule.poll_interval_ms,
        },
        "recent_executions": recent.iter().map(|execution| json!({
            "id": execution.execution_id.to_string(),
            "scheduled_time": serde_json::Value::Null,
            "started_at": rfc3339(execution.started_at_ms),
            "completed_at": execution.completed_at_ms.map(rfc3339),
        })).collect::<Vec<_>>(),
    })))
}
