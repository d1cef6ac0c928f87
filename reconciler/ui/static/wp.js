// wp web UI: live updates and actions without reloading. Hand-written, no dependencies, no build step.
// Pages are rendered by the server; this script re-fetches the page every few seconds and swaps the
// regions marked data-live, appends new log lines, and posts actions with the session's CSRF token.
(function () {
  "use strict";
  var REFRESH_MS = 2000;  // at least; a page that takes long to build is polled less often (see schedule)
  var LOG_MS = 1000;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var indicator = document.getElementById("live-indicator");
  var busy = false;

  function live(on) {
    if (!indicator) return;
    indicator.classList.toggle("on", on);
    indicator.classList.toggle("off", !on);
    indicator.title = on ? "Updates live" : "Not updating: the server does not answer";
  }

  function toast(text, bad) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.className = bad ? "bad" : "";
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, bad ? 8000 : 3500);
  }

  function editing(region) {
    var active = document.activeElement;
    return active && region.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }

  var lastCost = 0;

  function refresh() {
    var regions = document.querySelectorAll("[data-live][id]");
    if (!regions.length || busy || document.hidden) return Promise.resolve();
    busy = true;
    var started = Date.now();
    return fetch(location.href, { headers: { "X-WP-Live": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { location.reload(); return null; }
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (next && next.innerHTML !== region.innerHTML && !editing(region)) region.innerHTML = next.innerHTML;
        });
        live(true);
      })
      .catch(function () { live(false); })
      .finally(function () { busy = false; lastCost = Date.now() - started; });
  }

  function schedule() {
    // a big page (a thousand pools) costs the server real time to build: never spend more than ~1/4 of it
    setTimeout(function () { refresh().then(schedule, schedule); }, Math.max(REFRESH_MS, lastCost * 4));
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("js-action")) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-WP-Fetch": "1", "X-CSRF-Token": csrf, "Accept": "application/json" },
    })
      .then(function (response) { return response.json().catch(function () { return { ok: false, message: "HTTP " + response.status }; }); })
      .then(function (body) {
        toast(body.message || (body.ok ? "Done." : "Failed."), !body.ok);
        if (body.ok && body.location) { location.assign(body.location); return; }
        return refresh();
      })
      .catch(function (err) { toast("The server did not answer: " + err, true); })
      .finally(function () { if (button) button.disabled = false; });
  });

  function tailLogs(pre) {
    var after = -1;
    var status = document.getElementById("log-status");
    function line(entry) {
      var span = document.createElement("span");
      span.className = entry.stream;
      var time = document.createElement("span");
      time.className = "t";
      time.textContent = entry.time.slice(11, 19);
      span.appendChild(time);
      span.appendChild(document.createTextNode(entry.message.replace(/\n$/, "") + "\n"));
      return span;
    }
    function poll() {
      fetch(pre.dataset.url + "?after=" + after, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (body) {
          var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
          var frag = document.createDocumentFragment();
          body.lines.forEach(function (entry) { after = Math.max(after, entry.seq); frag.appendChild(line(entry)); });
          pre.appendChild(frag);
          while (pre.childNodes.length > 5000) pre.removeChild(pre.firstChild);
          if (stick) pre.scrollTop = pre.scrollHeight;
          if (status) status.textContent = body.final ? "(complete)" : "(following)";
          if (!pre.childNodes.length && body.final) pre.textContent = "This run printed nothing.";
          if (!body.final) setTimeout(poll, body.lines.length ? 200 : LOG_MS);
        })
        .catch(function () { if (status) status.textContent = "(reconnecting)"; setTimeout(poll, LOG_MS * 3); });
    }
    poll();
  }

  var log = document.getElementById("log");
  if (log) tailLogs(log);
  if (document.querySelector("[data-live]")) {
    live(true);
    schedule();
  }
})();
