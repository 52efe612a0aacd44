"""Schemathesis hooks for ticketing's contract run (scripts/contract).

Random input alone rarely names a real ticket or order, holds a valid refresh cookie, or
signs a webhook, so about half of the generated cases are pointed at real fixtures made here
through the API: the case keeps its generated shape everywhere else. Every request is sent
signed in, as a user or, for /admin, with the admin token.
"""
import hashlib
import hmac
import json
import os
import zlib
import time
import urllib.request
import uuid

import schemathesis

BASE = os.environ["CONTRACT_BASE_URL"]
WEBHOOK_SECRET = os.environ["CONTRACT_WEBHOOK_SECRET"]
PASSWORD = "contract-pw"
SEED = os.environ.get("CONTRACT_SEED", "0")


def coin(case) -> bool:
    """Heads or tails, decided by the case's own generated data (and the run's seed): the same
    example always takes the same branch, so a seeded run repeats and a replayed failure too."""
    data = repr((case.operation.method, case.operation.path, case.path_parameters, case.query, case.body, SEED))
    return zlib.crc32(data.encode()) % 2 == 0


def call(method, path, body=None, cookie=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, None


def cookies_of(headers):
    """`name=value` pairs of the Set-Cookie headers."""
    pairs = {}
    for value in headers.get_all("Set-Cookie") or []:
        name_value = value.split(";", 1)[0]
        name, _, v = name_value.partition("=")
        if v:
            pairs[name] = name_value
    return pairs


def new_user():
    email = f"contract-{uuid.uuid4().hex}@test.com"
    status, headers, body = call("POST", "/api/users/signup", {"email": email, "password": PASSWORD})
    assert status == 201, status
    return body["id"], cookies_of(headers)


SELLER_ID, SELLER = new_user()
BUYER_ID, BUYER = new_user()


def new_ticket():
    status, _, body = call("POST", "/api/tickets", {"title": "contract ticket", "price": 12.5}, SELLER["session"])
    assert status == 201, status
    return body["id"]


def new_order():
    status, _, body = call("POST", "/api/orders", {"ticketId": new_ticket()}, BUYER["session"])
    assert status == 201, status
    return body["id"]


def stripe_signature(payload: bytes) -> str:
    t = str(int(time.time()))
    mac = hmac.new(WEBHOOK_SECRET.encode(), t.encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def sendable(text) -> bool:
    """Whether HTTP can carry it in a header: visible ASCII, spaces and tabs. Anything else is
    refused by the server's HTTP parser with a bare 400 before the application sees it (it
    cannot answer that in the API's error format), so such cases test the parser, not us."""
    return isinstance(text, str) and all(c == "\t" or " " <= c <= "~" for c in text)


@schemathesis.hook
def filter_headers(context, headers):
    return headers is None or all(sendable(k) and k and sendable(v) for k, v in headers.items())


def as_sent(value, schema):
    """A query value as the server reads it back from the URL (text, a number for integers)."""
    if isinstance(value, dict):
        value = list(value.keys())
    if isinstance(value, list):
        value = [v for v in value if v is not None]
        if len(value) != 1:
            return None
        value = value[0]
    text = value if isinstance(value, str) else json.dumps(value)
    if schema.get("type") == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    if schema.get("type") == "number":
        # `"0"` and `0` are the same bytes in a URL: a number as the server reads it.
        try:
            number = json.loads(text)
        except ValueError:
            return text
        return number if isinstance(number, (int, float)) and not isinstance(number, bool) else text
    return text


@schemathesis.hook
def filter_case(context, case):
    """Drops negative cases that the URL makes valid again: in a query string `["ticket"]` and
    `"ticket"`, or `"1"` and `1`, are the same bytes, and a parameter whose value is `None`, a
    list of them or an empty object is not sent at all, so the server cannot tell them from
    valid requests. Judged on the query string as it is sent, not on the generated values."""
    import jsonschema
    import requests
    from urllib.parse import parse_qsl

    if case.data_generation_method is None or not case.data_generation_method.is_negative:
        return True
    operation = case.operation
    if (operation.method.upper(), operation.path) not in QUERY_ONLY or not case.query:
        return True
    schemas = {p.name: p.definition.get("schema", {}) for p in operation.query}
    params = case.as_requests_kwargs(base_url="http://127.0.0.1").get("params") or {}
    query = requests.models.RequestEncodingMixin._encode_params(params)
    query = query.decode() if isinstance(query, bytes) else query
    for name, text in parse_qsl(query, keep_blank_values=True):
        if name not in schemas:
            return True
        sent = as_sent(text, schemas[name])
        if sent is None or not jsonschema.Draft202012Validator(schemas[name]).is_valid(sent):
            return True
    return False


# The operations whose only input is the query string.
QUERY_ONLY = {("GET", "/api/tickets"), ("GET", "/admin/actors")}


@schemathesis.hook
def before_call(context, case):
    path, method = case.operation.path, case.operation.method.upper()
    # Negative cases keep their invalid data: pointing them at fixtures would make them valid.
    if case.data_generation_method is not None and case.data_generation_method.is_negative:
        user = SELLER if path.startswith("/api/tickets") else BUYER
        if not path.startswith("/admin"):
            case.headers = case.headers if case.headers is not None else {}
            case.headers.setdefault("Cookie", user["session"])
        return
    # An operation with nothing to generate (refresh) runs once: always with a real cookie.
    real = path == "/api/users/refresh" or coin(case)
    headers = case.headers if case.headers is not None else {}
    case.headers = headers
    if path.startswith("/admin"):
        # The admin token comes from the command line (`-H`), so that the `ignored_auth` check
        # can leave it out.
        if real and case.path_parameters is not None and "id" in case.path_parameters:
            if path.startswith("/admin/orders/"):
                case.path_parameters["id"] = new_order()
            else:
                if "kind" in case.path_parameters:
                    case.path_parameters["kind"] = "ticket"
                case.path_parameters["id"] = new_ticket()
        return
    user = SELLER if path.startswith("/api/tickets") else BUYER
    headers.setdefault("Cookie", user["session"])
    if not real:
        return
    if path == "/api/tickets/{id}":
        case.path_parameters["id"] = new_ticket()
    elif path == "/api/orders/{id}":
        case.path_parameters["id"] = new_order()
    elif path == "/api/orders" and method == "POST":
        case.body = {"ticketId": new_ticket()}
    elif path == "/api/payments" and method == "POST":
        case.body = {"token": "tok_visa", "orderId": new_order()}
    elif path == "/api/users/refresh":
        _, fresh = new_user()
        headers["Cookie"] = fresh["refresh"]
    elif path == "/api/users/signin":
        case.body = {"email": f"contract-{uuid.uuid4().hex}@test.com", "password": PASSWORD}
        call("POST", "/api/users/signup", case.body)
    elif path == "/api/payments/webhook":
        order = new_order()
        event = {"id": f"evt_{uuid.uuid4().hex}", "type": "charge.succeeded",
                 "data": {"object": {"id": f"ch_{uuid.uuid4().hex}", "object": "charge", "metadata": {"orderId": order}}}}
        case.body = event
        # Signed over the bytes `requests` will send for `json=event`.
        headers["Stripe-Signature"] = stripe_signature(json.dumps(event).encode())
