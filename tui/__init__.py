"""The Goldfish dashboard (Textual): watch and steer what the agent does, beside it.

Import-light: ``tui.data`` and ``tui.format`` never import Textual, so the data layer
can be tested and benchmarked without a terminal.
"""
