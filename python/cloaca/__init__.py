"""cloaca: Python workflows on the cloacina runtime.

Define tasks with ``@cloaca.task``, group them with ``WorkflowBuilder``,
and run them with ``DefaultRunner`` on SQLite or PostgreSQL, in this
process, durably: a workflow interrupted by a crash is finished by the
next runner on the same database.

    import cloaca

    with cloaca.WorkflowBuilder("greet") as builder:
        @cloaca.task()
        def hello(context):
            context.set("greeting", f"hello {context.get('name')}")
            return context

    with cloaca.DefaultRunner("sqlite:///app.db") as runner:
        result = runner.execute("greet", cloaca.Context({"name": "ada"}))
        print(result.status, result.final_context.get("greeting"))
"""

from ._native import __version__
from ._config import DefaultRunnerConfig
from ._context import Context
from ._errors import (
    AdminError,
    CloacaError,
    ConfigurationError,
    ContextError,
    ContextKeyError,
    ContextTypeError,
    ExecutionError,
    GraphError,
    RunnerError,
    ScheduleError,
    TaskError,
    WorkflowError,
)
from ._namespace import TaskNamespace, WorkflowContext
from ._retry import BackoffStrategy, RetryCondition, RetryPolicy, RetryPolicyBuilder
from ._tenants import TenantConfig, TenantCredentials
from ._triggers import TriggerResult, trigger
from ._workflow import TaskHandle, Workflow, WorkflowBuilder, register_workflow_constructor, task
from ._graphs import (
    ComputationGraphBuilder,
    batch_accumulator,
    node,
    passthrough_accumulator,
    polling_accumulator,
    reactor,
    state_accumulator,
    stream_accumulator,
)
from ._runner import DefaultRunner, PipelineResult, WorkflowResult, get_backend
from ._admin import DatabaseAdmin

__all__ = [
    # cloaca 0.8.0
    "Context", "task", "TaskHandle", "trigger", "TriggerResult", "reactor",
    "WorkflowBuilder", "Workflow", "register_workflow_constructor", "DefaultRunner",
    "WorkflowResult", "DefaultRunnerConfig", "TaskNamespace", "WorkflowContext",
    "RetryPolicy", "RetryPolicyBuilder", "BackoffStrategy", "RetryCondition",
    "ComputationGraphBuilder", "node", "passthrough_accumulator", "stream_accumulator",
    "polling_accumulator", "batch_accumulator", "state_accumulator",
    "DatabaseAdmin", "TenantConfig", "TenantCredentials",
    # what the seed documents beyond 0.8.0
    "PipelineResult", "get_backend", "CloacaError", "ConfigurationError", "WorkflowError",
    "TaskError", "ContextError", "ContextKeyError", "ContextTypeError", "RunnerError",
    "ExecutionError", "GraphError", "ScheduleError", "AdminError", "__version__",
]
