"""The immutable value every transport sends: one version of one resource."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of a resource, with its wire form computed once.

    Thousands of sockets send the same version; building ``message`` here
    rather than per send keeps the fan-out loop free of string work.
    """

    name: str
    sequence: int
    data: str
    message: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", f"{self.sequence} {self.data}")

    def as_event(self) -> dict[str, object]:
        """The channel-layer message that announces this version."""
        return {
            "type": "resource.published",
            "name": self.name,
            "sequence": self.sequence,
            "data": self.data,
        }

    @classmethod
    def from_event(cls, event: dict[str, object]) -> Snapshot:
        """Parse :meth:`as_event`'s output; ``ValueError`` if it is malformed."""
        name, sequence, data = (
            event.get("name"),
            event.get("sequence"),
            event.get("data"),
        )
        if (
            not isinstance(name, str)
            or not isinstance(sequence, int)
            or isinstance(sequence, bool)
            or not isinstance(data, str)
        ):
            raise ValueError(f"Not a resource.published event: {event!r:.200}")
        return cls(name, sequence, data)
