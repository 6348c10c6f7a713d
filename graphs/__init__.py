"""The dialogue graph: its state, context, routing and builder (``dialogforge.graphs.builder``).

Nothing is imported here: the state is imported by every node, and the
builder imports the nodes, so this package stays a plain namespace.
Scripts use ``dialogforge.build_graph``.
"""
