// cioloader admin page. Plain JavaScript, no dependencies. Everything it shows
// comes from the admin JSON API; all API text is put on the page with
// textContent, never parsed as HTML.
(function () {
  "use strict";

  var TOKEN_KEY = "cioloader.adminToken";

  var state = {
    selectedId: null, // integration shown in the detail panel
    detail: null, // last GET /v1/integrations/{id} answer
    detailSeq: 0, // discards answers to superseded detail requests
    newURLId: null, // id of the URL shown in the one-time box
  };

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        e.setAttribute(k, attrs[k]);
      });
    }
    if (text !== undefined && text !== null) {
      e.textContent = String(text);
    }
    return e;
  }

  function show(node, on) {
    node.hidden = !on;
  }

  function say(node, msg) {
    node.textContent = msg || "";
    show(node, !!msg);
  }

  function fmtTime(s) {
    if (!s) return "never";
    var d = new Date(s);
    if (isNaN(d.getTime())) return String(s);
    // With its time zone: the server, the database and the reader may each be in another.
    return d.toLocaleString(undefined, { timeZoneName: "short" });
  }

  // fmtAgo is a time relative to now ("5 min ago"), for places with little
  // room; put fmtTime's absolute time, with its zone, in its title.
  function fmtAgo(s) {
    if (!s) return "never";
    var ms = Date.now() - new Date(s).getTime();
    if (isNaN(ms)) return String(s);
    var min = Math.floor(ms / 60000);
    if (min < 1) return "just now";
    if (min < 60) return min + " min ago";
    if (min < 48 * 60) return Math.floor(min / 60) + " h ago";
    return Math.floor(min / (24 * 60)) + " days ago";
  }

  // plural is "1 event", "2 events".
  function plural(n, noun) {
    return fmtCount(n) + " " + noun + (n === 1 ? "" : "s");
  }

  function fmtCount(n) {
    if (typeof n !== "number") return "–";
    return n.toLocaleString();
  }

  // ---- token ---------------------------------------------------------------

  function getToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  function setToken(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      /* storage disabled: the token lives only until reload */
    }
    memToken = t;
  }

  var memToken = "";

  function token() {
    return getToken() || memToken;
  }

  // ---- API -----------------------------------------------------------------

  function ApiError(status, message) {
    this.status = status;
    this.message = message;
  }

  // api calls the admin API and resolves to the decoded JSON (or null for 204).
  // A 401 signs the user out, whatever the call was.
  function api(method, path, body) {
    var opts = {
      method: method,
      headers: { Authorization: "Bearer " + token(), Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(
      function (res) {
        return res.text().then(function (text) {
          var data = null;
          if (text) {
            try {
              data = JSON.parse(text);
            } catch (e) {
              data = null;
            }
          }
          if (res.status === 401) {
            signOut("Wrong token: the server refused it. Check CIOLOADER_ADMIN_TOKEN and sign in again.");
            throw new ApiError(401, "wrong token");
          }
          if (!res.ok) {
            var msg = data && typeof data.error === "string" ? data.error : res.status + " " + res.statusText;
            throw new ApiError(res.status, msg);
          }
          return data;
        });
      },
      function (err) {
        throw new ApiError(0, "Cannot reach the server: " + (err && err.message ? err.message : err));
      }
    );
  }

  // report shows err in node, unless it was a 401 (already handled by sign-out).
  function report(node) {
    return function (err) {
      if (err && err.status === 401) return;
      say(node, err && err.message ? err.message : String(err));
    };
  }

  // ---- sign in / out -------------------------------------------------------

  function showSignIn(msg) {
    show($("app-view"), false);
    show($("signout"), false);
    show($("signin-view"), true);
    say($("signin-error"), msg);
    $("token-input").value = "";
    $("token-input").focus();
  }

  function showApp() {
    show($("signin-view"), false);
    say($("signin-error"), "");
    show($("signout"), true);
    show($("app-view"), true);
  }

  function signOut(msg) {
    setToken("");
    state.selectedId = null;
    state.detail = null;
    state.detailSeq++;
    clearNewURL();
    show($("detail"), false);
    show($("detail-placeholder"), true);
    $("integrations").textContent = "";
    if (location.hash) history.replaceState(null, "", location.pathname);
    showSignIn(msg);
  }

  function onSignIn(ev) {
    ev.preventDefault();
    var t = $("token-input").value.trim();
    if (!t) {
      say($("signin-error"), "Enter the admin token.");
      return;
    }
    setToken(t);
    say($("signin-error"), "");
    api("GET", "/v1/integrations").then(
      function (list) {
        showApp();
        renderList(list);
        restoreSelection();
        focusFirstStep(list);
      },
      function (err) {
        if (err.status === 401) return; // signOut already said "wrong token"
        setToken("");
        say($("signin-error"), err.message);
      }
    );
  }

  // focusFirstStep moves the focus, once signed in, to what to do next: the
  // open integration, else the first one, else the name of a new one.
  function focusFirstStep(list) {
    var rows = $("integrations").querySelectorAll("li.integration");
    var sel = $("integrations").querySelector("li.is-selected") || rows[0];
    if (sel && list && list.length) sel.querySelector("button").focus();
    else $("create-name").focus();
  }

  // ---- integrations list ---------------------------------------------------

  function loadList() {
    return api("GET", "/v1/integrations").then(function (list) {
      say($("list-error"), "");
      renderList(list);
      return list;
    }, report($("list-error")));
  }

  function renderList(list) {
    var ul = $("integrations");
    ul.textContent = "";
    list = list || [];
    show($("list-empty"), list.length === 0);
    list.forEach(function (it) {
      var deleted = !!it.disabled_at;
      var li = el("li", {
        class: "integration" + (deleted ? " is-deleted" : "") + (it.id === state.selectedId ? " is-selected" : ""),
        "data-testid": "integration-row",
        "data-id": String(it.id),
        "data-schema": String(it.schema),
      });
      var btn = el("button", { type: "button", class: "integration-open", "data-testid": "open-integration" });
      var top = el("span", { class: "integration-top" });
      top.appendChild(el("span", { class: "integration-name", "data-testid": "integration-name" }, it.name));
      top.appendChild(
        el(
          "span",
          { class: "badge " + (deleted ? "badge-off" : "badge-on"), "data-testid": "integration-status" },
          deleted ? "deleted" : "active"
        )
      );
      btn.appendChild(top);
      var meta = el("span", { class: "integration-meta" });
      meta.appendChild(el("span", null, "#" + it.id + " · "));
      meta.appendChild(el("code", { "data-testid": "integration-schema" }, it.schema));
      btn.appendChild(meta);
      var act = el("span", { class: "integration-meta" });
      act.appendChild(el("span", { "data-testid": "integration-events", "data-count": String(it.events_24h || 0) }, plural(it.events_24h || 0, "event") + " in 24 h"));
      act.appendChild(el("span", null, " · "));
      act.appendChild(
        el(
          "span",
          { "data-testid": "integration-last-received", title: it.last_received_at ? "last received " + fmtTime(it.last_received_at) : "" },
          it.last_received_at ? "last " + fmtAgo(it.last_received_at) : "nothing received yet"
        )
      );
      btn.appendChild(act);
      btn.addEventListener("click", function () {
        select(it.id).then(revealDetail);
      });
      li.appendChild(btn);
      ul.appendChild(li);
    });
  }

  // revealDetail brings the detail to the top of the window after a choice in
  // the list when it starts low or out of sight: on a narrow screen it is
  // below the list, and a tap would otherwise seem to do nothing. Focus goes
  // to its heading, so the keyboard continues from there; on a wide screen
  // the detail is already at the top and the focus stays in the list.
  function revealDetail() {
    var h = $("detail-name");
    if ($("detail").hidden) return;
    var top = h.getBoundingClientRect().top;
    if (top >= 0 && top < window.innerHeight / 3) return;
    h.focus({ preventScroll: true });
    h.scrollIntoView({ block: "start" });
  }

  function markSelected() {
    var rows = $("integrations").querySelectorAll("li.integration");
    Array.prototype.forEach.call(rows, function (li) {
      li.classList.toggle("is-selected", li.getAttribute("data-id") === String(state.selectedId));
    });
  }

  function onCreate(ev) {
    ev.preventDefault();
    var name = $("create-name").value;
    var btn = ev.submitter || $("create-form").querySelector("button[type=submit]");
    btn.disabled = true;
    say($("create-error"), "");
    api("POST", "/v1/integrations", { name: name })
      .then(function (it) {
        $("create-name").value = "";
        return loadList()
          .then(function () {
            return select(it.id);
          })
          .then(function () {
            // The next step for a new integration: a URL for Customer.io.
            if (state.selectedId === it.id && !$("generate-url").disabled) $("generate-url").focus();
          });
      }, report($("create-error")))
      .then(function () {
        btn.disabled = false;
      });
  }

  // ---- detail --------------------------------------------------------------

  function select(id) {
    if (state.selectedId !== id) clearNewURL();
    state.selectedId = id;
    history.replaceState(null, "", "#integration-" + id);
    markSelected();
    clearDetailMessages();
    return loadDetail();
  }

  // clearDetailMessages hides the outcome of the previous action, so what is
  // on screen is about the latest one.
  function clearDetailMessages() {
    ["detail-error", "urls-error", "signing-key-msg", "retention-msg", "delete-error"].forEach(function (x) {
      say($(x), "");
    });
  }

  function restoreSelection() {
    var m = /^#integration-(\d+)$/.exec(location.hash);
    if (m) select(Number(m[1]));
  }

  function loadDetail() {
    var id = state.selectedId;
    if (id === null) return Promise.resolve();
    var seq = ++state.detailSeq;
    var btn = $("refresh");
    btn.disabled = true;
    return api("GET", "/v1/integrations/" + encodeURIComponent(id))
      .then(
        function (d) {
          if (seq !== state.detailSeq) return;
          say($("detail-error"), "");
          state.detail = d;
          renderDetail(d);
          loadErasures(id, seq);
          loadImports(id, seq);
          loadRejections(id, seq);
          loadActivity(id, seq);
          loadReaders(id, seq);
        },
        function (err) {
          if (seq !== state.detailSeq) return;
          if (err.status === 404 && !state.detail) {
            state.selectedId = null;
            show($("detail"), false);
            show($("detail-placeholder"), true);
            history.replaceState(null, "", location.pathname);
            return;
          }
          report($("detail-error"))(err);
        }
      )
      .then(function () {
        btn.disabled = false;
      });
  }

  function renderDetail(d) {
    var deleted = !!d.disabled_at;
    show($("detail-placeholder"), false);
    show($("detail"), true);
    $("detail-name").textContent = d.name;
    $("detail-schema").textContent = d.schema;
    $("detail-id").textContent = String(d.id);
    $("detail-created").textContent = fmtTime(d.created_at);
    var st = $("detail-status");
    st.textContent = deleted ? "deleted" : "active";
    st.title = deleted ? "deleted " + fmtTime(d.disabled_at) : "";
    st.className = "badge " + (deleted ? "badge-off" : "badge-on");

    var s = d.stats || {};
    $("stat-events").textContent = fmtCount(s.events);
    $("stat-rudder-events").textContent = fmtCount(s.rudder_events);
    $("stat-rejected").textContent = fmtCount(s.rejected);
    $("stat-last-received").textContent = fmtTime(s.last_received_at);
    $("stat-last-received").title = s.last_received_at || "";
    $("detail-loaded-at").textContent = new Date().toLocaleTimeString(undefined, { timeZoneName: "short" });

    renderURLs(d.webhook_urls || [], deleted);
    renderRefused(d.refused || {});

    $("signing-key-state").textContent = d.has_signing_key ? "a key is set" : "no key (requests are not signature-checked)";
    $("signing-key-state").setAttribute("data-has-key", d.has_signing_key ? "true" : "false");

    ["generate-url", "delete-integration", "signing-key-clear"].forEach(function (x) {
      $(x).disabled = deleted;
    });
    var atLimit = !deleted && activeURLs(d) >= MAX_ACTIVE_URLS;
    $("generate-url").disabled = deleted || atLimit;
    show($("generate-limit"), atLimit);
    show($("delete-integration"), !deleted);
    show($("delete-hint"), !deleted);
    say($("delete-done"), deleted ? "Deleted " + fmtTime(d.disabled_at) + ". Its webhook URLs are revoked; its tables and data stay in Postgres." : "");
    renderRetention(d);
    $("signing-key-clear").disabled = deleted || !d.has_signing_key;
    Array.prototype.forEach.call($("signing-key-form").elements, function (e) {
      if (e.id !== "signing-key-clear") e.disabled = deleted;
    });
  }

  // loadErasures shows the integration's erasure audit rows (read-only).
  function loadErasures(id, seq) {
    api("GET", "/v1/integrations/" + encodeURIComponent(id) + "/erasures").then(function (list) {
      if (seq !== state.detailSeq) return;
      say($("erasures-error"), "");
      renderErasures(list || []);
    }, report($("erasures-error")));
  }

  function renderErasures(list) {
    var tb = $("erasures");
    tb.textContent = "";
    show($("erasures-empty"), list.length === 0);
    show($("erasures-wrap"), list.length > 0);
    list.forEach(function (e) {
      var tr = el("tr", { "data-testid": "erasure-row", "data-erasure-id": String(e.id) });
      tr.appendChild(el("td", null, e.id));
      tr.appendChild(el("td", { title: e.requested_at || "" }, fmtTime(e.requested_at)));
      tr.appendChild(el("td", null, e.requested_by));
      var ids = el("td");
      (e.identifier_hashes || []).forEach(function (h) {
        ids.appendChild(el("code", { title: h }, h.slice(0, 12) + "… "));
      });
      tr.appendChild(ids);
      var rows = e.rows_deleted || {};
      var parts = Object.keys(rows).sort().map(function (t) {
        return t + " " + rows[t];
      });
      tr.appendChild(el("td", { "data-testid": "erasure-deleted" }, e.completed_at ? parts.join(", ") : "not completed: run it again"));
      tr.appendChild(el("td", { title: e.tombstones_until || "" }, fmtTime(e.tombstones_until)));
      tb.appendChild(tr);
    });
  }

  // loadImports shows the integration's history imports (read-only: they run from the CLI).
  function loadImports(id, seq) {
    api("GET", "/v1/integrations/" + encodeURIComponent(id) + "/imports").then(function (list) {
      if (seq !== state.detailSeq) return;
      say($("imports-error"), "");
      renderImports(list || []);
    }, report($("imports-error")));
  }

  function fmtDay(s) {
    return s ? String(s).slice(0, 10) : "…";
  }

  function renderImports(list) {
    var tb = $("imports");
    tb.textContent = "";
    show($("imports-empty"), list.length === 0);
    show($("imports-wrap"), list.length > 0);
    list.forEach(function (im) {
      var tr = el("tr", { "data-testid": "import-row", "data-import-id": String(im.id) });
      tr.appendChild(el("td", null, im.id));
      tr.appendChild(el("td", null, im.source === "customerio" ? "Customer.io App API" + (im.region ? " (" + im.region + ")" : "") : "files"));
      tr.appendChild(el("td", null, im.source === "customerio" ? fmtDay(im.range_start) + " – " + fmtDay(im.range_end) : ""));
      var state = im.state;
      if (state === "running") state += " · last progress " + fmtAgo(im.updated_at);
      tr.appendChild(el("td", { "data-testid": "import-state", title: im.updated_at || "" }, state));
      var units = im.units || [];
      var done = units.filter(function (u) { return u.done; }).length;
      tr.appendChild(el("td", null, done + " of " + plural(units.length, im.source === "customerio" ? "window" : "file") + " · " +
        fmtCount(im.deliveries) + (im.source === "customerio" ? " deliveries" : " objects")));
      tr.appendChild(el("td", { "data-testid": "import-events" }, fmtCount(im.events_written) + " written, " +
        fmtCount(im.events_existing) + " already stored" + (im.events_replaced ? ", " + fmtCount(im.events_replaced) + " replaced by webhook copies" : "")));
      tr.appendChild(el("td", null, im.last_error || ""));
      tb.appendChild(tr);
    });
  }

  // MAX_ACTIVE_URLS is the server's limit of unrevoked URLs per integration
  // (domain.MaxActiveURLs); the server refuses a third one with 409 anyway.
  var MAX_ACTIVE_URLS = 2;

  function activeURLs(d) {
    return (d.webhook_urls || []).filter(function (u) {
      return !u.revoked_at;
    }).length;
  }

  // REFUSALS names the refusal reasons of GET /v1/integrations/{id}, in the
  // order shown, with what to do about the one that has a remedy here.
  var REFUSALS = [
    { reason: "signature", label: "Bad signature (401)", hint: "check the signing key" },
    { reason: "not_json", label: "Not JSON (400)" },
    { reason: "too_many_events", label: "Too many events (400)" },
    { reason: "too_large", label: "Too large (413)" },
    { reason: "unavailable", label: "Unavailable (503)" },
  ];
  var RECENT_MS = 60 * 60 * 1000;

  function renderRefused(refused) {
    var ul = $("refused");
    ul.textContent = "";
    var shown = 0;
    REFUSALS.forEach(function (r) {
      var x = refused[r.reason];
      if (!x || !x.count) return;
      shown++;
      var recent = Date.now() - new Date(x.last_at).getTime() < RECENT_MS;
      var li = el("li", { class: "refused" + (recent ? " is-recent" : ""), "data-testid": "refused-row", "data-reason": r.reason });
      li.appendChild(el("span", { class: "refused-label" }, r.label));
      li.appendChild(el("span", { class: "refused-count", "data-testid": "refused-count" }, fmtCount(x.count)));
      li.appendChild(el("span", { class: "refused-last", title: x.last_at || "" }, "last " + fmtTime(x.last_at)));
      if (r.hint) li.appendChild(el("span", { class: "refused-hint", "data-testid": "refused-hint" }, r.hint));
      ul.appendChild(li);
    });
    show($("refused-empty"), shown === 0);
  }

  // loadRejections shows the newest _sdc_rejected rows (read-only).
  function loadRejections(id, seq) {
    api("GET", "/v1/integrations/" + encodeURIComponent(id) + "/rejections?limit=50").then(function (list) {
      if (seq !== state.detailSeq) return;
      say($("rejections-error"), "");
      renderRejections(list || []);
    }, report($("rejections-error")));
  }

  function renderRejections(list) {
    var tb = $("rejections");
    tb.textContent = "";
    show($("rejections-empty"), list.length === 0);
    show($("rejections-wrap"), list.length > 0);
    list.forEach(function (r) {
      var tr = el("tr", { "data-testid": "rejection-row" });
      tr.appendChild(el("td", { title: r.rejected_at || "", "data-label": "Rejected" }, fmtTime(r.rejected_at)));
      tr.appendChild(el("td", { "data-label": "Table" }, r.table_name));
      tr.appendChild(el("td", { "data-testid": "rejection-reason", "data-label": "Reason" }, r.reason));
      var rec = el("td", { class: "rejection-record", "data-label": "Record" });
      var det = el("details", { "data-testid": "rejection-record" });
      det.appendChild(el("summary", null, "record" + (r.record_truncated ? " (first 2 KB)" : "")));
      det.appendChild(el("pre", null, r.record));
      rec.appendChild(det);
      tr.appendChild(rec);
      tb.appendChild(tr);
    });
  }

  // ---- activity --------------------------------------------------------------

  var SVG_NS = "http://www.w3.org/2000/svg";
  var SERIES = 6; // colours .series-0 … .series-5; more object types share .series-other

  function svgEl(tag, attrs, text) {
    var e = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      e.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function typeLabel(t) {
    return t === "" ? "(no object_type)" : t;
  }

  function fmtHour(s) {
    return new Date(s).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  }

  // loadActivity shows the events of the last 24 hours (read-only).
  function loadActivity(id, seq) {
    api("GET", "/v1/integrations/" + encodeURIComponent(id) + "/activity?hours=24").then(function (a) {
      if (seq !== state.detailSeq) return;
      say($("activity-error"), "");
      renderActivity(a);
    }, report($("activity-error")));
  }

  function renderActivity(a) {
    var types = (a.object_types || []).map(function (t) {
      return t.object_type;
    });
    var seriesOf = {};
    types.forEach(function (t, i) {
      seriesOf[t] = i < SERIES ? "series-" + i : "series-other";
    });
    $("activity-total").textContent = fmtCount(a.total);
    // Nothing to draw: one sentence says so, rather than an empty chart and table.
    show($("activity-empty"), !a.total);
    show($("activity-body"), !!a.total);
    $("activity-zone").textContent = zoneName() ? " (" + zoneName() + ")" : "";
    renderChart(a, types, seriesOf);
    renderTicks(a.buckets || []);
    renderLegend(a, seriesOf);
    renderActivityEvents(a.events || []);
  }

  // renderChart draws one stacked bar per hour, in plain SVG. The SVG is an
  // image whose title and description say what it shows; each bar's title
  // gives its hour's counts on hover.
  function renderChart(a, types, seriesOf) {
    var buckets = a.buckets || [];
    var max = 0;
    buckets.forEach(function (b) {
      max = Math.max(max, b.count);
    });
    $("activity-max").textContent = fmtCount(max);
    var W = 10, H = 100, GAP = 2, TOP = 4; // per bar, in viewBox units (stretched to the box); the busiest bar reaches TOP
    var svg = svgEl("svg", {
      viewBox: "0 0 " + buckets.length * W + " " + H,
      preserveAspectRatio: "none",
      role: "img",
      "aria-labelledby": "activity-chart-title activity-chart-desc",
      "data-testid": "activity-svg",
    });
    var busiest = buckets.reduce(function (m, b) {
      return !m || b.count > m.count ? b : m;
    }, null);
    svg.appendChild(
      svgEl("title", { id: "activity-chart-title" }, "Events received per hour, last " + buckets.length + " hours: " + fmtCount(a.total) + " in all")
    );
    var parts = (a.object_types || []).map(function (t) {
      return typeLabel(t.object_type) + " " + fmtCount(t.count);
    });
    svg.appendChild(
      svgEl(
        "desc",
        { id: "activity-chart-desc" },
        a.total
          ? "By object type: " + parts.join(", ") + ". Busiest hour: " + fmtHour(busiest.hour) + ", " + plural(busiest.count, "event") + "."
          : "No events in this period."
      )
    );
    svg.appendChild(svgEl("line", { class: "chart-base", x1: 0, y1: H - 0.5, x2: buckets.length * W, y2: H - 0.5 }));
    // The top line: the busiest hour's height, which the label above gives.
    if (max) svg.appendChild(svgEl("line", { class: "chart-grid", x1: 0, y1: TOP, x2: buckets.length * W, y2: TOP }));
    buckets.forEach(function (b, i) {
      var g = svgEl("g", { class: "bar", "data-testid": "activity-bar", "data-count": String(b.count), "data-hour": b.hour });
      var by = b.by_object_type || {};
      var tip = types
        .filter(function (t) {
          return by[t];
        })
        .map(function (t) {
          return typeLabel(t) + " " + fmtCount(by[t]);
        });
      g.appendChild(svgEl("title", null, fmtHour(b.hour) + ": " + plural(b.count, "event") + (tip.length ? " (" + tip.join(", ") + ")" : "")));
      g.appendChild(svgEl("rect", { class: "bar-hit", x: i * W, y: 0, width: W, height: H }));
      var y = H;
      types.forEach(function (t) {
        if (!by[t]) return;
        var h = Math.max((by[t] / max) * (H - TOP), 1);
        y -= h;
        g.appendChild(svgEl("rect", { class: seriesOf[t], x: i * W + GAP / 2, y: y, width: W - GAP, height: h, "data-type": t }));
      });
      svg.appendChild(g);
    });
    var box = $("activity-chart");
    box.textContent = "";
    box.appendChild(svg);
  }

  // TICK_EVERY hours get a label under the chart: at 360 px a label has 6/24
  // of the width, room for "11 PM" but not for a date, which is in the bars'
  // titles and the chart's description.
  var TICK_EVERY = 6;

  // renderTicks labels the hours under the chart, each under the left edge of
  // its bar: .chart-ticks is a grid of one column per bar (24), as wide as the
  // chart, and each label spans TICK_EVERY columns.
  function renderTicks(buckets) {
    var box = $("activity-ticks");
    box.textContent = "";
    for (var i = 0; i < buckets.length; i += TICK_EVERY) {
      var span = el("span", { class: "tick", "data-testid": "activity-tick" });
      span.appendChild(el("span", null, new Date(buckets[i].hour).toLocaleTimeString(undefined, { hour: "numeric" })));
      if (i + TICK_EVERY >= buckets.length) span.appendChild(el("span", null, "now"));
      box.appendChild(span);
    }
  }

  // zoneName is the reader's time zone as the browser abbreviates it ("UTC", "CET").
  function zoneName() {
    var part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(new Date()).filter(function (p) {
      return p.type === "timeZoneName";
    })[0];
    return part ? part.value : "";
  }

  function renderLegend(a, seriesOf) {
    var ul = $("activity-legend");
    ul.textContent = "";
    (a.object_types || []).forEach(function (t) {
      var li = el("li", { "data-testid": "legend-item", "data-type": t.object_type });
      li.appendChild(el("span", { class: "swatch " + seriesOf[t.object_type], "aria-hidden": "true" }));
      li.appendChild(el("span", null, typeLabel(t.object_type) + " " + fmtCount(t.count)));
      ul.appendChild(li);
    });
  }

  function renderActivityEvents(list) {
    var tb = $("activity-events");
    tb.textContent = "";
    list.forEach(function (e) {
      var tr = el("tr", { "data-testid": "activity-event-row" });
      tr.appendChild(el("td", { "data-testid": "activity-event-name" }, e.event));
      tr.appendChild(el("td", { class: "num", "data-testid": "activity-event-count" }, fmtCount(e.count)));
      tr.appendChild(el("td", { class: "nowrap", title: fmtTime(e.last_at) }, fmtAgo(e.last_at)));
      tb.appendChild(tr);
    });
  }

  function renderURLs(urls, deleted) {
    // The one-time box goes away once its URL no longer works.
    if (state.newURLId !== null) {
      var shown = urls.filter(function (u) {
        return u.id === state.newURLId;
      })[0];
      if (deleted || (shown && shown.revoked_at)) clearNewURL();
    }
    var tb = $("urls");
    tb.textContent = "";
    show($("urls-empty"), urls.length === 0);
    show($("urls-wrap"), urls.length > 0);
    urls.forEach(function (u) {
      var active = !u.revoked_at;
      var tr = el("tr", {
        "data-testid": "url-row",
        "data-url-id": String(u.id),
        "data-active": active ? "true" : "false",
        class: active ? "" : "is-revoked",
      });
      // data-label names the cell where the table stacks (a narrow screen).
      tr.appendChild(el("td", { "data-label": "ID" }, u.id));
      var tok = el("td", { "data-label": "Token" });
      tok.appendChild(el("code", { "data-testid": "url-prefix" }, u.token_prefix + "…"));
      tr.appendChild(tok);
      tr.appendChild(el("td", { title: u.created_at || "", "data-label": "Created" }, fmtTime(u.created_at)));
      tr.appendChild(el("td", { title: u.last_used_at || "", "data-testid": "url-last-used", "data-label": "Last used" }, fmtTime(u.last_used_at)));
      var status = el("td", { "data-label": "Status" });
      // A short badge: the revocation time is in its title, so the table
      // keeps one line per URL.
      status.appendChild(
        el(
          "span",
          { class: "badge " + (active ? "badge-on" : "badge-off"), "data-testid": "url-status", title: active ? "" : "revoked " + fmtTime(u.revoked_at) },
          active ? "active" : "revoked"
        )
      );
      tr.appendChild(status);
      var act = el("td", { class: "actions" });
      if (active && !deleted) {
        var b = el("button", { type: "button", class: "btn btn-small btn-danger-ghost", "data-testid": "revoke-url" }, "Revoke");
        b.addEventListener("click", function () {
          revoke(u, b);
        });
        act.appendChild(b);
      }
      tr.appendChild(act);
      tb.appendChild(tr);
    });
  }

  function revoke(u, btn) {
    var msg =
      "Revoke webhook URL " + u.token_prefix + "…?\n\nCustomer.io deliveries to it will be refused from now on. This cannot be undone.";
    if (!window.confirm(msg)) return;
    btn.disabled = true;
    clearDetailMessages();
    api("DELETE", "/v1/integrations/" + encodeURIComponent(state.selectedId) + "/webhook-urls/" + encodeURIComponent(u.id))
      .then(function () {
        return loadDetail();
      }, report($("urls-error")))
      .then(function () {
        btn.disabled = false;
      });
  }

  function onGenerate() {
    var btn = $("generate-url");
    var id = state.selectedId;
    btn.disabled = true;
    clearDetailMessages();
    api("POST", "/v1/integrations/" + encodeURIComponent(id) + "/webhook-urls")
      .then(function (g) {
        if (state.selectedId !== id) return;
        showNewURL(g.id, g.url);
        return loadDetail();
      }, report($("urls-error")))
      .then(function () {
        var d = state.detail;
        btn.disabled = !!(d && (d.disabled_at || activeURLs(d) >= MAX_ACTIVE_URLS));
      });
  }

  // ---- the one-time URL box ------------------------------------------------

  function showNewURL(id, url) {
    state.newURLId = id;
    $("new-url-value").value = url;
    say($("copy-status"), "");
    show($("copy-status"), true);
    show($("new-url-box"), true);
    $("copy-url").focus(); // the next thing to do
  }

  function clearNewURL() {
    state.newURLId = null;
    $("new-url-value").value = "";
    $("copy-status").textContent = "";
    show($("new-url-box"), false);
  }

  function onCopy() {
    copyInput($("new-url-value"), $("copy-status"));
  }

  // copyInput copies a read-only input's text, saying how in status.
  function copyInput(input, status) {
    var text = input.value;
    function fallback() {
      input.focus();
      input.select();
      input.setSelectionRange(0, text.length);
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      status.textContent = ok ? "Copied." : "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () {
        status.textContent = "Copied.";
      }, fallback);
    } else {
      fallback();
    }
  }

  // ---- signing key ---------------------------------------------------------

  function onSigningKey(ev) {
    ev.preventDefault();
    var key = $("signing-key-input").value;
    signingKeyRequest("PUT", { key: key }, "Signing key saved.", function () {
      $("signing-key-input").value = "";
    });
  }

  function onClearSigningKey() {
    if (!window.confirm("Clear the signing key? Requests will no longer be signature-checked.")) return;
    signingKeyRequest("DELETE", undefined, "Signing key cleared.");
  }

  // signingKeyRequest sets (PUT) or clears (DELETE) the key and reports the
  // outcome under the signing-key form.
  function signingKeyRequest(method, body, doneText, onDone) {
    var msg = $("signing-key-msg");
    clearDetailMessages();
    msg.classList.remove("notice-error");
    api(method, "/v1/integrations/" + encodeURIComponent(state.selectedId) + "/signing-key", body).then(
      function () {
        if (onDone) onDone();
        say(msg, doneText);
        return loadDetail();
      },
      function (err) {
        msg.classList.add("notice-error");
        report(msg)(err);
      }
    );
  }

  // ---- readers (read-only Postgres roles for analysts) ------------------------

  function readersPath(role) {
    var p = "/v1/integrations/" + encodeURIComponent(state.selectedId) + "/readers";
    return role === undefined ? p : p + "/" + encodeURIComponent(role);
  }

  function loadReaders(id, seq) {
    api("GET", "/v1/integrations/" + encodeURIComponent(id) + "/readers").then(function (list) {
      if (seq !== state.detailSeq) return;
      say($("readers-error"), "");
      renderReaders(list || []);
    }, report($("readers-error")));
  }

  function renderReaders(list) {
    var tb = $("readers");
    tb.textContent = "";
    show($("readers-empty"), list.length === 0);
    show($("readers-wrap"), list.length > 0);
    list.forEach(function (r) {
      var tr = el("tr", { "data-testid": "reader-row", "data-role": r.role, "data-complete": r.complete ? "true" : "false" });
      var name = el("td", { "data-label": "Role" });
      name.appendChild(el("code", null, r.role));
      tr.appendChild(name);
      tr.appendChild(el("td", { "data-label": "Login" }, r.can_login ? "yes" : "no"));
      tr.appendChild(el("td", { "data-label": "Reads" }, r.readable + " of " + r.relations + " tables and views"));
      tr.appendChild(el("td", { "data-label": "Later ones" }, r.future ? "yes" : "no"));
      var status = el("td", { "data-label": "Status" });
      status.appendChild(
        el(
          "span",
          { class: "badge " + (r.complete ? "badge-on" : "badge-off"), title: r.complete ? "" : "changed by hand: grant again, or revoke" },
          r.complete ? "granted" : "partial"
        )
      );
      tr.appendChild(status);
      var act = el("td", { class: "actions" });
      var b = el("button", { type: "button", class: "btn btn-small btn-danger-ghost", "data-testid": "revoke-reader" }, "Revoke");
      b.addEventListener("click", function () {
        revokeReader(r.role, b);
      });
      act.appendChild(b);
      tr.appendChild(act);
      tb.appendChild(tr);
    });
  }

  function onGrantReader(ev) {
    ev.preventDefault();
    var role = $("reader-role").value.trim();
    var create = $("reader-create").checked;
    var id = state.selectedId;
    say($("reader-msg"), "");
    say($("readers-error"), "");
    clearNewReader();
    api("PUT", readersPath(role), create ? { create: true } : undefined).then(function (nr) {
      if (state.selectedId !== id) return;
      $("reader-role").value = "";
      if (nr && nr.url) {
        $("new-reader-value").value = nr.url;
        show($("new-reader-box"), true);
        $("copy-reader").focus();
      } else {
        say($("reader-msg"), "Role " + role + " can now read every table and view of this integration.");
      }
      loadReaders(id, state.detailSeq);
    }, report($("readers-error")));
  }

  function revokeReader(role, btn) {
    var msg = "Revoke role " + role + "'s read access to this integration?\n\nIt can no longer read any of its tables or views. The role itself stays.";
    if (!window.confirm(msg)) return;
    btn.disabled = true;
    say($("reader-msg"), "");
    api("DELETE", readersPath(role)).then(function () {
      loadReaders(state.selectedId, state.detailSeq);
    }, function (err) {
      btn.disabled = false;
      report($("readers-error"))(err);
    });
  }

  function clearNewReader() {
    $("new-reader-value").value = "";
    $("copy-reader-status").textContent = "";
    show($("new-reader-box"), false);
  }

  function startReaders() {
    $("reader-form").addEventListener("submit", onGrantReader);
    $("copy-reader").addEventListener("click", function () {
      copyInput($("new-reader-value"), $("copy-reader-status"));
    });
    $("dismiss-reader").addEventListener("click", clearNewReader);
  }

  // ---- retention -----------------------------------------------------------

  function renderRetention(d) {
    var days = d.retention_days;
    $("retention-state").textContent = days ? days + (days === 1 ? " day" : " days") : "none (every event is kept)";
    $("retention-oldest").textContent = days ? (d.oldest_event_at ? fmtTime(d.oldest_event_at) : "not known yet") : "not tracked without a window";
    $("retention-oldest").title = d.oldest_event_at || "";
    $("retention-clear").disabled = !days;
  }

  // onRetention sends the days as typed: a whole number goes as a number, anything
  // else as text, which the server refuses with the reason.
  function onRetention(ev) {
    ev.preventDefault();
    var v = $("retention-input").value.trim();
    if (v === "") {
      var msg = $("retention-msg");
      msg.classList.add("notice-error");
      say(msg, "Enter a number of days from 1 to 36500, or choose Keep everything.");
      return;
    }
    retentionRequest(/^-?\d+$/.test(v) ? Number(v) : v, "Window saved: events older than " + v + " days are deleted in the background.");
  }

  function onClearRetention() {
    retentionRequest(null, "Window cleared: every event is kept.");
  }

  function retentionRequest(days, doneText) {
    var msg = $("retention-msg");
    clearDetailMessages();
    msg.classList.remove("notice-error");
    api("PATCH", "/v1/integrations/" + encodeURIComponent(state.selectedId), { retention_days: days }).then(
      function () {
        $("retention-input").value = "";
        say(msg, doneText);
        return loadDetail();
      },
      function (err) {
        msg.classList.add("notice-error");
        report(msg)(err);
      }
    );
  }

  // ---- delete --------------------------------------------------------------

  function onDelete() {
    var d = state.detail;
    if (!d) return;
    var msg =
      'Delete integration "' + d.name + '"?\n\nAll its webhook URLs are revoked and it stops accepting events. ' +
      "Its tables and data stay in Postgres.";
    if (!window.confirm(msg)) return;
    clearDetailMessages();
    api("DELETE", "/v1/integrations/" + encodeURIComponent(d.id)).then(function () {
      clearNewURL();
      return Promise.all([loadList(), loadDetail()]);
    }, report($("delete-error")));
  }

  // ---- start ---------------------------------------------------------------

  function start() {
    $("signin-form").addEventListener("submit", onSignIn);
    $("signout").addEventListener("click", function () {
      signOut("");
    });
    $("create-form").addEventListener("submit", onCreate);
    $("create-name").addEventListener("input", function () {
      say($("create-error"), "");
    });
    $("reload-list").addEventListener("click", loadList);
    $("refresh").addEventListener("click", function () {
      loadList();
      loadDetail();
    });
    $("generate-url").addEventListener("click", onGenerate);
    $("copy-url").addEventListener("click", onCopy);
    $("dismiss-url").addEventListener("click", clearNewURL);
    $("signing-key-form").addEventListener("submit", onSigningKey);
    $("signing-key-clear").addEventListener("click", onClearSigningKey);
    $("retention-form").addEventListener("submit", onRetention);
    $("retention-clear").addEventListener("click", onClearRetention);
    $("delete-integration").addEventListener("click", onDelete);
    startReaders();

    if (!token()) {
      showSignIn("");
      return;
    }
    api("GET", "/v1/integrations").then(
      function (list) {
        showApp();
        renderList(list);
        restoreSelection();
        focusFirstStep(list);
      },
      function (err) {
        if (err.status === 401) return;
        showSignIn(err.message);
      }
    );
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
