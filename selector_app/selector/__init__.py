"""A level-triggered resource selector: a port of Perl's Async::Selector 1.03.

No Django import here; the contract is docs/selector.md. A Selector is
not thread-safe: use it from one event-loop thread and, from any other thread, trigger
it with ``loop.call_soon_threadsafe(selector.trigger, name)``.
"""

from .aggregator import Aggregator
from .selector import Selector
from .watcher import Watcher

__all__ = ["Aggregator", "Selector", "Watcher"]
