// Live refresh: re-fetch the page's live region every 1.5 s and swap it in place.
// No framework; the server renders the fragment (?fragment=1) with the same data as
// the full page. Skipped while the operator is typing or choosing inside the region.
(function () {
  "use strict";
  var region = document.getElementById("live");
  if (!region) return;
  var last = region.innerHTML;
  var busy = false;
  function url() {
    var u = new URL(window.location.href);
    u.searchParams.set("fragment", "1");
    return u.toString();
  }
  function tick() {
    if (busy || document.hidden) return;
    if (region.contains(document.activeElement) && document.activeElement !== document.body) return;
    busy = true;
    fetch(url(), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (res) {
        if (res.redirected && res.url.indexOf("/dashboard/login") !== -1) {
          window.location.reload();
          return null;
        }
        return res.ok ? res.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined && html !== last) {
          region.innerHTML = html;
          last = html;
          region.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  window.setInterval(tick, 1500);
})();
