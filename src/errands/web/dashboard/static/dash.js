// The dashboard's only script: live numbers from the page's server-sent event stream.
// Elements marked data-q (queue) and data-f (field), or data-j (job field), are updated in place.
"use strict";

function age(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return Math.round(seconds * 1000) + "ms";
  if (seconds < 60) return seconds.toFixed(1) + "s";
  const whole = Math.floor(seconds);
  if (whole >= 86400) return Math.floor(whole / 86400) + "d " + Math.floor((whole % 86400) / 3600) + "h";
  if (whole >= 3600) return Math.floor(whole / 3600) + "h " + Math.floor((whole % 3600) / 60) + "m";
  return Math.floor(whole / 60) + "m " + (whole % 60) + "s";
}

function show(element, text) {
  // A cell holding a link (the dead count) keeps its link.
  const target = element.querySelector("a") || element;
  if (target.textContent !== text) target.textContent = text;
}

function numbers(data) {
  for (const [name, fields] of Object.entries(data.queues || {})) {
    for (const element of document.querySelectorAll("[data-f]")) {
      if (element.dataset.q !== name) continue;
      const field = element.dataset.f;
      if (!(field in fields)) continue;
      const value = fields[field];
      if (field === "oldest_ready_age_s") show(element, age(value));
      else if (field === "paused") show(element, value ? "paused" : "");
      else show(element, String(value));
    }
  }
  if (data.workers !== undefined) {
    for (const element of document.querySelectorAll("[data-f=workers]")) show(element, String(data.workers));
  }
  for (const [field, value] of Object.entries(data.job || {})) {
    for (const element of document.querySelectorAll("[data-j=" + field + "]")) show(element, String(value));
  }
  document.body.dataset.updated = String(data.at || Date.now() / 1000);
}

function banner(text) {
  const element = document.getElementById("live-status");
  if (!element) return;
  element.textContent = text;
  element.hidden = !text;
}

function connect() {
  const url = document.body.dataset.live;
  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener("numbers", (event) => {
    banner("");
    numbers(JSON.parse(event.data));
  });
  source.addEventListener("unavailable", (event) => banner(JSON.parse(event.data) + ": the numbers shown are not current."));
  source.addEventListener("ended", () => {
    source.close();
    window.location.assign("/login?expired=1&next=" + encodeURIComponent(window.location.pathname));
  });
  source.onerror = () => banner("Live updates interrupted: reconnecting…");
  window.addEventListener("pagehide", () => source.close());
}

document.addEventListener("DOMContentLoaded", connect);
