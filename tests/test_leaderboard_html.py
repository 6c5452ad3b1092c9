"""The HTML leaderboard renders in headless Chromium from file:// and its tables sort on click."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_leaderboard import write_handmade

from tokes_bench.results.leaderboard import build_leaderboard, write_leaderboard

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed with apt-get when missing and we are root, else the test skips."""
    if not os.path.exists(CHROMIUM) and shutil.which("apt-get") and os.geteuid() == 0:
        proc = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True,
                              timeout=1200, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if proc.returncode != 0:
            pytest.skip(f"chromium missing and `apt-get install -y chromium` failed: {proc.stderr[-300:]}")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} missing and cannot be installed here (not root or no apt-get)")
    return CHROMIUM


def dump_dom(chromium: str, page: Path, profile: Path) -> str:
    """The page's DOM after load and scripts, as headless Chromium serialises it."""
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class Tables(HTMLParser):
    """Collects each table's header texts and its rows' data-v values, by table id."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.current = None
        self.in_th = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.current = self.tables.setdefault(a.get("id"), {"head": [], "rows": [], "sort": {}})
        elif self.current is not None and tag == "th":
            self.in_th = True
            self.current["head"].append("")
            if "aria-sort" in a:
                self.current["sort"][len(self.current["head"]) - 1] = a["aria-sort"]
        elif self.current is not None and tag == "tr" and self.current["head"] and not self.in_th:
            self.current["rows"].append([])
        elif self.current is not None and tag == "td":
            self.current["rows"][-1].append(a.get("data-v", ""))

    def handle_endtag(self, tag):
        if tag == "th":
            self.in_th = False
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self.in_th and self.current is not None:
            self.current["head"][-1] += data


def parse_tables(dom: str) -> dict[str, dict]:
    p = Tables()
    p.feed(dom)
    return p.tables


# Runs after the page's own script: clicks headers like a user and records the row order after each.
CLICKS = """<script>
var t = document.getElementById('t-summary');
var heads = Array.prototype.map.call(t.tHead.rows[0].cells, function (h) { return h.textContent; });
function col(name) { return heads.indexOf(name); }
function order(c) { return Array.prototype.map.call(t.tBodies[0].rows, function (r) {
  return r.cells[c].getAttribute('data-v'); }).join(','); }
var c = col('linear_top1@digits/val'), m = col('method');
t.tHead.rows[0].cells[c].click(); document.body.setAttribute('data-asc', order(c));
t.tHead.rows[0].cells[c].click(); document.body.setAttribute('data-desc', order(c));
t.tHead.rows[0].cells[m].click(); document.body.setAttribute('data-method', order(m));
</script>"""


@pytest.mark.slow
def test_html_page_renders_and_sorts(tmp_path, chromium):
    res = write_handmade(tmp_path / "res")
    write_leaderboard(build_leaderboard([res], n_boot=200), tmp_path / "out", html=True)
    page = (tmp_path / "out" / "leaderboard.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page), "page must not load external resources"
    probe = tmp_path / "out" / "probe.html"
    probe.write_text(page.replace("</body>", CLICKS + "</body>"))
    dom = dump_dom(chromium, probe, tmp_path / "profile")

    tables = parse_tables(dom)
    assert set(tables) == {"t-summary", "t-comparison", "t-classification", "t-vost"}
    assert [len(tables[k]["rows"]) for k in ("t-summary", "t-comparison", "t-classification", "t-vost")] == [
        5, 5, 8, 2]
    assert 'src="data:image/png;base64,' in dom
    summary = tables["t-summary"]
    method = summary["head"].index("method")
    assert summary["sort"] == {method: "ascending"}  # the last click left its mark on that header only
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', body))
    # linear top-1 per encoder: tokes-20ep 85, tokes-10ep 82, mae 80, random 20; published row empty (last).
    assert attrs["asc"] == "20.0,80.0,82.0,85.0,"
    assert attrs["desc"] == "85.0,82.0,80.0,20.0,"
    assert attrs["method"] == "mae,mae,random,tokes,tokes"
    # The DOM's final order is the method sort, and every row kept all its cells.
    assert [r[method] for r in summary["rows"]] == ["mae", "mae", "random", "tokes", "tokes"]
    assert {len(r) for r in summary["rows"]} == {len(summary["head"])}
