"""State machine steps: `step.statemachine_transition`, `_get` and `_create`.

They live with the state machines (`treadle.statemachine.steps`); importing this family
registers them.
"""

from treadle.statemachine.steps import register_steps

register_steps()
