"""Task namespaces: the four-part names that keep tasks apart.

Every task is registered as ``tenant::package::workflow::task``.  Embedded
Python workflows use the tenant ``public`` and the package ``embedded``
unless a ``WorkflowBuilder`` says otherwise, so the same task id in two
workflows names two different tasks.

As in cloaca 0.8.0, a namespace whose ``task_id`` is empty stands for a
whole workflow: it is what :meth:`TaskNamespace.parent` and
:meth:`WorkflowContext.workflow_namespace` return.
"""

from __future__ import annotations

from typing import Any, Tuple, Union

from ._errors import TaskError

__all__ = ["TaskNamespace", "WorkflowContext", "SEPARATOR"]

SEPARATOR = "::"


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return str.__str__(value)


class TaskNamespace:
    """The fully qualified name of a task:
    ``tenant_id::package_name::workflow_id::task_id``."""

    __slots__ = ("_parts",)

    def __init__(self, tenant_id: str, package_name: str, workflow_id: str, task_id: str) -> None:
        self._parts: Tuple[str, str, str, str] = (
            _text("tenant_id", tenant_id),
            _text("package_name", package_name),
            _text("workflow_id", workflow_id),
            _text("task_id", task_id),
        )

    @staticmethod
    def from_string(namespace_str: str) -> "TaskNamespace":
        """Parse ``"tenant::package::workflow::task"``.

        Raises :class:`TaskError` (a ``ValueError``) unless the string has
        exactly four ``::``-separated parts.
        """
        parts = _text("namespace_str", namespace_str).split(SEPARATOR)
        if len(parts) != 4:
            raise TaskError(
                f"Invalid namespace format '{namespace_str}': "
                "expected 'tenant::package::workflow::task'"
            )
        return TaskNamespace(*parts)

    @property
    def tenant_id(self) -> str:
        return self._parts[0]

    @property
    def package_name(self) -> str:
        return self._parts[1]

    @property
    def workflow_id(self) -> str:
        return self._parts[2]

    @property
    def task_id(self) -> str:
        return self._parts[3]

    def parent(self) -> "TaskNamespace":
        """The namespace of this task's workflow: the same tenant, package
        and workflow with an empty ``task_id`` (as in cloaca 0.8.0)."""
        return TaskNamespace(*self._parts[:3], "")

    def workflow_context(self) -> "WorkflowContext":
        """This task's workflow as a :class:`WorkflowContext`."""
        return WorkflowContext(*self._parts[:3])

    def is_child_of(self, parent: Union["TaskNamespace", "WorkflowContext"]) -> bool:
        """Whether this is a task inside ``parent``: a workflow namespace
        (empty ``task_id``) or a :class:`WorkflowContext`."""
        if isinstance(parent, WorkflowContext):
            return self._parts[:3] == parent._parts and self.task_id != ""
        if isinstance(parent, TaskNamespace):
            return (
                self._parts[:3] == parent._parts[:3]
                and self.task_id != ""
                and parent.task_id == ""
            )
        raise TypeError(
            f"is_child_of expects a TaskNamespace or WorkflowContext, not {type(parent).__name__}"
        )

    def is_sibling_of(self, other: "TaskNamespace") -> bool:
        """Whether ``other`` is a different task of the same workflow."""
        if not isinstance(other, TaskNamespace):
            raise TypeError(f"is_sibling_of expects a TaskNamespace, not {type(other).__name__}")
        return (
            self._parts[:3] == other._parts[:3]
            and self.task_id != ""
            and other.task_id != ""
            and self.task_id != other.task_id
        )

    def __str__(self) -> str:
        return SEPARATOR.join(self._parts)

    def __repr__(self) -> str:
        return "TaskNamespace({})".format(", ".join(f"'{p}'" for p in self._parts))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TaskNamespace):
            return self._parts == other._parts
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._parts)


class WorkflowContext:
    """A workflow's place in the namespace (tenant, package, workflow),
    used to name and resolve the tasks inside it."""

    __slots__ = ("_parts",)

    def __init__(self, tenant_id: str, package_name: str, workflow_id: str) -> None:
        self._parts: Tuple[str, str, str] = (
            _text("tenant_id", tenant_id),
            _text("package_name", package_name),
            _text("workflow_id", workflow_id),
        )

    @property
    def tenant_id(self) -> str:
        return self._parts[0]

    @property
    def package_name(self) -> str:
        return self._parts[1]

    @property
    def workflow_id(self) -> str:
        return self._parts[2]

    def task_namespace(self, task_id: str) -> TaskNamespace:
        """The namespace of task ``task_id`` in this workflow."""
        return TaskNamespace(*self._parts, task_id)

    def resolve_dependency(self, task_name: str) -> TaskNamespace:
        """Resolve a dependency name: a full ``"t::p::w::task"`` string is
        taken as it is, a bare task id is resolved inside this workflow."""
        task_name = _text("task_name", task_name)
        if task_name.count(SEPARATOR) == 3:
            return TaskNamespace.from_string(task_name)
        return self.task_namespace(task_name)

    def workflow_namespace(self) -> TaskNamespace:
        """This workflow as a namespace with an empty ``task_id`` (as in
        cloaca 0.8.0); ``str(context)`` gives ``"tenant::package::workflow"``."""
        return TaskNamespace(*self._parts, "")

    def contains_namespace(self, namespace: TaskNamespace) -> bool:
        """Whether ``namespace`` lies in this workflow."""
        if not isinstance(namespace, TaskNamespace):
            raise TypeError(
                f"contains_namespace expects a TaskNamespace, not {type(namespace).__name__}"
            )
        return namespace._parts[:3] == self._parts

    def __str__(self) -> str:
        return SEPARATOR.join(self._parts)

    def __repr__(self) -> str:
        return "WorkflowContext({})".format(", ".join(f"'{p}'" for p in self._parts))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WorkflowContext):
            return self._parts == other._parts
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._parts)
