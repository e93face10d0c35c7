"""Stage 4, the picture: ``graph`` (networkx), ``view`` (what to draw), ``style`` (colours, labels), ``dot`` (Graphviz)."""
