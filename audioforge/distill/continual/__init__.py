"""Class-incremental continual learning with a rehearsal memory (``audioforge continual``)."""
