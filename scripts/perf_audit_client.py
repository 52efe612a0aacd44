"""The client of scripts/perf-audit: waits for the node, warms it up, runs `zero`, sends
`rounds` rounds of four requests one at a time (list a ticket, edit it, reserve it, read the
order: four events written), then runs `dump`. Fails on any unexpected answer."""
import http.client
import json
import subprocess
import sys
import time
import uuid

port, rounds, zero, dump = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]


def connect():
    deadline = time.time() + 120  # valgrind starts slowly
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("GET", "/healthz")
            if c.getresponse().read() is not None:
                return c
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


conn = connect()


def call(method, path, body=None, cookie=None, expect=(200, 201)):
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    res = conn.getresponse()
    data = res.read()
    if res.status not in expect:
        sys.exit(f"{method} {path}: {res.status} {data[:200]!r}")
    return res, json.loads(data) if data else None


def user():
    res, _ = call("POST", "/api/users/signup", {"email": f"{uuid.uuid4().hex}@perf.test", "password": "password"})
    cookie = res.getheader("Set-Cookie")
    return cookie.split(";")[0]


seller, buyer = user(), user()


def round_trip():
    _, ticket = call("POST", "/api/tickets", {"title": "perf", "price": 10}, seller)
    call("PUT", f"/api/tickets/{ticket['id']}", {"title": "perf 2", "price": 11}, seller)
    _, order = call("POST", "/api/orders", {"ticketId": ticket["id"]}, buyer)
    call("GET", f"/api/orders/{order['id']}", None, buyer)


for _ in range(20):
    round_trip()
subprocess.run(zero, shell=True, check=True)
for _ in range(rounds):
    round_trip()
subprocess.run(dump, shell=True, check=True)
