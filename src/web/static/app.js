// The pages' one script: progressive enhancement only. Without it every page works as
// rendered (forms post, the server decides expiry and availability).
//   * the order page's countdown, and what it says when the time runs out;
//   * live availability from GET /api/tickets/stream: the landing list loses a ticket once it
//     is reserved, sold or withdrawn and gains it when listed or released; a ticket's page
//     and an open order's page reload when their ticket changes;
//   * after a refused form, the focus goes to what must be fixed.
"use strict";
document.documentElement.className = "js";

document.addEventListener("DOMContentLoaded", function () {
  countdown();
  live();
  var problem = document.querySelector("[aria-invalid=true], #problems");
  if (problem) problem.focus();
});

function countdown() {
  document.querySelectorAll("[data-expires-at]").forEach(function (el) {
    var end = Date.parse(el.getAttribute("data-expires-at"));
    if (isNaN(end)) return;
    function tick() {
      // Whole seconds left, rounded up, and the next tick on the next second's edge: "0:00"
      // never shows, and the time is up exactly when the server's is.
      var ms = end - Date.now();
      if (ms > 0) {
        var left = Math.ceil(ms / 1000);
        el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " left";
        setTimeout(tick, ms % 1000 || 1000);
        return;
      }
      // Said plainly: no sentence around it, the badge says expired, nothing can be done.
      el.textContent = el.getAttribute("data-expired-text") || "Time is up.";
      var sentence = el.parentNode;
      sentence.querySelectorAll(".around").forEach(function (s) { s.hidden = true; });
      var badge = document.querySelector("#order-status .badge");
      if (badge && el.id === "time-left") {
        badge.textContent = "Expired";
        badge.className = "badge cancelled";
      }
      document.querySelectorAll("[data-disable-on-expiry]").forEach(function (b) {
        if (b.tagName === "A") {
          b.removeAttribute("href");
          b.setAttribute("aria-disabled", "true");
        } else {
          b.disabled = true;
        }
      });
    }
    tick();
  });
}

function live() {
  var list = document.querySelector("[data-live-list]");
  var ticket = document.querySelector("[data-live-ticket]");
  var order = document.querySelector("[data-live-order-ticket]");
  if (!(list || ticket || order) || !window.EventSource) return;
  var page = list || ticket || order;
  // From where the page was read: a change since then is not missed.
  var since = page.getAttribute("data-live-since");
  var source = new EventSource("/api/tickets/stream" + (since ? "?since=" + encodeURIComponent(since) : ""));
  // A form on its way (a purchase, a payment) leads to its own page: no reload under it.
  var leaving = false;
  document.addEventListener("submit", function () { leaving = true; source.close(); });
  // Read again at its own address: a page that answered a form is not posted again.
  var url = page.getAttribute("data-live-url") || location.href;
  function reload() { if (!leaving) location.replace(url); }
  // This node cannot say what was missed: read the page again.
  source.addEventListener("reset", reload);
  function on(kinds, handle) {
    kinds.forEach(function (kind) {
      source.addEventListener(kind, function (e) {
        var t;
        try { t = JSON.parse(e.data); } catch (_) { return; }
        handle(kind, t);
      });
    });
  }
  var all = ["listed", "reserved", "released", "sold", "withdrawn", "updated"];
  if (ticket) {
    var id = ticket.getAttribute("data-live-ticket");
    var version = Number(ticket.getAttribute("data-live-version"));
    var state = ticket.getAttribute("data-live-state");
    var states = { listed: "for-sale", released: "for-sale", updated: "for-sale", reserved: "reserved", sold: "sold", withdrawn: "withdrawn" };
    on(all, function (kind, t) {
      if (t.id !== id) return;
      // Told again from where the page was read, and already shown: nothing new.
      if (t.version < version || (t.version === version && states[kind] === state)) return;
      reload();
    });
  }
  if (order) {
    var held = order.getAttribute("data-live-order-ticket");
    // Released: the order expired or was cancelled; sold: it was paid (here or elsewhere).
    on(["released", "sold"], function (_, t) { if (t.id === held) reload(); });
  }
  if (list) {
    on(["reserved", "sold", "withdrawn"], function (_, t) { removeCard(list, t.id); });
    // Only the first page of the newest gains tickets (a search or a price order would need
    // the server to say where one goes).
    if (list.getAttribute("data-live-list") === "newest") {
      on(["listed", "released"], function (_, t) { if (!card(list, t.id)) addCard(list, t); });
    }
    on(["updated"], function (_, t) {
      var c = card(list, t.id);
      if (c) c.replaceWith(cardFor(list, t));
    });
  }
}

function card(list, id) {
  return list.querySelector('[data-ticket-id="' + id + '"]');
}

function removeCard(list, id) {
  var c = card(list, id);
  if (c) c.remove();
  var empty = document.getElementById("no-tickets");
  if (empty) empty.hidden = list.children.length > 0;
}

function addCard(list, t) {
  list.insertBefore(cardFor(list, t), list.firstChild);
  var empty = document.getElementById("no-tickets");
  if (empty) empty.hidden = true;
}

// A card as the server renders it; text only (a title is never markup).
function cardFor(list, t) {
  var li = document.createElement("li");
  li.className = "card";
  li.setAttribute("data-ticket-id", t.id);
  var h2 = document.createElement("h2");
  var a = document.createElement("a");
  a.href = "/tickets/" + t.id;
  a.textContent = t.title;
  h2.appendChild(a);
  var p = document.createElement("p");
  var price = document.createElement("span");
  price.className = "price";
  price.textContent = "$" + Number(t.price).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var who = document.createElement("span");
  who.className = "muted";
  var me = list.getAttribute("data-me");
  who.textContent = "sold by " + (me && me === t.userId ? "you" : "seller " + t.userId.slice(-6));
  p.appendChild(price);
  p.appendChild(document.createTextNode(" · "));
  p.appendChild(who);
  li.appendChild(h2);
  li.appendChild(p);
  return li;
}
