(function () {
  "use strict";
  var pb = { state: "loading", via: "" };
  window.camgatePlayback = pb;
  var main = document.querySelector("main");
  var statusEl = document.getElementById("status");
  var video = document.getElementById("video");

  function say(msg) { if (statusEl) statusEl.textContent = msg; }
  // Mirror the state into the DOM too, for tests that only see the DOM.
  function mark() {
    document.documentElement.setAttribute("data-playback", pb.state);
    document.documentElement.setAttribute("data-via", pb.via);
  }

  // Show the link's validity in the viewer's own time zone.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d.getTime())) {
      el.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    }
  });
  if (!video || !main) { pb.state = "error"; mark(); return; }

  var cam = main.getAttribute("data-camera");
  var token = main.getAttribute("data-token");
  var whepSession = "";
  var ended = false;
  var whepWhy = ""; // why WebRTC could not play, when the gateway said so

  function failed(msg) {
    if (ended) { return; }
    ended = true;
    pb.state = "error";
    pb.error = msg;
    mark();
    say(msg);
  }
  function playing(via) {
    pb.state = "playing";
    pb.via = via;
    mark();
    say(via === "whep" ? "Playing live (WebRTC)." : "Playing live (HLS).");
  }
  // refusal turns an HTTP refusal into words; null means "try the fallback".
  function refusal(status) {
    if (status === 401 || status === 403) { return "This link no longer gives access to this camera. It may have been disabled or have expired."; }
    if (status === 410) { return "This link has expired or was removed."; }
    if (status === 429) { return "Too many people are watching this link right now. Please try again later."; }
    return null;
  }
  // reason reads the gateway's {"error": "..."} from a refused answer.
  async function reason(res) {
    try {
      var body = await res.json();
      return (body && typeof body.error === "string") ? body.error : "";
    } catch (_) { return ""; }
  }
  // cannotPlay is the message when neither protocol can play the camera.
  function cannotPlay(hlsWhy) {
    var parts = [];
    if (whepWhy) { parts.push("WebRTC: " + whepWhy); }
    if (hlsWhy) { parts.push("HLS: " + hlsWhy); }
    return "This camera cannot be played in this browser." + (parts.length ? " " + parts.join("; ") + "." : "");
  }
  function waitPlaying(ms) {
    return new Promise(function (resolve, reject) {
      if (!video.paused && video.readyState > 2) { resolve(); return; }
      var timer = setTimeout(function () { video.removeEventListener("playing", ok); reject(new Error("timeout")); }, ms);
      function ok() { clearTimeout(timer); resolve(); }
      video.addEventListener("playing", ok, { once: true });
    });
  }
  function gathered(pc, ms) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") { resolve(); return; }
      var timer = setTimeout(resolve, ms);
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  async function viaWHEP() {
    pb.via = "whep";
    if (!window.RTCPeerConnection) { throw new Error("no WebRTC"); }
    var pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    var ms = new MediaStream();
    pc.ontrack = function (ev) {
      ms.addTrack(ev.track);
      if (video.srcObject !== ms) { video.srcObject = ms; }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 3000);
    var res = await fetch("/whep/" + encodeURIComponent(cam), {
      method: "POST", cache: "no-store",
      headers: { "Content-Type": "application/sdp", "Authorization": "Bearer " + token },
      body: pc.localDescription.sdp
    });
    if (res.status !== 201) {
      pc.close();
      var msg = refusal(res.status);
      if (msg) { var e = new Error(msg); e.final = true; throw e; }
      // 400/415 say why this camera's stream does not fit this browser's
      // WebRTC (its video codec, B-frames): keep the reason for the end.
      whepWhy = await reason(res);
      throw new Error("WHEP answered " + res.status);
    }
    whepSession = res.headers.get("Location") || "";
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    try {
      await waitPlaying(10000);
    } catch (err) {
      pc.close();
      stopWHEP();
      throw err;
    }
    pc.addEventListener("connectionstatechange", function () {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        failed("The stream has ended. The link may have been disabled or has expired.");
      }
    });
    playing("whep");
  }

  function stopWHEP() {
    if (!whepSession) { return; }
    fetch(whepSession, { method: "DELETE", keepalive: true, headers: { "Authorization": "Bearer " + token } }).catch(function () {});
    whepSession = "";
  }

  function loadHlsJs() {
    return new Promise(function (resolve, reject) {
      if (window.Hls) { resolve(window.Hls); return; }
      var s = document.createElement("script");
      s.src = "/s/assets/hls.min.js";
      s.onload = function () { window.Hls ? resolve(window.Hls) : reject(new Error("hls.js did not load")); };
      s.onerror = function () { reject(new Error("hls.js did not load")); };
      document.head.appendChild(s);
    });
  }

  async function viaHLS() {
    pb.via = "hls";
    video.srcObject = null;
    var src = "/hls/" + encodeURIComponent(cam) + "/index.m3u8?token=" + encodeURIComponent(token);
    // hls.js wherever Media Source Extensions exist (recent Chromium also
    // claims native HLS, without LL-HLS); native HLS where they do not
    // (Safari on iPhone).
    var mse = !!(window.MediaSource || window.ManagedMediaSource);
    if (!mse && video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = src;
      video.addEventListener("error", function () { failed("The stream has ended. The link may have been disabled or has expired."); });
    } else {
      var Hls = await loadHlsJs();
      if (!Hls.isSupported()) { throw new Error("This browser can play neither WebRTC nor HLS."); }
      var hls = new Hls({ lowLatencyMode: true, enableWorker: false });
      hls.on(Hls.Events.ERROR, function (_, data) {
        if (!data.fatal) { return; }
        hls.destroy();
        var code = data.response && data.response.code;
        if (refusal(code)) { failed(refusal(code)); return; }
        if (data.details === "manifestIncompatibleCodecsError" || data.type === "mediaError") {
          failed(cannotPlay("this browser cannot decode the camera's video" + (data.details ? " (" + data.details + ")" : "")));
          return;
        }
        if (code >= 400 && code < 500) {
          // A refusal that is not about access (415: a codec HLS cannot
          // carry): ask once more for its reason; a refusal opens no session.
          fetch(src, { cache: "no-store" }).then(reason).then(function (why) {
            failed(cannotPlay(why || ("the gateway answered " + code)));
          }, function () { failed(cannotPlay("the gateway answered " + code)); });
          return;
        }
        failed("The stream has ended. The link may have been disabled or has expired.");
      });
      hls.loadSource(src);
      hls.attachMedia(video);
    }
    video.play().catch(function () {});
    await waitPlaying(20000);
    playing("hls");
  }

  async function start() {
    say("Connecting…");
    try {
      await viaWHEP();
      return;
    } catch (err) {
      if (err && err.final) { failed(err.message); return; }
      say(whepWhy ? "WebRTC cannot play this camera here (" + whepWhy + "); trying HLS…" : "WebRTC is not available here; trying HLS…");
    }
    try {
      await viaHLS();
    } catch (err) {
      if (err && err.message === "timeout") {
        failed(whepWhy ? cannotPlay("no picture within 20 s") : "The camera could not be played. Please try again later.");
        return;
      }
      failed((err && err.message) || "The camera could not be played.");
    }
  }

  window.addEventListener("pagehide", stopWHEP);
  start();
})();
