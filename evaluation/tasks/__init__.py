"""Task registry: one declarative spec per task (see `spec.TaskSpec`)."""

from evaluation.tasks.registry import all_tasks, get_task, register, suggest, task_names
from evaluation.tasks.spec import Format, Role, Source, TaskSpec

__all__ = [
    "Format",
    "Role",
    "Source",
    "TaskSpec",
    "all_tasks",
    "get_task",
    "register",
    "suggest",
    "task_names",
]
