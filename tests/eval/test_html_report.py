"""The HTML report behind `vidnav report RUN [RUN ...]`: what the page holds, and the page in a real headless
chromium (Debian's, installed by scripts/setup-system.sh) driven over the DevTools protocol."""

import base64
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote

import plotly.graph_objects as go
import pytest

from vidnav.cli import main
from vidnav.errors import VidNavError
from vidnav.eval.compare import compare_runs, read_run
from vidnav.eval.html_report import default_html_path, html_report
from vidnav.eval.runner import evaluate

EPISODES = 4


@pytest.fixture(scope="module")
def runs(tiny_benchmark, tmp_path_factory) -> Path:
    """Two runs on the first 4 val_unseen episodes, side by side: forward (MP4s of the first 3) and oracle (all)."""
    root = tmp_path_factory.mktemp("runs")
    evaluate(tiny_benchmark, "val_unseen", "forward", root / "forward", episodes=EPISODES, video=3, progress=False)
    evaluate(tiny_benchmark, "val_unseen", "oracle", root / "oracle", episodes=EPISODES, video=True, progress=False)
    return root


def page_data(page: Path) -> dict:
    m = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page.read_text(), re.S)
    return json.loads(m.group(1))


def test_two_runs_one_page_with_their_numbers_and_videos(runs, tmp_path, capsys):
    page, reports = html_report([runs / "forward", runs / "oracle"])
    assert page == default_html_path([runs / "forward", runs / "oracle"]) == runs.resolve() / "report.html"
    html = page.read_text()
    # the libraries are inlined, no tag loads a resource from a host (the browser test watches the requests)
    markup = re.sub(r"<(script|style)\b([^>]*)>.*?</\1>", r"<\1\2>", html, flags=re.S | re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup, re.I)
    assert re.findall(r"<script[^>]*>", markup) == [
        "<script>",
        '<script id="report-data" type="application/json">',
        '<script id="dt-bundle" type="text/plain">',
        '<script type="module">',
    ]
    assert "plotly.js v" in html and len(html) > 4_000_000
    d = page_data(page)
    assert len(d["rows"]) == 2 * EPISODES and {r["run"] for r in d["rows"]} == {"forward", "oracle"}
    for name, rep in zip(("forward", "oracle"), reports):
        results = {r["episode_id"]: r for r in read_run(runs / name)[0]}
        assert json.loads((runs / name / "report.json").read_text()) == rep
        for row in (r for r in d["rows"] if r["run"] == name):
            res = results[row["id"]]
            assert (row["success"] == "yes") == bool(res["success"]) and row["steps"] == res["steps"]
            assert row["ne"] == pytest.approx(res["navigation_error"]) and row["ndtw"] == pytest.approx(res["ndtw"])
            assert row["ended"] == ("success" if res["success"] else rep["failures"]["by_episode"][row["id"]])
    # every MP4 is linked relative to the page; the forward run has none for its 4th episode
    for i, ep in d["episodes"].items():
        for v in ep["videos"]:
            want = runs / v["run"] / "videos" / f"{i}.mp4"
            assert (v["src"] is None) == (not want.is_file())
            if v["src"]:
                assert (page.parent / unquote(v["src"])).resolve() == want.resolve()
        assert len(ep["traces"]) == 3 + 2 * len(ep["videos"]) and ep["scene"] in d["scenes"]
        go.Figure(data=ep["traces"], layout=d["scenes"][ep["scene"]])  # the maps are valid plotly figures
    assert [v["src"] is None for v in d["episodes"][d["rows"][-1]["id"]]["videos"]] == [True, False]
    # the paired comparison is compare_runs' own, with the episodes only one run solved
    c = compare_runs(runs / "forward", runs / "oracle", by_rooms=True)
    assert f"McNemar's exact p = {c['mcnemar_p']:.4f}" in html
    failed = [r["id"] for r in d["rows"] if r["run"] == "forward" and r["success"] == "no"]
    assert c["only_b"] == len(failed) > 0 and c["only_a"] == 0
    assert (
        f"solved by oracle only ({len(failed)}): "
        + "".join(f'<span class="chip" data-episode="{i}">{i}</span>' for i in failed)
        in html
    )
    # the CLI: several runs, another page path; one run alone gets RUN/report.html and its baseline neighbour
    main(["report", str(runs / "forward"), str(runs / "oracle"), "--html", str(tmp_path / "r.html")])
    assert (
        f"HTML report (open it in a browser; it links the runs' MP4s): {tmp_path / 'r.html'}" in capsys.readouterr().out
    )
    assert len(page_data(tmp_path / "r.html")["rows"]) == 2 * EPISODES
    two = html_report([runs / "forward", runs / "oracle"], out=tmp_path / "two.html", episodes=2)[0].read_text()
    assert "on the 2 episodes both finished" in two  # the comparison covers the report's episodes only
    one, _ = html_report([runs / "forward"], episodes=2)
    assert one == runs / "forward" / "report.html" and len(page_data(one)["rows"]) == 2
    assert "<td>oracle (baseline beside the runs)</td>" in one.read_text()


def test_scenes_that_are_not_vidnav_houses_get_no_maps_nor_rooms(runs, tmp_path, monkeypatch):
    """Real VLN-CE episodes on Matterport scenes: no room layout, so no room plots, failure modes or maps."""
    monkeypatch.setattr("vidnav.eval.report.load_houses", lambda data, episodes: None)
    fwd = tmp_path / "forward"  # a copy whose first failure ran to the step cap
    shutil.copytree(runs / "forward", fwd)
    recs = read_run(fwd)[0]
    next(r for r in recs if not r["success"])["stopped"] = False
    (fwd / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    page, _ = html_report([fwd, runs / "oracle"], out=tmp_path / "r.html")
    d, html = page_data(page), page.read_text()
    assert "fig-distance" in d["figures"] and "fig-rooms" not in d["figures"] and 'id="failures"' not in html
    assert d["scenes"] == {} and all(ep["traces"] is None for ep in d["episodes"].values())
    ended = [r["ended"] for r in d["rows"] if r["run"] == d["runs"][0]]
    assert ended == ["success" if r["success"] else "failed, stopped" if r["stopped"] else "step cap" for r in recs]
    assert "step cap" in ended and "failed, stopped" in ended


def test_report_errors_name_the_fix(runs, tiny_benchmark, tmp_path):
    with pytest.raises(VidNavError, match="give a file name ending in .html"):
        html_report([runs / "forward"], out=tmp_path / "report.txt")
    with pytest.raises(VidNavError, match="given twice"):
        html_report([runs / "forward", runs / "forward"])
    evaluate(tiny_benchmark, "val_seen", "forward", tmp_path / "seen", episodes=1, progress=False)
    with pytest.raises(VidNavError, match="evaluated on split val_seen.*report them separately"):
        html_report([runs / "oracle", tmp_path / "seen"], out=tmp_path / "r.html")


class Chromium:
    """Headless chromium with a DevTools protocol connection to its one page."""

    def __init__(self, profile: Path):
        import websocket

        self.proc = subprocess.Popen(
            [
                shutil.which("chromium"),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "--window-size=1400,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.time() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        self.ws = websocket.create_connection(
            next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"], timeout=60
        )
        self.n, self.events = 0, []
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params) -> dict:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.n:
                assert "error" not in msg, msg
                return msg["result"]
            self.events.append(msg)

    def js(self, expression: str):
        r = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    def open(self, page: Path) -> None:
        self.send("Page.navigate", url=page.resolve().as_uri())
        assert self.js("""(async () => {
            for (let i = 0; i < 300 && document.body?.dataset.ready !== "1"; i++) await new Promise(r => setTimeout(r, 100));
            return document.body.dataset.ready === "1"; })()"""), "the page's script did not finish"

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append(json.dumps(p["exceptionDetails"])[:300])
            elif e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                out.append(json.dumps(p["args"])[:300])
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(p["entry"]["text"])
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(20)


@pytest.fixture
def chromium(tmp_path):
    b = Chromium(tmp_path / "profile")
    yield b
    b.close()


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium is not installed (scripts/setup-system.sh installs Debian's; `make test` runs it)",
)
def test_the_page_in_headless_chromium(runs, chromium, tmp_path):
    page, _ = html_report([runs / "forward"], out=runs / "forward" / "report.html")
    chromium.open(page)
    assert chromium.errors() == []
    # one table row per episode, the table sorts, a click shows that episode's video and path
    assert chromium.js("document.querySelectorAll('#episodes tbody tr').length") == EPISODES
    assert chromium.js("vidnavReport.table.rows().count()") == EPISODES
    steps = [r["steps"] for r in page_data(page)["rows"]]
    chromium.js("document.querySelectorAll('#episodes thead th')[5].click()")  # steps (the run column is hidden)
    shown = chromium.js("[...document.querySelectorAll('#episodes tbody tr td:nth-child(6)')].map(t => +t.textContent)")
    assert shown in (sorted(steps), sorted(steps, reverse=True))
    second = chromium.js(
        "document.querySelectorAll('#episodes tbody tr')[1].querySelector('td:nth-child(1)').textContent"
    )
    chromium.js("document.querySelectorAll('#episodes tbody tr')[1].click()")
    assert chromium.js("document.querySelector('#detail h3').textContent") == f"episode {second}"
    assert chromium.js("document.getElementById('topdown').data.length") == 5  # reference, radius, goal, path, end
    played = chromium.js("""(async () => {
        const v = document.querySelector('#detail video');
        if (!v) return null;
        await v.play();
        await new Promise(r => setTimeout(r, 700));
        return {duration: v.duration, time: v.currentTime, width: v.videoWidth, error: v.error && v.error.message}; })()""")
    if played is None:  # the 4th episode has no MP4: then another row must have one
        chromium.js("vidnavReport.show('1')")
        played = chromium.js("""(async () => { const v = document.querySelector('#detail video'); await v.play();
            await new Promise(r => setTimeout(r, 700)); return {duration: v.duration, time: v.currentTime,
            width: v.videoWidth, error: v.error && v.error.message}; })()""")
    assert played["error"] is None and played["duration"] > 0 and played["time"] > 0 and played["width"] > 0
    size = chromium.send("Page.getLayoutMetrics")["cssContentSize"]
    shot = chromium.send(
        "Page.captureScreenshot",
        captureBeyondViewport=True,
        clip=dict(x=0, y=0, width=size["width"], height=size["height"], scale=1),
    )
    png = tmp_path / "report.png"
    png.write_bytes(base64.b64decode(shot["data"]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    # filtering by how an episode ended
    ended = [r["ended"] for r in page_data(page)["rows"]]
    for value in ("success", ended[0]):
        chromium.js(
            f"{{ const s = document.getElementById('ended-filter'); s.value = '{value}'; "
            "s.dispatchEvent(new Event('change')); }"
        )
        assert chromium.js("vidnavReport.table.rows({search: 'applied'}).count()") == ended.count(value)
        assert chromium.js("document.querySelectorAll('#episodes tbody tr td:nth-child(7)').length") == ended.count(
            value
        )
    assert chromium.errors() == []
    # no network at view time: the page, its MP4s and the bundle's blob, nothing else
    assert {u.split(":", 1)[0] for u in chromium.requests()} <= {"file", "blob", "data"}
    assert any(u.endswith(".mp4") for u in chromium.requests())

    # two runs: a row per episode and run, the comparison, and a chip that opens an episode solved by one run only
    both, _ = html_report([runs / "forward", runs / "oracle"])
    chromium.open(both)
    assert chromium.js("vidnavReport.table.rows().count()") == 2 * EPISODES
    chromium.js("document.querySelector('#compare-1 .chip').click()")
    chip = chromium.js("document.querySelector('#compare-1 .chip').dataset.episode")
    assert chromium.js("document.querySelector('#detail h3').textContent") == f"episode {chip}"
    assert chromium.js("document.querySelectorAll('#detail figure').length") == 2
    assert chromium.errors() == []
