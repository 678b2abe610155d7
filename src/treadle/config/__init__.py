"""YAML applications: loading (imports, `${VAR}` expansion) into typed, located values.

```python
from treadle.config import load_config

app = load_config("app.yaml")
for module in app.modules: ...
```
"""

from treadle.config.envexpand import expand_env
from treadle.config.loader import TOP_LEVEL_KEYS, load_config, load_config_text
from treadle.config.model import (
    AppConfig,
    ConfigWarning,
    KeyPath,
    ModuleConfig,
    PipelineConfig,
    PipelineTriggerConfig,
    Position,
    SourceMap,
    StepConfig,
    TriggerConfig,
    WorkflowConfig,
    build_app_config,
    format_key,
)

__all__ = [
    "TOP_LEVEL_KEYS",
    "AppConfig",
    "ConfigWarning",
    "KeyPath",
    "ModuleConfig",
    "PipelineConfig",
    "PipelineTriggerConfig",
    "Position",
    "SourceMap",
    "StepConfig",
    "TriggerConfig",
    "WorkflowConfig",
    "build_app_config",
    "expand_env",
    "format_key",
    "load_config",
    "load_config_text",
]
