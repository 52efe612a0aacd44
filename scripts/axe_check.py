"""Runs axe-core over ticketing's pages in headless Chromium (WebDriver), prints violations."""
import json, os, subprocess, sys, time, urllib.request, socket, tempfile

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wd(method, url, body=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["value"]

base = sys.argv[1]
paths = sys.argv[2:]
axe = open(os.environ.get("AXE_JS", "target/axe/node_modules/axe-core/axe.min.js")).read()
port = free_port()
driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.5)
try:
    caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": ["--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tempfile.mkdtemp()}"]}}}}
    sid = wd("POST", f"http://127.0.0.1:{port}/session", caps)["sessionId"]
    s = f"http://127.0.0.1:{port}/session/{sid}"
    total = 0
    cookies = os.environ.get("AXE_COOKIES", "")
    if cookies:
        wd("POST", f"{s}/url", {"url": base + "/favicon.ico"})
        for pair in cookies.split(";"):
            name, _, value = pair.strip().partition("=")
            wd("POST", f"{s}/cookie", {"cookie": {"name": name, "value": value, "path": "/"}})
    for path in paths:
        wd("POST", f"{s}/url", {"url": base + path})
        # The page's CSP forbids inline script, but WebDriver's execute runs outside it.
        wd("POST", f"{s}/execute/sync", {"script": axe + "; return true;", "args": []})
        result = wd("POST", f"{s}/execute/async", {"script": "const done = arguments[0]; axe.run(document).then(r => done(r.violations.map(v => [v.id, v.impact, v.nodes.length, v.nodes[0].target]))).catch(e => done(String(e)));", "args": []})
        total += len(result) if isinstance(result, list) else 1
        print(path, "violations:", result)
    wd("DELETE", s)
    print("TOTAL", total)
finally:
    driver.kill()
