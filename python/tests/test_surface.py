"""The public surface: every name of cloaca 0.8.0, the seed's extras, and
type stubs that describe exactly what the package exports."""

import ast
import inspect
from pathlib import Path

import cloaca

CLOACA_080 = (
    "Context task TaskHandle trigger TriggerResult reactor WorkflowBuilder Workflow "
    "register_workflow_constructor DefaultRunner WorkflowResult DefaultRunnerConfig TaskNamespace "
    "WorkflowContext RetryPolicy RetryPolicyBuilder BackoffStrategy RetryCondition "
    "ComputationGraphBuilder node passthrough_accumulator stream_accumulator polling_accumulator "
    "batch_accumulator state_accumulator DatabaseAdmin TenantConfig TenantCredentials"
).split()


def test_every_name_of_cloaca_0_8_0_is_exported():
    assert len(CLOACA_080) == 28
    missing = [name for name in CLOACA_080 if not hasattr(cloaca, name)]
    assert missing == []
    assert set(CLOACA_080) <= set(cloaca.__all__)


def test_the_seeds_extras_exist_and_errors_keep_their_built_in_bases():
    assert cloaca.PipelineResult is cloaca.WorkflowResult
    assert cloaca.get_backend() in ("sqlite", "postgresql")
    assert issubclass(cloaca.ExecutionError, ValueError)
    assert issubclass(cloaca.RunnerError, RuntimeError)
    assert issubclass(cloaca.ContextKeyError, KeyError)
    assert issubclass(cloaca.ContextTypeError, TypeError)
    assert issubclass(cloaca.AdminError, RuntimeError)
    assert all(issubclass(getattr(cloaca, n), cloaca.CloacaError) for n in cloaca.__all__ if n.endswith("Error"))


def _stub():
    return ast.parse((Path(cloaca.__file__).parent / "__init__.pyi").read_text())


def test_the_stub_exports_what_the_package_exports():
    stub = _stub()
    exported = next(
        node.value for node in stub.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__all__"
    )
    assert sorted(ast.literal_eval(exported)) == sorted(cloaca.__all__)


def test_every_public_method_is_in_the_stub():
    stub = _stub()
    classes = {node.name: node for node in stub.body if isinstance(node, ast.ClassDef)}
    gaps = []
    for name in cloaca.__all__:
        runtime = getattr(cloaca, name)
        if not inspect.isclass(runtime) or issubclass(runtime, BaseException) or name == "PipelineResult":
            continue
        described = {
            item.name for item in classes[name].body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
        } | {
            item.target.id for item in classes[name].body
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
        }
        public = {m for m in vars(runtime) if not m.startswith("_") and m != "NAME"}
        gaps += [f"{name}.{m}" for m in sorted(public - described)]
    assert gaps == []
