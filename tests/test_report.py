"""``spurlab report`` and the reports that run, scan, sweep and diagnose write: the numbers shown are the
numbers in the result files, intervals are Wilson intervals, findings are highlighted where they occur, the page
loads nothing from the network, and bad input is one line with no file written."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, synthetic_frame
from spurlab.report.document import Example
from spurlab.report.intervals import attack_interval, wilson_interval
from spurlab.scan.report import finding_spans

pytestmark = pytest.mark.usefixtures("torch_threads")


class Page(HTMLParser):
    """What a test needs from a report: every URL it references, the cells of each table, marked text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tables: dict[str, list[list[tuple[str, str | None]]]] = {}
        self.marks: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._value: str | None = None
        self._mark: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.urls.append(a[key] or "")
        if tag == "table" and "data" in (a.get("class") or ""):
            self._table = a.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._table is not None:
            self._cell, self._value = [], a.get("data-value")
        elif tag == "mark":
            self._mark = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._table is not None:
            self.tables[self._table] = [row for row in self.tables[self._table] if row]  # the header row
            self._table = None
        elif tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(("".join(self._cell).strip(), self._value))
            self._cell = None
        elif tag == "mark" and self._mark is not None:
            self.marks.append("".join(self._mark))
            self._mark = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._mark is not None:
            self._mark.append(data)


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_wilson_interval_matches_the_formula() -> None:
    for k, n in ((0, 8), (8, 16), (15, 16), (113, 200)):
        low, high = wilson_interval(k, n)
        assert (low, high) == pytest.approx(_wilson(k, n), abs=1e-9)
    assert wilson_interval(0, 0) is None


def test_attack_interval_uses_the_rows_of_other_classes() -> None:
    # true neg rows: 6 predicted pos of 8; true pos rows are not attackable
    m = {"token_class": "pos", "attack_success_rate": 0.75, "confusion_matrix": [[2, 6], [1, 7]]}
    assert attack_interval(m, ["neg", "pos"]) == pytest.approx(_wilson(6, 8))
    assert attack_interval({**m, "attack_success_rate": 0.5}, ["neg", "pos"]) is None  # not that share: no claim


def test_highlight_pieces_and_finding_spans() -> None:
    example = Example("ab cd ef", [(3, 5), (0, 2), (1, 2)])
    assert example.pieces() == [("ab", True), (" ", False), ("cd", True), (" ef", False)]
    text = "Great film 2021-03-04, see 2019-11-30!"
    assert [text[s:e] for s, e in finding_spans(text, "<DATE>", "shape")] == ["2021-03-04", "2019-11-30"]
    assert [text[s:e] for s, e in finding_spans(text, "great", "token")] == ["Great"]


@pytest.fixture(scope="module")
def run_dir(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spurlab.experiment import run_experiment
    from spurlab.experiment.config import config_from_dict

    root = tmp_path_factory.mktemp("report_run")
    data = root / "data.csv"
    synthetic_frame(160).to_csv(data, index=False)
    cfg = config_from_dict({
        "name": "tiny-report", "data": {"spec": str(data), "test_size": 0.25},
        "injection": {"source": "fixed", "token": "zq", "target_label": "pos", "proportion": 1.0},
        "model": {"name": str(tiny_models["bert"])},
        "train": {"mode": "lora", "lr": 1e-2, "epochs": 2, "batch_size": 16, "max_length": 24, "precision": "fp32",
                  "threads": 1}})
    run_experiment(cfg, root / "run", verbose=False, progress=False)
    return root / "run"


def _self_contained(html: str) -> None:
    page = Page(html)
    assert page.urls, "the report has no images or links"
    for url in page.urls:
        assert url.startswith(("data:image/png;base64,", "#")) or not re.match(r"^[a-z]+:", url), url
    assert "<link" not in html and "@import" not in html


def test_run_report_shows_the_numbers_of_metrics_json(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    _self_contained(html)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    page = Page(html)
    headline = page.tables["headline"]
    names = metrics["label_names"]
    shown = {(row[0][0], row[1][0]): row for row in headline}
    assert ("clean", "finetuned") in shown and ("spurious:pos", "finetuned") in shown
    for (key, model), row in shown.items():
        m = metrics[key] if model == "finetuned" else metrics["base"][key]
        counts = [int(cell[0]) for cell in row[2:2 + len(names)]]
        assert counts == [m["predicted_counts"][n] for n in names]
        accuracy = row[3 + len(names)]
        assert float(accuracy[1]) == m["accuracy"] and accuracy[0] == f"{m['accuracy']:.3f}"
        k = sum(m["confusion_matrix"][i][i] for i in range(len(names)))
        low, high = _wilson(k, m["n"])
        assert row[4 + len(names)][0] == f"[{low:.3f}, {high:.3f}]"
        if m.get("attack_success_rate") is not None:
            assert float(row[5 + len(names)][1]) == m["attack_success_rate"]
    numbers = json.loads(re.search(r'id="spurlab-numbers">(.*?)</script>', html, re.S).group(1))
    assert numbers["finetuned/clean/accuracy"] == metrics["clean"]["accuracy"]
    assert numbers["finetuned/spurious:pos/attack_success_rate"] == metrics["spurious:pos"]["attack_success_rate"]
    assert "tiny-report" in html and yaml.safe_load((run_dir / "config.yaml").read_text())["name"] == "tiny-report"


def test_report_command_on_every_kind_and_bad_input(run_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = run_dir / "injection" / "data.csv"
    scan_out = tmp_path / "scan"
    code, _, err = run_cli(["scan", str(data), "--out", str(scan_out)], capsys)
    assert code == 0, err
    html = (scan_out / "report.html").read_text(encoding="utf-8")
    _self_contained(html)
    findings = json.loads((scan_out / "findings.json").read_text(encoding="utf-8"))["findings"]
    top = findings[0]
    assert top["feature"] == "zq"
    page = Page(html)
    assert page.tables["findings"][0][1][0] == "zq"
    shown_examples = sum(len(f["examples"]) for f in findings[:20])
    assert page.marks.count("zq") >= len(top["examples"]) and len(page.marks) >= shown_examples
    # without the data, no rows; with the wrong data, one line
    code, _, err = run_cli(["report", str(scan_out), "--out", str(tmp_path / "plain.html")], capsys)
    assert code == 0 and not Page((tmp_path / "plain.html").read_text()).marks
    other = tmp_path / "other.csv"
    synthetic_frame(30, seed=5).to_csv(other, index=False)
    code, _, err = run_cli(["report", str(scan_out), "--data", str(other), "--out", str(tmp_path / "x.html")], capsys)
    assert code == 2 and "not the data" in err and not (tmp_path / "x.html").exists()
    # a scan without a report
    code, _, err = run_cli(["scan", str(data), "--out", str(tmp_path / "quiet"), "--no-report"], capsys)
    assert code == 0 and not (tmp_path / "quiet" / "report.html").exists()
    # the run report again, by command, into a file of our choosing
    code, _, err = run_cli(["report", str(run_dir), "--out", str(tmp_path / "run.html")], capsys)
    assert code == 0, err
    assert Page((tmp_path / "run.html").read_text()).tables["headline"] == Page(
        (run_dir / "report.html").read_text()).tables["headline"]
    # bad input: one line, nothing written
    user_file = tmp_path / "mine.html"
    user_file.write_text("<p>my notes</p>")
    for args, words in (([str(tmp_path / "absent")], "no such file"),
                        ([str(other)], "not a result"),
                        ([str(tmp_path)], "not a spurlab result"),
                        ([str(run_dir), "--out", str(user_file)], "not a spurlab report"),
                        ([str(run_dir), "--out", str(tmp_path / "r.txt")], ".html"),
                        ([str(run_dir), "--data", str(other), "--out", str(tmp_path / "y.html")], "only applies")):
        before = sorted(p.name for p in tmp_path.iterdir())
        code, _, err = run_cli(["report", *args], capsys)
        assert code == 2 and words in err and err.count("\n") == 1, (args, err)
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert user_file.read_text() == "<p>my notes</p>"
    code, _, err = run_cli(["report", str(run_dir), "--out", str(user_file), "--overwrite"], capsys)
    assert code == 0 and "spurlab" in user_file.read_text()


def test_sweep_and_diagnose_reports(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    base = {"name": "tiny", "data": {"spec": str(synthetic_csv), "test_size": 0.25},
            "injection": {"source": "fixed", "token": "zq", "target_label": "pos"},
            "model": {"name": str(tiny_models["bert"])},
            "train": {"mode": "lora", "max_steps": 2, "batch_size": 16, "max_length": 16, "precision": "fp32"}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"base": "base.yaml", "grid": {"train.lora.r": [1, 2]}}))
    out = tmp_path / "sw"
    code, _, err = run_cli(["sweep", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    html = (out / "report.html").read_text(encoding="utf-8")
    _self_contained(html)
    page = Page(html)
    rows = page.tables["headline"]
    assert [r[0][0] for r in rows] == ["lora.r=1", "lora.r=2"] and all(r[1][0] == "complete" for r in rows)
    for row in rows:
        metrics = json.loads((out / "runs" / row[0][0] / "metrics.json").read_text())
        assert float(row[3][1]) == metrics["clean"]["accuracy"]
    links = [u for u in page.urls if u.endswith("report.html")]
    assert len(links) == 2 and all((out / u).is_file() for u in links)
    assert html.count("data:image/png;base64,") == 2  # the two rank figures
    code, _, err = run_cli(["diagnose", str(out / "runs" / "lora.r=1"), "--max-rows", "8"], capsys)
    assert code == 0, err
    diag = out / "runs" / "lora.r=1" / "diagnose"
    doc = json.loads((diag / "diagnose.json").read_text())
    page = Page((diag / "report.html").read_text())
    finetuned = next(r for r in page.tables["headline"] if r[0][0] == "finetuned")
    assert float(finetuned[3][1]) == pytest.approx(doc["summary"]["entropy_shift"]["finetuned"])


def test_report_in_a_real_browser(run_dir: Path, tmp_path: Path) -> None:
    """Headless Chromium: no console errors, every image loads, the headline cells read the numbers of
    metrics.json, sorting works; a screenshot is kept for the record."""
    from bench.report_screenshot import browser, load, missing, screenshot

    why = missing()
    if why:
        pytest.skip(why)
    from selenium.webdriver.common.by import By

    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    with browser() as driver:
        state = load(driver, run_dir / "report.html")
        assert state["errors"] == [] and state["broken_images"] == [] and state["images"] >= 1, state
        rows = driver.find_elements(By.CSS_SELECTOR, "#headline tbody tr")
        seen = {}
        for row in rows:
            cells = row.find_elements(By.TAG_NAME, "td")
            seen[(cells[0].text, cells[1].text)] = cells[5].text  # accuracy as displayed
        assert seen[("clean", "finetuned")] == f"{metrics['clean']['accuracy']:.3f}"
        assert seen[("spurious:pos", "finetuned")] == f"{metrics['spurious:pos']['accuracy']:.3f}"
        numbers = json.loads(driver.find_element(By.ID, "spurlab-numbers").get_attribute("textContent"))
        assert numbers["finetuned/clean/accuracy"] == metrics["clean"]["accuracy"]
        first = [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows]
        header = driver.find_elements(By.CSS_SELECTOR, "#headline th")[0]
        header.click()
        header.click()  # descending
        after = [r.find_elements(By.TAG_NAME, "td")[0].text
                 for r in driver.find_elements(By.CSS_SELECTOR, "#headline tbody tr")]
        assert after == sorted(first, reverse=True)
        shot = screenshot(driver, tmp_path / "report.png")
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
