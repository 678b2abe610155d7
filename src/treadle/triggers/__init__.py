"""Triggers of YAML applications: `http` routes, `event` (broker topic subscriptions) and
`schedule` (cron), from the top-level `triggers:` section or a pipeline's inline `trigger:`.
Every trigger starts a journaled execution through the engine (`Dispatcher`).
"""

from treadle.triggers.base import Dispatcher, NoHandlerError, WorkflowHandler
from treadle.triggers.spec import (
    PIPELINE_PREFIX,
    TRIGGER_TYPES,
    HTTPRouteSpec,
    JobSpec,
    SubscriptionSpec,
    Target,
    TriggerPlan,
    collect_triggers,
)

__all__ = [
    "PIPELINE_PREFIX",
    "TRIGGER_TYPES",
    "Dispatcher",
    "HTTPRouteSpec",
    "JobSpec",
    "NoHandlerError",
    "SubscriptionSpec",
    "Target",
    "TriggerPlan",
    "WorkflowHandler",
    "collect_triggers",
]
