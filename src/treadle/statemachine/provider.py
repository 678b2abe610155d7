"""Importing this module registers the `statemachine.engine` and `state.tracker` module types
in the default `treadle.modules` registry (list it in `treadle.modules.registry.PROVIDERS`)."""

from treadle.statemachine.module import register_module_types

register_module_types()
