"""
``@task.enso_events``: a TaskFlow function whose return value is sent to Enso as usage events.

The decorated function returns the rows (a list of mappings, or any iterable of them, a generator
included, which is then streamed); the task maps, validates, batches and sends them exactly like
:class:`~enso_provider.operators.batch_events.EnsoBatchEventsOperator` with ``events=``, applies the
same failure policy, and returns the same report. Registered through the provider's
``task-decorators``, so ``from airflow.sdk import task`` is all a DAG needs::

    @task.enso_events(enso_conn_id="enso_default", defaults={"metric": "api_calls"}, max_failures=0)
    def usage() -> list[dict]:
        return [{"customer_entity_id": "cust_1", "value": 42, "timestamp": "2024-05-01T10:00:00Z"}]
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory

from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.version_compat import context_merge, determine_kwargs

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Arguments of the operator that name a source: the decorated function is the source.
_SOURCE_ARGUMENTS = ("events", "sql", "sql_conn_id", "parameters", "fetch_size")
#: The operator's templated fields, less the sources: the returned rows are data, never templates.
_TEMPLATED = tuple(f for f in EnsoBatchEventsOperator.template_fields if f not in _SOURCE_ARGUMENTS)


class _EnsoEventsDecoratedOperator(DecoratedOperator, EnsoBatchEventsOperator):
    """
    Call a Python callable and send what it returns to Enso, with the batch operator's options.

    :param python_callable: the function whose return value (an iterable of row mappings) is sent.
    :param op_args: positional arguments of the function. (templated)
    :param op_kwargs: keyword arguments of the function. (templated)

    Every other keyword argument is one of
    :class:`~enso_provider.operators.batch_events.EnsoBatchEventsOperator`'s mapping, delivery and
    policy options (``field_map``, ``defaults``, ``metadata_columns``, ``row_mapper``, ``job_id``,
    ``event_id_column``, ``event_id_version``, ``timezone``, ``timestamp_unit``, ``enso_conn_id``,
    ``batch_size``, ``max_batch_bytes``, ``concurrency``, ``max_failures``, ``max_failure_ratio``,
    ``on_breach``, ``dry_run``, ``rejected_records_path``), or a ``BaseOperator`` argument.
    """

    template_fields: Sequence[str] = (*DecoratedOperator.template_fields, *_TEMPLATED)
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **DecoratedOperator.template_fields_renderers,
        **{
            k: v
            for k, v in EnsoBatchEventsOperator.template_fields_renderers.items()
            if k not in _SOURCE_ARGUMENTS
        },
    }
    # The returned rows are not a template: never read a ".sql" file from them.
    template_ext: Sequence[str] = ()
    custom_operator_name: str = "@task.enso_events"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        given = [name for name in _SOURCE_ARGUMENTS if name in kwargs]
        if given:
            raise TypeError(
                f"@task.enso_events sends what the decorated function returns; it takes no "
                f"{', '.join(repr(name) for name in given)} (use EnsoBatchEventsOperator for SQL or XCom)."
            )
        super().__init__(python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs, **kwargs)

    def partition_identity(self) -> Any:
        """A mapped instance's partition: the function's arguments (what ``.expand`` gave it)."""
        return {"args": list(self.op_args), "kwargs": dict(self.op_kwargs)}

    def execute(self, context: Context) -> Any:
        """
        Call the function, then send its rows and return the delivery report.

        :param context: the task's Airflow context.
        :return: the report (``EnsoBatchEventsOperator``'s), also the task's XCom.
        """
        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        rows = self.python_callable(*self.op_args, **kwargs)
        if rows is None or isinstance(rows, (str, bytes, Mapping)) or not hasattr(rows, "__iter__"):
            raise TypeError(
                "A @task.enso_events function must return the rows to send: a list of mappings "
                f"(or any iterable of them, an empty list when there is nothing to send); got "
                f"{'None' if rows is None else type(rows).__name__}."
            )
        self.events = rows
        try:
            # DecoratedOperator.execute -> EnsoBatchEventsOperator.execute, then output handling.
            return super().execute(context)
        finally:
            # The rows are the function's output, not the operator's configuration: drop them so a
            # large list is not kept alive (nor rendered as a template field) after the run.
            self.events = None


def enso_events_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """
    Wrap a function into a task that sends the function's return value to Enso (``@task.enso_events``).

    :param python_callable: the function to decorate.
    :param kwargs: the batch operator's mapping, delivery and policy options, and ``BaseOperator``
        arguments (see :class:`_EnsoEventsDecoratedOperator`).
    """
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=_EnsoEventsDecoratedOperator,
        **kwargs,
    )


__all__ = ["enso_events_task"]
