// reqresp HTML report: draws the analysis embedded in this page.
// Hand-written, no library. Every text from the capture reaches the page
// through textContent, never as HTML. docs/html-report.md describes it.
(function () {
  "use strict";
  var T0 = performance.now();
  var R = (window.__reqresp = { ready: false, timings: {}, errors: [] });

  // ---------- helpers ----------
  function h(tag, props) {
    var el = document.createElement(tag);
    if (props) {
      for (var k in props) {
        if (!Object.prototype.hasOwnProperty.call(props, k)) continue;
        var v = props[k];
        if (v === undefined || v === null) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, String(v));
      }
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, c) {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(el, x); }); return; }
    el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  function svg(tag, attrs) {
    var el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) el.setAttribute(k, String(attrs[k]));
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  function fmtDur(us) {
    if (us === null || us === undefined || !isFinite(us)) return "–";
    if (us < 1000) return (us < 10 ? us.toFixed(1) : Math.round(us)) + " µs";
    if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 2 : 1) + " ms";
    return (us / 1e6).toFixed(us < 1e7 ? 3 : 1) + " s";
  }
  function fmtBytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    if (n < 1073741824) return (n / 1048576).toFixed(1) + " MiB";
    return (n / 1073741824).toFixed(2) + " GiB";
  }
  function fmtNum(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }
  function rel(t, base) { return "+" + ((t - base) / 1e6).toFixed(3) + " ms"; }
  function plural(n, w) { return fmtNum(n) + " " + w + (n === 1 ? "" : "s"); }
  function shellQuote(s) { return /^[A-Za-z0-9_.\/:@%+=,-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'"; }

  // ---------- data ----------
  var D, M;
  try {
    D = JSON.parse(document.getElementById("reqresp-data").textContent);
    M = JSON.parse(document.getElementById("reqresp-meta").textContent);
  } catch (e) {
    R.errors.push(String(e));
    document.getElementById("app").textContent = "The report's data could not be read: " + e;
    return;
  }
  R.timings.parseMs = performance.now() - T0;
  var conns = D.connections || [];
  var byId = {};
  var keptIndex = {};
  (M.kept || []).forEach(function (k) { keptIndex[k.id] = k; });
  // Pure ACKs to draw per connection (the teardown's last; all with --acks).
  var ackIndex = {};
  (M.acks || []).forEach(function (a) { ackIndex[a.id] = a; });
  var captureStart = Infinity;
  conns.forEach(function (c) {
    byId[c.id] = c;
    if (c.first_seen < captureStart) captureStart = c.first_seen;
    c._lat = [];
    (c.exchanges || []).forEach(function (e, k) { if (e.latency_us !== null && e.latency_us !== undefined) c._lat.push(e.latency_us); });
    c._lat.sort(function (a, b) { return a - b; });
    c._max = c._lat.length ? c._lat[c._lat.length - 1] : -1;
    c._state = c.close ? c.close.kind : "open";
  });
  // The capture-wide exchange number (1-based) of a kept exchange.
  function exNumber(c, k) { var ki = keptIndex[c.id]; return (ki ? ki.index[k] : k) + 1; }
  function exTotal(c) { var ki = keptIndex[c.id]; return ki ? ki.total : c.exchanges.length; }
  R.timings.prepMs = performance.now() - T0;
  var S = D.summary || {};
  var LAT = S.latency || {};
  var slowBound = LAT.p99_us !== null && LAT.p99_us !== undefined && LAT.count >= 20 ? LAT.p99_us : Infinity;
  var title = M.title || "capture";
  // With --acks every pure ACK kept is drawn, numbered as the text ladder does.
  var acksNumbered = M.acks_all === true;

  // ---------- state ----------
  var st = { conn: conns.length ? conns[0].id : null, ex: null, filter: "", sort: "start", rowH: 30, view: "ladder" };
  var app = document.getElementById("app");

  // ---------- header ----------
  function stat(label, value, bad) {
    return h("div", { class: "stat" + (bad ? " bad" : "") }, h("b", { text: value }), h("span", { text: label }));
  }
  var header = h("header", { class: "top" },
    h("h1", { text: "reqresp report" }),
    h("div", { class: "file", text: title }),
    h("div", { class: "stats", id: "stats" },
      stat("packets", fmtNum(D.packets)),
      stat("connections", fmtNum(S.connections)),
      stat("exchanges", fmtNum(S.exchanges)),
      stat("without response", fmtNum(S.exchanges_without_response), S.exchanges_without_response > 0),
      stat("latency p50", fmtDur(LAT.p50_us)),
      stat("latency p99", fmtDur(LAT.p99_us)),
      stat("latency max", fmtDur(LAT.max_us)),
      S.server && S.server.count ? stat("server p50", fmtDur(S.server.p50_us)) : null,
      S.network && S.network.count ? stat("network p50", fmtDur(S.network.p50_us)) : null,
      stat("client → server", fmtBytes(S.bytes_client_to_server || 0)),
      stat("server → client", fmtBytes(S.bytes_server_to_client || 0)),
      stat("warnings", fmtNum((D.warnings || []).length), (D.warnings || []).length > 0)));
  app.appendChild(header);
  if (M.trimmed) {
    app.appendChild(h("div", { class: "banner", id: "trimmed" },
      "Large capture: this page holds " + plural(M.exchanges_kept, "exchange") + " of " + fmtNum(M.exchanges_seen) +
      " and " + plural(M.connections_kept, "connection") + " of " + fmtNum(M.connections_seen) +
      ": the first exchanges of each connection (up to " + M.limits.first_per_connection + " each, " + fmtNum(M.limits.max_exchanges) + " in all), the " + fmtNum(M.limits.slowest) +
      " slowest and up to " + fmtNum(M.limits.failed) + " failed ones of those connections, so that the page stays quick. The numbers above count everything; " +
      "reqresp analyze --format json has every exchange."));
  }
  var tabs = h("nav", { class: "tabs", role: "tablist" });
  var views = {};
  [["ladder", "Ladder"], ["latency", "Latency"], ["warnings", "Warnings"]].forEach(function (v) {
    tabs.appendChild(h("button", { id: "tab-" + v[0], role: "tab", "data-view": v[0], onclick: function () { show(v[0]); } }, v[1]));
    views[v[0]] = h("section", { class: "view", id: "view-" + v[0], role: "tabpanel" });
  });
  app.appendChild(tabs);
  for (var v in views) app.appendChild(views[v]);
  var drawn = {};
  function show(name) {
    st.view = name;
    for (var k in views) {
      views[k].classList.toggle("on", k === name);
      document.getElementById("tab-" + k).classList.toggle("on", k === name);
    }
    if (!drawn[name]) { drawn[name] = true; (name === "latency" ? drawLatency : name === "warnings" ? drawWarnings : function () {})(); }
    if (name === "ladder") renderRows(true);
  }

  // ---------- ladder view ----------
  var filterInput = h("input", { type: "search", id: "filter", placeholder: "filter: address, port, fin/rst/open, text", "aria-label": "filter connections" });
  var sortSelect = h("select", { id: "sort", "aria-label": "sort connections" },
    h("option", { value: "start" }, "sort by start"),
    h("option", { value: "latency" }, "sort by latency (max)"),
    h("option", { value: "bytes" }, "sort by bytes"),
    h("option", { value: "exchanges" }, "sort by exchanges"));
  var connCount = h("div", { class: "count", id: "conn-count" });
  var connList = h("div", { class: "conn-list", id: "conn-list" });
  var ladderTitle = h("span", { class: "title", id: "ladder-title" });
  var ladderInfo = h("span", { class: "note", id: "ladder-info" });
  var ends = h("div", { class: "ends" }, h("span"), h("span", { class: "cli" }), h("span", { class: "srv" }));
  var scroller = h("div", { class: "ladder-scroll", id: "ladder", tabindex: "0" });
  var inner = h("div", { class: "ladder-inner" });
  var lifeL = h("div", { class: "lifeline" }), lifeR = h("div", { class: "lifeline" });
  var rowLayer = h("div");
  inner.appendChild(lifeL); inner.appendChild(lifeR); inner.appendChild(rowLayer);
  scroller.appendChild(inner);
  var detail = h("aside", { class: "detail", id: "detail" });
  var zoomBox = h("span", { class: "zoom" },
    h("button", { title: "smaller rows", id: "zoom-out", onclick: function () { zoom(-1); } }, "−"),
    h("button", { title: "larger rows", id: "zoom-in", onclick: function () { zoom(1); } }, "+"));
  views.ladder.appendChild(h("div", { class: "ladder-view" },
    h("div", { class: "conns" }, h("div", { class: "controls" }, filterInput, sortSelect, connCount), connList),
    h("div", { class: "ladder-box" },
      h("div", { class: "ladder-head" }, ladderTitle, ladderInfo, h("span", { class: "spacer" }), zoomBox),
      ends, scroller),
    detail));
  filterInput.addEventListener("input", function () { st.filter = filterInput.value; drawConnList(); });
  sortSelect.addEventListener("change", function () { st.sort = sortSelect.value; drawConnList(); });

  function connText(c) {
    if (c._text === undefined) {
      var parts = ["#" + c.id, c.client, c.server, c._state, c.framing, c.protocol || "", c.handshake ? "handshake" : "no-handshake"];
      if (c.close && c.close.kind === "rst") parts.push("reset");
      (c.exchanges || []).forEach(function (e) { parts.push(e.request_preview, e.response_preview, e.request_summary || "", e.response_summary || ""); });
      (c.notes || []).forEach(function (n) { parts.push(n); });
      c._text = parts.join("\n").toLowerCase();
    }
    return c._text;
  }
  var LIST_CAP = 500;
  function drawConnList() {
    var words = st.filter.toLowerCase().split(/\s+/).filter(Boolean);
    var list = conns.filter(function (c) {
      if (!words.length) return true;
      var t = connText(c);
      return words.every(function (w) { return t.indexOf(w) >= 0; });
    });
    var key = {
      start: function (c) { return c.first_seen; },
      latency: function (c) { return -c._max; },
      bytes: function (c) { return -(c.bytes_client_to_server + c.bytes_server_to_client); },
      exchanges: function (c) { return -exTotal(c); }
    }[st.sort];
    list.sort(function (a, b) { return key(a) - key(b) || a.id - b.id; });
    clear(connList);
    list.slice(0, LIST_CAP).forEach(function (c) {
      var lat = c._lat.length ? "p50 " + fmtDur(c._lat[Math.ceil(c._lat.length / 2) - 1]) + " · max " + fmtDur(c._max) : "no latency";
      connList.appendChild(h("button", { class: "conn" + (c.id === st.conn ? " on" : ""), "data-conn": c.id,
        onclick: function () { selectConn(c.id); } },
        h("div", { class: "addr" }, "#" + c.id + " " + c.client + " → " + c.server,
          h("span", { class: "tag" + (c._state === "rst" ? " rst" : ""), text: c._state })),
        h("div", { class: "sub", text: plural(exTotal(c), "exchange") + " · " + fmtBytes(c.bytes_client_to_server + c.bytes_server_to_client) + " · " + lat })));
    });
    connCount.textContent = (list.length === conns.length ? plural(conns.length, "connection") : list.length + " of " + plural(conns.length, "connection")) +
      (list.length > LIST_CAP ? " (first " + LIST_CAP + " listed: refine the filter)" : "") +
      (M.connections_seen > conns.length ? "; " + fmtNum(M.connections_seen - conns.length) + " more in the capture, not on this page" : "");
  }

  // Rows of the selected connection's ladder, in time order.
  var rows = [];
  function buildRows(c) {
    var r = [];
    var seq = 0;
    function push(o) { o.seq = seq++; r.push(o); }
    var hs = c.handshake;
    if (hs) {
      push({ t: hs.syn, dir: "c2s", cls: "ctl", label: "SYN" });
      if (hs.syn_ack !== null) push({ t: hs.syn_ack, dir: "s2c", cls: "ctl", label: "SYN, ACK" + (hs.rtt_us !== null ? " · rtt " + fmtDur(hs.rtt_us) : "") });
      if (hs.ack !== null) push({ t: hs.ack, dir: "c2s", cls: "ctl", label: "ACK" });
    }
    (c.exchanges || []).forEach(function (e, k) {
      var n = exNumber(c, k);
      if ((e.request_frames && e.request_frames.length) || e.request_bytes > 0) {
        push({ t: e.request_time, dir: "c2s", cls: "req" + (e.incomplete ? " bad" : ""), ex: k,
          label: "#" + n + " " + (e.request_summary || e.request_preview), size: e.request_bytes });
      }
      if (e.response_last_time !== null && e.response_last_time !== undefined) {
        push({ t: e.response_first_time, dir: "s2c", cls: "resp" + (e.latency_us > slowBound ? " slow" : "") + (e.incomplete ? " bad" : ""), ex: k,
          label: "#" + n + " " + (e.response_summary || e.response_preview), size: e.response_bytes, lat: e.latency_us });
      }
    });
    // TCP events (retransmissions, zero windows, ...); the RST is a close row.
    (c.events || []).forEach(function (ev) {
      if (!ev || typeof ev.time !== "number" || ev.kind === "rst") return;
      var who = ev.side || ev.from;
      push({ t: ev.time, dir: who === "server" ? "s2c" : "c2s", cls: "evt", label: eventText(ev) });
    });
    if (c.close) (c.close.events || []).forEach(function (ev) {
      push({ t: ev.time, dir: ev.from === "server" ? "s2c" : "c2s", cls: "ctl" + (ev.kind === "rst" ? " rst" : ""), label: ev.kind.toUpperCase() });
    });
    var acks = ackIndex[c.id];
    if (acks) acks.acks.forEach(function (a) {
      push({ t: a.time, dir: a.from === "server" ? "s2c" : "c2s", cls: "ctl pack", label: a.ack !== null && acksNumbered ? "ACK ack=" + a.ack : "ACK" });
    });
    r.sort(function (a, b) { return a.t - b.t || a.seq - b.seq; });
    return r;
  }
  // The words for a TCP event, as the text ladder prints them.
  function eventText(ev) {
    var b = (typeof ev.len === "number" ? ev.len : 0) + " B";
    var after = typeof ev.detail === "number" ? " after " + (ev.detail >= 1000 ? (ev.detail / 1000).toFixed(3) + " ms" : ev.detail.toFixed(1) + " µs") : "";
    switch (ev.kind) {
      case "retransmission": return "⟲ retransmission of " + b + after + " (RTO)";
      case "fast_retransmission": return "⟲ fast retransmission of " + b + " (after duplicate ACKs)";
      case "spurious_retransmission": return "⟲ spurious retransmission of " + b + " (already acknowledged)";
      case "syn_retransmission": return "⟲ SYN retransmitted" + after;
      case "out_of_order": return "↯ out-of-order segment of " + b;
      case "duplicate_ack": return "⧉ duplicate ACK" + (typeof ev.detail === "number" ? " #" + ev.detail : "");
      case "lost_segment": return "✗ previous segment not captured";
      case "acked_unseen": return "✗ ACK of a segment never captured";
      case "zero_window": return "▮ zero window: receive buffer full";
      case "zero_window_probe": return "? zero-window probe";
      case "window_full": return "▮ window full";
      case "keep_alive": return "♡ keep-alive";
      case "connection_refused": return "✗ connection refused (SYN answered by RST)";
      default: return String(ev.kind || "event").replace(/_/g, " ");
    }
  }
  var curConn = null;
  function selectConn(id, keepEx) {
    if (!byId[id]) return;
    st.conn = id;
    if (!keepEx) st.ex = null;
    curConn = byId[id];
    var tb = performance.now();
    rows = buildRows(curConn);
    R.timings.lastBuildRowsMs = performance.now() - tb;
    Array.prototype.forEach.call(connList.children, function (b) { b.classList.toggle("on", Number(b.getAttribute("data-conn")) === id); });
    ladderTitle.textContent = "Connection #" + id;
    var total = exTotal(curConn);
    ladderInfo.textContent = plural(total, "exchange") + (total > curConn.exchanges.length ? " (" + fmtNum(curConn.exchanges.length) + " on this page)" : "") +
      " · " + (curConn.protocol || curConn.framing) + " framing" + (curConn.framing_reason ? " (" + curConn.framing_reason + ")" : "") + " · " + plural(rows.length, "row") +
      (ackIndex[id] && ackIndex[id].not_drawn > 0 ? " · plus " + plural(ackIndex[id].not_drawn, "pure ACK") + " not drawn" + (M.acks_all ? " (more than the analysis keeps)" : " (--acks draws them)") : "");
    ends.children[1].textContent = "client " + curConn.client;
    ends.children[2].textContent = "server " + curConn.server;
    layout();
    scroller.scrollTop = 0;
    renderRows(true);
    drawDetail();
    updateHash();
  }
  function layout() {
    var height = rows.length * st.rowH + 8;
    inner.style.height = height + "px";
    [lifeL, lifeR].forEach(function (l) { l.style.height = height + "px"; });
    var laneW = scroller.clientWidth - 92;
    lifeL.style.left = 92 + laneW * 0.06 - 1 + "px";
    lifeR.style.left = 92 + laneW * 0.94 - 1 + "px";
  }
  function zoom(d) {
    var sizes = [18, 24, 30, 40, 54];
    var i = Math.max(0, Math.min(sizes.length - 1, sizes.indexOf(st.rowH) + d));
    var mid = (scroller.scrollTop + scroller.clientHeight / 2) / st.rowH;
    st.rowH = sizes[i];
    layout();
    scroller.scrollTop = mid * st.rowH - scroller.clientHeight / 2;
    renderRows(true);
  }
  var OVERSCAN = 10, printing = false;
  // Rows in the DOM by index: scrolling adds the rows that come into view
  // and removes those that leave, the others stay as they are.
  var shown = new Map();
  function rowElement(i, base) {
    var r = rows[i];
    var label = h("span", { class: "label" }, r.label);
    if (r.size !== undefined) label.appendChild(h("span", { class: "lat", text: " · " + fmtBytes(r.size) }));
    if (r.lat !== undefined && r.lat !== null) label.appendChild(h("span", { class: "lat", text: " · " + fmtDur(r.lat) }));
    var arrow = h(r.ex !== undefined ? "button" : "div", { class: "arrow " + r.dir + " " + r.cls + (r.ex !== undefined && r.ex === st.ex ? " sel" : ""), title: r.label }, label);
    if (r.ex !== undefined) {
      arrow.setAttribute("data-ex", r.ex);
      arrow.addEventListener("click", function () { selectEx(st.conn, r.ex, false); });
    }
    var row = h("div", { class: "row", "data-row": i }, h("span", { class: "t", text: rel(r.t, base) }), h("div", { class: "lane" }, arrow));
    row.style.top = i * st.rowH + "px";
    row.style.height = st.rowH + "px";
    return row;
  }
  // Draws the rows in view; `all` redraws every one (new connection,
  // selection or zoom), otherwise only rows entering the view are made.
  function renderRows(all) {
    if (st.view !== "ladder" && !printing) return;
    if (all === true || !curConn || !rows.length) { clear(rowLayer); shown = new Map(); }
    if (!curConn) { rowLayer.appendChild(h("div", { class: "empty", text: "No TCP connection in this capture." })); return; }
    if (!rows.length) { rowLayer.appendChild(h("div", { class: "empty", text: "Nothing was exchanged on this connection." })); return; }
    var first, last;
    if (printing) { first = 0; last = Math.min(rows.length, 2000); }
    else {
      first = Math.max(0, Math.floor(scroller.scrollTop / st.rowH) - OVERSCAN);
      last = Math.min(rows.length, Math.ceil((scroller.scrollTop + (scroller.clientHeight || 600)) / st.rowH) + OVERSCAN);
    }
    shown.forEach(function (el, i) { if (i < first || i >= last) { rowLayer.removeChild(el); shown.delete(i); } });
    var base = curConn.first_seen;
    var frag = document.createDocumentFragment();
    for (var i = first; i < last; i++) {
      if (shown.has(i)) continue;
      var el = rowElement(i, base);
      shown.set(i, el);
      frag.appendChild(el);
    }
    rowLayer.appendChild(frag);
  }
  var pending = false;
  scroller.addEventListener("scroll", function () {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; renderRows(); });
  });
  window.addEventListener("resize", function () { layout(); renderRows(true); });
  window.addEventListener("beforeprint", function () { printing = true; renderRows(true); });
  window.addEventListener("afterprint", function () { printing = false; renderRows(true); });
  scroller.addEventListener("keydown", function (e) {
    if (!curConn || (e.key !== "ArrowDown" && e.key !== "ArrowUp")) return;
    var n = curConn.exchanges.length;
    if (!n) return;
    e.preventDefault();
    var k = st.ex === null ? 0 : Math.max(0, Math.min(n - 1, st.ex + (e.key === "ArrowDown" ? 1 : -1)));
    selectEx(st.conn, k, true);
  });

  function selectEx(id, k, scroll) {
    if (id !== st.conn || !curConn) selectConn(id, true);
    st.ex = k;
    if (scroll) {
      for (var i = 0; i < rows.length; i++) if (rows[i].ex === k) {
        scroller.scrollTop = Math.max(0, i * st.rowH - scroller.clientHeight / 3);
        break;
      }
    }
    renderRows(true);
    drawDetail();
    updateHash();
  }
  function goTo(id, k) { show("ladder"); selectEx(id, k, true); }
  R.select = goTo;

  // ---------- detail panel ----------
  // The bytes of a preview: printable ASCII as is, \n \r \t \\ \xNN decoded.
  function previewBytes(p, incomplete) {
    var out = [], cut = false, missing = null;
    for (var i = 0; i < p.length; i++) {
      var ch = p[i];
      if (ch === "\u2026") { cut = true; break; }
      if (incomplete && ch === "[") {
        var m = /^\[(\d+) bytes? missing\]/.exec(p.slice(i));
        if (m) { missing = Number(m[1]); break; }
      }
      if (ch === "\\" && i + 1 < p.length) {
        var n = p[i + 1];
        if (n === "n") { out.push(10); i++; continue; }
        if (n === "r") { out.push(13); i++; continue; }
        if (n === "t") { out.push(9); i++; continue; }
        if (n === "\\") { out.push(92); i++; continue; }
        if (n === "x" && /^[0-9a-f]{2}$/.test(p.substr(i + 2, 2))) { out.push(parseInt(p.substr(i + 2, 2), 16)); i += 3; continue; }
      }
      out.push(ch.charCodeAt(0) & 0xff);
    }
    return { bytes: out, cut: cut, missing: missing };
  }
  function hexView(bytes) {
    var grid = h("div", { class: "bytes" });
    for (var o = 0; o < bytes.length; o += 8) {
      var chunk = bytes.slice(o, o + 8);
      var hex = chunk.map(function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join(" ");
      var asc = chunk.map(function (b) { return b >= 32 && b < 127 ? String.fromCharCode(b) : "."; }).join("");
      grid.appendChild(h("span", { class: "off", text: ("000" + o.toString(16)).slice(-4) }));
      grid.appendChild(h("span", { class: "hex", text: hex }));
      grid.appendChild(h("span", { class: "asc", text: asc }));
    }
    return grid;
  }
  function copyButton(text) {
    var b = h("button", { class: "copy", title: "copy to the clipboard" }, "copy");
    b.addEventListener("click", function () {
      function done(ok) { b.textContent = ok ? "copied" : "select and copy"; setTimeout(function () { b.textContent = "copy"; }, 1500); }
      function fallback() {
        var ta = h("textarea");
        ta.value = text; document.body.appendChild(ta); ta.select();
        var ok = false; try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        document.body.removeChild(ta); done(ok);
      }
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
      else fallback();
    });
    return b;
  }
  // Index of this exchange's message among its side's messages (pitfalls count those).
  function sideIndex(c, k, side) {
    if (keptIndex[c.id]) return null;
    var n = 0;
    for (var i = 0; i < k; i++) {
      var e = c.exchanges[i];
      if (side === "client" ? (e.request_frames.length || e.request_bytes > 0) : e.response_last_time !== null) n++;
    }
    return n;
  }
  function message(c, k, e, side) {
    var req = side === "client";
    var frames = (req ? e.request_frames : e.response_frames) || [];
    var preview = req ? e.request_preview : e.response_preview;
    var size = req ? e.request_bytes : e.response_bytes;
    var box = h("div", { class: "msg", "data-side": side });
    box.appendChild(h("h3", { text: req ? "Request · client → server" : "Response · server → client" }));
    if (!req && (e.response_last_time === null || e.response_last_time === undefined)) {
      box.appendChild(h("p", { class: "note warn", text: "No response in the capture." }));
      return box;
    }
    if (req && !frames.length && !size) {
      box.appendChild(h("p", { class: "note", text: "No request: the server spoke first (a greeting)." }));
      return box;
    }
    var times = req ? [["complete", rel(e.request_time, c.first_seen)]] :
      [["first byte", rel(e.response_first_time, c.first_seen)], ["complete", rel(e.response_last_time, c.first_seen)]];
    box.appendChild(h("dl", { class: "kv" },
      h("dt", { text: "size" }), h("dd", { text: size + " bytes" }),
      times.map(function (t) { return [h("dt", { text: t[0] }), h("dd", { text: t[1] })]; })));
    box.appendChild(h("div", { class: "note", text: frames.length ? "Frames (Wireshark's numbers) that carried it:" : "No frame: its bytes were not captured." }));
    box.appendChild(h("div", { class: "frames" }, frames.map(function (f) { return h("span", { class: "frame", "data-frame": f, text: f }); })));
    if (frames.length >= 64) box.appendChild(h("div", { class: "note", text: "The first 64 frames are listed." }));
    if (frames.length) {
      var filter = frames.length === 1 ? "frame.number == " + frames[0] : "frame.number in {" + frames.join(", ") + "}";
      var cmd = "wireshark -r " + shellQuote(title) + " -Y '" + filter + "'";
      box.appendChild(h("div", { class: "cmd" }, h("code", { class: "wireshark", text: cmd }), copyButton(cmd)));
    }
    var packets = (req ? e.request_packets : e.response_packets) || [];
    if (packets.length) {
      box.appendChild(h("div", { class: "note", text: "The packets it came in:" }));
      box.appendChild(packetTable(packets, size, (req ? e.request_packets_not_kept : e.response_packets_not_kept) || 0));
    }
    // Where one recv() per message would have gone wrong.
    var idx = sideIndex(c, k, side);
    if (frames.length > 1) {
      box.appendChild(h("p", { class: "note warn", text: "It came in " + frames.length + " segments: a reader calling recv() once would get only what frame " + frames[0] + " carried and cut the message there; read until the framing says the message is whole." }));
    }
    if (idx !== null) (c.recv_pitfalls || []).forEach(function (p) {
      if (p.from !== side || p.kind !== "merged" || idx < p.message || idx >= p.message + p.count) return;
      box.appendChild(h("p", { class: "note warn", text: "Frame " + frames[frames.length - 1] + " carried " + p.count + " messages together (from message " + (p.message + 1) + "): one recv() would return them as one; split them by the framing." }));
    });
    var pb = previewBytes(preview || "", e.incomplete);
    box.appendChild(h("div", { class: "note", text: "Text (non-printable bytes escaped" + (pb.cut ? "; the first bytes only" : "") + "):" }));
    box.appendChild(h("pre", { class: "text", text: preview }));
    box.appendChild(h("div", { class: "note", text: "Hex of the " + pb.bytes.length + " byte" + (pb.bytes.length === 1 ? "" : "s") + " shown" +
      (pb.bytes.length < size ? " (of " + size + "; the whole message is in the frames above)" : "") + (pb.missing ? "; then " + pb.missing + " bytes missing from the capture" : "") + ":" }));
    box.appendChild(hexView(pb.bytes));
    return box;
  }
  // The latency as a bar: the network's share, then the server's.
  function splitBar(e) {
    var net = Math.max(0, Math.min(100, 100 * e.network_us / e.latency_us));
    var bar = h("div", { class: "split", title: "network " + fmtDur(e.network_us) + " · server " + fmtDur(e.server_us) });
    var a = h("span", { class: "net" }), b = h("span", { class: "srv" });
    a.style.width = net + "%"; b.style.width = (100 - net) + "%";
    bar.appendChild(a); bar.appendChild(b);
    return bar;
  }
  var FLAG_NAMES = [[0x100, "AE"], [0x080, "CWR"], [0x040, "ECE"], [0x020, "URG"], [0x010, "ACK"], [0x008, "PSH"], [0x004, "RST"], [0x002, "SYN"], [0x001, "FIN"]];
  function flagText(f) {
    var names = FLAG_NAMES.filter(function (x) { return f & x[0]; }).map(function (x) { return x[1]; });
    return "0x" + ("00" + f.toString(16)).slice(-3) + (names.length ? " " + names.reverse().join(", ") : "");
  }
  // The packets a message came in, as Wireshark lists them, and where the
  // original lab's single recv(1024) would have stopped reading.
  function packetTable(packets, size, more) {
    var start = D.summary && D.summary.capture ? D.summary.capture.first_packet_time : null;
    var firstRecv = packets.length ? Math.min(1024, packets[0].len) : 0;
    var whole = packets.length === 1 && more === 0 && packets[0].len <= 1024;
    var table = h("table", { class: "packets" },
      h("thead", null, h("tr", null, ["frame", "time", "flags", "seq", "ack", "len", "recv(1024)"].map(function (t) { return h("th", { text: t }); }))),
      h("tbody", null, packets.map(function (p, i) {
        var recv = i > 0 ? "later" : whole ? "all " + p.len + " B" : "✂ " + firstRecv + " B";
        return h("tr", { "data-frame": p.frame, class: i === 0 && !whole ? "cut" : "" },
          h("td", { class: "num", text: String(p.frame) }),
          h("td", { class: "time", title: "frame.time_relative: seconds since the capture's first packet", text: start === null || start === undefined ? "–" : ((p.time - start) / 1e9).toFixed(6) }),
          h("td", { class: "flags", text: flagText(p.flags) }),
          h("td", { class: "seq", text: p.seq === null ? "–" : String(p.seq) }),
          h("td", { class: "ack", text: p.ack === null ? "–" : String(p.ack) }),
          h("td", { class: "len", text: String(p.len) }),
          h("td", { class: "recv", text: recv }));
      })));
    var box = h("div", { class: "packet-list" }, table);
    if (more > 0) box.appendChild(h("div", { class: "note", text: "and " + plural(more, "more packet") + ", not listed (the first 64 are)." }));
    if (!whole && packets.length) {
      box.appendChild(h("p", { class: "note warn recv-cut", text: "The original lab's server reads each message with one recv(1024): here it would get only the first " + firstRecv + " of the " + size + " bytes (frame " + packets[0].frame + ")" +
        (packets[0].len > 1024 ? ", the most one call returns" : ", what had arrived when it read") + ", and treat that as the whole message." }));
    }
    return box;
  }
  function drawDetail() {
    clear(detail);
    detail.removeAttribute("data-ex");
    var c = curConn;
    if (!c || st.ex === null || !c.exchanges[st.ex]) {
      detail.appendChild(h("h2", { text: "Details" }));
      detail.appendChild(h("p", { class: "note", text: "Click an arrow (or focus the ladder and press ↓) to see the message's bytes, the frames it came in and the command that opens them in Wireshark." }));
      if (c && c.notes && c.notes.length) {
        detail.appendChild(h("h3", { text: "About this connection" }));
        c.notes.forEach(function (n) { detail.appendChild(h("p", { class: "note warn", text: n })); });
      }
      return;
    }
    var k = st.ex, e = c.exchanges[k];
    detail.setAttribute("data-ex", k);
    detail.appendChild(h("h2", { text: "Exchange #" + exNumber(c, k) + " of connection #" + c.id }));
    detail.appendChild(h("dl", { class: "kv" },
      h("dt", { text: "latency" }), h("dd", { class: "latency", text: e.latency_us === null ? "– (no response)" : fmtDur(e.latency_us) }),
      e.network_us !== null && e.network_us !== undefined ? [
        h("dt", { text: "network" }), h("dd", { class: "network", text: fmtDur(e.network_us) + " (round trip from the " + (e.rtt_from === "ack" ? "request's ACK" : "handshake") + ", and the response's transfer)" }),
        h("dt", { text: "server" }), h("dd", { class: "server", text: fmtDur(e.server_us) + " (time to first byte less that round trip)" })] : [],
      h("dt", { text: "client" }), h("dd", { text: c.client }),
      h("dt", { text: "server" }), h("dd", { text: c.server })));
    if (e.network_us !== null && e.network_us !== undefined && e.latency_us > 0) detail.appendChild(splitBar(e));
    if (e.incomplete) detail.appendChild(h("p", { class: "note warn", text: "Incomplete: bytes of this exchange were not captured, or the stream ended inside it." }));
    detail.appendChild(message(c, k, e, "client"));
    detail.appendChild(message(c, k, e, "server"));
  }

  // ---------- latency view ----------
  var allLat = null;
  function latencies() {
    if (!allLat) {
      allLat = [];
      conns.forEach(function (c) {
        c.exchanges.forEach(function (e, k) {
          if (e.latency_us !== null && e.latency_us !== undefined && isFinite(e.latency_us)) allLat.push({ c: c, k: k, lat: e.latency_us, t: e.request_time });
        });
      });
    }
    return allLat;
  }
  function exLink(p) {
    return h("button", { class: "go", onclick: function () { goTo(p.c.id, p.k); } }, "#" + p.c.id + "/" + exNumber(p.c, p.k));
  }
  var tip = h("div", { class: "tip" });
  document.body.appendChild(tip);
  function drawLatency() {
    var pts = latencies();
    var box = views.latency;
    if (!pts.length) { box.appendChild(h("p", { class: "empty", text: "No exchange with a response, so no latency to draw." })); return; }
    var lo = Infinity, hi = 0;
    pts.forEach(function (p) { if (p.lat < lo) lo = p.lat; if (p.lat > hi) hi = p.lat; });
    var logScale = lo > 0 && hi / lo > 20;
    var binList = h("div", { id: "bin-list" });
    box.appendChild(h("div", { class: "charts" },
      h("div", { class: "chart" }, h("h2", { text: "Latency histogram" }), histogram(pts, lo, hi, logScale, binList), binList),
      h("div", { class: "chart" }, h("h2", { text: "Latency over time (click a point)" }), overTime(pts, lo, hi, logScale))));
    var slow = pts.slice().sort(function (a, b) { return b.lat - a.lat; }).slice(0, 25);
    box.appendChild(h("div", { class: "section" }, h("h2", { text: "Slowest exchanges" }), exTable(slow, "slowest")));
  }
  function exTable(list, id) {
    return h("table", { id: id },
      h("thead", null, h("tr", null, h("th", { text: "exchange" }), h("th", { class: "num", text: "latency" }), h("th", { text: "request" }), h("th", { text: "response" }))),
      h("tbody", null, list.map(function (p) {
        var e = p.c.exchanges[p.k];
        return h("tr", null, h("td", null, exLink(p)), h("td", { class: "num", text: fmtDur(p.lat) }),
          h("td", null, h("span", { class: "mono", text: e.request_preview })), h("td", null, h("span", { class: "mono", text: e.response_preview })));
      })));
  }
  function histogram(pts, lo, hi, logScale, binList) {
    var W = 640, H = 240, L = 46, B = 36, N = Math.min(40, Math.max(1, Math.ceil(Math.sqrt(pts.length))));
    var f = logScale ? Math.log : function (x) { return x; };
    var a = f(lo), b = f(hi); if (b <= a) b = a + 1;
    var bins = [];
    for (var i = 0; i < N; i++) bins.push([]);
    pts.forEach(function (p) { bins[Math.min(N - 1, Math.floor((f(p.lat) - a) / (b - a) * N))].push(p); });
    var top = 0; bins.forEach(function (x) { if (x.length > top) top = x.length; });
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", id: "histogram" });
    s.appendChild(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - 4, y2: H - B }));
    s.appendChild(svg("line", { class: "axis", x1: L, y1: 6, x2: L, y2: H - B }));
    var bw = (W - L - 6) / N;
    function edge(j) { var x = a + (b - a) * j / N; return logScale ? Math.exp(x) : x; }
    bins.forEach(function (list, j) {
      if (!list.length) return;
      var bh = (H - B - 8) * list.length / top;
      var r = svg("rect", { class: "bar", x: L + j * bw + 1, y: H - B - bh, width: Math.max(1, bw - 2), height: bh, "data-count": list.length });
      var t = svg("title", {}); t.textContent = fmtDur(edge(j)) + " – " + fmtDur(edge(j + 1)) + ": " + plural(list.length, "exchange");
      r.appendChild(t);
      r.addEventListener("click", function () {
        Array.prototype.forEach.call(s.querySelectorAll(".bar.on"), function (x) { x.classList.remove("on"); });
        r.classList.add("on");
        clear(binList);
        binList.appendChild(h("p", { class: "note", text: plural(list.length, "exchange") + " between " + fmtDur(edge(j)) + " and " + fmtDur(edge(j + 1)) + (list.length > 50 ? " (the 50 slowest):" : ":") }));
        binList.appendChild(exTable(list.slice().sort(function (x, y) { return y.lat - x.lat; }).slice(0, 50), "bin-table"));
      });
      s.appendChild(r);
    });
    [0, Math.floor(N / 2), N].forEach(function (j) {
      var t = svg("text", { x: L + j * bw, y: H - B + 16, "text-anchor": j === 0 ? "start" : j === N ? "end" : "middle" });
      t.textContent = fmtDur(edge(j)); s.appendChild(t);
    });
    var yl = svg("text", { x: L - 6, y: 14, "text-anchor": "end" }); yl.textContent = String(top); s.appendChild(yl);
    var xl = svg("text", { x: (W + L) / 2, y: H - 4, "text-anchor": "middle" }); xl.textContent = "latency" + (logScale ? " (log scale)" : ""); s.appendChild(xl);
    return s;
  }
  function overTime(pts, lo, hi, logScale) {
    var canvas = h("canvas", { id: "over-time", width: 640, height: 260, "aria-label": "latency of each exchange over the capture's time" });
    var t0 = Infinity, t1 = -Infinity;
    pts.forEach(function (p) { if (p.t < t0) t0 = p.t; if (p.t > t1) t1 = p.t; });
    if (t1 <= t0) t1 = t0 + 1;
    var f = logScale ? Math.log : function (x) { return x; };
    var a = f(lo), b = f(hi); if (b <= a) { a -= 1; b += 1; }
    var L = 56, Rm = 10, Tm = 10, B = 30, W = 640, H = 260;
    function px(p) { return [L + (p.t - t0) / (t1 - t0) * (W - L - Rm), H - B - (f(p.lat) - a) / (b - a) * (H - B - Tm)]; }
    function draw() {
      var dpr = window.devicePixelRatio || 1;
      canvas.width = W * dpr; canvas.height = H * dpr;
      var g = canvas.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      var cs = getComputedStyle(document.documentElement);
      g.clearRect(0, 0, W, H);
      g.strokeStyle = cs.getPropertyValue("--muted").trim() || "#888";
      g.beginPath(); g.moveTo(L, Tm); g.lineTo(L, H - B); g.lineTo(W - Rm, H - B); g.stroke();
      g.fillStyle = cs.getPropertyValue("--muted").trim() || "#888";
      g.font = "11px sans-serif";
      g.textAlign = "right";
      g.fillText(fmtDur(hi), L - 4, Tm + 8);
      g.fillText(fmtDur(lo), L - 4, H - B);
      g.textAlign = "left"; g.fillText("+0 s", L, H - B + 16);
      g.textAlign = "right"; g.fillText("+" + ((t1 - t0) / 1e9).toFixed(3) + " s", W - Rm, H - B + 16);
      g.textAlign = "center"; g.fillText("capture time" + (logScale ? " · latency on a log scale" : ""), (W + L) / 2, H - 4);
      g.fillStyle = cs.getPropertyValue("--point").trim() || "rgba(37,99,235,.6)";
      pts.forEach(function (p) { var q = px(p); g.fillRect(q[0] - 1.5, q[1] - 1.5, 3, 3); });
      if (st.ex !== null && curConn) {
        var e = curConn.exchanges[st.ex];
        if (e && e.latency_us !== null) {
          var q = px({ t: e.request_time, lat: e.latency_us });
          g.strokeStyle = cs.getPropertyValue("--bad").trim() || "red";
          g.beginPath(); g.arc(q[0], q[1], 6, 0, 2 * Math.PI); g.stroke();
        }
      }
    }
    function nearest(ev) {
      var r = canvas.getBoundingClientRect();
      var x = (ev.clientX - r.left) * W / r.width, y = (ev.clientY - r.top) * H / r.height;
      var best = null, bd = 100;
      pts.forEach(function (p) { var q = px(p), d = (q[0] - x) * (q[0] - x) + (q[1] - y) * (q[1] - y); if (d < bd) { bd = d; best = p; } });
      return best;
    }
    canvas.addEventListener("click", function (ev) { var p = nearest(ev); if (p) goTo(p.c.id, p.k); });
    canvas.addEventListener("mousemove", function (ev) {
      var p = nearest(ev);
      if (!p) { tip.style.display = "none"; return; }
      tip.textContent = "#" + p.c.id + "/" + exNumber(p.c, p.k) + " · " + fmtDur(p.lat) + " · " + p.c.exchanges[p.k].request_preview;
      tip.style.left = ev.clientX + 12 + "px"; tip.style.top = ev.clientY + 12 + "px"; tip.style.display = "block";
    });
    canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    R.pointOf = function (id, k) { var e = byId[id].exchanges[k]; return px({ t: e.request_time, lat: e.latency_us }); };
    draw();
    R.redrawChart = draw;
    return canvas;
  }

  // ---------- warnings view ----------
  function drawWarnings() {
    var box = views.warnings;
    var items = [];
    function item(kind, bad, text, link) { items.push({ kind: kind, bad: bad, text: text, link: link }); }
    (D.warnings || []).forEach(function (w) { item("capture", true, w); });
    conns.forEach(function (c) {
      var who = "connection #" + c.id + " (" + c.client + " → " + c.server + "): ";
      (c.notes || []).forEach(function (n) { item("note", false, who + n); });
      if (!c.handshake) item("start", false, who + "the handshake was not captured");
      if (c.close && c.close.kind === "rst") item("reset", true, who + "reset (RST) by the " + c.close.initiator);
      if (!c.close) item("open", false, who + "still open at the end of the capture (no FIN or RST)");
      (c.gaps || []).forEach(function (g) { item("gap", true, who + g.len + " bytes from the " + g.from + " were not captured (at stream offset " + g.offset + ")"); });
      (c.events || []).forEach(function (ev) { if (ev && ev.kind) item(String(ev.kind).replace(/_/g, " "), true, who + ((ev.side || ev.from) ? "from the " + (ev.side || ev.from) : "event") + (typeof ev.time === "number" ? " at " + rel(ev.time, c.first_seen) : "")); });
      var sideMsgs = { client: [], server: [] };
      if (!keptIndex[c.id] && c.recv_pitfalls && c.recv_pitfalls.length) c.exchanges.forEach(function (e, k) {
        if (e.request_frames.length || e.request_bytes > 0) sideMsgs.client.push(k);
        if (e.response_last_time !== null) sideMsgs.server.push(k);
      });
      (c.recv_pitfalls || []).forEach(function (p) {
        var k = sideMsgs[p.from][p.message];
        var text = p.kind === "split" ? who + p.from + " message " + (p.message + 1) + " came in " + p.count + " segments: one recv() may return part of it"
          : who + p.count + " " + p.from + " messages from message " + (p.message + 1) + " came in one segment: one recv() returns them together";
        item("recv " + p.kind, false, text, k === undefined ? null : { c: c, k: k });
      });
      c.exchanges.forEach(function (e, k) {
        if (e.incomplete) item("incomplete", true, who + "exchange #" + exNumber(c, k) + " is missing bytes", { c: c, k: k });
        else if (e.latency_us === null && (e.request_frames.length || e.request_bytes > 0)) item("no response", true, who + "exchange #" + exNumber(c, k) + " got no response in the capture", { c: c, k: k });
      });
    });
    var CAP = 2000;
    box.appendChild(h("div", { class: "section" }, h("h2", { text: items.length ? plural(items.length, "thing") + " to know" : "No warnings" }),
      items.length ? null : h("p", { class: "note", text: "Every connection was captured whole, opened with a handshake and closed in order; every request got its response." }),
      h("ul", { class: "warnings", id: "warning-list" }, items.slice(0, CAP).map(function (it) {
        return h("li", null, h("span", { class: "kind" + (it.bad ? " bad" : ""), text: it.kind }), it.text,
          it.link ? [" ", exLink(it.link)] : null);
      })),
      items.length > CAP ? h("p", { class: "note", text: fmtNum(items.length - CAP) + " more not listed." }) : null));
  }

  // ---------- start ----------
  function updateHash() {
    var hsh = st.conn === null ? "" : "#c=" + st.conn + (st.ex !== null ? "&e=" + st.ex : "");
    try { if (location.hash !== hsh) history.replaceState(null, "", hsh || location.pathname); } catch (e) { /* file:// in some browsers */ }
  }
  R.timings.headerMs = performance.now() - T0;
  drawConnList();
  R.timings.listMs = performance.now() - T0;
  var m = /^#c=(\d+)(?:&e=(\d+))?$/.exec(location.hash || "");
  show("ladder");
  if (m && byId[Number(m[1])]) {
    selectConn(Number(m[1]));
    if (m[2] !== undefined) selectEx(Number(m[1]), Number(m[2]), true);
  } else if (st.conn !== null) selectConn(st.conn);
  else { renderRows(true); drawDetail(); }
  if (window.matchMedia) {
    var mq = window.matchMedia("(prefers-color-scheme: dark)");
    if (mq.addEventListener) mq.addEventListener("change", function () { if (R.redrawChart) R.redrawChart(); });
  }
  R.timings.firstRenderMs = performance.now();
  R.timings.scriptMs = performance.now() - T0;
  document.documentElement.setAttribute("data-timings", JSON.stringify(R.timings));
  R.rows = function () { return rows.length; };
  R.renderRows = renderRows;
  R.ready = true;
})();
