/* The customer's page around hotline-phone.js: the hotline's colour, the device check before the
 * call (preview, microphone level, choice of camera and microphone), the call in stages
 * (connecting, waiting with its place in line and estimated wait, talking with the agent, ended)
 * followed by the daemon's stream of this page's own call, mute, and the rating after the talk.
 * Every text comes from the page's catalogue (T). window.hotlinePhone.customer is what tests read. */
(() => {
  "use strict";

  const phone = window.hotlinePhone;
  if (!phone) return;
  const { T } = phone;
  const byId = (id) => document.getElementById(id);
  const config = JSON.parse(byId("config").textContent);
  const LIVE = ["connecting", "waiting", "talking"];

  const view = {
    stage: "ready", // ready | connecting | waiting | talking | ended | failed (refused, busy)
    position: null, // the place in line, while waiting
    waitS: null, // the queue's estimate of what is left, s
    agent: "", // the agent's name while talking
    talkedOn: null, // the leg (hop) this call talked on: what the rating is about
    rated: false,
    muted: false,
    deviceProblem: null, // what the device check found wrong (its text), or null
    devices: { cameras: 0, microphones: 0 },
    lastVideo: true, // the kind of the last call placed: "Call again" places the same
  };
  phone.customer = view;

  // --- the hotline's colour, with a text colour that stays readable on it ----------------------

  function applyAccent(color) {
    if (!/^#[0-9a-f]{6}$/i.test(color || "")) return;
    const style = document.documentElement.style;
    style.setProperty("--accent", color);
    style.setProperty("--on-accent", contrast(color, "#ffffff") >= contrast(color, "#000000") ? "#ffffff" : "#000000");
  }

  function luminance(hex) {
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }

  function contrast(a, b) {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  }

  // --- stages ------------------------------------------------------------------------------------

  function show(stage) {
    const changed = view.stage !== stage;
    view.stage = stage;
    const [text, detail] = stageTexts(stage);
    const el = byId("stage");
    el.dataset.stage = stage;
    if (el.textContent !== text) el.textContent = text; // the live region speaks changes only
    const more = byId("stage-detail");
    if (more.textContent !== detail) more.textContent = detail;
    more.hidden = !detail;
    byId("setup").hidden = stage !== "ready";
    byId("in-call").hidden = !LIVE.includes(stage);
    byId("after").hidden = stage !== "ended" && stage !== "failed";
    byId("rating").hidden = !(stage === "ended" && view.talkedOn !== null && !view.rated);
    byId("mute").disabled = !LIVE.includes(stage);
    byId("phone-move").hidden = stage !== "talking"; // only a talk with an agent can move
    if (changed && stage === "ended" && !byId("rating").hidden) byId("rating").querySelector(".score").focus();
  }

  function stageTexts(stage) {
    switch (stage) {
      case "connecting": return [T("customer.stage.connecting"), ""];
      case "waiting": return [view.position === 1 ? T("customer.stage.next")
        : T("customer.stage.waiting", { position: view.position }), waitText(view.waitS)];
      case "talking": return [view.agent ? T("customer.stage.talking", { agent: view.agent })
        : T("customer.stage.talking_unnamed"), ""];
      case "ended": return [T("customer.stage.ended"), ""];
      case "failed": return [T("customer.stage.failed"), ""];
      default: return [T("customer.stage.ready"), ""];
    }
  }

  function waitText(seconds) {
    if (seconds === null || seconds === undefined) return T("customer.wait.unknown");
    if (seconds < 60) return T("customer.wait.under_minute");
    return T("customer.wait.minutes", { minutes: Math.round(seconds / 60) });
  }

  // hotline-phone.js's states: calling, in call (answered: in line or talking), ended, failed.
  function onPhoneState(state) {
    if (state === "calling") {
      Object.assign(view, { position: null, waitS: null, agent: "", talkedOn: null, rated: false });
      setMuted(false);
      stopCheck();
      follow();
      show("connecting");
    } else if (state === "ended" || state === "failed") {
      unfollow();
      if (state === "ended" || view.talkedOn !== null) show("ended");
      // The devices or the connection failed before any call: back to the check, the error above it.
      else show(byId("error").hidden ? "failed" : "ready");
    }
  }

  // --- the daemon's stream of this page's own call --------------------------------------------

  let stream = null;

  function follow() {
    unfollow();
    if (!config.eventsApi || !window.EventSource) return;
    stream = new EventSource(`${config.eventsApi}?customer=${encodeURIComponent(phone.customerId())}`);
    stream.addEventListener("stage", (event) => heard(JSON.parse(event.data)));
  }

  function unfollow() {
    if (stream) stream.close();
    stream = null;
  }

  function heard(news) {
    if (!LIVE.includes(view.stage)) return;
    if (news.stage === "waiting") {
      Object.assign(view, { position: news.position, waitS: news.wait_s });
      show("waiting");
    } else if (news.stage === "talking") {
      Object.assign(view, { agent: news.agent || "", talkedOn: news.hop });
      show("talking");
    }
  }

  // --- mute ---------------------------------------------------------------------------------------

  function setMuted(muted) {
    view.muted = muted;
    const stream = phone.localStream;
    if (stream) stream.getAudioTracks().forEach((track) => { track.enabled = !muted; });
    byId("mute").setAttribute("aria-pressed", String(muted));
  }

  // --- the device check before the call -----------------------------------------------------------

  let preview = null; // the check's own stream, stopped when a call starts
  let meter = null; // { context, timer }

  function chosen(id) {
    const value = byId(id).value;
    return value ? { deviceId: { exact: value } } : true;
  }

  phone.mediaConstraints = (video) => ({ audio: chosen("mic-select"), video: video ? chosen("camera-select") : false });

  async function check() {
    stopCheck();
    say(T("customer.setup.checking"));
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return problem(T("customer.setup.insecure"));
    }
    let cameraError = null;
    try {
      preview = await navigator.mediaDevices.getUserMedia(phone.mediaConstraints(true));
    } catch (error) {
      cameraError = error;
      try {
        preview = await navigator.mediaDevices.getUserMedia(phone.mediaConstraints(false));
      } catch (micError) {
        await listDevices();
        return problem(micText(micError));
      }
    }
    byId("preview").srcObject = preview.getVideoTracks().length ? preview : null;
    byId("preview").hidden = !preview.getVideoTracks().length;
    startMeter(preview);
    await listDevices();
    if (cameraError) return problem(cameraText(cameraError));
    view.deviceProblem = null;
    say(T("customer.setup.ready"));
  }

  function cameraText(error) {
    const name = error && error.name;
    if (name === "NotFoundError" || name === "OverconstrainedError") return T("customer.setup.no_camera");
    if (name === "NotAllowedError" || name === "SecurityError") return T("customer.setup.camera_refused");
    return T("customer.setup.in_use");
  }

  function micText(error) {
    const name = error && error.name;
    if (name === "NotFoundError" || name === "OverconstrainedError") return T("customer.setup.no_mic");
    if (name === "NotAllowedError" || name === "SecurityError") return T("customer.setup.mic_refused");
    return T("customer.setup.in_use");
  }

  function problem(text) {
    view.deviceProblem = text;
    say(text);
    byId("device-message").classList.add("warning");
  }

  function say(text) {
    byId("device-message").classList.remove("warning");
    byId("device-message").textContent = text;
  }

  async function listDevices() {
    let devices = [];
    try { devices = await navigator.mediaDevices.enumerateDevices(); } catch (_) { return; }
    fill("camera-select", devices.filter((d) => d.kind === "videoinput"), "cameras");
    fill("mic-select", devices.filter((d) => d.kind === "audioinput"), "microphones");
  }

  // Devices without an id (no permission yet) cannot be chosen: the browser's default is used.
  function fill(id, devices, count) {
    const select = byId(id);
    const before = select.value;
    const usable = devices.filter((d) => d.deviceId);
    view.devices[count] = usable.length;
    select.replaceChildren(...usable.map((d, i) => new Option(d.label || T("customer.setup.device", { number: i + 1 }), d.deviceId)));
    if (usable.some((d) => d.deviceId === before)) select.value = before;
    select.disabled = usable.length < 2;
  }

  function startMeter(stream) {
    const [track] = stream.getAudioTracks();
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!track || !AudioContextClass) return;
    const context = new AudioContextClass();
    const analyser = context.createAnalyser();
    analyser.fftSize = 512;
    context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    // A few times a second is enough for a level; it stops with the check.
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
      byId("mic-level").value = Math.min(1, rms * 4);
    }, 100);
    meter = { context, timer };
    // A browser may start the context suspended until the customer touches the page.
    if (context.state === "suspended") {
      document.addEventListener("pointerdown", () => context.resume().catch(() => {}), { once: true });
    }
  }

  function stopCheck() {
    if (meter) {
      clearInterval(meter.timer);
      meter.context.close().catch(() => {});
      meter = null;
    }
    if (preview) preview.getTracks().forEach((track) => track.stop());
    preview = null;
    byId("preview").srcObject = null;
    byId("mic-level").value = 0;
  }

  // --- the rating after the talk ----------------------------------------------------------------

  let score = null;

  function choose(chosenScore) {
    score = chosenScore;
    for (const button of byId("rating").querySelectorAll(".score")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.score) === score));
    }
  }

  async function sendRating(event) {
    event.preventDefault();
    const said = byId("rating-said");
    if (score === null) {
      said.textContent = T("customer.rating.choose");
      return;
    }
    byId("rating-send").disabled = true;
    const comment = byId("rating-comment").value.trim();
    let status = 0;
    try {
      const response = await fetch(config.ratingApi, {
        method: "POST", cache: "no-store", credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ customer: phone.customerId(), hop: view.talkedOn, score, comment: comment || null }),
      });
      status = response.status;
    } catch (_) { /* said below */ }
    byId("rating-send").disabled = false;
    if (status === 201 || status === 409) {
      view.rated = true;
      byId("rating").hidden = true;
      said.textContent = T(status === 201 ? "customer.rating.thanks" : "customer.rating.already");
      byId("call-again").focus();
    } else {
      said.textContent = T("customer.rating.failed");
    }
  }

  // --- start -------------------------------------------------------------------------------------

  function callAgain() {
    byId("rating-said").textContent = "";
    choose(null);
    byId("rating-comment").value = "";
    byId(view.lastVideo || !byId("call-voice") ? "call" : "call-voice").click();
  }

  function init() {
    applyAccent(config.accentColor);
    phone.onstate = onPhoneState;
    byId("call").addEventListener("click", () => { view.lastVideo = true; }, { capture: true });
    byId("call-voice")?.addEventListener("click", () => { view.lastVideo = false; }, { capture: true });
    byId("mute").addEventListener("click", () => setMuted(!view.muted));
    byId("camera-select").addEventListener("change", check);
    byId("mic-select").addEventListener("change", check);
    for (const button of byId("rating").querySelectorAll(".score")) {
      button.addEventListener("click", () => choose(Number(button.dataset.score)));
    }
    byId("rating").addEventListener("submit", sendRating);
    byId("call-again").addEventListener("click", callAgain);
    show("ready");
    if (typeof JsSIP !== "undefined") check();
  }

  init();
})();
