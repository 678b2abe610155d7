"""Observers that make executions visible: Prometheus metrics and the live event hub.

Both are `treadle.Observer`s (hooks called as journal events are emitted), never code inside
the executor. `MetricsObserver` needs `prometheus-client` (`pip install 'treadle[metrics]'`);
`LiveHub` needs only asyncio. Import the submodules directly:

```python
from treadle.observability.live import LiveHub
from treadle.observability.metrics import MetricsObserver
```
"""
