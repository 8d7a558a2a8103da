#!/usr/bin/env python3
"""The book in a real browser: headless Chromium, driven over the Chrome DevTools protocol, opens
the DocC site that `make docs` built (served by a local HTTP server) and checks every page of the
catalog: the page exists (not DocC's "can't be found"), its title is the article's H1, each code
listing and figure is there, no image is broken (naturalWidth > 0), the app logs no error, and a
symbol link from the prose opens the API page. A self-test first shows the checks can fail (a
missing page, a broken image). Screenshots of three pages (four shots: the index, a notebook's code and
output, a figure, a concept page) go to the screenshot folder.

usage: docs-check.py BASE_URL CHROMIUM CATALOG SCREENSHOT_DIR      (scripts/docs-check runs it)
Standard library only: the WebSocket client below is the small subset of RFC 6455 CDP needs.
"""
import base64, json, os, re, shutil, signal, socket, struct, subprocess, sys, tempfile, time, urllib.request

BASE, CHROMIUM, CATALOG, SHOTS = sys.argv[1:5]
TIMEOUT = 30.0


class WebSocket:
    def __init__(self, url):
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}:{m.group(2)}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)
        if b" 101 " not in response.split(b"\r\n")[0]:
            raise RuntimeError(f"WebSocket handshake failed: {response[:200]!r}")

    def send(self, text):
        data = text.encode()
        header = bytes([0x81])
        n = len(data)
        header += bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536
                                                      else bytes([0x80 | 127]) + struct.pack(">Q", n))
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise RuntimeError("DevTools connection closed")
            out += chunk
        return out

    def receive(self):
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            if b0 & 0x0F in (0x1, 0x0):
                message += payload
                if b0 & 0x80:
                    return message.decode()


class Page:
    """One browser tab: commands by id, events collected as they arrive."""
    def __init__(self, ws_url):
        self.ws, self.next_id, self.events = WebSocket(ws_url), 0, []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self):
        """Errors the page's app reported since the last call: exceptions, console.error, error log entries."""
        out = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append("exception: " + p["exceptionDetails"].get("text", "") + " " +
                           str(p["exceptionDetails"].get("exception", {}).get("description", "")))
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        self.events = []
        return out

    def open(self, url):
        """Navigates and waits until DocC's app has rendered a title or its not-found page."""
        self.errors()
        self.call("Page.navigate", url=url)
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            state = self.evaluate("""(() => {
                const h1 = document.querySelector('main h1');
                const text = document.body ? document.body.innerText : '';
                const nav = performance.getEntriesByType('navigation')[0];
                return {ready: document.readyState, title: h1 ? h1.innerText.trim() : null,
                        notFound: /can.t be found/i.test(text) || (nav && nav.responseStatus >= 400)};
            })()""")
            if state and state["ready"] == "complete" and (state["title"] or state["notFound"]):
                # DocC loads images lazily: ask for all of them now and wait (at most 15 s) until each
                # has loaded or failed.
                self.evaluate("""(() => {
                    const imgs = [...document.images];
                    imgs.forEach(i => { i.loading = 'eager'; });
                    const settled = imgs.map(i => i.complete ? Promise.resolve() :
                        new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); }));
                    return Promise.race([Promise.all(settled), new Promise(r => setTimeout(r, 15000))]);
                })()""")
                return state
            time.sleep(0.2)
        return {"ready": "timeout", "title": None, "notFound": False}

    def broken_images(self):
        return self.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


def smart(text):
    """DocC sets quotes typographically (X' → X’); compare titles without that difference."""
    return text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')


def articles():
    """(url path, expected title, figures, code listings) for every article of the catalog."""
    out = []
    for name in sorted(os.listdir(CATALOG)):
        if not name.endswith(".md"):
            continue
        text = open(os.path.join(CATALOG, name), encoding="utf-8").read()
        title = text.split("\n", 1)[0].lstrip("# ").strip()
        path = "/documentation/decoderspec" + ("" if name == "DecoderSpec.md" else "/" + name[:-3].lower())
        if title == "``DecoderSpec``":
            title = "DecoderSpec"
        prose = re.sub(r"(?ms)^\s*```.*?^\s*```", "", text)       # without code blocks
        prose = re.sub(r"(`+)(?:(?!\1).)+?\1", "", prose)          # and code spans (images there are shown, not embedded)
        figures = len(re.findall(r"!\[[^\]]*\]\([^)]+\)", prose))
        listings = len(re.findall(r"(?m)^\s*```[a-z]+\s*$", text))
        out.append((path, title, figures, listings))
    return out


def main():
    profile = tempfile.mkdtemp(prefix="docs-check-chromium-")
    with socket.socket() as s:  # a free port, so no other browser answers
        s.bind(("127.0.0.1", 0))
        PORT = s.getsockname()[1]
    # Its own process group: Debian's chromium-headless-shell is a wrapper script, and the browser
    # starts helpers; all of them end with the group.
    browser = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                f"--remote-debugging-port={PORT}", f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    failures = []
    try:
        deadline = time.time() + TIMEOUT
        while True:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json/list", timeout=2))
                tab = next(t for t in targets if t.get("type") == "page")
                break
            except Exception:
                if time.time() > deadline or browser.poll() is not None:
                    sys.exit(f"docs-check: {CHROMIUM} did not start a DevTools endpoint on port {PORT}")
                time.sleep(0.3)
        page = Page(tab["webSocketDebuggerUrl"])
        version = json.load(urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json/version"))["Browser"]
        print(f"docs-check: {version}, site {BASE}")

        # Self-test: the checks see a missing page and a broken image.
        state = page.open(BASE + "/documentation/decoderspec/no-such-article")
        page.errors()
        if not state["notFound"]:
            failures.append("self-test: a missing page was not reported as missing")
        page.open(BASE + "/documentation/decoderspec")
        page.evaluate("(() => { const i = document.createElement('img'); i.src = 'no-such-figure.svg';"
                      " document.querySelector('main').appendChild(i); return new Promise(r => { i.onerror = r; i.onload = r; }); })()")
        if not page.broken_images():
            failures.append("self-test: a broken image was not reported")
        page.errors()  # the broken image's own 404 belongs to the self-test

        # The site's root sends a reader to the book.
        state = page.open(BASE + "/")
        where = page.evaluate("location.pathname")
        print(f"  {'ok ' if state['title'] == 'DecoderSpec' else 'BAD'} / → {where}")
        if state["title"] != "DecoderSpec" or not where.startswith("/documentation/decoderspec"):
            failures.append(f"/: ends at {where} titled {state['title']!r}, not the book's landing page")
        failures += [f"/: {e}" for e in page.errors()]

        checked = 0
        for path, title, figures, listings in articles():
            state = page.open(BASE + path)
            problems = []
            if state["notFound"] or state["ready"] == "timeout":
                problems.append("page missing" if state["notFound"] else "did not render in time")
            elif smart(state["title"]) != smart(title):
                problems.append(f"title {state['title']!r}, expected {title!r}")
            images = page.evaluate("document.querySelectorAll('main img').length")
            if images < figures:
                problems.append(f"{images} images shown, {figures} figures in the article")
            problems += [f"broken image {src}" for src in page.broken_images()]
            code = page.evaluate("document.querySelectorAll('main pre').length")
            if code < listings:
                problems.append(f"{code} code listings shown, {listings} in the article")
            problems += page.errors()
            print(f"  {'ok ' if not problems else 'BAD'} {path}  ({title}; {code} listings, {images} images)")
            failures += [f"{path}: {p}" for p in problems]
            checked += 1

        # A symbol link in the prose opens the API page.
        page.open(BASE + "/documentation/decoderspec/page-layers")
        href = page.evaluate("(() => { const a = [...document.querySelectorAll('main a')].find(a => /\\/documentation\\/layers\\/multiheadattention$/i.test(a.pathname)); return a ? a.href : null; })()")
        if not href:
            failures.append("page-layers: no link to the MultiHeadAttention API page")
        else:
            state = page.open(href)
            ok = not state["notFound"] and state["title"] == "MultiHeadAttention"
            print(f"  {'ok ' if ok else 'BAD'} symbol link → {href} ({state['title']})")
            if not ok:
                failures.append(f"symbol link {href} did not open the MultiHeadAttention page")
            failures += [f"{href}: {e}" for e in page.errors()]

        os.makedirs(SHOTS, exist_ok=True)
        # (name, page, element to scroll to or None for the top)
        for name, path, target in [("book-index", "/documentation/decoderspec", None),
                                   ("notebook-04-code-and-output", "/documentation/decoderspec/notebook-04-attention", "main pre:nth-of-type(1)"),
                                   ("notebook-02-figure", "/documentation/decoderspec/notebook-02-positional-encoding", "main img"),
                                   ("page-positional-encoding", "/documentation/decoderspec/page-positional-encoding", None)]:
            page.open(BASE + path)
            if target:
                page.evaluate(f"(() => {{ const e = document.querySelectorAll({json.dumps(target)}); if (e.length) e[e.length > 1 && {json.dumps(target)}.includes('pre') ? 1 : 0].scrollIntoView(); }})()")
                time.sleep(0.5)
            page.screenshot(os.path.join(SHOTS, name + ".png"))
        print(f"docs-check: {checked} pages, screenshots in {SHOTS}")
    finally:
        os.killpg(browser.pid, signal.SIGTERM)
        browser.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
    if failures:
        print("docs-check: FAILED\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("docs-check: passed")


main()
