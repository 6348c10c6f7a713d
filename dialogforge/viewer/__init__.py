"""Seeing what dialogforge made: the graph diagram and the trajectory viewer.

``diagram`` draws the dialogue graph (Mermaid text, or SVG/PNG through the
local Graphviz ``dot``); ``data`` turns a database into the JSON the viewer
shows; ``server`` serves the viewer on 127.0.0.1; ``standalone`` writes one
self-contained HTML file. The page itself (``static/``, served under
``/assets/``) is plain HTML, CSS and JavaScript written by hand: no build
step, no CDN, works offline.
"""
