// batchyard dashboard: live updates and confirmations. No library; works on any modern browser.
// The page says what it follows: <body data-stream="/ui/stream?..."> for job transitions, and
// elements with data-fragment="URL" are re-rendered from that URL when a transition concerns
// them (debounced), never polled. A job page also follows its log (data-log="URL").
(function () {
  "use strict";
  const body = document.body;

  // ---- times in the reader's own time zone -------------------------------------------------
  function localTimes(root) {
    root.querySelectorAll("time[data-ms]").forEach(function (el) {
      const ms = Number(el.dataset.ms);
      if (!ms) return;
      const d = new Date(ms);
      el.title = d.toISOString();
      el.textContent = d.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    });
  }

  // ---- fragments re-rendered on change -------------------------------------------------------
  const timers = new Map();
  function refresh(el, delay) {
    if (timers.has(el)) return;
    timers.set(el, setTimeout(function () {
      fetch(el.dataset.fragment, { headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          el.innerHTML = html;
          localTimes(el);
          bindConfirm(el);
          el.dispatchEvent(new CustomEvent("refreshed", { bubbles: true }));
        })
        .catch(function () {})
        .finally(function () { timers.delete(el); });
    }, delay));
  }

  function concerns(el, t) {
    if (el.dataset.list === undefined) return true;
    // a list: only the jobs it shows (their children too), and new jobs on its first page
    const shown = new Set();
    el.querySelectorAll("[data-job]").forEach(function (r) { shown.add(r.dataset.job); });
    if (shown.has(t.job) || (t.parent && shown.has(t.parent))) return true;
    return el.dataset.first === "1" && t.from === null && !t.parent &&
      (!el.dataset.queue || el.dataset.queue === t.queue);
  }

  // ---- the transition stream ------------------------------------------------------------------
  let stream = body.dataset.stream;
  const dot = document.getElementById("live");
  if (stream && body.dataset.after) {  // from where the page's data was read
    stream += (stream.indexOf("?") < 0 ? "?" : "&") + "after=" + body.dataset.after;
  }
  if (stream && window.EventSource) {
    const es = new EventSource(stream);
    es.onopen = function () { if (dot) { dot.classList.add("on"); dot.title = "live"; } };
    es.onerror = function () { if (dot) { dot.classList.remove("on"); dot.title = "reconnecting"; } };
    es.addEventListener("transition", function (msg) {
      const t = JSON.parse(msg.data);
      document.querySelectorAll("[data-fragment]").forEach(function (el) {
        if (concerns(el, t)) refresh(el, Number(el.dataset.delay || 500));
      });
      const tail = document.getElementById("event-tail");
      if (tail) addEventRow(tail, t);
    });
  }

  function addEventRow(tbody, t) {
    const tr = document.createElement("tr");
    const cells = [
      '<time data-ms="' + t.at + '"></time>',
      '<a href="/ui/jobs/' + encodeURIComponent(t.job).replace(/%3A/g, ":") + '">' + esc(t.job) + "</a>",
      esc(t.name), esc(t.queue),
      (t.from ? '<span class="badge ' + esc(t.from) + '">' + esc(t.from) + "</span> → " : "") +
        '<span class="badge ' + esc(t.to) + '">' + esc(t.to) + "</span>",
      '<span class="reason">' + esc(t.reason || "") + "</span>",
    ];
    tr.innerHTML = cells.map(function (c) { return "<td>" + c + "</td>"; }).join("");
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.children.length > 200) tbody.removeChild(tbody.lastChild);
    localTimes(tr);
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // ---- a job's log, as it is written ----------------------------------------------------------
  const log = document.getElementById("log");
  if (log && log.dataset.log && window.EventSource) {
    const es = new EventSource(log.dataset.log);
    const state = document.getElementById("log-state");
    es.addEventListener("attempt", function (msg) {
      const a = JSON.parse(msg.data);
      if (log.textContent) log.appendChild(document.createTextNode("\n"));
      const head = document.createElement("span");
      head.className = "t";
      head.textContent = "── attempt " + a.number + " (" + a.stream + ")\n";
      log.appendChild(head);
      if (state) state.textContent = "following attempt " + a.number;
    });
    es.addEventListener("lines", function (msg) {
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      JSON.parse(msg.data).forEach(function (e) {
        const t = document.createElement("span");
        t.className = "t";
        t.textContent = new Date(e.t).toLocaleTimeString() + "  ";
        log.appendChild(t);
        log.appendChild(document.createTextNode(e.m + "\n"));
      });
      if (stick) log.scrollTop = log.scrollHeight;
    });
    es.addEventListener("end", function (msg) {
      const s = JSON.parse(msg.data);
      if (state) state.textContent = "the job ended (" + s.status + ")";
      es.close();
    });
  }

  // ---- confirmations ----------------------------------------------------------------------------
  const dialog = document.getElementById("confirm-dialog");
  function bindConfirm(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      if (form.dataset.bound) return;
      form.dataset.bound = "1";
      form.addEventListener("submit", function (ev) {
        if (!dialog || form.querySelector("input[name=confirm]")) return;
        ev.preventDefault();
        dialog.querySelector(".message").textContent = form.dataset.confirm;
        const ok = dialog.querySelector("button[value=ok]");
        ok.textContent = form.dataset.confirmLabel || "Confirm";
        dialog.returnValue = "";
        dialog.onclose = function () {
          if (dialog.returnValue !== "ok") return;
          const yes = document.createElement("input");
          yes.type = "hidden"; yes.name = "confirm"; yes.value = "yes";
          form.appendChild(yes);
          form.submit();
        };
        dialog.showModal();
      });
    });
  }

  // ---- running clocks ---------------------------------------------------------------------
  function since(ms) {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 120) return s.toFixed(1) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  }
  setInterval(function () {
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = since(Number(el.dataset.since));
    });
  }, 1000);

  localTimes(document);
  bindConfirm(document);
})();
