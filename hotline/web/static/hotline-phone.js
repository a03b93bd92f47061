/* hotline's browser phone, on top of JsSIP (the global `JsSIP`, bundled by `make web`).
 * One script for both pages: the customer's click-to-call (/call/..., /switch/...) and the
 * agent's page (/agent). The page's settings come from the JSON in #config.
 * window.hotlinePhone is what tests read: state, lastError, pc, remoteVideos(). */
(() => {
  "use strict";

  const NOT_BUILT = "The SIP client bundle is missing: reinstall hotline (the package ships it), or `make web` in a checkout";
  const MEDIA = { audio: true, video: true };
  const VOICE = { audio: true, video: false };
  const PC_CONFIG = { iceServers: [] }; // Asterisk is reached directly: no STUN/TURN
  const CONNECT_TIMEOUT_MS = 10000;
  const CUSTOMER_KEY = "hotline.customerId";

  const byId = (id) => document.getElementById(id);
  const config = JSON.parse(byId("config").textContent);
  // The page's texts in its language (hotline/web/i18n.py), each with its {fields} filled.
  const TEXTS = byId("hotline-texts") ? JSON.parse(byId("hotline-texts").textContent) : {};
  const T = (key, fields = {}) => (TEXTS[key] ?? key).replace(/\{(\w+)\}/g,
    (whole, name) => (name in fields ? String(fields[name]) : whole));

  class PhoneError extends Error {}

  const phone = {
    state: "idle",
    lastError: null,
    registered: false,
    switchLink: null,
    phoneMessage: null, // the agent page's answer to "Move the caller to the phone"
    recordingPaused: false, // the agent page paused the current talk's recording
    ua: null,
    session: null,
    onstate: null, // the customer page's stages follow each state (hotline-customer.js)
    mediaConstraints: null, // (video) => the constraints of the devices chosen on the page
    T,
    pc: null, // the current call's RTCPeerConnection (tests read its getStats)
    localStream: null,
    media: null, // what the current call sends: "video" or "audio" (follows the camera button)
    camera: null, // the RTCRtpTransceiver our camera's picture goes out on, once there is one
    remoteVideos: () => Array.from(byId("remote").querySelectorAll("video")),
  };
  window.hotlinePhone = phone;

  // --- what the page shows ------------------------------------------------------------------

  function setState(state, detail) {
    phone.state = state;
    const status = byId("status");
    if (status) status.textContent = detail ? `${state}: ${detail}` : state;
    if (phone.onstate) phone.onstate(state, detail);
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
      : T("customer.error.unexpected", { detail: error && error.message || error });
    showError(message);
    setState("failed", message);
  }

  // --- camera and microphone ----------------------------------------------------------------

  function mediaErrorMessage(error, video) {
    switch (error && error.name) {
      case "NotAllowedError": case "PermissionDeniedError": case "SecurityError":
        return T(video ? "customer.error.refused" : "customer.error.mic_refused");
      case "NotFoundError": case "DevicesNotFoundError": case "OverconstrainedError":
        return T(video ? "customer.error.no_device" : "customer.error.no_mic");
      case "NotReadableError": case "TrackStartError":
        return T(video ? "customer.error.in_use" : "customer.error.mic_in_use");
      default: return T("customer.error.media", { detail: error && error.message || error });
    }
  }

  // The camera and microphone (constraints MEDIA), or the microphone alone (VOICE).
  async function openCamera(constraints = MEDIA) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new PhoneError(T("customer.error.insecure"));
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(constraints);
    } catch (error) {
      const message = mediaErrorMessage(error, constraints.video);
      throw new PhoneError(constraints.video && byId("call-voice") ? T("customer.error.or_voice", { message }) : message);
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

  // --- the other party's media --------------------------------------------------------------

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

  // --- SIP ----------------------------------------------------------------------------------

  function startUa(options) {
    const ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(config.wsUrl)],
      session_timers: false,
      ...options,
    });
    ua.start();
    return ua;
  }

  function connected(ua) {
    if (ua.isConnected()) return Promise.resolve(ua);
    return new Promise((resolve, reject) => {
      const done = (error) => {
        clearTimeout(timer);
        ua.removeListener("connected", onConnected);
        ua.removeListener("disconnected", onDisconnected);
        if (error) reject(error); else resolve(ua);
      };
      const onConnected = () => done(null);
      const onDisconnected = () => done(new PhoneError(T("customer.error.unreachable")));
      const timer = setTimeout(() => done(new PhoneError(T("customer.error.no_answer"))),
        CONNECT_TIMEOUT_MS);
      ua.on("connected", onConnected);
      ua.on("disconnected", onDisconnected);
    });
  }

  function sessionHandlers() {
    return {
      peerconnection: (event) => watchPeerConnection(event.peerconnection),
      accepted: () => setState("in call"),
      confirmed: () => { setState("in call"); showCameraButton(); },
      ended: () => finish("ended"),
      failed: (event) => finish("failed", String(event.cause || "unknown").toLowerCase()),
    };
  }

  function finish(state, detail) {
    phone.session = null;
    phone.pc = null;
    phone.media = null;
    phone.camera = null;
    releaseMedia();
    setState(state, detail);
    byId("incoming")?.setAttribute("hidden", "");
    enable("hangup", false);
    enable("to-phone", false);
    enable("call", true);
    enable("call-voice", true);
    showCameraButton();
  }

  function hangup() {
    try {
      if (phone.session) phone.session.terminate();
    } catch (error) {
      finish("ended"); // the session was already on its way out
    }
  }

  // --- the camera during a call (customer page) ---------------------------------------------

  // Turning the camera on sends a re-INVITE with our picture's stream (a new one on a voice
  // call); off stops the camera and makes that stream inactive by another re-INVITE: the talk
  // goes on. The page then tells the daemon to look at the call's media (config.cameraApi); the
  // daemon believes what Asterisk negotiated, not the page.
  function showCameraButton() {
    const button = byId("camera");
    if (!button) return;
    const inCall = phone.state === "in call" && phone.session !== null;
    button.hidden = !inCall;
    button.disabled = !inCall;
    button.setAttribute("aria-pressed", String(phone.media === "video")); // pressed: the camera is on
  }

  // A video call's first video transceiver carries our picture; the SFU's others only receive.
  function ownCamera(pc) {
    if (!phone.camera) {
      phone.camera = pc.getTransceivers().find((t) => t.sender.track && t.sender.track.kind === "video") || null;
    }
    return phone.camera;
  }

  // JsSIP calls back only when the re-INVITE succeeds: a refused or unanswered one is given up
  // on after CONNECT_TIMEOUT_MS, and the button works again.
  function renegotiated(session) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new PhoneError(T("customer.error.change_refused"))),
        CONNECT_TIMEOUT_MS);
      const done = () => { clearTimeout(timer); resolve(); };
      if (!session.renegotiate({}, done)) {
        clearTimeout(timer);
        reject(new PhoneError(T("customer.error.cannot_change")));
      }
    });
  }

  async function cameraOn(session, pc) {
    let stream;
    try {
      const chosen = phone.mediaConstraints ? phone.mediaConstraints(true).video : true;
      stream = await navigator.mediaDevices.getUserMedia({ video: chosen });
    } catch (error) {
      const refused = ["NotAllowedError", "PermissionDeniedError", "SecurityError"].includes(error && error.name);
      throw new PhoneError(refused ? T("customer.error.camera_refused") : mediaErrorMessage(error, true));
    }
    const [track] = stream.getVideoTracks();
    phone.localStream.addTrack(track);
    byId("local").srcObject = phone.localStream;
    const own = ownCamera(pc);
    if (own) {
      await own.sender.replaceTrack(track);
      own.direction = "sendrecv";
    } else {
      // A stream of its own: addTrack could reuse one of the SFU's receive-only streams.
      phone.camera = pc.addTransceiver(track, { direction: "sendrecv", streams: [phone.localStream] });
    }
    phone.media = "video";
    await renegotiated(session);
  }

  async function cameraOff(session, pc) {
    const own = ownCamera(pc);
    for (const track of phone.localStream.getVideoTracks()) {
      track.stop();
      phone.localStream.removeTrack(track);
    }
    if (own) {
      await own.sender.replaceTrack(null);
      own.direction = "inactive";
    }
    phone.media = "audio";
    await renegotiated(session);
  }

  async function toggleCamera() {
    const { session, pc } = phone;
    if (!session || !pc) return;
    enable("camera", false);
    clearError();
    try {
      if (phone.media === "video") await cameraOff(session, pc); else await cameraOn(session, pc);
      await tellCamera();
    } catch (error) {
      showError(error instanceof PhoneError ? error.message
        : T("customer.error.camera_switch", { detail: error.message || error }));
    }
    showCameraButton();
  }

  // The daemon looks at the call's media again (it reads what Asterisk negotiated itself): the
  // hop's media follows, and a talk that gains video moves to an SFU bridge.
  async function tellCamera() {
    if (!config.cameraApi) return;
    try {
      await fetch(config.cameraApi, {
        method: "POST", cache: "no-store", credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ customer: customerId(), camera: phone.media === "video" ? "on" : "off" }),
      });
    } catch (_) { /* the picture flows anyway; only the record and the bridge wait */ }
  }

  // --- the customer's page ------------------------------------------------------------------

  let memoryCustomerId = null;

  // The same customer across calls: a random id kept in localStorage (in memory where it is off).
  function customerId() {
    let id = null;
    try { id = localStorage.getItem(CUSTOMER_KEY); } catch (_) { id = memoryCustomerId; }
    if (!/^[0-9a-f]{16}$/.test(id || "")) {
      id = randomHex(8);
      memoryCustomerId = id;
      try { localStorage.setItem(CUSTOMER_KEY, id); } catch (_) { /* private mode: memory only */ }
    }
    return id;
  }

  function randomHex(bytes) {
    return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function displayName() {
    const input = byId("name");
    // Quotes, backslashes and control characters would break the From header's quoted name.
    return input ? input.value.replace(/["\\\u0000-\u001f\u007f]/g, "").trim().slice(0, 40) : "";
  }

  function customerUa() {
    if (!phone.ua) phone.ua = startUa({ uri: `sip:${config.endpoint}@${config.domain}`, register: false });
    return phone.ua;
  }

  // A video call (the camera and microphone), or with video=false a voice call (microphone only).
  async function placeCall(video) {
    clearError();
    enable("call", false);
    enable("call-voice", false);
    setState("calling");
    const constraints = phone.mediaConstraints ? phone.mediaConstraints(video) : (video ? MEDIA : VOICE);
    try {
      const stream = await openCamera(constraints);
      const ua = await connected(customerUa());
      phone.media = video ? "video" : "audio";
      phone.session = ua.call(`sip:${config.target}@${config.domain}`, {
        mediaStream: stream,
        mediaConstraints: constraints,
        pcConfig: PC_CONFIG,
        extraHeaders: [`X-Hotline-Customer: ${customerId()}`, ...config.extraHeaders],
        fromDisplayName: displayName() || undefined,
        eventHandlers: sessionHandlers(),
      });
      enable("hangup", true);
      enable("to-phone", true);
    } catch (error) {
      releaseMedia();
      phone.media = null;
      enable("call", true);
      enable("call-voice", true);
      failed(error);
    }
  }

  /* "Continue by phone": the daemon calls the number typed (or the case's own) and, once it is
   * answered, this video call ends. The page proves whose call it is by what only it holds: its
   * browser's id, or the switch link it came by. */
  async function continueByPhone() {
    const status = byId("phone-status");
    status.textContent = "";
    phone.phoneMessage = null;
    let response;
    let answer;
    try {
      response = await fetch(config.phoneApi, {
        method: "POST", cache: "no-store", credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ customer: customerId(), token: config.switchToken || "",
                               number: byId("phone-number").value.trim() }),
      });
      answer = await response.json();
    } catch (error) {
      return showError(T("customer.phone.failed", { detail: error.message || error }));
    }
    if (!response.ok || !answer.message) {
      return showError(T("customer.phone.failed", { detail: answer.error || `HTTP ${response.status}` }));
    }
    clearError();
    phone.phoneMessage = answer.message;
    status.textContent = answer.message;
  }

  // The Hang up button ends the talk: the daemon hears so first, since a leg that goes without it
  // (the network gone, the tab closed or reloaded) is a drop, and the agent waits for this page to
  // call again (web_rejoin_grace).
  async function customerHangup() {
    if (phone.session && config.hangupApi) {
      try {
        await fetch(config.hangupApi, {
          method: "POST", cache: "no-store", credentials: "omit",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ customer: customerId() }),
        });
      } catch (_) { /* the daemon then takes it for a drop: the agent waits a while, no more */ }
    }
    hangup();
  }

  function initCustomer() {
    phone.customerId = customerId; // the page's stages and rating name its call by it
    byId("call").addEventListener("click", () => placeCall(true));
    byId("call-voice")?.addEventListener("click", () => placeCall(false));
    byId("camera")?.addEventListener("click", toggleCamera);
    byId("hangup").addEventListener("click", customerHangup);
    byId("to-phone")?.addEventListener("click", continueByPhone);
  }

  // --- the agent's page ---------------------------------------------------------------------

  function login() {
    const endpoint = byId("endpoint").value.trim();
    const password = byId("password").value;
    if (!endpoint || !password) return showError("Enter your endpoint and SIP password");
    if (phone.ua) phone.ua.stop();
    clearError();
    phone.credentials = { endpoint, password };
    enable("switch", true);
    enable("invite", true);
    enable("to-phone", true);
    enable("transfer", true);
    enable("consult", true);
    enable("recording", true);
    enable("record", true);
    setState("registering");
    try {
      phone.ua = startUa({ uri: `sip:${endpoint}@${config.domain}`, password, register: true });
    } catch (error) {
      phone.ua = null;
      return setState("registration failed", `${error.message || error}`);
    }
    watchRegistration(phone.ua);
    if (config.eventsApi) listenForRings();
    if (config.talksApi) watchTalks();
    phone.ua.on("newRTCSession", (event) => { if (event.originator === "remote") offerCall(event.session); });
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
      if (!phone.session) setState("disconnected", "the SIP server cannot be reached; retrying");
    });
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
      byId("recording").textContent = "Pause recording";
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

  function basicAuth(user, password) {
    const bytes = new TextEncoder().encode(`${user}:${password}`);
    return `Basic ${btoa(String.fromCharCode(...bytes))}`;
  }

  /* POST to one of the agent API endpoints with the agent's credentials, sent explicitly (the API
   * never challenges, so the browser never keeps them); always JSON, which the API insists on.
   * The JSON answer's `field`, or null after showing why not (`what` names the action). */
  async function agentApi(url, body, field, what) {
    const { endpoint, password } = phone.credentials || {};
    if (!endpoint) { showError("Log in first"); return null; }
    const headers = { Authorization: basicAuth(endpoint, password), "Content-Type": "application/json" };
    let response;
    let answer;
    try {
      response = await fetch(url, {
        method: "POST", cache: "no-store", credentials: "omit", headers,
        body: JSON.stringify(body === undefined ? {} : body),
      });
      answer = await response.json();
    } catch (error) {
      showError(`${what}: ${error.message || error}`);
      return null;
    }
    if (!response.ok || !answer[field]) {
      showError(answer.error || `${what} (HTTP ${response.status})`);
      return null;
    }
    clearError();
    return answer[field];
  }

  async function requestSwitch() {
    const link = byId("switch-link");
    link.textContent = "";
    link.removeAttribute("href");
    phone.switchLink = null;
    const made = await agentApi(config.switchApi, undefined, "link", "The switch link could not be made");
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
                                   "message", "The agent could not be invited");
    if (message === null) return;
    phone.inviteMessage = message;
    status.textContent = message;
  }

  async function requestPhone() {
    const status = byId("phone-status");
    status.textContent = "";
    phone.phoneMessage = null;
    const message = await agentApi(config.phoneApi, { number: byId("phone-number").value.trim() },
                                   "message", "The call could not be moved to the phone");
    if (message === null) return;
    phone.phoneMessage = message;
    status.textContent = message;
  }

  /* The transfer picker: queues, hotlines and the agents free now (asked again with each answered
   * call), or a number typed beside it, which wins when given. */
  async function loadTransferTargets() {
    const targets = await agentApi(config.transferTargetsApi, undefined, "targets",
                                   "The transfer targets could not be listed");
    if (targets === null) return;
    const select = byId("transfer-target");
    select.replaceChildren();
    for (const [kind, label] of [["queues", "queue"], ["hotlines", "hotline"], ["agents", "agent"]]) {
      for (const name of targets[kind] || []) {
        const option = document.createElement("option");
        option.value = `${label}:${name}`;
        option.textContent = `${label} ${name}`;
        select.append(option);
      }
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
    const message = await agentApi(config.transferApi, body, "message", "The transfer was not made");
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
    const status = byId("recording-status");
    const action = phone.recordingPaused ? "resume" : "pause";
    const message = await agentApi(config.recordingApi, { action }, "message",
                                   `The recording could not be ${action}d`);
    if (message === null) return;
    phone.recordingPaused = action === "pause";
    status.textContent = message;
    byId("recording").textContent = phone.recordingPaused ? "Resume recording" : "Pause recording";
  }

  // --- a supervisor's live talks: Listen, Whisper, Barge ring their own phone into one ---------

  const TALKS_EVERY_MS = 2000;
  const MODES = [["listen", "Listen"], ["whisper", "Whisper"], ["barge", "Barge"]];

  /* POST with the login; [status, the JSON answer or {}]. */
  async function postAsAgent(url, body, signal) {
    const { endpoint, password } = phone.credentials;
    const response = await fetch(url, {
      method: "POST", cache: "no-store", credentials: "omit", signal, body: JSON.stringify(body),
      headers: { Authorization: basicAuth(endpoint, password), "Content-Type": "application/json" },
    });
    let answer = {};
    try { answer = await response.json(); } catch (_) { /* not JSON: the status says it */ }
    return [response.status, answer];
  }

  /* Asked again every TALKS_EVERY_MS while the login holds; an agent who is no supervisor is
   * answered 403 once, and the page then neither shows nor asks again. */
  async function watchTalks() {
    if (phone.talksWatch) phone.talksWatch.abort();
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
      td.textContent = "no live talks";
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
    status.textContent = `Ringing your phone to ${mode} case ${caseId}…`;
    try {
      const [code, answer] = await postAsAgent(config.superviseApi, { case: caseId, mode });
      phone.superviseMessage = code === 200 ? answer.message : `Refused: ${answer.error || `HTTP ${code}`}`;
    } catch (error) {
      phone.superviseMessage = `Refused: ${error.message || error}`;
    }
    status.textContent = phone.superviseMessage;
    phone.supervising = false;
    for (const button of byId("talks").querySelectorAll("button")) button.disabled = false;
  }

  /* Record the talk from now (a queue that records on demand): the rest of it is recorded, and
   * Pause recording then works on it. */
  async function startRecording() {
    const message = await agentApi(config.recordingApi, { action: "start" }, "message",
                                   "The recording could not be started");
    if (message === null) return;
    phone.recordingPaused = false;
    byId("recording-status").textContent = message;
    byId("recording").textContent = "Pause recording";
  }

  // --- the agent's notice about their call (a customer's dropped leg) ------------------------

  const NOTICE_EVERY_MS = 2000;

  async function checkNotice() {
    const el = byId("notice");
    const { endpoint, password } = phone.credentials || {};
    if (!el || !phone.session || !endpoint) {
      if (el) el.hidden = true;
      return;
    }
    try {
      const response = await fetch(config.noticeApi, {
        method: "POST", cache: "no-store", credentials: "omit", body: "{}",
        headers: { Authorization: basicAuth(endpoint, password), "Content-Type": "application/json" },
      });
      const notice = response.ok ? (await response.json()).notice : "";
      phone.notice = notice || null;
      el.textContent = notice || "";
      el.hidden = !notice;
    } catch (_) { /* the next look will tell */ }
  }

  // --- the screen pop: the daemon's Server-Sent Events of this agent's rings ------------------

  const RECONNECT_MS = 2000;

  const readEvents = window.hotlineReadEvents;  // hotline-events.js

  /* One stream per page: a new login ends the previous one. A stream that ends (the daemon
   * restarting) is opened again; a refused login is not retried (it would lock the agent out). */
  async function listenForRings() {
    if (phone.popStream) phone.popStream.abort();
    const mine = phone.popStream = new AbortController();
    while (!mine.signal.aborted) {
      const { endpoint, password } = phone.credentials;
      try {
        const response = await fetch(config.eventsApi, {
          cache: "no-store", credentials: "omit", signal: mine.signal,
          headers: { Authorization: basicAuth(endpoint, password), Accept: "text/event-stream" },
        });
        if (response.status === 401) return;
        if (response.ok) await readEvents(response, onRingEvent);
      } catch (_) { /* gone: opened again below */ }
      phone.popConnected = false;
      if (!mine.signal.aborted) await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  }

  function onRingEvent(kind, data) {
    if (kind === "hello") phone.popConnected = true;
    if (kind !== "screenpop") return;
    if (data.state === "ringing") return showRing(data);
    if (!phone.screenPop || phone.screenPop.ring !== data.ring) return; // not the ring shown
    phone.screenPop = { ...phone.screenPop, state: data.state };
    if (data.state === "answered" && data.case) noteOn(data.case);
    byId("pop-state").textContent = data.state === "gone" ? `gone (${data.detail || "ended"})` : data.state;
    stopWaitClock();
  }

  function showRing(pop) {
    phone.screenPop = pop;
    const text = (id, value) => { byId(id).textContent = value || "—"; };
    byId("pop-state").textContent = "ringing";
    text("pop-caller", pop.caller_name ? `${pop.caller_name} <${pop.caller}>` : pop.caller);
    text("pop-dialled", pop.dialled);
    text("pop-hotline", pop.hotline);
    text("pop-keys", pop.keys);
    text("pop-queue", pop.queue);
    fillList("pop-hops", pop.earlier_hops || [], hopLine, "none");
    fillList("pop-cases", pop.earlier_cases || [], caseLine, "none");
    fillList("pop-notes", pop.notes || [], (n) => noteLine(n, pop.case), "none");
    const passed = byId("pop-passed");
    passed.textContent = PASSED[pop.kind] && pop.passed_by ? `${PASSED[pop.kind]} ${pop.passed_by}` : "";
    passed.hidden = !passed.textContent;
    const failed = byId("pop-history-error");
    failed.textContent = pop.history_error || "";
    failed.hidden = !pop.history_error;
    startWaitClock(Date.parse(pop.waiting_since));
    byId("screen-pop").hidden = false;
  }

  function fillList(id, items, line, empty) {
    const list = byId(id);
    list.replaceChildren(...(items.length ? items : [null]).map((item) => {
      const li = document.createElement("li");
      li.textContent = item ? line(item) : empty;
      return li;
    }));
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
  const who = (row) => row.agent_name || row.agent || "no agent";

  function hopLine(hop) {
    return `leg ${hop.seq}, ${when(hop.entered_at)}: ${hop.channel_kind} ${hop.media}` +
      `${hop.queue ? `, queue ${hop.queue}` : ""}, ${hop.answered_at ? `answered by ${who(hop)}` : "not answered"}` +
      `, ${hop.end_reason || "still live"}`;
  }

  function caseLine(c) {
    return `case ${c.case}, ${when(c.opened_at)}: ${who(c)}, ${c.hops} leg${c.hops === 1 ? "" : "s"}, ` +
      `${c.end_reason || "live"} (${c.status})`;
  }

  // Why the phone rings, when not a queue's own ring: who passes the caller on.
  const PASSED = { consult: "Consult: the caller is passed on by", transfer: "Transferred to you by",
                   conference: "Invited into the call by" };

  function noteLine(note, caseId) {
    const where = note.case_id === caseId ? "" : ` (case ${note.case_id})`;
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
                                   "message", "The note could not be kept");
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

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function initAgent() {
    phone.state = "logged out";
    phone.notice = null;
    phone.screenPop = null; // the ring the screen pop shows (tests read it)
    phone.popConnected = false; // the screen pop's stream is open
    phone.talks = null; // a supervisor's live talks as last listed (null: none shown)
    phone.talksStatus = null; // the HTTP status of the last look at them (403: no supervisor)
    phone.supervising = false; // a Listen, Whisper or Barge is being asked
    phone.noteCase = null; // the case the Notes box writes on (the one in hand, or the last)
    phone.noteMessage = null; // what the last note saved said
    phone.superviseMessage = null; // its outcome, as the page shows it
    if (config.noticeApi) setInterval(checkNotice, NOTICE_EVERY_MS);
    byId("login").addEventListener("click", login);
    byId("answer").addEventListener("click", answer);
    byId("decline").addEventListener("click", decline);
    byId("hangup").addEventListener("click", hangup);
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
  }

  // --- start --------------------------------------------------------------------------------

  function init() {
    if (typeof JsSIP === "undefined") {
      showError(config.role === "agent" ? NOT_BUILT : T("customer.error.not_built"));
      enable("call", false);
      enable("call-voice", false);
      enable("login", false);
      return;
    }
    if (config.role === "agent") initAgent(); else initCustomer();
    // Leaving the page hangs up and unregisters instead of leaving Asterisk to time out.
    window.addEventListener("pagehide", () => { if (phone.ua) phone.ua.stop(); });
  }

  init();
})();
