//! `package upload --server`, `package list`, `package delete`.

use cloacina_wire::workflows::{LoadStatus, WorkflowTaskNode};

use super::{connect, connect_parts, print};
use crate::cli::{ClientArgs, UploadArgs};
use crate::failure::Failure;
use crate::output::out;

pub fn upload(args: UploadArgs, json: bool) -> Result<(), Failure> {
    let client = connect_parts(
        args.server,
        args.api_key,
        Some(args.tenant),
        args.ca_cert,
        args.profile.as_ref(),
    )?;
    let uploaded = client.upload_package(&args.file)?;
    print(&uploaded, json, |v| {
        let what = if v.created {
            "registered"
        } else {
            "already registered"
        };
        out!(
            "{what} {} {} for tenant {} on {} (it loads in the background: `cloacinactl workflow show`)",
            v.package_name,
            v.version,
            v.tenant_id,
            client.server()
        );
    });
    Ok(())
}

pub fn list(args: ClientArgs, json: bool) -> Result<(), Failure> {
    let listed = connect(&args)?.workflows()?;
    print(&listed, json, |v| {
        out!(
            "{:<24} {:<12} {:<24} {:<8} TASKS",
            "PACKAGE",
            "VERSION",
            "WORKFLOW",
            "STATUS"
        );
        for item in &v.items {
            // `*`: the version new executions of the workflow start on.
            let live = if item.live { " *" } else { "" };
            let status = match &item.status {
                LoadStatus::Pending => "pending",
                LoadStatus::Loaded => "loaded",
                LoadStatus::Failed(_) => "failed",
            };
            out!(
                "{:<24} {:<12} {:<24} {:<8} {}",
                item.package_name,
                format!("{}{live}", item.version),
                item.workflow_name,
                status,
                dag_line(&item.task_graph)
            );
        }
        out!("(* live: new executions start on this version)");
    });
    Ok(())
}

pub fn delete(
    name: &str,
    version: &str,
    cancel: bool,
    args: ClientArgs,
    json: bool,
) -> Result<(), Failure> {
    let deleted = connect(&args)?.delete_package(name, version, cancel)?;
    print(&deleted, json, |v| {
        out!("deleted {name} {version}");
        if !v.running_executions.is_empty() {
            let what = if v.cancelled {
                "cancelled"
            } else {
                "finishing on it"
            };
            out!("executions {what}: {}", v.running_executions.join(", "));
        }
    });
    Ok(())
}

/// A workflow's DAG on one line, stage by stage: `a -> (b, c) -> d`.
fn dag_line(graph: &[WorkflowTaskNode]) -> String {
    // A task's stage: one past its latest dependency's.
    let mut stage: std::collections::BTreeMap<&str, usize> = Default::default();
    for _ in 0..graph.len() {
        for node in graph {
            let at = node
                .dependencies
                .iter()
                .filter_map(|d| stage.get(d.as_str()).map(|s| s + 1))
                .max()
                .unwrap_or(0);
            stage.insert(&node.id, at);
        }
    }
    let stages = stage.values().max().map_or(0, |last| last + 1);
    (0..stages)
        .map(|at| {
            let here: Vec<&str> = graph
                .iter()
                .map(|node| node.id.as_str())
                .filter(|id| stage.get(id) == Some(&at))
                .collect();
            match here.as_slice() {
                [one] => (*one).to_owned(),
                many => format!("({})", many.join(", ")),
            }
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}
