"""Compare unetbench training results: tables, exports and plots.

Run it through the top-level script::

    python3 compare_results.py results/ --report-dir results/report

Modules, one concern each: ``load`` (find, read, validate, classify files), ``validate``
(the schema subset checker), ``energy`` (monitor CSV integration), ``compare`` (groups,
medians, spreads, comparability, speedups, statements), ``sections`` (the tables built from a
comparison), ``tables`` (terminal and Markdown rendering), ``export`` (CSV, JSON, Markdown),
``plots`` (PNG figures, matplotlib imported only here), ``cli`` (the command line).
"""
