#!/usr/bin/env python3
"""Builds a `ticketing` data-directory fixture written by the current release.

Usage: make_fixture.py [BINARY] [OUT_DIR]
  BINARY   the `ticketing` binary (default /tmp/ticketing-head)
  OUT_DIR  where data-v2/ and manifest.json go (default /tmp/fixture-out); must not hold them yet

Only the Python standard library. Every node runs with TICKETING_ORDERS__EXPIRATION_SECONDS=60 and
the default (dev) JWT secret.

1. Node 1, TICKETING_TESTING__CRASH_AT=after_reserve: seller and buyer sign up; the seller lists
   tickets A..E and edits E once (version 1); the buyer orders A and the node aborts after the
   ticket is reserved, before the order is written (an orphan hold with a durable deadline).
2. Node 2: both sign in; the buyer orders B (left `created`), orders and pays C, orders and
   cancels D, then signs in once more and keeps that sign-in's refresh cookie unused. Every
   ticket and the buyer's orders are read back, then the node gets SIGTERM and must exit 0.
   Node 2 has to stop before A's and B's 60 s deadlines pass, so that the stored data still holds
   the orphan hold on A and the `created` order B with their pending deadlines.
3. manifest.json and a copy of the data dir go to OUT_DIR.
"""

import datetime
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

BINARY = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ticketing-head"
OUT = sys.argv[2] if len(sys.argv) > 2 else "/tmp/fixture-out"
EXPIRATION_SECONDS = 60
PASSWORD = "password"
SELLER = "seller@fixture.test"
BUYER = "buyer@fixture.test"
TICKETS = [  # key, title, price as created
    ("A", "orphan hold", 10),
    ("B", "created order", 20),
    ("C", "paid order", 30),
    ("D", "cancelled order", 40),
    ("E", "for sale", 50.5),
]
E_EDIT = {"title": "for sale, edited", "price": 55.25}

BASE_ENV = {
    "TICKETING_HTTP__ADDR": "127.0.0.1:0",
    "TICKETING_HTTP__WORKERS": "2",
    "TICKETING_ACTORS__THREADS": "2",
    "TICKETING_ORDERS__EXPIRATION_SECONDS": str(EXPIRATION_SECONDS),
    "TICKETING_LOG__LEVEL": "info",
}


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Node:
    def __init__(self, data, log_path, extra_env=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETING_")}
        env.update(BASE_ENV)
        env["TICKETING_STORAGE__PATH"] = data
        env.update(extra_env or {})
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen([BINARY, "serve"], env=env, stdout=subprocess.PIPE, stderr=self.log)
        self.address = None
        for raw in self.proc.stdout:
            line = raw.decode().strip()
            if line.startswith("listening on "):
                self.address = line[len("listening on "):].strip()
                break
        if self.address is None:
            raise SystemExit(f"node exited before listening (code {self.proc.wait()}); see {log_path}")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        u = urllib.parse.urlsplit(self.address)
        self.host, self.port = u.hostname, u.port

    def request(self, method, path, body=None, cookie=None, timeout=15):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if cookie:
            headers["Cookie"] = cookie
        try:
            conn.request(method, path, body=data, headers=headers)
            res = conn.getresponse()
            raw = res.read()
            cookies = {}
            for name, value in res.getheaders():
                if name.lower() == "set-cookie":
                    k, _, rest = value.partition("=")
                    cookies[k.strip()] = rest.split(";", 1)[0]
            parsed = json.loads(raw) if raw else None
            return res.status, parsed, cookies
        finally:
            conn.close()

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def terminate(self, timeout=15):
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)


def expect(status, want, what, body):
    if status != want:
        raise SystemExit(f"{what}: expected {want}, got {status}: {body}")


def account(node, action, email):
    status, body, cookies = node.request("POST", f"/api/users/{action}", {"email": email, "password": PASSWORD})
    expect(status, 201 if action == "signup" else 200, f"{action} {email}", body)
    return body, cookies


def session(cookies):
    return f"session={cookies['session']}"


def main():
    if not os.access(BINARY, os.X_OK):
        raise SystemExit(f"no executable at {BINARY}")
    out_data = os.path.join(OUT, "data-v2")
    out_manifest = os.path.join(OUT, "manifest.json")
    if os.path.exists(out_data) or os.path.exists(out_manifest):
        raise SystemExit(f"{OUT} already holds a fixture; remove it first")
    work = tempfile.mkdtemp(prefix="ticketing-fixture-")
    data = os.path.join(work, "data")
    log = os.path.join(work, "nodes.log")
    print(f"work dir {work}")

    # 1. Node 1: accounts, tickets, E edited, then the order for A aborts the node.
    n1 = Node(data, log, {"TICKETING_TESTING__CRASH_AT": "after_reserve"})
    seller, seller_c = account(n1, "signup", SELLER)
    buyer, buyer_c = account(n1, "signup", BUYER)
    tickets = {}
    for key, title, price in TICKETS:
        status, body, _ = n1.request("POST", "/api/tickets", {"title": title, "price": price}, session(seller_c))
        expect(status, 201, f"create ticket {key}", body)
        tickets[key] = body
    status, body, _ = n1.request("PUT", f"/api/tickets/{tickets['E']['id']}", E_EDIT, session(seller_c))
    expect(status, 200, "edit ticket E", body)
    if body["version"] != 1:
        raise SystemExit(f"ticket E after one edit: {body}")
    a_ordered_ms = now_ms()
    try:
        status, body, _ = n1.request("POST", "/api/orders", {"ticketId": tickets["A"]["id"]}, session(buyer_c))
        raise SystemExit(f"ordering A should abort node 1, got {status}: {body}")
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        print(f"node 1 aborted mid-request as expected ({type(e).__name__})")
    n1_code = n1.wait(30)
    print(f"node 1 exit code {n1_code}")
    if n1_code >= 0 and n1_code != 134:
        raise SystemExit(f"node 1 was expected to abort, exit code {n1_code}")

    # 2. Node 2: the orders, the payment, the unused refresh cookie, the final reads.
    n2 = Node(data, log)
    _, seller_c = account(n2, "signin", SELLER)
    _, buyer_c = account(n2, "signin", BUYER)
    orders = {}
    for key in ("B", "C", "D"):
        status, body, _ = n2.request("POST", "/api/orders", {"ticketId": tickets[key]["id"]}, session(buyer_c))
        expect(status, 201, f"order {key}", body)
        orders[key] = body
    status, payment, _ = n2.request(
        "POST", "/api/payments", {"token": "tok_visa", "orderId": orders["C"]["id"]}, session(buyer_c))
    expect(status, 201, "pay C", payment)
    status, body, _ = n2.request("DELETE", f"/api/orders/{orders['D']['id']}", cookie=session(buyer_c))
    expect(status, 204, "cancel D", body)
    _, last_c = account(n2, "signin", BUYER)
    refresh_issued_ms = now_ms()
    unused_refresh = last_c["refresh"]

    final_tickets = {}
    for key in tickets:
        status, body, _ = n2.request("GET", f"/api/tickets/{tickets[key]['id']}")
        expect(status, 200, f"read ticket {key}", body)
        final_tickets[key] = body
    status, buyer_orders, _ = n2.request("GET", "/api/orders", cookie=session(buyer_c))
    expect(status, 200, "list orders", buyer_orders)
    status, listed, _ = n2.request("GET", "/api/tickets")
    expect(status, 200, "list tickets", listed)
    status, me, _ = n2.request("GET", "/api/users/currentuser", cookie=session(last_c))
    expect(status, 200, "current user", me)
    stopping_ms = now_ms()
    n2_code = n2.terminate()
    print(f"node 2 exit code {n2_code}")
    if n2_code != 0:
        raise SystemExit(f"node 2 did not exit 0 on SIGTERM: {n2_code}")
    held_until_ms = a_ordered_ms + EXPIRATION_SECONDS * 1000
    if stopping_ms >= held_until_ms - 2000:
        raise SystemExit("node 2 ran past A's deadline; the orphan hold may have been released. Rerun.")

    orphan_order = final_tickets["A"].get("orderId")
    final_orders = {o["id"]: o for o in buyer_orders}
    made_ms = now_ms()
    manifest = {
        "fixture": "data-v2",
        "description": "data dir written by the release below: an orphan hold (A), created (B), "
                       "complete (C) and cancelled (D) orders, an edited ticket for sale (E)",
        "madeAt": iso(made_ms),
        "madeAtMs": made_ms,
        "node2StoppedAtMs": stopping_ms,
        "writtenBy": {
            "binarySha256": hashlib.sha256(open(BINARY, "rb").read()).hexdigest(),
            "recordFormatVersion": 2,
        },
        "settings": {
            "TICKETING_ORDERS__EXPIRATION_SECONDS": EXPIRATION_SECONDS,
            "jwtSecret": "default dev secret (TICKETING_AUTH__JWT_SECRET not set)",
            "refreshTokenSeconds": 604800,
            "accessTokenSeconds": 900,
        },
        "password": PASSWORD,
        "users": {
            "seller": {"id": seller["id"], "email": seller["email"]},
            "buyer": {"id": buyer["id"], "email": buyer["email"]},
        },
        "tickets": {
            key: {"id": tickets[key]["id"], "created": tickets[key], "expected": final_tickets[key]}
            for key in tickets
        },
        "orders": {
            "A": {
                "id": orphan_order,
                "status": None,
                "note": "never written: node 1 aborted after reserving A (crash_at=after_reserve). "
                        "A is held by this id with a durable deadline at about heldUntilMs; the first "
                        "node that opens the data dir after that releases A (GET A then has no orderId, "
                        "version 2) and the order stays unknown (404).",
                "orderedAtMs": a_ordered_ms,
                "heldUntilMs": held_until_ms,
            },
            **{
                key: {
                    "id": orders[key]["id"],
                    "status": final_orders[orders[key]["id"]]["status"],
                    "expected": final_orders[orders[key]["id"]],
                }
                for key in ("B", "C", "D")
            },
        },
        "payment": {"id": payment["id"], "orderId": orders["C"]["id"]},
        "buyerUnusedRefreshCookie": {
            "name": "refresh",
            "path": "/api/users",
            "value": unused_refresh,
            "issuedAtMs": refresh_issued_ms,
            "expiresAtMs": refresh_issued_ms + 604800 * 1000,
        },
        "listedForSale": [t["id"] for t in listed],
    }
    if manifest["orders"]["B"]["status"] != "created" or manifest["orders"]["C"]["status"] != "complete" \
            or manifest["orders"]["D"]["status"] != "cancelled" or not orphan_order:
        raise SystemExit(f"unexpected final state: {json.dumps(manifest, indent=2)}")

    # 3./4. The copy and the manifest.
    os.makedirs(OUT, exist_ok=True)
    shutil.copytree(data, out_data)
    with open(out_manifest, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    script_out = os.path.join(OUT, "make_fixture.py")
    if not os.path.exists(script_out) or not os.path.samefile(__file__, script_out):
        shutil.copy2(os.path.abspath(__file__), script_out)
    print(json.dumps(manifest, indent=2))
    print(f"fixture written to {OUT}; node logs in {log}")


if __name__ == "__main__":
    main()
