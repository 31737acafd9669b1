// The guards' page: live decisions, alarms and health over Server-Sent Events, alarm sound and
// banner, alarm acknowledgement and the manual open. Plain JavaScript, no build step.
"use strict";
(function () {
  const body = document.body;
  const csrf = body.dataset.csrf || "";
  let unacked = parseInt(body.dataset.unacked || "0", 10);
  let audio = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // -- sound (Web Audio: a beep, no file) -----------------------------------------------------
  function unlockAudio() {
    try {
      if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
    } catch (e) { audio = null; }
    updateBanner();
  }
  document.addEventListener("pointerdown", unlockAudio);
  document.addEventListener("keydown", unlockAudio);

  function beep() {
    if (!audio || audio.state !== "running") return;
    const now = audio.currentTime;
    for (let i = 0; i < 3; i++) {
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = i % 2 ? 660 : 880;
      gain.gain.setValueAtTime(0.15, now + i * 0.25);
      gain.gain.setValueAtTime(0, now + i * 0.25 + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.25);
      osc.stop(now + i * 0.25 + 0.2);
    }
  }
  setInterval(function () { if (unacked > 0) beep(); }, 10000);

  // -- banner --------------------------------------------------------------------------------
  function updateBanner() {
    const banner = document.getElementById("alarm-banner");
    if (!banner) return;
    banner.hidden = unacked <= 0;
    const text = document.getElementById("alarm-banner-text");
    if (text) text.textContent = banner.dataset.template.replace("{count}", String(unacked));
    const hint = document.getElementById("sound-hint");
    if (hint) hint.hidden = unacked <= 0 || (audio && audio.state === "running");
  }

  // -- live decisions ------------------------------------------------------------------------
  function showDecision(d) {
    const last = document.getElementById("last");
    if (last) {
      last.className = "decision " + d.decision + " fresh";
      last.dataset.event = d.event_id || "";
      last.replaceChildren();
      last.append(el("div", "verdict", d.label), el("div", "who", d.title));
      const ul = el("ul", "reasons");
      (d.reasons || []).forEach(function (r) { ul.append(el("li", null, r)); });
      const meta = el("div", "meta");
      meta.append(el("span", "temp", d.temperature || ""), " ", el("span", "time", d.time), " ",
                  el("span", "latency", d.latency || ""));
      last.append(ul, meta);
      if (d.temperature) {
        const temp = document.getElementById("fact-temp");
        if (temp) temp.textContent = d.temperature;
      }
    }
    const recent = document.querySelector("#recent tbody");
    if (recent) {
      const tr = el("tr", d.decision);
      const who = el("td");
      const a = el("a", null, d.title);
      a.href = "/events/" + encodeURIComponent(d.event_id || "");
      who.append(a);
      tr.append(el("td", "time", d.time), el("td", "verdict", d.label), who,
                el("td", null, (d.reasons || []).join("; ")), el("td", "temp", d.temperature || ""));
      recent.prepend(tr);
      while (recent.rows.length > 20) recent.deleteRow(-1);
    }
  }

  function ackLabel() {
    return document.body.dataset.ackLabel || "OK";
  }

  // A repeat of an open alarm (same source) is counted on its row, as the store counts it: no new row,
  // no new beep (the banner keeps beeping while anything is unacknowledged).
  function openRowOf(group) {
    if (!group) return null;
    const rows = document.querySelectorAll("#alarm-list tr.alarm.open");
    for (let i = 0; i < rows.length; i++) { if (rows[i].dataset.group === group) return rows[i]; }
    return null;
  }

  function countRepeat(tr, a) {
    const count = parseInt(tr.dataset.count || "1", 10) + (a.count || 1);
    tr.dataset.count = String(count);
    const table = document.getElementById("alarm-list");
    const template = (table && table.dataset.repeats) || "×{count}";
    let span = tr.querySelector(".repeats");
    if (!span) {
      span = el("span", "repeats");
      tr.querySelector("td.time").append(" ", span);
    }
    span.textContent = template.replace("{count}", String(count)).replace("{at}", a.time);
    const message = tr.querySelector("td.message");
    if (message) message.textContent = a.message;
    tr.parentNode.prepend(tr);  // the most recently seen first, as the page lists them
  }

  function showAlarm(a) {
    const same = openRowOf(a.group);
    if (same) { countRepeat(same, a); return; }
    unacked += 1;
    updateBanner();
    beep();
    const list = document.querySelector("#alarm-list tbody");
    if (!list) return;
    const empty = document.getElementById("alarm-empty");
    if (empty) empty.remove();
    const tr = el("tr", "alarm open sev-" + a.severity);
    tr.dataset.id = a.id;
    tr.dataset.group = a.group || "";
    tr.dataset.count = String(a.count || 1);
    const action = el("td", "action");
    if (document.body.dataset.mayAck === "1") {  // viewers see alarms, operators silence them
      const button = el("button", "ack", ackLabel());
      button.type = "button";
      button.dataset.id = a.id;
      action.append(button);
    }
    const time = el("td", "time", a.time);
    if (a.repeats) time.append(" ", el("span", "repeats", a.repeats));
    tr.append(time, el("td", "kind", a.kind_text), el("td", "message", a.message), action);
    list.prepend(tr);
  }

  function showHealth(h) {
    unacked = h.unacked;
    updateBanner();
    (h.parts || []).forEach(function (p) {
      const td = document.getElementById("part-" + p.key);
      if (td) {
        td.textContent = p.text;
        td.className = "health " + (p.ok === true ? "ok" : p.ok === false ? "fault" : "na");
      }
    });
    const set = function (id, value) { const e = document.getElementById(id); if (e) e.textContent = value; };
    set("fact-outbox", h.outbox);
    set("fact-whitelist", h.whitelist);
    set("fact-fps", h.fps);
    set("fact-pulses", h.pulses);
    const relay = document.getElementById("fact-relay");
    if (relay) { relay.textContent = h.relay_state; relay.className = h.relay_on ? "on" : ""; }
    if (h.hold) showHold(h.hold);
  }

  // -- hold-open banner: a fire, a guard's hold-open, the normally-open schedule -------------
  function showHold(hold) {
    const banner = document.getElementById("hold-banner");
    if (!banner) return;
    banner.hidden = !hold.text;
    banner.className = "banner hold" + (hold.fire ? " fire" : "");
    const text = document.getElementById("hold-banner-text");
    if (text) text.textContent = hold.text;
    const release = document.getElementById("hold-release");
    if (release) release.hidden = !hold.guard_hold;
  }

  if (body.dataset.live === "1" && window.EventSource) {
    const source = new EventSource("/api/stream");
    source.addEventListener("decision", function (e) { showDecision(JSON.parse(e.data)); });
    source.addEventListener("alarm", function (e) { showAlarm(JSON.parse(e.data)); });
    source.addEventListener("health", function (e) { showHealth(JSON.parse(e.data)); });
    source.addEventListener("logout", function () { window.location.href = "/login"; });
    source.addEventListener("reload", function () { window.location.reload(); });  // the guard's role changed
    body.dataset.stream = "connecting";
    source.addEventListener("open", function () { body.dataset.stream = "open"; });
  }

  // -- actions (JSON API, CSRF token in a header) --------------------------------------------
  function post(url, data) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(data || {}),
    });
  }

  document.addEventListener("click", function (e) {
    const button = e.target.closest("button.ack");
    if (!button) return;
    button.disabled = true;
    post("/api/alarms/" + encodeURIComponent(button.dataset.id) + "/ack").then(function (r) {
      // 404: a live row whose alarm the store counted on a group this page does not show: reload the list
      if (r.status === 404) { window.location.reload(); return null; }
      if (!r.ok) { button.disabled = false; return null; }
      return r.json();
    }).then(function (res) {
      if (!res) return;
      const tr = button.closest("tr");
      if (tr) tr.className = tr.className.replace("open", "acked");
      button.replaceWith(el("span", "acked-by", "✓ " + res.acknowledged_by));
      unacked = Math.max(0, unacked - 1);
      updateBanner();
    });
  });

  const form = document.getElementById("open-form");
  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      const input = document.getElementById("open-reason");
      const msg = document.getElementById("open-message");
      const reason = input.value.trim();
      if (!reason) { msg.textContent = form.dataset.needReason; msg.className = "message error"; return; }
      post("/api/open", { reason: reason }).then(function (r) {
        return r.json().then(function (res) { return { ok: r.ok, res: res }; });
      }).then(function (x) {
        if (x.ok) {
          msg.textContent = form.dataset.done; msg.className = "message"; input.value = "";
        } else {
          msg.textContent = form.dataset.failed + ": " + (x.res.detail || ""); msg.className = "message error";
        }
      });
    });
  }
  const holdForm = document.getElementById("hold-form");
  if (holdForm) {
    holdForm.addEventListener("submit", function (e) {
      e.preventDefault();
      const input = document.getElementById("hold-reason");
      const msg = document.getElementById("hold-message");
      const reason = input.value.trim();
      const minutes = parseInt(document.getElementById("hold-minutes").value, 10);
      if (!reason) { msg.textContent = holdForm.dataset.needReason; msg.className = "message error"; return; }
      post("/api/hold-open", { reason: reason, minutes: minutes }).then(function (r) {
        return r.json().then(function (res) { return { ok: r.ok, res: res }; });
      }).then(function (x) {
        if (x.ok) {
          msg.textContent = holdForm.dataset.done; msg.className = "message"; input.value = "";
        } else {
          msg.textContent = holdForm.dataset.failed + ": " + (x.res.detail || ""); msg.className = "message error";
        }
      });
    });
  }
  const holdRelease = document.getElementById("hold-release");
  if (holdRelease) {
    holdRelease.addEventListener("click", function () {
      post("/api/hold-open/release").then(function (r) { if (r.ok) holdRelease.hidden = true; });
    });
  }
  updateBanner();
})();
