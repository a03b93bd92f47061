/* The supervisor's wallboard (/wallboard): queues and agents, live. Its picture comes from the
 * daemon's Server-Sent Events (config.eventsApi), opened with fetch because EventSource cannot
 * send the supervisor token or an agent's login. Each picture replaces the tables; between two,
 * the longest waits advance every second from the server's clock.
 * window.hotlineWallboard is what tests read: connected, picture, pictures. */
(() => {
  "use strict";

  const RECONNECT_MS = 2000;
  const byId = (id) => document.getElementById(id);
  const config = JSON.parse(byId("config").textContent);
  // The page's texts in its language (hotline/web/i18n.py), each with its {fields} filled.
  const TEXTS = JSON.parse(byId("hotline-texts").textContent);
  const T = (key, fields = {}) => (TEXTS[key] ?? key).replace(/\{(\w+)\}/g,
    (whole, name) => (name in fields ? String(fields[name]) : whole));
  // A refusal: the page's text for its code (said.CODE), else the English text it came with.
  const said = (answer) => (answer.code && Object.hasOwn(TEXTS, `said.${answer.code}`)
    ? T(`said.${answer.code}`, answer.fields || {}) : answer.error);
  const board = { connected: false, picture: null, pictures: 0, stream: null, skew: 0 };
  window.hotlineWallboard = board;

  function authorization() {
    const token = byId("token").value.trim();
    if (token) return `Bearer ${token}`;
    const endpoint = byId("endpoint").value.trim();
    const password = byId("password").value;
    if (!endpoint || !password) return null;
    const bytes = new TextEncoder().encode(`${endpoint}:${password}`);
    return `Basic ${btoa(String.fromCharCode(...bytes))}`;
  }

  function showError(message) {
    byId("error").textContent = message;
    byId("error").hidden = !message;
  }

  function setStatus(text) { byId("status").textContent = text; }

  const readEvents = window.hotlineReadEvents;  // hotline-events.js

  /* One stream per page; opened again when it ends, not after a refusal (a wrong token). */
  async function open(event) {
    if (event) event.preventDefault();
    const auth = authorization();
    if (!auth) return showError(T("wallboard.error.login"));
    showError("");
    if (board.stream) board.stream.abort();
    const mine = board.stream = new AbortController();
    while (!mine.signal.aborted) {
      setStatus(T("wallboard.status.connecting"));
      try {
        const response = await fetch(config.eventsApi, {
          cache: "no-store", credentials: "omit", signal: mine.signal,
          headers: { Authorization: auth, Accept: "text/event-stream" },
        });
        if (!response.ok) {
          const answer = await response.json().catch(() => ({}));
          showError(said(answer) || `HTTP ${response.status}`);
          setStatus(T("wallboard.status.not_connected"));
          if (response.status === 401 || response.status === 403) return;
        } else {
          await readEvents(response, (kind, data) => { if (kind === "wallboard") show(data); });
        }
      } catch (_) { /* the daemon went: opened again below */ }
      board.connected = false;
      if (!mine.signal.aborted) {
        setStatus(T("wallboard.status.reconnecting"));
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
      }
    }
  }

  function show(picture) {
    board.connected = true;
    board.picture = picture;
    board.pictures += 1;
    board.skew = Date.parse(picture.now) - Date.now(); // the server's clock, not the browser's
    setStatus(`live, ${new Date().toLocaleTimeString()}`);
    byId("queues").tBodies[0].replaceChildren(...picture.queues.map(queueRow));
    byId("agents").tBodies[0].replaceChildren(...picture.agents.map(agentRow));
    tick();
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function queueRow(q) {
    const tr = document.createElement("tr");
    tr.dataset.queue = q.queue;
    if (q.waiting > 0) tr.className = "has-waiting";
    const today = q.today;
    const sl = today && today.service_level_pct !== null && today.service_level_pct !== undefined
      ? `${Math.round(today.service_level_pct)}%` : "—";
    const wait = cell("", "longest-wait");
    wait.dataset.since = q.longest_waiting_since || "";
    tr.append(cell(q.queue), cell(String(q.waiting), "waiting"), wait,
      cell(today ? String(today.answered || 0) : "?", "answered"),
      cell(today ? String(today.abandoned || 0) : "?", "abandoned"), cell(today ? sl : "?", "service-level"),
      cell(String(q.agents_free)), cell(String(q.agents_ringing)), cell(String(q.agents_busy)),
      cell(String(q.agents_wrapup)), cell(String(q.agents_paused)));
    return tr;
  }

  function agentRow(a) {
    const tr = document.createElement("tr");
    const since = cell("", "state-for");
    since.dataset.since = a.since;
    tr.append(cell(a.agent), cell(a.state, "state"), since);
    return tr;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60);
    return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`
      : `${m}:${String(s % 60).padStart(2, "0")}`;
  }

  /* Every second: each longest wait and each agent's time in their state, from the server's now. */
  function tick() {
    const now = Date.now() + board.skew;
    for (const el of document.querySelectorAll("[data-since]")) {
      el.textContent = el.dataset.since ? duration((now - Date.parse(el.dataset.since)) / 1000) : "—";
    }
  }

  byId("wallboard-login").addEventListener("submit", open);
  setInterval(tick, 1000);
})();
