#!/usr/bin/env python3
"""The browser test of report.html (`make test-browser`).

For each recorded results folder under tests/data, `harness report` writes report.html
into a copy; headless Chromium opens it with every network request sent to a dead proxy
(so anything the page tried to fetch would fail and be logged), and over the DevTools
protocol (a pipe, no extra packages) this script checks that:

- nothing was logged at warning or error level and no script ran or failed;
- every figure in figures/ is in the page as inline SVG, laid out with a real size, with
  its marks (one CI per comparison in the forest plot, ...) present in the DOM;
- a full-page screenshot is not blank: most of it is white page, but a good share is ink,
  and the forest plot's green (a significant improvement) was painted.

Chromium comes from the Debian package `chromium`; it is installed when missing, and the
script says so. The screenshots are kept in $BROWSER_SHOTS (default target/browser) for a
person to look at.
"""

import base64
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ["results-fixture", "results-fixture-load"]
GREEN = (0x00, 0x9E, 0x73)
# How much of the page's top the screenshot check reads, CSS px: the verdicts and the
# forest plot are there.
TOP = 3200


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    print("browser test: chromium is not installed; installing the Debian package `chromium`", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    path = shutil.which("chromium")
    if not path:
        sys.exit("browser test: chromium is still missing after installing it")
    return path


class Browser:
    """Headless Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, binary: str, profile: str):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():
            # Through fresh copies: one of the pipe's fds may already be 3 or 4, and
            # dup2 onto itself would leave it close-on-exec.
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                # Nothing on the network: a fetch would fail and be logged.
                "--proxy-server=127.0.0.1:9",
                "--proxy-bypass-list=<-loopback>",
                "about:blank",
            ],
            # The pipe's ends become fds 3 and 4 after the fork; closing the other fds
            # would happen after that and close them again, so leave them (os.pipe's are
            # close-on-exec anyway).
            close_fds=False,
            preexec_fn=fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def _read(self) -> dict:
        while b"\0" not in self.buffer:
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params=None, session=None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read()
            if event.get("method") == method:
                return event
            self.events.append(event)

    def close(self):
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        self.proc.wait(timeout=30)


def png_pixels(data: bytes):
    """Width, height and rows of (r, g, b) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[i : i + 3]) for i in range(0, stride, channels)])
        prev = line
    return width, height, rows


# What the page says about itself, computed in the page.
PROBE = """(() => {
  const figures = [...document.querySelectorAll('figure')].map(f => {
    const svg = f.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const count = c => svg ? svg.querySelectorAll('g.' + c).length : 0;
    return {id: f.id, width: box.width, height: box.height, ci: count('ci'),
            trial: count('trial'), call: count('call'), simulated: count('simulated'),
            caption: (f.querySelector('figcaption') || {}).textContent || ''};
  });
  return JSON.stringify({
    figures,
    tables: document.querySelectorAll('table').length,
    h1: (document.querySelector('h1') || {}).textContent || '',
    scripts: document.querySelectorAll('script').length,
    height: document.documentElement.scrollHeight,
  });
})()"""


def check(browser: Browser, results: Path, shots: Path) -> list:
    problems = []
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        browser.send(f"{domain}.enable", session=session)
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        session=session,
    )
    browser.send("Page.navigate", {"url": (results / "report.html").as_uri()}, session=session)
    browser.wait_for("Page.loadEventFired")
    page = json.loads(
        browser.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session=session)[
            "result"
        ]["value"]
    )
    # The whole page for a person to look at; its top, at half scale, for this script to
    # read (decoding the whole page in pure Python would take a minute).
    shots.mkdir(parents=True, exist_ok=True)
    whole = browser.send(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session
    )
    (shots / f"{results.name}.png").write_bytes(base64.b64decode(whole["data"]))
    top = min(TOP, page["height"])
    clip = {"x": 0, "y": 0, "width": 1280, "height": top, "scale": 0.5}
    shot = browser.send(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": clip},
        session=session,
    )
    png = base64.b64decode(shot["data"])
    (shots / f"{results.name}-top.png").write_bytes(png)

    # Nothing logged at warning or error level, no script, no exception.
    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Log.entryAdded" and params["entry"]["level"] in ("warning", "error"):
            problems.append(f"logged: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        elif method == "Runtime.consoleAPICalled":
            problems.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params['exceptionDetails'].get('text')}")
    browser.events.clear()
    if page["scripts"]:
        problems.append(f"{page['scripts']} <script> elements")

    # Every figure of figures/ is in the page, laid out, with its marks.
    names = sorted(p.stem for p in (results / "figures").glob("*.svg"))
    drawn = {f["id"]: f for f in page["figures"]}
    if sorted(drawn) != [f"fig-{n}" for n in names]:
        problems.append(f"figures in the page {sorted(drawn)} are not figures/ {names}")
    summary = json.loads((results / "summary.json").read_text())
    for name in names:
        f = drawn.get(f"fig-{name}")
        if not f:
            continue
        if f["width"] < 300 or f["height"] < 150:
            problems.append(f"{name}: laid out at {f['width']}x{f['height']}")
        if f["simulated"] != 1:
            problems.append(f"{name}: no SIMULATED mark")
        if len(f["caption"]) < 80:
            problems.append(f"{name}: caption {f['caption']!r}")
    forest = drawn.get("fig-forest")
    with_ratio = sum(1 for c in summary["comparisons"] if c.get("ratio"))
    if not forest or forest["ci"] != with_ratio:
        problems.append(f"forest: {forest and forest['ci']} CIs for {with_ratio} comparisons")
    if page["tables"] < 5:
        problems.append(f"only {page['tables']} tables")
    if summary["scenario"] not in page["h1"]:
        problems.append(f"title {page['h1']!r}")

    # The screenshot is the page, painted: mostly white, a fair share of ink, and the
    # green of the forest plot's significant improvements.
    width, height, rows = png_pixels(png)
    if abs(height - top / 2) > 2 or abs(width - 640) > 2:
        problems.append(f"screenshot {width}x{height} px, asked for 640x{top / 2:.0f}")
    pixels = [px for row in rows for px in row]
    white = sum(1 for px in pixels if min(px) >= 250) / len(pixels)
    ink = sum(1 for px in pixels if max(px) <= 120) / len(pixels)
    green = sum(1 for px in pixels if all(abs(a - b) <= 8 for a, b in zip(px, GREEN)))
    colours = len(set(pixels))
    print(
        f"  {results.name}: top {width}x{height} px, {white:.0%} white, {ink:.1%} ink, "
        f"{green} green px, {colours} colours, {len(names)} figures, {page['tables']} tables"
    )
    if not (0.4 < white < 0.99) or ink < 0.005 or colours < 50:
        problems.append(f"screenshot looks blank: {white:.0%} white, {ink:.1%} ink, {colours} colours")
    has_faster = any(c["verdict"] == "faster" for c in summary["comparisons"])
    if has_faster and green < 10:
        problems.append("the forest plot's green marks were not painted")
    browser.send("Target.closeTarget", {"targetId": target})
    return problems


def main() -> int:
    binary = chromium()
    subprocess.run(["cargo", "build", "--locked", "--quiet"], cwd=ROOT, check=True)
    harness = ROOT / "target" / "debug" / "harness"
    shots = Path(os.environ.get("BROWSER_SHOTS", ROOT / "target" / "browser"))
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        browser = Browser(binary, str(Path(tmp) / "profile"))
        try:
            print("browser test: report.html in headless", subprocess.run(
                [binary, "--version"], capture_output=True, text=True).stdout.strip())
            for name in FIXTURES:
                results = Path(tmp) / name
                shutil.copytree(ROOT / "tests" / "data" / name, results)
                subprocess.run([harness, "report", results], check=True, stdout=subprocess.DEVNULL)
                problems = check(browser, results, shots)
                for p in problems:
                    print(f"  FAIL {name}: {p}")
                failed |= bool(problems)
        finally:
            browser.close()
    print(f"browser test: {'FAILED' if failed else 'passed'}; screenshots in {shots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
