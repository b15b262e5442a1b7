"""Compare unetbench training results: tables, exports and plots.

Run it through the top-level script::

    python3 compare_results.py results/ --report-dir results/report

Modules, one concern each (no module imports torch: the report runs where torch does not):

Reading
  ``load``             find, read, validate and classify result files (complete, failed, corrupt...).
  ``validate``         the checker for the subset of JSON Schema that results.schema.json uses.
  ``fields``           the per-run figures the comparison uses, each read from one place in a results file.
  ``workload``         what a run measured: its model x dataset pair, never compared across.
  ``energy``           a run's energy from its results file, else integrated from the monitor CSV.

Comparing
  ``compare``          groups, medians, spreads, comparability, baseline, speedups and statements.
  ``noise``            run-to-run noise: MLPerf-style time to target, bootstrap intervals, "within noise".
  ``baseline``         this run folder against an earlier one (--baseline-dir), changes outside the noise flagged.
  ``energy_cost``      in-process energy per sample, cost from the site's prices, the traced top operations.

Rendering
  ``sections``         the report's tables built from a comparison.
  ``matrix``           the workloads x backends matrix of samples/s and speedups.
  ``timetotarget``     the time-to-quality and noise tables, and the quality-curve plot.
  ``tables``           the Table type, rendered as aligned terminal text or Markdown.
  ``plots``            PNG plots, headless; matplotlib is imported here only, when a plot is drawn.
  ``energy_plots``     the energy-per-sample plot.
  ``overlay_figures``  the prediction overlays: per test image, each group's prediction and where they disagree.
  ``export``           CSV (one row per run), JSON summary and Markdown report, each written atomically.
  ``html``             one self-contained HTML report: every table, plot and overlay in a single file.
  ``staging``          --report-dir written whole or not at all (a staged folder swapped in at the end).
  ``cli``              the command line of compare_results.py.
"""
