"""The value types of cloaca, driven the way a user drives them: Context,
retry policies, namespaces, runner configuration, tenants, triggers and the
exception hierarchy.  Nothing here needs a database or the native module's
runtime."""

from __future__ import annotations

import copy
import enum
import math
import pickle
import re
from collections import OrderedDict

import pytest

import cloaca
import cloaca._retry
import cloaca._triggers
from cloaca import (
    AdminError,
    BackoffStrategy,
    CloacaError,
    ConfigurationError,
    Context,
    ContextError,
    ContextKeyError,
    ContextTypeError,
    DefaultRunnerConfig,
    ExecutionError,
    RetryCondition,
    RetryPolicy,
    RetryPolicyBuilder,
    RunnerError,
    TaskError,
    TaskNamespace,
    TenantConfig,
    TenantCredentials,
    TriggerResult,
    WorkflowContext,
    WorkflowError,
    trigger,
)
from cloaca._tenants import generate_password
from cloaca._triggers import (
    TriggerDefinition,
    drain_triggers,
    get_trigger,
    normalise_poll_result,
    parse_duration_ms,
    registered_triggers,
    unregister_trigger,
)

# ---------------------------------------------------------------------------
# Exception hierarchy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (ConfigurationError, ValueError),
        (WorkflowError, ValueError),
        (TaskError, ValueError),
        (ContextError, ValueError),
        (ContextKeyError, KeyError),
        (ContextKeyError, ValueError),
        (ContextTypeError, TypeError),
        (RunnerError, RuntimeError),
        (ExecutionError, ValueError),
        (AdminError, RuntimeError),
    ],
)
def test_every_error_is_a_cloaca_error_and_the_0_8_builtin(cls, builtin):
    assert issubclass(cls, CloacaError)
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("boom")
    with pytest.raises(CloacaError):
        raise cls("boom")


def test_context_errors_share_a_base():
    assert issubclass(ContextKeyError, ContextError)
    assert issubclass(ContextTypeError, ContextError)


def test_context_key_error_prints_its_message_unquoted():
    error = ContextKeyError("Key not found: 'x'")
    assert str(error) == "Key not found: 'x'"
    assert error.args == ("Key not found: 'x'",)
    # A plain KeyError would show the repr: "\"Key not found: 'x'\"".
    assert str(KeyError("Key not found: 'x'")) != str(error)


# ---------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------


def test_context_starts_empty_or_from_a_dict():
    assert len(Context()) == 0
    assert len(Context(None)) == 0
    ctx = Context({"a": 1, "b": "two", "c": None})
    assert len(ctx) == 3
    assert "a" in ctx and "c" in ctx and "z" not in ctx
    assert ctx.to_dict() == {"a": 1, "b": "two", "c": None}


def test_context_normalises_values_to_json():
    ctx = Context({"t": (1, 2, (3, 4)), "d": OrderedDict(x=[1.5, True])})
    assert ctx["t"] == [1, 2, [3, 4]]
    assert type(ctx["d"]) is dict
    assert ctx["d"] == {"x": [1.5, True]}


def test_context_stores_subclasses_of_json_types_as_plain_values():
    class Colour(enum.IntEnum):
        RED = 1

    class Name(str):
        pass

    ctx = Context({"c": Colour.RED, "n": Name("ada")})
    assert ctx["c"] == 1 and type(ctx["c"]) is int
    assert ctx["n"] == "ada" and type(ctx["n"]) is str
    assert ctx.to_json() == '{"c":1,"n":"ada"}'


def test_context_copies_on_the_way_in_and_out():
    source = {"items": [1, 2]}
    ctx = Context(source)
    source["items"].append(3)
    assert ctx["items"] == [1, 2]

    got = ctx.get("items")
    got.append(99)
    assert ctx.get("items") == [1, 2]

    as_dict = ctx.to_dict()
    as_dict["items"].append(42)
    as_dict["new"] = 1
    assert ctx.to_dict() == {"items": [1, 2]}


def test_get_returns_default_only_for_missing_keys():
    ctx = Context({"present": None, "zero": 0})
    assert ctx.get("missing") is None
    assert ctx.get("missing", "fallback") == "fallback"
    assert ctx.get("present", "fallback") is None  # null is a value
    assert ctx.get("zero", 5) == 0


def test_set_inserts_or_overwrites():
    ctx = Context()
    ctx.set("k", 1)
    ctx.set("k", [1, 2])
    assert ctx["k"] == [1, 2]


def test_insert_refuses_an_existing_key():
    ctx = Context({"k": 1})
    with pytest.raises(ContextError, match="already exists") as info:
        ctx.insert("k", 2)
    assert isinstance(info.value, ValueError)
    assert not isinstance(info.value, KeyError)
    assert ctx["k"] == 1
    ctx.insert("other", 2)
    assert ctx["other"] == 2


def test_update_requires_an_existing_key():
    ctx = Context({"k": 1})
    ctx.update("k", 5)
    assert ctx["k"] == 5
    with pytest.raises(KeyError) as info:
        ctx.update("missing", 1)
    assert isinstance(info.value, ContextKeyError)
    assert str(info.value) == "Key not found: 'missing'"
    assert "missing" not in ctx


def test_remove_returns_the_old_value_or_none():
    ctx = Context({"k": {"a": 1}})
    assert ctx.remove("k") == {"a": 1}
    assert ctx.remove("k") is None
    assert len(ctx) == 0


def test_update_from_dict_inserts_and_overwrites():
    ctx = Context({"a": 1, "b": 2})
    ctx.update_from_dict({"b": 20, "c": 30})
    assert ctx.to_dict() == {"a": 1, "b": 20, "c": 30}


def test_update_from_dict_is_all_or_nothing():
    ctx = Context({"a": 1})
    with pytest.raises(ContextTypeError, match="'bad'"):
        ctx.update_from_dict({"a": 2, "bad": {1, 2}})
    assert ctx.to_dict() == {"a": 1}


@pytest.mark.parametrize(
    "value, reason",
    [
        ({1, 2}, "set"),
        (object(), "object"),
        (b"bytes", "bytes"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-float("inf"), "inf"),
        (2**64, "64 bits"),
        (-(2**63) - 1, "64 bits"),
    ],
)
def test_values_that_are_not_json_are_refused_naming_the_key(value, reason):
    ctx = Context()
    with pytest.raises(ContextTypeError) as info:
        ctx.set("x", value)
    message = str(info.value)
    assert message.startswith("value for key 'x' is not JSON-serialisable: ")
    assert reason in message
    assert isinstance(info.value, TypeError)
    assert "x" not in ctx


def test_the_exact_message_for_a_set():
    with pytest.raises(TypeError, match=r"^value for key 'x' is not JSON-serialisable: set$"):
        Context({"x": {1}})


def test_a_bad_nested_value_is_located():
    with pytest.raises(ContextTypeError) as info:
        Context({"cfg": {"items": [1, 2, {3}]}})
    assert str(info.value) == (
        "value for key 'cfg' is not JSON-serialisable: set (at ['items'][2])"
    )


def test_64_bit_integers_are_accepted():
    ctx = Context({"lo": -(2**63), "hi": 2**64 - 1})
    assert ctx["lo"] == -(2**63)
    assert ctx["hi"] == 2**64 - 1


def test_self_referencing_values_are_refused():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ContextTypeError, match="self-referencing"):
        Context({"loop": loop})


def test_keys_must_be_strings_at_every_level():
    with pytest.raises(ContextTypeError, match="keys must be str"):
        Context({1: "a"})
    with pytest.raises(ContextTypeError, match="keys must be str"):
        Context().set(1, "a")
    with pytest.raises(ContextTypeError, match="'outer'"):
        Context({"outer": {1: "a"}})
    with pytest.raises(TypeError):
        Context()[0]
    with pytest.raises(TypeError):
        1 in Context()


def test_constructor_wants_a_mapping_or_a_context():
    with pytest.raises(TypeError):
        Context([("a", 1)])
    original = Context({"a": [1]})
    clone = Context(original)
    assert clone == original
    clone["a"] = [2]
    assert original["a"] == [1]


def test_getitem_raises_for_missing_keys_and_null_values():
    ctx = Context({"n": None, "v": 0})
    assert ctx["v"] == 0
    for key in ("n", "missing"):
        with pytest.raises(KeyError) as info:
            ctx[key]
        assert isinstance(info.value, ContextKeyError)
        assert str(info.value) == f"Key not found: '{key}'"


def test_setitem_and_delitem():
    ctx = Context()
    ctx["a"] = {"b": (1,)}
    assert ctx["a"] == {"b": [1]}
    del ctx["a"]
    assert "a" not in ctx
    with pytest.raises(ContextKeyError, match="Key not found: 'a'"):
        del ctx["a"]


def test_to_json_is_compact_and_keeps_unicode():
    ctx = Context({"a": 1, "b": [True, None], "s": "café"})
    assert ctx.to_json() == '{"a":1,"b":[true,null],"s":"café"}'


def test_repr_shows_the_json():
    assert repr(Context()) == "Context({})"
    assert repr(Context({"a": 1})) == 'Context({"a":1})'


def test_from_json_round_trips():
    ctx = Context({"a": [1, {"b": 2.5}], "c": None})
    again = Context.from_json(ctx.to_json())
    assert again == ctx
    assert again.to_dict() == {"a": [1, {"b": 2.5}], "c": None}


@pytest.mark.parametrize("text", ["{", "not json", "", '{"a": NaN}', '{"a": Infinity}'])
def test_from_json_rejects_invalid_json(text):
    with pytest.raises(ValueError) as info:
        Context.from_json(text)
    assert isinstance(info.value, ContextError)
    assert str(info.value).startswith("Failed to deserialize from JSON: ")


@pytest.mark.parametrize("text, kind", [("[1, 2]", "list"), ("3", "int"), ("null", "NoneType")])
def test_from_json_requires_an_object(text, kind):
    with pytest.raises(ContextError, match=f"expected a JSON object, got {kind}"):
        Context.from_json(text)


def test_from_json_reads_huge_integers_as_floats_like_the_engine():
    ctx = Context.from_json('{"big": 100000000000000000000000}')
    assert ctx["big"] == 1e23


def test_from_json_wants_a_str():
    with pytest.raises(TypeError):
        Context.from_json(b"{}")


def test_contexts_compare_by_content_and_are_not_hashable():
    assert Context({"a": 1}) == Context({"a": 1})
    assert Context({"a": 1}) != Context({"a": 2})
    assert Context() != {}
    with pytest.raises(TypeError):
        hash(Context())


def test_context_is_not_iterable_as_in_0_8_0():
    with pytest.raises(TypeError, match="not iterable"):
        iter(Context({"a": 1}))


def test_copy_deepcopy_and_pickle_give_independent_contexts():
    ctx = Context({"items": [1]})
    for clone in (copy.copy(ctx), copy.deepcopy(ctx), pickle.loads(pickle.dumps(ctx))):
        assert clone == ctx
        clone["items"] = [2]
        assert ctx["items"] == [1]


def test_internal_fast_paths_share_rather_than_copy():
    data = {"a": [1]}
    ctx = Context._from_json_object(data)
    assert ctx._to_json_value() is data
    assert ctx["a"] == [1]


# ---------------------------------------------------------------------------
# Retry policies
# ---------------------------------------------------------------------------


def test_default_policy_matches_the_engine():
    policy = RetryPolicy.default()
    assert policy.max_attempts == 3
    assert policy.initial_delay == 1.0
    assert policy.max_delay == 60.0
    assert policy.with_jitter is True
    assert policy.backoff_strategy == BackoffStrategy.exponential(2.0, 1.0)
    assert policy.retry_condition == RetryCondition.all_errors()
    assert RetryPolicy.builder().build() == policy
    assert repr(policy) == "RetryPolicy(max_attempts=3, initial_delay=1s, max_delay=60s, jitter=true)"


def test_builder_chains_and_branches():
    base = RetryPolicy.builder().max_attempts(5)
    assert isinstance(base, RetryPolicyBuilder)
    slow = base.initial_delay(2.5).max_delay(30).with_jitter(False).build()
    fast = base.initial_delay(0.1).build()
    assert (slow.max_attempts, slow.initial_delay, slow.max_delay, slow.with_jitter) == (
        5, 2.5, 30.0, False,
    )
    assert fast.initial_delay == 0.1 and fast.with_jitter is True
    assert repr(slow) == "RetryPolicy(max_attempts=5, initial_delay=2.5s, max_delay=30s, jitter=false)"


def _no_jitter(strategy, initial=1.0, max_delay=60.0):
    return (
        RetryPolicy.builder()
        .backoff_strategy(strategy)
        .initial_delay(initial)
        .max_delay(max_delay)
        .with_jitter(False)
        .build()
    )


def test_fixed_backoff_waits_the_same_each_time():
    policy = _no_jitter(BackoffStrategy.fixed(), initial=2.0)
    assert [policy.calculate_delay(n) for n in (1, 2, 3, 10)] == [2.0, 2.0, 2.0, 2.0]


def test_linear_backoff_grows_by_the_initial_delay():
    policy = _no_jitter(BackoffStrategy.linear())
    assert [policy.calculate_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]
    doubled = _no_jitter(BackoffStrategy.linear(2.0), initial=0.5)
    assert [doubled.calculate_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]


def test_exponential_backoff_doubles():
    policy = _no_jitter(BackoffStrategy.exponential())
    assert [policy.calculate_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    tripled = _no_jitter(BackoffStrategy.exponential(3.0, 0.5), initial=2.0)
    assert [tripled.calculate_delay(n) for n in (1, 2, 3)] == [1.0, 3.0, 9.0]


def test_exponential_attempt_zero_is_half_the_initial_delay_like_the_engine():
    assert _no_jitter(BackoffStrategy.exponential()).calculate_delay(0) == 0.5


def test_delays_are_whole_milliseconds():
    policy = _no_jitter(BackoffStrategy.linear(1.5), initial=0.29)
    assert policy.calculate_delay(1) == 0.435
    assert policy.calculate_delay(3) == 1.305


def test_delays_are_capped_at_max_delay():
    policy = _no_jitter(BackoffStrategy.exponential(), initial=10.0, max_delay=15.0)
    assert [policy.calculate_delay(n) for n in (1, 2, 3)] == [10.0, 15.0, 15.0]
    assert policy.calculate_delay(100_000) == 15.0  # no overflow


def test_jitter_scales_the_capped_delay_by_three_quarters_to_five_quarters(monkeypatch):
    policy = RetryPolicy.builder().initial_delay(4.0).max_delay(6.0).build()
    monkeypatch.setattr(cloaca._retry, "_jitter_factor", lambda: 0.75)
    assert policy.calculate_delay(1) == 3.0
    assert policy.calculate_delay(3) == 4.5  # 16 s capped to 6 s, then x 0.75
    monkeypatch.setattr(cloaca._retry, "_jitter_factor", lambda: 1.25)
    assert policy.calculate_delay(1) == 5.0


def test_real_jitter_stays_in_range():
    policy = RetryPolicy.builder().initial_delay(1.0).build()
    delays = {policy.calculate_delay(2) for _ in range(200)}
    assert all(0.0 <= d <= 2.0 for d in delays) and len(delays) > 10  # full jitter, as the runtime
    assert len(delays) > 1


def test_should_retry_counts_every_attempt():
    policy = RetryPolicy.builder().max_attempts(3).build()
    assert [policy.should_retry(n, "ValueError") for n in (0, 1, 2, 3, 4)] == [
        True, True, True, False, False,
    ]
    once = RetryPolicy.builder().max_attempts(1).build()
    assert not once.should_retry(1, "ValueError")


@pytest.mark.parametrize(
    "error, transient",
    [
        ("TimeoutError", True),
        ("ConnectionResetError: peer went away", True),
        ("network unreachable", True),
        ("Temporary failure in name resolution", True),
        ("503 Service Unavailable", True),
        ("database is BUSY", True),
        ("server overloaded", True),
        ("Rate Limit exceeded", True),
        ("ValueError: bad input", False),
        ("KeyError", False),
    ],
)
def test_transient_only_retries_transient_errors(error, transient):
    policy = RetryPolicy.builder().retry_condition(RetryCondition.transient_only()).build()
    assert policy.should_retry(1, error) is transient


def test_never_and_all_errors():
    never = RetryPolicy.builder().retry_condition(RetryCondition.never()).build()
    assert not never.should_retry(1, "TimeoutError")
    every = RetryPolicy.builder().retry_condition(RetryCondition.all_errors()).build()
    assert every.should_retry(1, "anything at all")


def test_error_pattern_matches_case_insensitively():
    condition = RetryCondition.error_pattern(["Deadlock", "retry me"])
    policy = RetryPolicy.builder().retry_condition(condition).build()
    assert policy.should_retry(1, "OperationalError: deadlock detected")
    assert policy.should_retry(1, "RETRY ME please")
    assert not policy.should_retry(1, "ValueError")
    assert condition.patterns == ("Deadlock", "retry me")


def test_error_pattern_wants_a_list_of_strings():
    with pytest.raises(TypeError):
        RetryCondition.error_pattern("timeout")
    with pytest.raises(TypeError):
        RetryCondition.error_pattern([1])


def test_value_object_reprs():
    assert repr(BackoffStrategy.fixed()) == "BackoffStrategy.Fixed"
    assert repr(BackoffStrategy.linear()) == "BackoffStrategy.Linear(multiplier=1)"
    assert repr(BackoffStrategy.linear(1.5)) == "BackoffStrategy.Linear(multiplier=1.5)"
    assert repr(BackoffStrategy.exponential()) == "BackoffStrategy.Exponential(base=2, multiplier=1)"
    assert repr(RetryCondition.never()) == "RetryCondition.Never"
    assert repr(RetryCondition.transient_only()) == "RetryCondition.TransientOnly"
    assert repr(RetryCondition.all_errors()) == "RetryCondition.AllErrors"
    assert (
        repr(RetryCondition.error_pattern(["timeout", "conn"]))
        == 'RetryCondition.ErrorPattern(patterns=["timeout", "conn"])'
    )


def test_exponential_multiplier_none_means_one():
    assert BackoffStrategy.exponential(3.0, None) == BackoffStrategy.exponential(3.0, 1.0)


@pytest.mark.parametrize(
    "configure",
    [
        lambda b: b.initial_delay(-1),
        lambda b: b.max_delay(float("nan")),
        lambda b: b.max_attempts(-1),
        lambda b: b.backoff_strategy(BackoffStrategy.linear(-1.0)).build(),
        lambda b: b.backoff_strategy(BackoffStrategy.exponential(0.0)).build(),
    ],
)
def test_invalid_retry_settings_are_configuration_errors(configure):
    with pytest.raises(ConfigurationError, match="Invalid configuration"):
        configure(RetryPolicy.builder())


def test_retry_settings_of_the_wrong_type_are_type_errors():
    with pytest.raises(TypeError):
        RetryPolicy.builder().max_attempts(2.5)
    with pytest.raises(TypeError):
        RetryPolicy.builder().backoff_strategy("fixed")
    with pytest.raises(TypeError):
        RetryPolicy.default().calculate_delay("1")


def test_policy_converts_to_task_keyword_arguments():
    assert RetryPolicy.default()._to_task_kwargs() == {
        "retry_attempts": 3,
        "retry_backoff": "exponential",
        "retry_delay_ms": 1000,
        "retry_max_delay_ms": 60000,
        "retry_condition": "all",
        "retry_jitter": True,
    }
    policy = (
        RetryPolicy.builder()
        .max_attempts(5)
        .backoff_strategy(BackoffStrategy.linear())
        .initial_delay(0.29)
        .max_delay(7.5)
        .retry_condition(RetryCondition.transient_only())
        .with_jitter(False)
        .build()
    )
    assert policy._to_task_kwargs() == {
        "retry_attempts": 5,
        "retry_backoff": "linear",
        "retry_delay_ms": 290,
        "retry_max_delay_ms": 7500,
        "retry_condition": "transient",
        "retry_jitter": False,
    }
    fixed_never = RetryPolicy.builder().backoff_strategy(BackoffStrategy.fixed()).retry_condition(
        RetryCondition.never()
    ).build()._to_task_kwargs()
    assert (fixed_never["retry_backoff"], fixed_never["retry_condition"]) == ("fixed", "never")
    # What the runtime cannot follow exactly is refused, not approximated.
    pattern = RetryPolicy.builder().retry_condition(RetryCondition.error_pattern(["x"])).build()
    with pytest.raises(ValueError, match="cannot be applied to a task"):
        pattern._to_task_kwargs()
    steeper = RetryPolicy.builder().backoff_strategy(BackoffStrategy.exponential(3.0)).build()
    with pytest.raises(ValueError, match="base 2"):
        cloaca.task(retry_policy=steeper)


# ---------------------------------------------------------------------------
# Namespaces
# ---------------------------------------------------------------------------


def test_task_namespace_parts_str_and_repr():
    ns = TaskNamespace("public", "embedded", "etl", "extract")
    assert (ns.tenant_id, ns.package_name, ns.workflow_id, ns.task_id) == (
        "public", "embedded", "etl", "extract",
    )
    assert str(ns) == "public::embedded::etl::extract"
    assert repr(ns) == "TaskNamespace('public', 'embedded', 'etl', 'extract')"


def test_task_namespace_from_string():
    ns = TaskNamespace.from_string("t1::pkg.so::wf::task")
    assert ns == TaskNamespace("t1", "pkg.so", "wf", "task")
    for bad in ("invalid", "a::b", "a::b::c", "a::b::c::d::e"):
        with pytest.raises(ValueError, match="Invalid namespace format") as info:
            TaskNamespace.from_string(bad)
        assert isinstance(info.value, TaskError)


def test_task_namespaces_are_values():
    a = TaskNamespace("t", "p", "w", "x")
    assert a == TaskNamespace("t", "p", "w", "x")
    assert a != TaskNamespace("t", "p", "w", "y")
    assert len({a, TaskNamespace("t", "p", "w", "x")}) == 1
    assert {a: 1}[TaskNamespace.from_string("t::p::w::x")] == 1


def test_parent_child_and_siblings():
    task1 = TaskNamespace("t", "p", "w", "task1")
    task2 = TaskNamespace("t", "p", "w", "task2")
    other = TaskNamespace("t", "p", "other", "task3")
    parent = task1.parent()
    assert parent == TaskNamespace("t", "p", "w", "")
    assert task1.is_child_of(parent)
    assert not task1.is_child_of(other.parent())
    assert not parent.is_child_of(parent)
    assert task1.is_child_of(WorkflowContext("t", "p", "w"))
    assert not task1.is_child_of(WorkflowContext("t", "p", "other"))
    assert task1.workflow_context() == WorkflowContext("t", "p", "w")
    assert task1.is_sibling_of(task2)
    assert not task1.is_sibling_of(task1)
    assert not task1.is_sibling_of(other)


def test_workflow_context():
    wf = WorkflowContext("public", "embedded", "etl")
    assert (wf.tenant_id, wf.package_name, wf.workflow_id) == ("public", "embedded", "etl")
    assert wf.task_namespace("extract") == TaskNamespace("public", "embedded", "etl", "extract")
    assert wf.resolve_dependency("extract") == wf.task_namespace("extract")
    assert wf.resolve_dependency("t::p::w::x") == TaskNamespace("t", "p", "w", "x")
    assert wf.workflow_namespace() == TaskNamespace("public", "embedded", "etl", "")
    assert str(wf) == "public::embedded::etl"
    assert repr(wf) == "WorkflowContext('public', 'embedded', 'etl')"
    assert wf.contains_namespace(wf.task_namespace("anything"))
    assert not wf.contains_namespace(TaskNamespace("public", "embedded", "other", "x"))
    assert wf == WorkflowContext("public", "embedded", "etl")
    assert len({wf, WorkflowContext("public", "embedded", "etl")}) == 1


def test_namespace_parts_must_be_strings():
    with pytest.raises(TypeError):
        TaskNamespace("t", "p", "w", 1)
    with pytest.raises(TypeError):
        WorkflowContext("t", None, "w")


# ---------------------------------------------------------------------------
# DefaultRunnerConfig
# ---------------------------------------------------------------------------

DEFAULTS = {
    "max_concurrent_tasks": 4,
    "scheduler_poll_interval_ms": 100,
    "task_timeout_seconds": 300,
    "workflow_timeout_seconds": 3600,
    "db_pool_size": 10,
    "enable_recovery": True,
    "enable_cron_scheduling": True,
    "cron_poll_interval_seconds": 30,
    "cron_max_catchup_executions": 100,
    "cron_enable_recovery": True,
    "cron_recovery_interval_seconds": 300,
    "cron_lost_threshold_minutes": 10,
    "cron_max_recovery_age_seconds": 86400,
    "cron_max_recovery_attempts": 3,
}


def test_config_defaults():
    for config in (DefaultRunnerConfig(), DefaultRunnerConfig.default()):
        assert config.to_dict() == DEFAULTS
        for name, value in DEFAULTS.items():
            assert getattr(config, name) == value
    assert list(DefaultRunnerConfig().to_dict()) == list(DEFAULTS)


def test_config_repr_uses_rust_booleans():
    assert repr(DefaultRunnerConfig()) == (
        "DefaultRunnerConfig(max_concurrent_tasks=4, enable_cron_scheduling=true, db_pool_size=10)"
    )
    config = DefaultRunnerConfig(max_concurrent_tasks=8, enable_cron_scheduling=False, db_pool_size=2)
    assert repr(config) == (
        "DefaultRunnerConfig(max_concurrent_tasks=8, enable_cron_scheduling=false, db_pool_size=2)"
    )


def test_config_keyword_arguments_and_setters():
    config = DefaultRunnerConfig(scheduler_poll_interval_ms=10, enable_recovery=False)
    assert config.scheduler_poll_interval_ms == 10
    assert config.enable_recovery is False
    config.max_concurrent_tasks = 16
    config.workflow_timeout_seconds = None
    config.cron_max_catchup_executions = 0
    assert config.to_dict()["max_concurrent_tasks"] == 16
    assert config.workflow_timeout_seconds is None
    assert config.cron_max_catchup_executions == 0
    with pytest.raises(TypeError):
        DefaultRunnerConfig(4)  # keyword-only


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("max_concurrent_tasks", 0, "max_concurrent_tasks must be > 0"),
        ("scheduler_poll_interval_ms", 9, "scheduler_poll_interval_ms must be >= 10"),
        ("db_pool_size", 0, "db_pool_size must be > 0"),
        ("task_timeout_seconds", 0, "task_timeout_seconds must be > 0"),
        ("workflow_timeout_seconds", -5, "workflow_timeout_seconds must be > 0"),
        ("cron_poll_interval_seconds", 0, "cron_poll_interval_seconds must be > 0"),
        ("cron_max_catchup_executions", 1001, "cron_max_catchup_executions must be <= 1000"),
        ("cron_max_catchup_executions", -1, "cron_max_catchup_executions must be >= 0"),
        ("cron_lost_threshold_minutes", 0, "cron_lost_threshold_minutes must be > 0"),
        ("cron_max_recovery_attempts", -1, "cron_max_recovery_attempts must be >= 0"),
    ],
)
def test_config_rejects_out_of_range_values(name, value, message):
    with pytest.raises(ValueError) as info:
        DefaultRunnerConfig(**{name: value})
    assert isinstance(info.value, ConfigurationError)
    assert str(info.value).startswith(f"Invalid configuration: {message}")

    config = DefaultRunnerConfig()
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        setattr(config, name, value)
    assert getattr(config, name) == DEFAULTS[name]  # unchanged


@pytest.mark.parametrize(
    "name, value",
    [
        ("max_concurrent_tasks", "4"),
        ("max_concurrent_tasks", 2.0),
        ("max_concurrent_tasks", True),
        ("db_pool_size", None),
        ("enable_recovery", 1),
    ],
)
def test_config_rejects_values_of_the_wrong_type(name, value):
    config = DefaultRunnerConfig()
    with pytest.raises(TypeError):
        setattr(config, name, value)
    assert getattr(config, name) == DEFAULTS[name]


def test_config_has_no_other_attributes():
    with pytest.raises(AttributeError):
        DefaultRunnerConfig().max_concurent_tasks = 3  # typo


# ---------------------------------------------------------------------------
# Tenants
# ---------------------------------------------------------------------------


def test_tenant_config_masks_its_password():
    config = TenantConfig("tenant_acme", "acme_user", "s3cret")
    assert (config.schema_name, config.username, config.password) == (
        "tenant_acme", "acme_user", "s3cret",
    )
    assert repr(config) == "TenantConfig(schema_name='tenant_acme', username='acme_user', password='***')"
    assert "s3cret" not in repr(config) and "s3cret" not in str(config)


@pytest.mark.parametrize("password", [None, ""])
def test_tenant_config_without_password_asks_for_a_generated_one(password):
    config = TenantConfig("s", "u", password)
    assert config.password == ""
    assert TenantConfig("s", "u").password == ""


def test_tenant_credentials_mask_password_and_connection_string():
    url = "postgresql://acme_user:s3cret@db:5432/app?options=-csearch_path%3Dtenant_acme"
    creds = TenantCredentials("acme_user", "s3cret", "tenant_acme", url)
    assert (creds.username, creds.password, creds.schema_name, creds.connection_string) == (
        "acme_user", "s3cret", "tenant_acme", url,
    )
    assert repr(creds) == (
        "TenantCredentials(username='acme_user', schema_name='tenant_acme', "
        "password='***', connection_string='***')"
    )
    assert "s3cret" not in repr(creds) and "db:5432" not in repr(creds)


def test_generated_passwords():
    passwords = {generate_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) == 32 and p.isascii() and p.isalnum() for p in passwords)
    assert len(generate_password(8)) == 8


# ---------------------------------------------------------------------------
# TriggerResult and @trigger
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _empty_trigger_registry():
    drain_triggers()
    yield
    drain_triggers()


def test_trigger_results():
    skip = TriggerResult.skip()
    assert skip.is_skip_result() and not skip.is_fire_result()
    assert skip.context is None
    assert repr(skip) == "TriggerResult.Skip"

    bare = TriggerResult.fire()
    assert bare.is_fire_result() and not bare.is_skip_result()
    assert bare.context is None
    assert repr(bare) == "TriggerResult.Fire(None)"

    ctx = Context({"file": "a.csv"})
    loaded = TriggerResult.fire(ctx)
    assert loaded.context == ctx
    assert repr(loaded) == "TriggerResult.Fire(<context>)"

    from_dict = TriggerResult.fire({"file": "a.csv"})
    assert isinstance(from_dict.context, Context)
    assert from_dict.context == ctx
    assert from_dict == loaded


def test_fire_copies_its_context():
    ctx = Context({"n": 1})
    result = TriggerResult.fire(ctx)
    ctx["n"] = 2
    assert result.context["n"] == 1
    result.context["n"] = 3  # a copy again
    assert result.context["n"] == 1


def test_fire_refuses_other_values():
    with pytest.raises(TypeError):
        TriggerResult.fire([("a", 1)])
    with pytest.raises(ContextTypeError):
        TriggerResult.fire({"a": {1}})


@pytest.mark.parametrize(
    "value, fires",
    [(True, True), (False, False), (None, False)],
)
def test_poll_results_may_be_plain_booleans(value, fires):
    result = normalise_poll_result(value)
    assert result.is_fire_result() is fires
    assert result.context is None


def test_poll_results_pass_through_and_other_values_fail():
    fired = TriggerResult.fire({"a": 1})
    assert normalise_poll_result(fired) is fired
    for bad in (1, "yes", {"a": 1}, Context()):
        with pytest.raises(TypeError, match=type(bad).__name__):
            normalise_poll_result(bad)


def test_trigger_records_the_function_and_returns_it_unchanged():
    def check_inbox():
        return True

    decorated = trigger(on="process_inbox", poll_interval="5s")(check_inbox)
    assert decorated is check_inbox
    assert decorated() is True
    [definition] = registered_triggers()
    assert definition == TriggerDefinition(
        name="check_inbox",
        workflow="process_inbox",
        poll_interval_ms=5000,
        cron=None,
        timezone=None,
        allow_concurrent=False,
        function=check_inbox,
    )
    assert get_trigger("check_inbox") is definition


def test_trigger_defaults():
    @trigger()
    def poll():
        return False

    [definition] = registered_triggers()
    assert definition.name == "poll"
    assert definition.workflow is None
    assert definition.poll_interval_ms == 30_000
    assert definition.allow_concurrent is False


def test_trigger_with_cron():
    @trigger(name="nightly", on="reports", cron="0 9 * * *", timezone="Europe/Paris",
             allow_concurrent=True)
    def nightly():
        return True

    definition = get_trigger("nightly")
    assert (definition.workflow, definition.cron, definition.timezone) == (
        "reports", "0 9 * * *", "Europe/Paris",
    )
    assert definition.allow_concurrent is True


def test_redecorating_a_name_replaces_the_trigger():
    @trigger(name="watch", poll_interval="1s")
    def first():
        return False

    @trigger(name="watch", poll_interval="2s")
    def second():
        return True

    @trigger(name="other")
    def other():
        return False

    assert [d.name for d in registered_triggers()] == ["watch", "other"]
    assert get_trigger("watch").function is second
    assert get_trigger("watch").poll_interval_ms == 2000
    assert unregister_trigger("watch") is True
    assert unregister_trigger("watch") is False
    assert [d.name for d in drain_triggers()] == ["other"]
    assert registered_triggers() == []


def test_trigger_rejects_cron_with_poll_interval_and_cron_without_on():
    with pytest.raises(ValueError, match="both 'cron' and 'poll_interval'") as info:
        trigger(on="wf", cron="0 9 * * *", poll_interval="30s")
    assert isinstance(info.value, ConfigurationError)
    with pytest.raises(ConfigurationError, match="requires 'on'"):
        trigger(cron="0 9 * * *")
    assert registered_triggers() == []


@pytest.mark.parametrize(
    "text, ms",
    [("100ms", 100), ("1s", 1000), ("30s", 30_000), ("2m", 120_000), ("1h", 3_600_000),
     (" 5s ", 5000)],
)
def test_poll_intervals(text, ms):
    assert parse_duration_ms(text) == ms

    @trigger(name="t", poll_interval=text)
    def t():
        return False

    assert get_trigger("t").poll_interval_ms == ms


@pytest.mark.parametrize("text", ["", "30", "s", "1.5s", "-1s", "5x", "5 s", "0s", "ten s", "5MS"])
def test_bad_poll_intervals_are_named(text):
    with pytest.raises(ConfigurationError) as info:
        trigger(poll_interval=text)
    assert str(info.value).startswith(f"Invalid poll_interval '{text}': ")
    assert isinstance(info.value, ValueError)


def test_trigger_argument_types():
    with pytest.raises(TypeError):
        trigger(poll_interval=30)
    with pytest.raises(TypeError):
        trigger(on=123)
    with pytest.raises(TypeError):
        trigger()(42)


def test_the_trigger_registry_is_reachable_from_the_module():
    assert cloaca._triggers.registered_triggers is registered_triggers


def test_delays_are_finite_floats():
    delay = RetryPolicy.default().calculate_delay(5)
    assert isinstance(delay, float) and math.isfinite(delay)
