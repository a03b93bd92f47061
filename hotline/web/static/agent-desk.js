/* The agent's desk (/agent), on top of JsSIP (the global `JsSIP`, bundled by `make web`): log in
 * once (kept for the browser tab's session), presence (ready, pause for a provisioned reason,
 * wrap-up with its countdown, log off), the call in hand with its screen pop, hold, mute,
 * transfer, invite, video, recording and notes, the queues the agent serves with their waiting
 * callers, and a supervisor's live talks. Settings come from the JSON in #config, every text
 * from the page's catalogue in #hotline-texts (T with the "agent." keys). The customer's page has its own
 * script (hotline-phone.js).
 * window.hotlinePhone is what tests read: state, lastError, pc, remoteVideos(), desk, ... */
(() => {
  "use strict";

  const MEDIA = { audio: true, video: true };
  const PC_CONFIG = { iceServers: [] }; // Asterisk is reached directly: no STUN/TURN
  const SESSION_KEY = "hotline.agentLogin"; // sessionStorage: the login, for this tab only
  const RECONNECT_MS = 2000;
  const NOTICE_EVERY_MS = 2000;
  const TALKS_EVERY_MS = 2000;

  const byId = (id) => document.getElementById(id);
  const config = JSON.parse(byId("config").textContent);
  const TEXTS = JSON.parse(byId("hotline-texts").textContent);
  const readEvents = window.hotlineReadEvents; // hotline-events.js

  /* A text of the page's language, its {name} fields filled from `fields`. */
  function T(key, fields) {
    const text = Object.prototype.hasOwnProperty.call(TEXTS, key) ? TEXTS[key] : key;
    if (!fields) return text;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in fields ? String(fields[name]) : whole));
  }

  /* What the daemon said (an answer's message, a refusal's error): the page's text for its code
     (said.CODE), else the English text it came with (hotline/web/said.py). */
  function said(answer, english) {
    const key = answer && answer.code ? `said.${answer.code}` : "";
    return key && Object.prototype.hasOwnProperty.call(TEXTS, key) ? T(key, answer.fields || {}) : english;
  }

  class PhoneError extends Error {}

  const phone = {
    state: "logged out",
    lastError: null,
    registered: false,
    credentials: null,
    switchLink: null,
    phoneMessage: null,
    recordingPaused: false,
    ua: null,
    session: null,
    pc: null,
    localStream: null,
    held: false, // the call in hand is on hold (the customer hears music)
    muted: false, // the customer no longer hears the agent
    desk: null, // the desk's last picture from the daemon (presence, queues)
    deskConnected: false,
    notice: null,
    screenPop: null,
    popConnected: false,
    talks: null,
    talksStatus: null,
    supervising: false,
    noteCase: null,
    noteMessage: null,
    superviseMessage: null,
    presenceMessage: null,
    remoteVideos: () => Array.from(byId("remote").querySelectorAll("video")),
  };
  window.hotlinePhone = phone;

  // --- what the page shows ------------------------------------------------------------------

  // The SIP phone's states (phone.state keeps the code; the page shows the text).
  const STATE_TEXTS = {
    "logged out": T("agent.phone.logged_out"), registering: T("agent.phone.registering"),
    registered: T("agent.phone.registered"), "registration failed": T("agent.phone.registration_failed"),
    disconnected: T("agent.phone.disconnected"), ringing: T("agent.phone.ringing"),
    "in call": T("agent.phone.in_call"), ended: T("agent.phone.ended"), failed: T("agent.phone.failed"),
  };

  function setState(state, detail) {
    phone.state = state;
    const text = STATE_TEXTS[state] || state;
    byId("status").textContent = detail ? `${text}: ${detail}` : text;
  }

  function showError(message) {
    phone.lastError = message;
    const el = byId("error");
    el.textContent = message;
    el.hidden = false;
  }

  function clearError() {
    const el = byId("error");
    el.textContent = "";
    el.hidden = true;
  }

  function enable(id, on) {
    const el = byId(id);
    if (el) el.disabled = !on;
  }

  function failed(error) {
    const message = error instanceof PhoneError ? error.message
      : T("agent.error.unexpected", { detail: (error && error.message) || error });
    showError(message);
    setState("failed", message);
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  // --- camera and microphone ----------------------------------------------------------------

  function mediaErrorMessage(error) {
    switch (error && error.name) {
      case "NotAllowedError": case "PermissionDeniedError": case "SecurityError": return T("agent.media.refused");
      case "NotFoundError": case "DevicesNotFoundError": case "OverconstrainedError": return T("agent.media.none");
      case "NotReadableError": case "TrackStartError": return T("agent.media.in_use");
      default: return T("agent.media.failed", { detail: (error && error.message) || error });
    }
  }

  async function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new PhoneError(T("agent.media.insecure"));
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(MEDIA);
    } catch (error) {
      throw new PhoneError(mediaErrorMessage(error));
    }
    phone.localStream = stream;
    byId("local").srcObject = stream;
    return stream;
  }

  function releaseMedia() {
    if (phone.localStream) phone.localStream.getTracks().forEach((track) => track.stop());
    phone.localStream = null;
    byId("local").srcObject = null;
    byId("remote").replaceChildren();
  }

  // Every remote track gets its own element: in Asterisk's SFU mode the other party's video comes
  // on a stream added by a re-INVITE, while our own sendrecv stream stays muted (DESIGN.md).
  function watchPeerConnection(pc) {
    phone.pc = pc;
    pc.addEventListener("track", (event) => addRemoteTrack(event.track));
  }

  function addRemoteTrack(track) {
    const video = track.kind === "video";
    const el = document.createElement(video ? "video" : "audio");
    el.autoplay = true;
    el.srcObject = new MediaStream([track]);
    if (video) {
      el.playsInline = true;
      el.muted = true; // the sound plays from the audio track's own element
      el.hidden = track.muted; // a stream that carries nothing is not shown
      track.addEventListener("mute", () => { el.hidden = true; });
      track.addEventListener("unmute", () => { el.hidden = false; });
      noteFrames(el);
    }
    track.addEventListener("ended", () => el.remove());
    byId("remote").append(el);
  }

  // lastFrameAt tells which remote video is live when several are on the page.
  function noteFrames(el) {
    if (!el.requestVideoFrameCallback) return;
    const onFrame = (now) => {
      el.lastFrameAt = now;
      el.requestVideoFrameCallback(onFrame);
    };
    el.requestVideoFrameCallback(onFrame);
  }

  // --- the API, with the login sent explicitly (the API never challenges) -----------------------

  function basicAuth(user, password) {
    const bytes = new TextEncoder().encode(`${user}:${password}`);
    return `Basic ${btoa(String.fromCharCode(...bytes))}`;
  }

  function authHeaders(json) {
    const { endpoint, password } = phone.credentials;
    const headers = { Authorization: basicAuth(endpoint, password) };
    if (json) headers["Content-Type"] = "application/json";
    return headers;
  }

  /* POST with the login; [status, the JSON answer or {}]. */
  async function postAsAgent(url, body, signal) {
    const response = await fetch(url, {
      method: "POST", cache: "no-store", credentials: "omit", signal, body: JSON.stringify(body),
      headers: authHeaders(true),
    });
    let answer = {};
    try { answer = await response.json(); } catch (_) { /* not JSON: the status says it */ }
    return [response.status, answer];
  }

  /* The JSON answer's `field`, or null after showing why not (`what` names the action). */
  async function agentApi(url, body, field, what) {
    if (!phone.credentials) { showError(T("agent.error.log_in_first")); return null; }
    let status;
    let answer;
    try {
      [status, answer] = await postAsAgent(url, body === undefined ? {} : body);
    } catch (error) {
      showError(`${what}: ${error.message || error}`);
      return null;
    }
    if (status < 200 || status > 299 || !answer[field]) {
      showError(said(answer, answer.error) || `${what} (HTTP ${status})`);
      return null;
    }
    clearError();
    return field === "message" ? said(answer, answer.message) : answer[field];
  }

  /* A stream of Server-Sent Events while the login holds: opened again when it ends (the daemon
   * restarting); a refused login is not retried (it would lock the agent out). */
  function follow(url, onEvent, onGone) {
    const mine = new AbortController();
    (async () => {
      while (!mine.signal.aborted) {
        try {
          const response = await fetch(url, {
            cache: "no-store", credentials: "omit", signal: mine.signal,
            headers: { ...authHeaders(false), Accept: "text/event-stream" },
          });
          if (response.status === 401) return;
          if (response.ok) await readEvents(response, onEvent);
        } catch (_) { /* gone: opened again below */ }
        onGone();
        if (!mine.signal.aborted) await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
      }
    })();
    return mine;
  }

  // --- logging in, once per tab ---------------------------------------------------------------

  function login() {
    const endpoint = byId("endpoint").value.trim();
    const password = byId("password").value;
    if (!endpoint || !password) return showError(T("agent.error.enter_login"));
    start({ endpoint, password });
  }

  function start(credentials) {
    stopAll();
    clearError();
    phone.credentials = credentials;
    try { sessionStorage.setItem(SESSION_KEY, JSON.stringify(credentials)); } catch (_) { /* memory only */ }
    byId("endpoint").value = credentials.endpoint;
    byId("password").value = "";
    showLogin(credentials.endpoint);
    for (const id of ["switch", "invite", "to-phone", "transfer", "consult", "recording", "record",
                      "ready", "pause", "logoff", "logout"]) enable(id, true);
    setState("registering");
    try {
      phone.ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(config.wsUrl)], session_timers: false,
        uri: `sip:${credentials.endpoint}@${config.domain}`, password: credentials.password, register: true,
      });
      phone.ua.start();
    } catch (error) {
      phone.ua = null;
      return setState("registration failed", `${error.message || error}`);
    }
    watchRegistration(phone.ua);
    phone.ua.on("newRTCSession", (event) => { if (event.originator === "remote") offerCall(event.session); });
    if (config.eventsApi) phone.popStream = follow(config.eventsApi, onRingEvent, () => { phone.popConnected = false; });
    if (config.deskApi) phone.deskStream = follow(config.deskApi, onDeskEvent, () => { phone.deskConnected = false; });
    if (config.talksApi) watchTalks();
  }

  function stopAll() {
    for (const stream of [phone.popStream, phone.deskStream, phone.talksWatch]) if (stream) stream.abort();
    if (phone.ua) phone.ua.stop();
    phone.ua = null;
  }

  /* Log out of this page: the phone unregisters, the login is forgotten. Presence stays as it is
   * (Log off ends the agent's session in the queues). */
  function logout() {
    stopAll();
    try { sessionStorage.removeItem(SESSION_KEY); } catch (_) { /* nothing kept */ }
    phone.credentials = null;
    phone.registered = false;
    phone.desk = null;
    showLogin(null);
    for (const id of ["switch", "invite", "to-phone", "transfer", "consult", "recording", "record",
                      "ready", "pause", "logoff", "logout"]) enable(id, false);
    showPresence(null);
    setState("logged out");
  }

  // Logged in, the form gives its room to who is logged in and Log out.
  function showLogin(endpoint) {
    byId("login-form").classList.toggle("logged-in", endpoint !== null);
    byId("who").textContent = endpoint || "";
    byId("who").hidden = endpoint === null;
    byId("logout").hidden = endpoint === null;
  }

  function remembered() {
    try {
      const kept = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      return kept && typeof kept.endpoint === "string" && typeof kept.password === "string" ? kept : null;
    } catch (_) {
      return null;
    }
  }

  function watchRegistration(ua) {
    ua.on("registered", () => {
      phone.registered = true;
      if (!phone.session) setState("registered");
    });
    ua.on("registrationFailed", (event) => {
      phone.registered = false;
      setState("registration failed", String(event.cause || "unknown").toLowerCase());
    });
    ua.on("disconnected", () => {
      phone.registered = false;
      if (!phone.session) setState("disconnected", T("agent.phone.retrying"));
    });
  }

  // --- presence: ready, pause with a reason, wrap-up, log off --------------------------------

  const PRESENCE_TEXTS = {
    logged_out: T("agent.presence.logged_out"), free: T("agent.presence.free"),
    ringing: T("agent.presence.ringing"), busy: T("agent.presence.busy"), wrapup: T("agent.presence.wrapup"),
    paused: T("agent.presence.paused"), unreachable: T("agent.presence.unreachable"),
  };

  function onDeskEvent(kind, data) {
    if (kind === "hello") phone.deskConnected = true;
    if (kind !== "desk") return;
    phone.desk = data;
    phone.deskAt = Date.now();
    phone.serverOffset = Date.parse(data.now) - Date.now(); // waits count on the server's clock
    showPresence(data);
    showReasons(data.pause_reasons || []);
    showQueues(data.queues || []);
  }

  function showPresence(desk) {
    const state = desk ? desk.state : null;
    const el = byId("presence-state");
    el.dataset.state = state || "";
    let text = state ? (PRESENCE_TEXTS[state] || state) : "—";
    if (desk && desk.reason) text = state === "paused" ? `${text}: ${desk.reason}`
      : `${text} (${T("agent.presence.paused_after", { reason: desk.reason })})`;
    el.textContent = text;
    showWrapup();
  }

  // The wrap-up's seconds left, counted down here from the daemon's last word.
  function showWrapup() {
    const desk = phone.desk;
    const el = byId("wrapup-left");
    const left = desk && desk.state === "wrapup" && desk.wrapup_left_s !== null
      ? desk.wrapup_left_s - (Date.now() - phone.deskAt) / 1000 : null;
    phone.wrapupLeft = left === null ? null : Math.max(0, Math.ceil(left));
    el.hidden = left === null;
    el.textContent = left === null ? "" : T("agent.presence.wrapup_left", { time: duration(Math.ceil(Math.max(0, left))) });
  }

  function showReasons(reasons) {
    const select = byId("pause-reason");
    const typed = byId("pause-typed");
    const listed = reasons.length > 0;
    select.hidden = !listed;
    typed.hidden = listed;
    const known = Array.from(select.options).map((o) => o.value);
    if (known.join("\n") === reasons.join("\n")) return;
    select.replaceChildren(...reasons.map((reason) => new Option(reason, reason)));
  }

  async function setPresence(action) {
    const reason = byId("pause-reason").hidden ? byId("pause-typed").value.trim() : byId("pause-reason").value;
    if (action === "pause" && !reason) return showError(T("agent.error.pause_reason"));
    phone.presenceMessage = null;
    const state = await agentApi(config.presenceApi, { action, reason }, "state", T("agent.error.presence"));
    if (state === null) return;
    phone.presenceMessage = state;
  }

  // --- the queues the agent serves, with their waiting callers ---------------------------------

  function showQueues(queues) {
    const rows = queues.map((q) => {
      const tr = document.createElement("tr");
      tr.dataset.queue = String(q.queue);
      tr.className = q.waiting > 0 ? "has-waiting" : "";
      const cells = [["name", q.queue], ["waiting", String(q.waiting)],
                     ["longest-wait", ""], ["line", ""]];
      for (const [cls, text] of cells) {
        const td = document.createElement("td");
        td.className = cls;
        td.textContent = text;
        tr.append(td);
      }
      tr.querySelector(".line").append(...(q.line || []).map((w) => {
        const span = document.createElement("span");
        span.className = w.ringing ? "waiter ringing" : "waiter";
        span.dataset.since = w.waiting_since;
        return span;
      }));
      tr.dataset.longest = q.longest_waiting_since || "";
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 4;
      td.textContent = T("agent.queues.none");
      tr.append(td);
      rows.push(tr);
    }
    byId("desk-queues").replaceChildren(...rows);
    tickQueues();
  }

  // The waits advance every second between the daemon's pictures.
  function tickQueues() {
    const now = Date.now() + (phone.serverOffset || 0);
    for (const tr of byId("desk-queues").querySelectorAll("tr[data-queue]")) {
      const longest = tr.dataset.longest;
      tr.querySelector(".longest-wait").textContent = longest ? duration((now - Date.parse(longest)) / 1000) : "—";
      for (const span of tr.querySelectorAll(".waiter")) {
        const wait = duration((now - Date.parse(span.dataset.since)) / 1000);
        span.textContent = span.classList.contains("ringing") ? T("agent.queues.ringing", { wait }) : wait;
      }
    }
  }

  // --- the call in hand ------------------------------------------------------------------------

  function sessionHandlers() {
    return {
      peerconnection: (event) => watchPeerConnection(event.peerconnection),
      accepted: () => setState("in call"),
      confirmed: () => { setState("in call"); showCallButtons(); },
      ended: () => finish("ended"),
      failed: (event) => finish("failed", String(event.cause || "unknown").toLowerCase()),
      hold: (event) => { if (event.originator === "local") { phone.held = true; showCallButtons(); } },
      unhold: (event) => { if (event.originator === "local") { phone.held = false; showCallButtons(); } },
      muted: () => { phone.muted = true; showCallButtons(); },
      unmuted: () => { phone.muted = false; showCallButtons(); },
    };
  }

  function offerCall(session) {
    if (phone.session) {
      session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      return;
    }
    phone.session = session;
    for (const [name, handler] of Object.entries(sessionHandlers())) session.on(name, handler);
    const identity = session.remote_identity;
    const number = identity.uri ? identity.uri.user : "";
    byId("caller").textContent = identity.display_name ? `${identity.display_name} <${number}>` : number;
    byId("incoming").hidden = false;
    setState("ringing");
  }

  async function answer() {
    const session = phone.session;
    if (!session) return;
    byId("incoming").hidden = true;
    clearError();
    try {
      const stream = await openCamera();
      session.answer({ mediaStream: stream, mediaConstraints: MEDIA, pcConfig: PC_CONFIG });
      enable("hangup", true);
      loadTransferTargets();
      phone.recordingPaused = false; // a new talk: its recording (if its queue records) runs
      byId("recording").textContent = T("agent.recording.pause");
      byId("recording-status").textContent = "";
    } catch (error) {
      try { session.terminate({ status_code: 480, reason_phrase: "Temporarily Unavailable" }); } catch (_) { /* gone */ }
      failed(error);
    }
  }

  function decline() {
    try {
      if (phone.session) phone.session.terminate({ status_code: 603, reason_phrase: "Decline" });
    } catch (_) {
      finish("ended");
    }
  }

  function hangup() {
    try {
      if (phone.session) phone.session.terminate();
    } catch (_) {
      finish("ended"); // the session was already on its way out
    }
  }

  function finish(state, detail) {
    phone.session = null;
    phone.pc = null;
    phone.held = false;
    phone.muted = false;
    releaseMedia();
    setState(state, detail);
    byId("incoming").hidden = true;
    enable("hangup", false);
    showCallButtons();
  }

  /* Hold: a re-INVITE that stops our media (JsSIP); Asterisk plays the customer music on hold for
   * as long. Mute: our microphone's track sends silence; the customer hears nothing from us. */
  function toggleHold() {
    const session = phone.session;
    if (!session) return;
    const done = phone.held ? session.unhold() : session.hold();
    if (done === false) showError(T("agent.error.hold"));
  }

  function toggleMute() {
    const session = phone.session;
    if (!session) return;
    if (phone.muted) session.unmute({ audio: true }); else session.mute({ audio: true });
  }

  function showCallButtons() {
    const inCall = phone.session !== null && phone.state === "in call";
    for (const [id, on, offText, onText] of [["hold", phone.held, T("agent.call.hold"), T("agent.call.resume")],
                                             ["mute", phone.muted, T("agent.call.mute"), T("agent.call.unmute")]]) {
      const button = byId(id);
      button.disabled = !inCall;
      button.setAttribute("aria-pressed", String(inCall && on));
      button.textContent = inCall && on ? onText : offText;
    }
    byId("call-state").textContent = !inCall ? "" : phone.held ? T("agent.call.on_hold")
      : phone.muted ? T("agent.call.muted") : "";
  }

  async function requestSwitch() {
    const link = byId("switch-link");
    link.textContent = "";
    link.removeAttribute("href");
    phone.switchLink = null;
    const made = await agentApi(config.switchApi, undefined, "link", T("agent.error.switch"));
    if (made === null) return;
    phone.switchLink = made;
    link.href = made;
    link.textContent = made;
  }

  async function requestInvite() {
    const status = byId("invite-status");
    status.textContent = "";
    phone.inviteMessage = null;
    const message = await agentApi(config.inviteApi, { agent: byId("invite-agent").value.trim() },
                                   "message", T("agent.error.invite"));
    if (message === null) return;
    phone.inviteMessage = message;
    status.textContent = message;
  }

  async function requestPhone() {
    const status = byId("phone-status");
    status.textContent = "";
    phone.phoneMessage = null;
    const message = await agentApi(config.phoneApi, { number: byId("phone-number").value.trim() },
                                   "message", T("agent.error.to_phone"));
    if (message === null) return;
    phone.phoneMessage = message;
    status.textContent = message;
  }

  /* The transfer picker: queues, hotlines and the agents free now (asked again with each answered
   * call), or a number typed beside it, which wins when given. */
  async function loadTransferTargets() {
    const targets = await agentApi(config.transferTargetsApi, undefined, "targets", T("agent.error.targets"));
    if (targets === null) return;
    const select = byId("transfer-target");
    select.replaceChildren();
    for (const [kind, label, text] of [["queues", "queue", T("agent.transfer.queue")],
                                       ["hotlines", "hotline", T("agent.transfer.hotline")],
                                       ["agents", "agent", T("agent.transfer.agent")]]) {
      for (const name of targets[kind] || []) select.append(new Option(`${text} ${name}`, `${label}:${name}`));
    }
  }

  function transferTarget() {
    const number = byId("transfer-number").value.trim();
    return number ? `number:${number}` : byId("transfer-target").value;
  }

  /* Blind (`attended` false), the start of an attended one, or its `step`: complete or cancel. */
  async function requestTransfer(attended, step) {
    const status = byId("transfer-status");
    status.textContent = "";
    phone.transferMessage = null;
    const body = step ? { step } : { target: transferTarget(), attended };
    const message = await agentApi(config.transferApi, body, "message", T("agent.error.transfer"));
    if (message === null) return;
    phone.transferMessage = message;
    status.textContent = message;
    const consulting = !step && attended;
    enable("transfer-complete", consulting);
    enable("transfer-cancel", consulting);
    enable("transfer", !consulting);
    enable("consult", !consulting);
  }

  /* Pause the talk's recording (a customer reading a card number), or resume it: the button
   * says which it does next. */
  async function requestRecording() {
    const action = phone.recordingPaused ? "resume" : "pause";
    const message = await agentApi(config.recordingApi, { action }, "message",
                                   action === "pause" ? T("agent.error.recording_pause") : T("agent.error.recording_resume"));
    if (message === null) return;
    phone.recordingPaused = action === "pause";
    byId("recording-status").textContent = message;
    byId("recording").textContent = phone.recordingPaused ? T("agent.recording.resume") : T("agent.recording.pause");
  }

  /* Record the talk from now (a queue that records on demand). */
  async function startRecording() {
    const message = await agentApi(config.recordingApi, { action: "start" }, "message", T("agent.error.recording_start"));
    if (message === null) return;
    phone.recordingPaused = false;
    byId("recording-status").textContent = message;
    byId("recording").textContent = T("agent.recording.pause");
  }

  // --- the agent's notice about their call (a customer's dropped leg) ------------------------

  async function checkNotice() {
    const el = byId("notice");
    if (!phone.session || !phone.credentials) {
      el.hidden = true;
      return;
    }
    try {
      const [status, answer] = await postAsAgent(config.noticeApi, {});
      const notice = status === 200 ? said(answer, answer.notice) : "";
      phone.notice = notice || null;
      el.textContent = notice || "";
      el.hidden = !notice;
    } catch (_) { /* the next look will tell */ }
  }

  // --- a supervisor's live talks: Listen, Whisper, Barge ring their own phone into one ---------

  const MODES = [["listen", T("agent.supervise.listen")], ["whisper", T("agent.supervise.whisper")],
                 ["barge", T("agent.supervise.barge")]];

  /* Asked again every TALKS_EVERY_MS while the login holds; an agent who is no supervisor is
   * answered 403 once, and the page then neither shows nor asks again. */
  async function watchTalks() {
    const mine = phone.talksWatch = new AbortController();
    byId("supervise").hidden = true;
    while (!mine.signal.aborted) {
      try {
        const [status, answer] = await postAsAgent(config.talksApi, {}, mine.signal);
        phone.talksStatus = status;
        if (status === 401 || status === 403) {
          phone.talks = null;
          return;
        }
        if (status === 200) showTalks(answer.talks || []);
      } catch (_) { /* the next look will tell */ }
      await new Promise((resolve) => setTimeout(resolve, TALKS_EVERY_MS));
    }
  }

  function showTalks(talks) {
    phone.talks = talks;
    byId("supervise").hidden = false;
    const rows = talks.map((talk) => {
      const tr = document.createElement("tr");
      tr.dataset.case = String(talk.case);
      for (const value of [talk.case, talk.queue || "—", talk.agent, talk.caller || "—", duration(talk.talk_s)]) {
        const td = document.createElement("td");
        td.textContent = String(value);
        tr.append(td);
      }
      const buttons = document.createElement("td");
      for (const [mode, label] of MODES) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = `supervise-${mode}`;
        button.textContent = label;
        button.disabled = phone.supervising;
        button.addEventListener("click", () => requestSupervision(talk.case, mode));
        buttons.append(button);
      }
      tr.append(buttons);
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 6;
      td.textContent = T("agent.supervise.none");
      tr.append(td);
      rows.push(tr);
    }
    byId("talks").replaceChildren(...rows);
  }

  /* The daemon rings the supervisor's own phone; the answer comes once they are in, or why not. */
  async function requestSupervision(caseId, mode) {
    const status = byId("supervise-status");
    phone.supervising = true;
    for (const button of byId("talks").querySelectorAll("button")) button.disabled = true;
    phone.superviseMessage = null;
    const label = Object.fromEntries(MODES)[mode];
    status.textContent = T("agent.supervise.ringing", { mode: label, case: caseId });
    try {
      const [code, answer] = await postAsAgent(config.superviseApi, { case: caseId, mode });
      phone.superviseMessage = code === 200 ? said(answer, answer.message)
        : T("agent.supervise.refused", { reason: said(answer, answer.error) || `HTTP ${code}` });
    } catch (error) {
      phone.superviseMessage = T("agent.supervise.refused", { reason: error.message || error });
    }
    status.textContent = phone.superviseMessage;
    phone.supervising = false;
    for (const button of byId("talks").querySelectorAll("button")) button.disabled = false;
  }

  // --- the screen pop: the daemon's Server-Sent Events of this agent's rings ------------------

  // Why the phone rings, when not a queue's own ring: who passes the caller on.
  const PASSED = { consult: T("agent.pop.passed_consult"), transfer: T("agent.pop.passed_transfer"),
                   conference: T("agent.pop.passed_conference") };
  const POP_STATES = { ringing: T("agent.pop.ringing"), answered: T("agent.pop.answered"),
                       gone: T("agent.pop.gone") };

  function onRingEvent(kind, data) {
    if (kind === "hello") phone.popConnected = true;
    if (kind !== "screenpop") return;
    if (data.state === "ringing") return showRing(data);
    if (!phone.screenPop || phone.screenPop.ring !== data.ring) return; // not the ring shown
    phone.screenPop = { ...phone.screenPop, state: data.state };
    if (data.state === "answered" && data.case) noteOn(data.case);
    const said = POP_STATES[data.state] || data.state;
    byId("pop-state").textContent = data.state === "gone" ? `${said} (${data.detail || T("agent.pop.ended")})` : said;
    stopWaitClock();
  }

  function showRing(pop) {
    phone.screenPop = pop;
    const text = (id, value) => { byId(id).textContent = value || "—"; };
    byId("pop-state").textContent = POP_STATES.ringing;
    text("pop-caller", pop.caller_name ? `${pop.caller_name} <${pop.caller}>` : pop.caller);
    text("pop-dialled", pop.dialled);
    text("pop-hotline", pop.hotline);
    text("pop-keys", pop.keys);
    text("pop-queue", pop.queue);
    const none = T("agent.pop.none");
    fillList("pop-hops", pop.earlier_hops || [], hopLine, none);
    fillList("pop-cases", pop.earlier_cases || [], caseLine, none);
    fillList("pop-notes", pop.notes || [], (n) => noteLine(n, pop.case), none);
    const passed = byId("pop-passed");
    passed.textContent = PASSED[pop.kind] && pop.passed_by ? `${PASSED[pop.kind]} ${pop.passed_by}` : "";
    passed.hidden = !passed.textContent;
    const failedHistory = byId("pop-history-error");
    failedHistory.textContent = pop.history_error || "";
    failedHistory.hidden = !pop.history_error;
    startWaitClock(Date.parse(pop.waiting_since));
    byId("screen-pop").hidden = false;
  }

  function fillList(id, items, line, empty) {
    byId(id).replaceChildren(...(items.length ? items : [null]).map((item) => {
      const li = document.createElement("li");
      li.textContent = item ? line(item) : empty;
      return li;
    }));
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString(document.documentElement.lang) : "");
  const who = (row) => row.agent_name || row.agent || T("agent.pop.no_agent");

  function hopLine(hop) {
    const answered = hop.answered_at ? T("agent.pop.answered_by", { agent: who(hop) }) : T("agent.pop.not_answered");
    const queue = hop.queue ? `, ${T("agent.pop.in_queue", { queue: hop.queue })}` : "";
    return `${T("agent.pop.leg", { seq: hop.seq })}, ${when(hop.entered_at)}: ${hop.channel_kind} ${hop.media}` +
      `${queue}, ${answered}, ${hop.end_reason || T("agent.pop.still_live")}`;
  }

  function caseLine(c) {
    const legs = c.hops === 1 ? T("agent.pop.one_leg") : T("agent.pop.legs", { n: c.hops });
    return `${T("agent.pop.case", { case: c.case })}, ${when(c.opened_at)}: ${who(c)}, ${legs}, ` +
      `${c.end_reason || T("agent.pop.live")} (${c.status})`;
  }

  function noteLine(note, caseId) {
    const where = note.case_id === caseId ? "" : ` (${T("agent.pop.case", { case: note.case_id })})`;
    return `${when(note.created_at)}, ${note.author}${where}: ${note.text}`;
  }

  /* The Notes box follows the case in hand (answered on this page's phone), and stays on it
   * after the talk until the next one is answered. */
  function noteOn(caseId) {
    phone.noteCase = caseId;
    byId("note-case").textContent = String(caseId);
    byId("note-text").disabled = false;
    enable("note-save", true);
    byId("note-status").textContent = "";
  }

  async function saveNote() {
    const status = byId("note-status");
    status.textContent = "";
    phone.noteMessage = null;
    if (!phone.noteCase) return;
    const message = await agentApi(config.noteApi, { case: phone.noteCase, text: byId("note-text").value },
                                   "message", T("agent.error.note"));
    if (message === null) return;
    phone.noteMessage = message;
    status.textContent = message;
    byId("note-text").value = "";
  }

  function startWaitClock(since) {
    stopWaitClock();
    const tick = () => { byId("pop-wait").textContent = duration((Date.now() - since) / 1000); };
    tick();
    phone.waitClock = setInterval(tick, 1000);
  }

  function stopWaitClock() {
    if (phone.waitClock) clearInterval(phone.waitClock);
    phone.waitClock = null;
  }

  // --- start --------------------------------------------------------------------------------

  function init() {
    setState("logged out");
    showCallButtons();
    if (typeof JsSIP === "undefined") {
      showError(T("agent.error.not_built"));
      enable("login", false);
      return;
    }
    byId("login-form").addEventListener("submit", (event) => { event.preventDefault(); login(); });
    byId("logout").addEventListener("click", logout);
    byId("ready").addEventListener("click", () => setPresence("ready"));
    byId("pause").addEventListener("click", () => setPresence("pause"));
    byId("logoff").addEventListener("click", () => setPresence("logout"));
    byId("answer").addEventListener("click", answer);
    byId("decline").addEventListener("click", decline);
    byId("hangup").addEventListener("click", hangup);
    byId("hold").addEventListener("click", toggleHold);
    byId("mute").addEventListener("click", toggleMute);
    byId("switch").addEventListener("click", requestSwitch);
    byId("invite").addEventListener("click", requestInvite);
    byId("to-phone").addEventListener("click", requestPhone);
    byId("transfer").addEventListener("click", () => requestTransfer(false, null));
    byId("consult").addEventListener("click", () => requestTransfer(true, null));
    byId("transfer-complete").addEventListener("click", () => requestTransfer(true, "complete"));
    byId("transfer-cancel").addEventListener("click", () => requestTransfer(true, "cancel"));
    byId("recording").addEventListener("click", requestRecording);
    byId("record").addEventListener("click", startRecording);
    byId("note-save").addEventListener("click", saveNote);
    setInterval(() => { showWrapup(); tickQueues(); }, 1000);
    if (config.noticeApi) setInterval(checkNotice, NOTICE_EVERY_MS);
    // Leaving the page hangs up and unregisters instead of leaving Asterisk to time out.
    window.addEventListener("pagehide", () => { if (phone.ua) phone.ua.stop(); });
    const kept = remembered();
    if (kept) start(kept);
  }

  init();
})();
