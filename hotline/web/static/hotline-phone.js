/* hotline's browser phone, on top of JsSIP (the global `JsSIP`, bundled by `make web`).
 * The customer's click-to-call (/call/..., /switch/...); the agent's desk (/agent) has its own
 * script, agent-desk.js. The page's settings come from the JSON in #config.
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
  // What the daemon said (an answer's message, a refusal's error): the page's text for its code
  // (said.CODE), else the English text it came with (hotline/web/said.py).
  const said = (answer, english) => (answer && answer.code && Object.hasOwn(TEXTS, `said.${answer.code}`)
    ? T(`said.${answer.code}`, answer.fields || {}) : english);

  class PhoneError extends Error {}

  const phone = {
    state: "idle",
    lastError: null,
    registered: false,
    phoneMessage: null, // the answer to "Continue by phone"
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
      return showError(T("customer.phone.failed", { detail: said(answer, answer.error) || `HTTP ${response.status}` }));
    }
    clearError();
    phone.phoneMessage = said(answer, answer.message);
    status.textContent = phone.phoneMessage;
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

  // --- start --------------------------------------------------------------------------------

  function init() {
    if (typeof JsSIP === "undefined") {
      showError(config.role === "agent" ? NOT_BUILT : T("customer.error.not_built"));
      enable("call", false);
      enable("call-voice", false);
      return;
    }
    initCustomer();
    // Leaving the page hangs up and unregisters instead of leaving Asterisk to time out.
    window.addEventListener("pagehide", () => { if (phone.ua) phone.ua.stop(); });
  }

  init();
})();
