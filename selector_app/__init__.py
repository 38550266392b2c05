"""Real-time publishing for Django: Comet, WebSocket push and a bidirectional
socket over a level-triggered selector (a port of Perl's Async::Selector)."""

__version__ = "0.2.0"
