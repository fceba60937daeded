"""Long recordings in parts, so that every worker has work when one file is long.

A recording that the reader takes on its grid (``reader.uses_grid``: 15 minutes or more,
in a format that seeks to the exact frame, with a trusted header) is cut into parts of
whole windows along that grid: part p holds the windows that start in the p-th 10-minute
segment, and the last part runs to the end with the recording's padded tail windows.
The reader resamples every grid segment on its own, so a part decoded alone gives the
samples, and so the windows, scores and embeddings, of reading the file whole, bit for
bit; the parts, put together in order, are the recording.
"""

from __future__ import annotations

from dataclasses import dataclass

from bdisc.audio.reader import GRID_S, AudioInfo, uses_grid
from bdisc.audio.windows import WindowSpec

END_MARGIN_S = 1.0  # a part before the last ends this far from the end the header states


@dataclass(frozen=True)
class Part:
    first: int  # first window index
    count: int | None  # windows in the part; None: to the end of the recording

    @property
    def key(self) -> str:
        return f"{self.first}-{'end' if self.count is None else self.first + self.count}"


WHOLE = Part(0, None)


def plan_parts(info: AudioInfo, spec: WindowSpec, audio_speed: float = 1.0) -> list[Part]:
    """The parts of one recording: one, the whole, unless it is read on the grid."""
    if audio_speed != 1.0 or not uses_grid(info):
        return [WHOLE]
    segment = GRID_S * spec.sample_rate
    step, size = spec.step_samples, spec.window_samples
    total = info.frames * spec.sample_rate // info.sample_rate
    # windows that end inside the recording (by its header, with a margin)
    inside = max(0, (total - round(END_MARGIN_S * spec.sample_rate) - size) // step + 1)
    parts: list[Part] = []
    first, g = 0, 1
    while True:
        nxt = -(-g * segment // step)  # the first window starting in segment g
        if nxt > inside:
            break
        parts.append(Part(first, nxt - first))
        first, g = nxt, g + 1
    parts.append(Part(first, None))
    return parts
