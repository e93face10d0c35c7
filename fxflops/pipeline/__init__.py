"""The orchestrator: what runs the passes over a capture (:mod:`.annotate`), prices what a capture left opaque or a
rule must price by capturing it again (:mod:`.opaque`, :mod:`.nested`), and times a captured graph on real tensors
(:mod:`.latency`). It is the one room that imports both :mod:`fxflops.capture` and :mod:`fxflops.passes`."""
