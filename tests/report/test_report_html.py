"""The self-contained HTML report, opened in a real headless Chromium (tests/browser.py)."""

import re

import pytest
from browser import open_page
from helpers import REPO, run, run_script
from report_fixtures import INDICES, with_quality, write_overlays_for
from results_fixtures import make_result, write_result

from unetbench.report.compare import build_comparison
from unetbench.report.html import html_text
from unetbench.report.load import load_runs
from unetbench.report.sections import build_tables
from unetbench.report.tables import Table


def _two_backends_with_repeats(folder, n=5):
    for seed in range(n):
        for backend, speed, time_s, acc in (("cuda", 200.0, 60.0, 0.92), ("gaudi_lazy", 300.0, 45.0, 0.88)):
            res = with_quality(make_result(backend, samples_per_s=speed + seed, seed=seed), 0.5, time_s + seed)
            write_overlays_for(folder, res, accuracy=acc, seed=seed)
            write_result(folder, res)


def test_html_shows_any_table_it_is_given_escaped(tmp_path):
    # Generic over the report's sections: a table another module adds shows up as it is.
    write_result(tmp_path, make_result("cuda"))
    comp = build_comparison(load_runs([tmp_path]))
    extra = Table("Workload matrix <models x datasets>", ["model", "samples/s"], [["unet", "12.5"]], ["a note & more"],
                  "matrix")
    text = html_text(comp, build_tables(comp) + [extra], plots={})
    assert '<section id="matrix"><h2>Workload matrix &lt;models x datasets&gt;</h2>' in text
    assert '<td class="num">12.5</td>' in text and "<li>a note &amp; more</li>" in text
    assert '<a href="#matrix">' in text


@pytest.mark.slow
def test_html_report_is_one_self_contained_file(tmp_path):
    results = tmp_path / "results"
    _two_backends_with_repeats(results)
    proc = run_script(["compare_results.py", results, "--html", tmp_path / "report.html", "-q"])
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "report.html").read_text()
    # Nothing to fetch: no script, stylesheet link, font or remote URL; every image inline.
    assert not re.search(r"<script|<link|@import|url\(|https?://", text, re.I)
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for title in ("Performance (steady state)", "Time to target", "Throughput over repeated runs",
                  "Prediction overlays", "Per-class test IoU"):
        assert title in text
    assert text.count('alt="overlay ') == len(INDICES)
    assert not list(tmp_path.glob("plots")), "--html alone must not leave a plots folder"


@pytest.mark.slow
def test_the_demo_compares_two_configurations_in_one_html_report(tmp_path):
    # The real demo chain (dataset, two CPU trainings, comparison), one epoch instead of five.
    run_dir = tmp_path / "run"
    proc = run([REPO / "run_benchmark.sh", "--demo", "--local", "--skip-verify", "--data", tmp_path / "data",
                "--run-dir", run_dir, "--epochs", "1"], timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    results = run_dir / "results"
    assert {p.name for p in results.glob("overlays_*.npz")} == {"overlays_cpu_parity.npz", "overlays_cpu_fast.npz"}
    with open_page(run_dir / "report" / "report.html", tmp_path) as (page, problems):
        body = page.inner_text("body")
        alts = page.evaluate("Array.from(document.images).filter(i => i.naturalWidth > 0).map(i => i.alt)")
    assert problems == []
    assert "cpu/parity" in body and "cpu/fast" in body and "Time to target" in body
    assert sum(a.startswith("overlay") for a in alts) == 6 and "time to quality" in alts


@pytest.mark.slow
def test_html_report_renders_in_a_real_browser_without_errors(tmp_path):
    results = tmp_path / "results"
    _two_backends_with_repeats(results)
    proc = run_script(["compare_results.py", results, "--report-dir", tmp_path / "report", "-q"])
    assert proc.returncode == 0, proc.stderr
    with open_page(tmp_path / "report" / "report.html", tmp_path) as (page, problems):
        body = page.inner_text("body")
        images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
        tables = page.evaluate("document.querySelectorAll('table').length")
        height = page.evaluate("document.body.scrollHeight")
        wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
        pdf = page.pdf()   # prints: Chromium lays the page out for paper without error
    assert problems == []
    assert "unetbench comparison" in body and "cuda/parity" in body and "gaudi_lazy/parity" in body
    assert "Time to target" in body and "MLPerf: mean of 3" in body
    assert tables >= 8 and height > 3000, "the page is blank or lost its sections"
    assert images and all(done and width > 100 for done, width, _ in images), images
    assert sum(alt.startswith("overlay") for _, _, alt in images) == len(INDICES)
    assert not wide, "the page scrolls sideways on a laptop screen"
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
