// The order page's live countdown. Without JavaScript the page shows the time left when it
// was rendered, and the server decides expiry either way.
"use strict";
document.documentElement.className = "js";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-expires-at]").forEach(function (el) {
    var end = Date.parse(el.getAttribute("data-expires-at"));
    if (isNaN(end)) return;
    function tick() {
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      if (left > 0) {
        el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " left";
        setTimeout(tick, 1000);
      } else {
        el.textContent = "Time is up: this order has expired.";
        document.querySelectorAll("[data-disable-on-expiry]").forEach(function (b) { b.disabled = true; });
      }
    }
    tick();
  });
});
