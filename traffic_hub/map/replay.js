// Replay a day on the live map (issue 19): a time slider that shows the archived state at a chosen moment.
// Its own module, hooked into app.js by one call once the map is loaded: while replaying, the live layers
// are hidden (the live stream keeps running underneath) and the state at T comes from the archive,
// `GET /api/v1/history/events?at=T` (a GeoJSON FeatureCollection like /api/v1/events, paginated).

import { language, locale } from "/map/static/i18n.js";

const LABELS = {
  fr: {
    replay: "Rejouer une journée", live: "Revenir au direct", day: "Jour", time: "Heure", play: "Lecture",
    pause: "Pause", loading: "Chargement…", unavailable: "Historique indisponible",
    shown: (n, at) => `${n} événement${n > 1 ? "s" : ""} le ${at}`,
  },
  en: {
    replay: "Replay a day", live: "Back to live", day: "Day", time: "Time", play: "Play", pause: "Pause",
    loading: "Loading…", unavailable: "History unavailable",
    shown: (n, at) => `${n} event${n === 1 ? "" : "s"} on ${at}`,
  },
};
const STEP_MIN = 5; // the slider moves by 5 minutes: 288 positions in a day
const MAX_PAGES = 20;
const SOURCE = "replay";

function r(key, ...args) {
  const value = LABELS[language()]?.[key] ?? LABELS.fr[key];
  return typeof value === "function" ? value(...args) : value;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function isoDay(date) {
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 10);
}

/** The instant chosen: the day (local) and the slider's minutes since local midnight. */
function chosenInstant(day, minutes) {
  const midnight = new Date(`${day}T00:00:00`);
  midnight.setMinutes(minutes); // DST-safe: the browser's calendar arithmetic
  return midnight;
}

/** Every page of the archived state at `at` (follows `next`, a path or a cursor). */
async function stateAt(api, at) {
  const base = `/api/v1/history/events?at=${encodeURIComponent(at.toISOString())}&limit=1000`;
  const features = [];
  let path = base;
  for (let page = 0; page < MAX_PAGES && path; page += 1) {
    const data = await api(path);
    features.push(...(data.features || []));
    const next = data.next ?? data.links?.next ?? null;
    path = !next ? null : next.startsWith("/") ? next : `${base}&cursor=${encodeURIComponent(next)}`;
  }
  return features;
}

function addLayers(map, colours) {
  if (map.getSource(SOURCE)) return;
  map.addSource(SOURCE, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  const colour = ["match", ["get", "type"], ...Object.entries(colours).flat(), colours.other || "#566573"];
  map.addLayer({ id: "replay-lines", type: "line", source: SOURCE, filter: ["!=", ["geometry-type"], "Point"],
    layout: { "line-cap": "round" }, paint: { "line-color": colour, "line-width": 5, "line-opacity": 0.85 } });
  map.addLayer({ id: "replay-points", type: "circle", source: SOURCE, filter: ["==", ["geometry-type"], "Point"],
    paint: { "circle-color": colour, "circle-radius": 6, "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 } });
}

function setLiveLayers(map, visible) {
  for (const layer of map.getStyle().layers) {
    if (layer.source === "events") map.setLayoutProperty(layer.id, "visibility", visible ? "visible" : "none");
  }
}

/** Adds the replay panel over the map. `api(path)` is the map's authenticated GET. */
export function installReplay(map, { api, colours }) {
  const wrap = map.getContainer().parentElement;
  const panel = el("div", { class: "replay", id: "replay", role: "group", "aria-label": r("replay") });
  const toggle = el("button", { type: "button", id: "replay-toggle", "aria-pressed": "false" }, r("replay"));
  const controls = el("div", { class: "replay-controls", id: "replay-controls" });
  const day = el("input", { type: "date", id: "replay-day", "aria-label": r("day") });
  const slider = el("input", { type: "range", id: "replay-slider", min: "0", max: String(24 * 60 - STEP_MIN),
    step: String(STEP_MIN), value: "480", "aria-label": r("time") });
  const clock = el("output", { id: "replay-time", for: "replay-slider" });
  const play = el("button", { type: "button", id: "replay-play" }, r("play"));
  const status = el("span", { class: "replay-status", id: "replay-status", role: "status", "aria-live": "polite" });
  controls.hidden = true;
  controls.append(day, slider, clock, play, status);
  panel.append(toggle, controls);
  wrap.append(panel);
  day.value = isoDay(new Date(Date.now() - 86400000));

  let on = false, timer = null, seq = 0, playing = null;
  const label = () => chosenInstant(day.value, Number(slider.value))
    .toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });

  async function show() {
    const mine = ++seq;
    const at = chosenInstant(day.value, Number(slider.value));
    clock.textContent = label();
    status.textContent = r("loading");
    try {
      const features = await stateAt(api, at);
      if (mine !== seq || !on) return;
      map.getSource(SOURCE).setData({ type: "FeatureCollection", features });
      status.textContent = r("shown", features.length,
        at.toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short" }));
      panel.dataset.at = at.toISOString();
      panel.dataset.count = String(features.length);
    } catch (error) {
      if (mine === seq) status.textContent = `${r("unavailable")} : ${error.message}`;
    }
  }
  const soon = () => { clearTimeout(timer); clock.textContent = label(); timer = setTimeout(show, 250); };

  function stopPlaying() {
    clearInterval(playing);
    playing = null;
    play.textContent = r("play");
  }

  toggle.addEventListener("click", () => {
    on = !on;
    toggle.setAttribute("aria-pressed", String(on));
    toggle.textContent = on ? r("live") : r("replay");
    controls.hidden = !on;
    addLayers(map, colours);
    setLiveLayers(map, !on);
    if (on) show();
    else {
      stopPlaying();
      map.getSource(SOURCE).setData({ type: "FeatureCollection", features: [] });
      delete panel.dataset.at;
    }
  });
  addLayers(map, colours); // empty until a replay
  for (const layer of ["replay-lines", "replay-points"]) { // a click says what was there at that moment
    map.on("click", layer, (event) => {
      const p = event.features?.[0]?.properties || {};
      status.textContent = [p.type, p.street, p.description, p.status].filter(Boolean).join(" · ");
    });
  }
  slider.addEventListener("input", soon);
  day.addEventListener("change", soon);
  play.addEventListener("click", () => {
    if (playing) return stopPlaying();
    play.textContent = r("pause");
    playing = setInterval(() => {
      const next = Number(slider.value) + 15;
      if (next > Number(slider.max)) return stopPlaying();
      slider.value = String(next);
      show();
    }, 1200);
  });
}
