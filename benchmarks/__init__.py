"""Benchmarks: each ``bench_*.py`` module has a ``main()`` that prints ratios against a
reference run in the same process. Run them all with ``make bench``
(``python -m benchmarks``)."""
