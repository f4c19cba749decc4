"""A metric series plot (textual-plotext): redrawn only when the data changed."""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

from tui.viewmodels import MetricSeries


class MetricPlot(PlotextPlot):
    DEFAULT_CSS = """
    MetricPlot { width: 1fr; height: 1fr; min-height: 10; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[MetricSeries, ...] = ()

    def show(self, series: Sequence[MetricSeries]) -> None:
        series = tuple(series)
        if series == self._shown:
            return
        self._shown = series
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not series:
            plt.title("no metrics logged yet")
        for s in series:
            points = [(x, y) for x, y in zip(s.steps, s.values, strict=False) if y is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                plt.plot(list(xs), list(ys), label=s.name, marker="braille")
        if len(series) == 1:
            s = series[0]
            plt.title(f"{s.name} ({s.total_points} points)")
        plt.xlabel("step")
        self.refresh()
