// The operator map: live events (SSE), filters, details, operator actions, and road-works drawing.
// Plain ES modules, no build step; MapLibre GL comes from npm, served by the hub under /map/vendor/.

import { applyLabels, initialLanguage, language, locale, setLanguage, t } from "/map/static/i18n.js";
import { installReplay } from "/map/static/replay.js";

// measures other than closures (issue 18): told apart from the event type they travel as in the feeds
const MEASURE_TYPES = ["alternate_traffic", "no_overtaking", "speed_limit", "vehicle_restriction", "detour"];
const TYPES = ["closure", "lane_closure", "roadworks", "accident", "hazard", "jam", "weather", "police", "other",
  ...MEASURE_TYPES];
const TYPE_COLOURS = {
  closure: "#c0392b", lane_closure: "#e67e22", roadworks: "#b7950b", accident: "#8e44ad", hazard: "#d35400",
  jam: "#e74c3c", weather: "#2471a3", police: "#1a5276", other: "#566573",
  road_closed: "#c0392b", lane_closed: "#e67e22", alternate_traffic: "#f1c40f", no_overtaking: "#16a085",
  speed_limit: "#5dade2", vehicle_restriction: "#784212", detour: "#27ae60",
};
const VEHICLE_KINDS = ["heavy_goods_vehicle", "hazardous_goods", "abnormal_load", "bus", "commercial",
  "light_commercial_vehicle", "car", "vehicle_with_trailer", "tanker", "agricultural_vehicle", "motorcycle", "moped",
  "bicycle", "pedestrians"];
const EXEMPTIONS = ["emergency_services", "residents", "local_access", "deliveries", "public_transport", "taxi",
  "car_sharing", "road_maintenance", "recovery_services", "military", "agricultural", "bicycle"];
const CRITAIR = ["critair0", "critair1", "critair2", "critair3", "critair4", "critair5", "unclassified"];
const LIMITS = [["max_weight_t", "t"], ["max_axle_load_t", "t"], ["max_height_m", "m"], ["max_width_m", "m"],
  ["max_length_m", "m"]];
const DETOURABLE = new Set(["road_closed", "vehicle_restriction"]);
const SOURCE_COLOURS = { roadworks: "#1b1b1b", waze: "#0fa3d1", datex2: "#6c3483", wzdx: "#117a65", cifs: "#1f618d" };
const OTHER_SOURCE_COLOUR = "#7f8c8d";
const FONT_STREETS = ["Noto Sans Regular"]; // bundled glyphs, served by the hub (traffic_hub/map/fonts/)
const FONT_COMMUNES = ["Noto Sans Medium"];
const EVENT_LAYERS = ["event-points", "event-lines", "jams"];
const OFFSET_STEP_PX = 10; // events on one stretch of road are drawn side by side, this far apart
const DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const GONE = new Set(["ended", "cancelled"]);

const state = {
  key: null, who: null, config: { communes: {} }, events: new Map(), selected: null, mode: "events",
  map: null, mapReady: false, stream: null, streamRetry: 0, draft: [], preview: null, previewTimer: null, previewSeq: 0,
  closures: [], renderQueued: false, maplibre: null, chooser: null, widestOffset: 0,
};

const $ = (id) => document.getElementById(id);

/** A DOM element: `h("p", {class: "x"}, "text", child)`; text is never parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "style") el.style.cssText = value; // CSSOM, allowed by a CSP without inline styles
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// ------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${state.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data?.detail || response.statusText);
  return data;
}

// ------------------------------------------------------------------ formatting

function communeName(code) {
  if (!code) return "";
  const name = state.config.communes?.[code];
  return name ? `${name} (${code})` : code;
}

function when(iso) {
  if (!iso) return t("no_end");
  return new Date(iso).toLocaleString(locale(), {
    dateStyle: "medium", timeStyle: "short",
  });
}

function family(source) {
  const name = (source || "").toLowerCase();
  if (name.startsWith("roadworks")) return "roadworks";
  for (const known of ["waze", "datex2", "wzdx", "cifs"]) if (name.includes(known)) return known;
  return "other";
}

/** What an event is, for people: its measure type when it is a measure other than a closure, else its type. */
function kindOf(props) {
  const measure = props.measure?.type;
  return MEASURE_TYPES.includes(measure) ? measure : props.type;
}

function eventFamily(props) {
  const first = (props.sources || []).find((s) => s.source !== "operator");
  return family(first?.source);
}

function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.classList.add("shown");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("shown"), 5000);
}

// ------------------------------------------------------------------ sign-in

function keyFromHash() {
  const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(match[1]);
}

function askForKey(message = "") {
  $("login-error").textContent = message;
  const dialog = $("login");
  if (!dialog.open) dialog.showModal();
  $("key-input").focus();
}

async function signIn(key) {
  state.key = key;
  try {
    state.who = await api("/api/v1/whoami");
  } catch (error) {
    localStorage.removeItem("traffic-hub-key");
    askForKey(error.status === 401 ? t("bad_key") : error.message);
    return;
  }
  localStorage.setItem("traffic-hub-key", key);
  if ($("login").open) $("login").close();
  start();
}

function canSeeEvents() {
  return ["operator", "admin"].includes(state.who.role);
}

function canDraw() {
  return ["roadworks", "admin"].includes(state.who.role);
}

function start() {
  const who = state.who;
  $("who").textContent = `${who.name} · ${who.role}`;
  $("logout").hidden = false;
  if (!canSeeEvents() && !canDraw()) {
    askForKey(t("partner_only"));
    return;
  }
  $("modes").hidden = !(canSeeEvents() && canDraw());
  $("mode-events").hidden = !canSeeEvents();
  $("mode-draw").hidden = !canDraw();
  document.body.dataset.role = who.role;
  initMap();
  if (canSeeEvents()) connectStream();
  if (canDraw()) {
    setUpDrawForm();
    loadClosures();
  }
  setMode(canSeeEvents() ? "events" : "draw");
}

function setMode(mode) {
  state.mode = mode;
  document.body.dataset.mode = mode;
  $("events-side").hidden = mode !== "events";
  $("draw-side").hidden = mode !== "draw";
  for (const button of document.querySelectorAll("#modes button")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
  }
  if (mode === "draw") closeDetails();
  closeChooser();
  refreshMapData();
}

// ------------------------------------------------------------------ live events

function isShown(props) {
  return !GONE.has(props.status) && props.verification !== "dismissed";
}

function upsert(feature) {
  if (isShown(feature.properties)) state.events.set(feature.id, feature);
  else state.events.delete(feature.id);
}

function streamUrl() {
  return `/api/v1/events/stream?key=${encodeURIComponent(state.key)}`;
}

function connectStream() {
  const source = new EventSource(streamUrl());
  state.stream = source;
  source.onopen = () => { state.streamRetry = 0; setLive(true); };
  source.onerror = () => {
    setLive(false);
    // The browser retries a dropped stream by itself, but gives up for good on an HTTP error (a 429 when
    // this key already has its streams open on other screens, a 503 when the hub is full): find out why,
    // say it, and try again later rather than stay silently "reconnecting" for ever.
    if (source.readyState === EventSource.CLOSED && state.stream === source) streamRefused();
  };
  source.addEventListener("reset", (message) => {
    state.events.clear();
    for (const feature of JSON.parse(message.data).features) upsert(feature);
    setLive(true);
    scheduleRender();
  });
  for (const kind of ["created", "updated"]) {
    source.addEventListener(kind, (message) => {
      upsert(JSON.parse(message.data).event);
      scheduleRender();
    });
  }
  source.addEventListener("removed", (message) => {
    state.events.delete(JSON.parse(message.data).id);
    scheduleRender();
  });
}

function setLive(on) {
  const el = $("live");
  el.textContent = on ? `● ${t("live_on")}` : `○ ${t("live_off")}`;
  el.classList.toggle("off", !on);
  el.classList.remove("refused");
  el.removeAttribute("title");
  delete el.dataset.status;
}

const STREAM_RETRY_MIN_S = 2;
const STREAM_RETRY_MAX_S = 60;

async function streamRefused() {
  // One plain request tells the status and the problem's detail; a 200 (the refusal has passed) is cut at once.
  const controller = new AbortController();
  let status = 0;
  let detail = "";
  let retryAfter = NaN;
  try {
    const response = await fetch(streamUrl(), { signal: controller.signal, cache: "no-store" });
    status = response.status;
    retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    if (!response.ok) detail = ((await response.json().catch(() => ({}))).detail) || "";
  } catch (_error) {
    status = 0; // the hub is unreachable: the same wait, then a new stream
  } finally {
    controller.abort();
  }
  const backoff = Math.min(STREAM_RETRY_MAX_S, STREAM_RETRY_MIN_S * 2 ** (state.streamRetry || 0));
  const wait = Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, STREAM_RETRY_MAX_S) : backoff;
  state.streamRetry = (state.streamRetry || 0) + 1;
  if (status === 401 || status === 403) return; // the key itself is refused: the login screen handles that
  if (status === 429 || status === 503) showRefused(status, detail, wait);
  setTimeout(() => { if (state.stream && state.stream.readyState === EventSource.CLOSED) connectStream(); }, wait * 1000);
}

function showRefused(status, detail, waitS) {
  const el = $("live");
  el.textContent = `○ ${t(status === 429 ? "live_key_full" : "live_hub_full")} · ${t("live_retry", waitS)}`;
  el.classList.add("off", "refused");
  el.dataset.status = String(status);
  if (detail) el.title = detail;
}

function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    render();
  });
}

function render() {
  refreshFilterOptions();
  renderList();
  refreshMapData();
  if (state.selected && !state.events.has(state.selected)) closeDetails();
  else if (state.selected) renderDetails(state.events.get(state.selected));
}

// ------------------------------------------------------------------ filters

function filters() {
  return {
    type: $("f-type").value, source: $("f-source").value, commune: $("f-commune").value,
    status: $("f-status").value, time: $("f-time").value,
  };
}

function inTime(props, window, now) {
  if (!window) return true;
  const starts = Date.parse(props.starts_at);
  const ends = props.ends_at ? Date.parse(props.ends_at) : Infinity;
  if (window === "now") return starts <= now && ends > now;
  const horizon = now + (window === "24h" ? 24 : 24 * 7) * 3600e3;
  return starts <= horizon && ends > now;
}

function matches(feature, f, now) {
  const p = feature.properties;
  if (f.type && p.type !== f.type && kindOf(p) !== f.type) return false;
  if (f.source && !(p.sources || []).some((s) => s.source === f.source)) return false;
  if (f.commune && p.commune !== f.commune) return false;
  if (f.status && p.status !== f.status) return false;
  return inTime(p, f.time, now);
}

function visibleEvents() {
  const f = filters();
  const now = Date.now();
  return [...state.events.values()]
    .filter((feature) => matches(feature, f, now))
    .sort((a, b) => (a.properties.status === "active" ? 0 : 1) - (b.properties.status === "active" ? 0 : 1)
      || a.properties.starts_at.localeCompare(b.properties.starts_at) || a.id.localeCompare(b.id));
}

function fillSelect(select, values, label) {
  const chosen = select.value;
  const first = select.options[0];
  select.replaceChildren(first, ...values.map((v) => h("option", { value: v }, label(v))));
  select.value = values.includes(chosen) ? chosen : "";
}

function refreshFilterOptions() {
  const sources = new Set();
  const communes = new Set();
  for (const { properties: p } of state.events.values()) {
    for (const s of p.sources || []) if (s.source !== "operator") sources.add(s.source);
    if (p.commune) communes.add(p.commune);
  }
  fillSelect($("f-source"), [...sources].sort(), (v) => v);
  fillSelect($("f-commune"), [...communes].sort(), communeName);
  fillSelect($("f-type"), TYPES, (v) => t(`type_${v}`));
}

// ------------------------------------------------------------------ list (keyboard: arrows, Home/End, Enter)

/** "Source : x" in French (a space before the colon), "Source: x" in English. */
function labelled(label, value) {
  return `${label}${language() === "fr" ? " :" : ":"} ${value}`;
}

function sourceNames(p) {
  return [...new Set((p.sources || []).filter((s) => s.source !== "operator").map((s) => s.source))];
}

/** "Fermeture · Rue Nationale" (what and where), the line that names an event in the list and the chooser. */
function headline(feature) {
  const p = feature.properties;
  return `${t(`type_${kindOf(p)}`)} · ${p.street || communeName(p.commune) || feature.id}`;
}

function listItem(feature, index) {
  const p = feature.properties;
  const selected = feature.id === state.selected;
  return h("li", {
    role: "option", id: `ev-${feature.id}`, "data-id": feature.id, "aria-selected": String(selected),
    tabindex: (state.selected ? selected : index === 0) ? "0" : "-1", class: `item status-${p.status}`,
    onclick: () => select(feature.id, { fly: true }),
  },
  h("span", { class: "swatch", style: `background:${TYPE_COLOURS[kindOf(p)] || TYPE_COLOURS.other}` }),
  h("span", { class: "main" },
    h("strong", {}, headline(feature)),
    h("span", { class: "desc" }, p.description || t("no_description")),
    h("span", { class: "meta" }, [communeName(p.commune), t(`status_${p.status}`)].filter(Boolean).join(" · ")),
    h("span", { class: "meta src" }, labelled(t("source"), sourceNames(p).join(", ") || "operator"))),
  p.verification === "confirmed" ? h("span", { class: "badge ok" }, "✓") : null);
}

function renderList() {
  const events = visibleEvents();
  $("count").textContent = t("count", events.length);
  const list = $("event-list");
  const focusedId = document.activeElement?.closest?.("#event-list li")?.dataset.id;
  list.replaceChildren(...events.map(listItem));
  if (focusedId) document.getElementById(`ev-${focusedId}`)?.focus();
}

function onListKey(event) {
  const items = [...$("event-list").querySelectorAll("li")];
  if (!items.length) return;
  const index = items.indexOf(document.activeElement);
  const moves = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: items.length - 1 };
  if (event.key in moves) {
    event.preventDefault();
    const next = items[Math.max(0, Math.min(items.length - 1, moves[event.key]))];
    for (const item of items) item.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  } else if ((event.key === "Enter" || event.key === " ") && index >= 0) {
    event.preventDefault();
    select(items[index].dataset.id, { fly: true });
  }
}

// ------------------------------------------------------------------ details and operator actions

function select(id, { fly = false } = {}) {
  state.selected = id;
  const feature = state.events.get(id);
  if (!feature) return;
  for (const li of $("event-list").querySelectorAll("li")) li.setAttribute("aria-selected", String(li.dataset.id === id));
  renderDetails(feature);
  $("details").hidden = false;
  refreshMapData();
  if (fly) flyTo(feature.geometry);
}

function closeDetails() {
  const id = state.selected;
  state.selected = null;
  $("details").hidden = true;
  for (const li of $("event-list").querySelectorAll("li")) li.setAttribute("aria-selected", "false");
  refreshMapData();
  if (id) document.getElementById(`ev-${id}`)?.focus();
}

function said(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 1);
}

function sourceRows(p) {
  return (p.sources || []).map((s) => h("li", { class: "source" },
    h("strong", {}, s.source), ` (${s.kind || "?"}${s.source_id ? ` · ${s.source_id}` : ""})`,
    h("span", { class: "meta" }, ` · ${when(s.received_at)}${s.active === false ? " · inactive" : ""}`),
    s.match_reason ? h("div", { class: "meta" }, s.match_reason) : null,
    s.said ? h("pre", { class: "said", "aria-label": t("said") }, said(s.said)) : null));
}

function publicationRows(p) {
  return Object.entries(p.publication || {}).map(([feed, pub]) => h("li", { class: `pub pub-${pub.status}` },
    h("strong", {}, feed), ": ", t(pub.status), pub.reason ? ` — ${pub.reason}` : ""));
}

function validity(p) {
  const parts = [`${t("from")} ${when(p.starts_at)} ${t("to")} ${when(p.ends_at)}`];
  if (p.schedule) {
    const { except: skip, ...days } = p.schedule;
    const windows = Object.entries(days).map(([day, w]) => `${t(day)} ${[].concat(w).join(", ")}`);
    const skipped = skip ? [skip.weekends && t("weekends"), skip.public_holidays && t("public_holidays"),
      ...(skip.dates || [])].filter(Boolean) : [];
    parts.push(`${t("schedule_txt")}: ${windows.join(" ; ")}${skipped.length ? ` (${t("except_txt")} ${skipped.join(", ")})` : ""}`);
  }
  if (p.lanes) parts.push(t("lanes_txt", p.lanes.closed, p.lanes.total));
  return parts;
}

/** A measure's values in words: "limitée à 30 km/h", "Poids > (t) 3.5 · poids lourds · sauf livraisons". */
function measureLines(measure) {
  if (!measure) return [];
  const lines = [t(`m_${measure.type}`)];
  if (measure.speed_kmh) lines.push(t("speed_txt", measure.speed_kmh));
  const v = measure.vehicles;
  if (v) {
    const parts = LIMITS.filter(([name]) => v[name] != null).map(([name]) => `${t(name)} ${v[name]}`);
    if (v.kinds?.length) parts.push(v.kinds.map((k) => t(`kind_${k}`)).join(", "));
    if (v.critair?.length) parts.push(`Crit'Air ${v.critair.map((c) => c.replace("critair", "")).join(", ")}`);
    if (v.except?.length) parts.push(`${t("except_txt")} ${v.except.map((e) => t(`except_${e}`)).join(", ")}`);
    if (parts.length) lines.push(parts.join(" · "));
  }
  if (measure.detour_of) lines.push(`${t("detour_of")} ${measure.detour_of}`);
  return lines;
}

function actionBar(feature) {
  const others = [...state.events.values()].filter((f) => f.id !== feature.id);
  const note = h("input", { id: "action-note", maxlength: "1000" });
  const into = h("select", { id: "merge-into" }, others.map((f) => h("option", { value: f.id },
    `${t(`type_${f.properties.type}`)} · ${f.properties.street || f.properties.description || ""} · ${f.id.slice(0, 12)}`)));
  const act = (action) => () => runAction(feature.id, action, note.value, into.value);
  return h("div", { class: "actions" },
    h("h3", {}, t("actions")),
    h("label", { for: "action-note" }, t("note")), note,
    h("div", { class: "row" },
      h("button", { type: "button", class: "ok", "data-action": "confirm", onclick: act("confirm") }, t("confirm")),
      h("button", { type: "button", class: "warn", "data-action": "dismiss", onclick: act("dismiss") }, t("dismiss")),
      h("button", { type: "button", "data-action": "end", onclick: act("end") }, t("end"))),
    others.length ? h("div", { class: "row" },
      h("label", { for: "merge-into" }, t("merge_into")), into,
      h("button", { type: "button", "data-action": "merge", onclick: act("merge") }, t("merge"))) : null);
}

function renderDetails(feature) {
  const p = feature.properties;
  const body = $("details-body");
  const focused = document.activeElement?.id;
  const noteValue = $("action-note")?.value || "";
  body.replaceChildren(
    h("h2", { id: "details-title" }, t(`type_${kindOf(p)}`), p.subtype ? ` (${p.subtype})` : ""),
    h("dl", {},
      ...(p.measure ? [h("dt", {}, t("measure")),
        h("dd", { id: "details-measure" }, measureLines(p.measure).map((line) => h("div", {}, line)))] : []),
      h("dt", {}, t("description")), h("dd", { id: "details-description" }, p.description || t("no_description")),
      h("dt", {}, t("source")), h("dd", { id: "details-source" }, sourceNames(p).join(", ") || "operator"),
      h("dt", {}, t("street")), h("dd", {}, p.street || "—"),
      h("dt", {}, t("commune")), h("dd", {}, communeName(p.commune) || "—"),
      h("dt", {}, t("f_status")), h("dd", {}, t(`status_${p.status}`)),
      h("dt", {}, t("verification")), h("dd", { id: "details-verification" }, t(`verification_${p.verification}`)),
      h("dt", {}, t("direction")), h("dd", {}, p.direction === "ONE_DIRECTION" ? t("one_direction") : t("both_directions")),
      h("dt", {}, t("validity")), h("dd", {}, validity(p).map((line) => h("div", {}, line)))),
    h("h3", {}, t("sources")), h("ul", { class: "sources" }, sourceRows(p)),
    h("h3", {}, t("publication")), h("ul", { class: "publication", id: "details-publication" }, publicationRows(p)),
    h("p", { class: "meta" }, `id ${feature.id} · v${p.version}`),
    actionBar(feature));
  $("action-note").value = noteValue;
  if (focused) document.getElementById(focused)?.focus();
}

async function runAction(id, action, note, into) {
  const body = { action };
  if (note) body.note = note;
  if (action === "merge") body.into = into;
  try {
    const done = await api(`/api/v1/events/${encodeURIComponent(id)}/actions`, { method: "POST", body });
    toast(t("action_done", t(action), done.by));
  } catch (error) {
    toast(`${t("action_failed")}: ${error.message}`);
  }
}

// ------------------------------------------------------------------ map

function webglAvailable() {
  const canvas = document.createElement("canvas");
  return Boolean(canvas.getContext("webgl2") || canvas.getContext("webgl"));
}

/** The configured production basemap: {url, kind: "raster" | "style", attribution}, or null (offline). */
function basemap() {
  return state.config.basemap || null;
}

/**
 * The offline background, drawn from the hub's own open data: MEL's communes (boundaries and names) and
 * the road network with its street names. Over a raster basemap only the commune boundaries are kept
 * (the tiles have their own streets and names); a style JSON basemap replaces this style (see initMap).
 */
function baseStyle() {
  const absolute = (path) => new URL(path, location.href).href;
  const config = state.config;
  const tiles = basemap()?.kind === "raster" ? basemap() : null;
  const sources = {
    communes: { type: "geojson", data: absolute("/api/v1/communes.geojson"), attribution: config.communes_attribution },
  };
  const layers = [{ id: "background", type: "background", paint: { "background-color": tiles ? "#ffffff" : "#dcd8cf" } }];
  if (tiles) {
    sources.tiles = { type: "raster", tiles: [tiles.url], tileSize: 256, maxzoom: 19, attribution: tiles.attribution };
    layers.push({ id: "tiles", type: "raster", source: "tiles" });
  } else {
    sources.network = { type: "geojson", data: absolute("/api/v1/network.geojson"), attribution: config.attribution };
    layers.push({ id: "communes-fill", type: "fill", source: "communes", filter: ["==", ["get", "kind"], "area"],
      paint: { "fill-color": "#eeebe4" } });
  }
  layers.push(...communeLines());
  if (!tiles) layers.push(...networkLayers(), ...communeLabels());
  return { version: 8, glyphs: `${location.origin}${config.glyphs}`, sources, layers };
}

function communeLines() {
  return [{ id: "commune-lines", type: "line", source: "communes", filter: ["==", ["get", "kind"], "area"],
    paint: { "line-color": "#6f5b8c", "line-opacity": 0.75, "line-dasharray": [4, 2],
      "line-width": ["interpolate", ["linear"], ["zoom"], 9, 0.8, 14, 2] } }];
}

function communeLabels() {
  return [{ id: "commune-labels", type: "symbol", source: "communes", filter: ["==", ["get", "kind"], "label"],
    layout: { "text-field": ["get", "name"], "text-font": FONT_COMMUNES, "text-transform": "uppercase",
      "text-letter-spacing": 0.06, "text-max-width": 8, "symbol-sort-key": ["-", ["get", "population"]],
      "text-size": ["interpolate", ["linear"], ["zoom"], 9, 10, 12, 13, 16, 17] },
    paint: { "text-color": "#4b3b63", "text-halo-color": "#ffffff", "text-halo-width": 2,
      "text-opacity": ["interpolate", ["linear"], ["zoom"], 14, 1, 16.5, 0.45] } }];
}

function networkLayers() {
  const major = ["in", ["get", "highway"], ["literal", ["motorway", "trunk", "primary", "secondary", "trunk_link", "primary_link"]]];
  return [
    { id: "roads-casing", type: "line", source: "network", minzoom: 14, layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": "#b3ac9e", "line-width": ["interpolate", ["linear"], ["zoom"], 14, 3.4, 18, 16.5] } },
    { id: "roads-minor", type: "line", source: "network", filter: ["!", major],
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": ["step", ["zoom"], "#a39d91", 14, "#ffffff"],
        "line-width": ["interpolate", ["linear"], ["zoom"], 12, 0.8, 14, 2, 18, 14] } },
    { id: "roads-major", type: "line", source: "network", filter: major,
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": ["step", ["zoom"], "#c9a45c", 14, "#fbe3a4"],
        "line-width": ["interpolate", ["linear"], ["zoom"], 12, 1.4, 14, 2.6, 18, 15] } },
    { id: "street-names", type: "symbol", source: "network", minzoom: 13.5, filter: ["has", "name"],
      layout: { "symbol-placement": "line", "text-field": ["get", "name"], "text-font": FONT_STREETS,
        "text-size": ["interpolate", ["linear"], ["zoom"], 13.5, 10, 16, 12, 19, 15], "text-max-angle": 35,
        "symbol-spacing": 220, "text-padding": 2 },
      paint: { "text-color": "#2b2b2b", "text-halo-color": "#ffffff", "text-halo-width": 1.6 } },
  ];
}

function colourBy(table, property, fallback) {
  return ["match", ["get", property], ...Object.entries(table).flat(), fallback];
}

function addOverlayLayers(map) {
  const empty = { type: "FeatureCollection", features: [] };
  for (const id of ["events", "closures", "draft", "snapped"]) map.addSource(id, { type: "geojson", data: empty });
  // under the street and commune names, so a closed street keeps its name readable
  const under = map.getLayer("street-names") ? "street-names" : undefined;
  const add = (layer, before = under) => map.addLayer(layer, before);
  const lines = ["!=", ["geometry-type"], "Point"];
  const byType = colourBy(TYPE_COLOURS, "type", TYPE_COLOURS.other);
  const bySource = colourBy(SOURCE_COLOURS, "family", OTHER_SOURCE_COLOUR);
  const offset = ["coalesce", ["get", "offset"], 0];
  add({ id: "jams", type: "line", source: "events", filter: ["all", lines, ["==", ["get", "type"], "jam"]],
    layout: { "line-cap": "round" },
    paint: { "line-color": TYPE_COLOURS.jam, "line-width": 7, "line-opacity": 0.45, "line-offset": offset } });
  const notJam = ["!=", ["get", "type"], "jam"];
  add({ id: "event-casing", type: "line", source: "events", filter: ["all", lines, notJam],
    layout: { "line-cap": "round" }, paint: { "line-color": bySource, "line-width": 9, "line-offset": offset } });
  add({ id: "event-lines", type: "line", source: "events", filter: ["all", lines, notJam],
    layout: { "line-cap": "round" }, paint: { "line-color": byType, "line-width": 5, "line-offset": offset,
      "line-dasharray": ["case", ["==", ["get", "status"], "planned"], ["literal", [2, 1]], ["literal", [1, 0]]] } });
  add({ id: "event-points", type: "circle", source: "events", filter: ["==", ["geometry-type"], "Point"],
    paint: { "circle-color": byType, "circle-radius": 7, "circle-stroke-color": bySource, "circle-stroke-width": 3 } });
  add({ id: "selected-line", type: "line", source: "events",
    filter: ["all", lines, ["==", ["get", "selected"], true]],
    paint: { "line-color": "#00e5ff", "line-width": 14, "line-opacity": 0.5, "line-offset": offset } }, "event-casing");
  add({ id: "closure-lines", type: "line", source: "closures",
    layout: { "line-cap": "round" }, paint: { "line-color": byType, "line-width": 5 } });
  add({ id: "snapped-line", type: "line", source: "snapped",
    layout: { "line-cap": "round" }, paint: { "line-color": "#1e8449", "line-width": 8, "line-opacity": 0.8 } });
  add({ id: "draft-line", type: "line", source: "draft", filter: lines,
    paint: { "line-color": "#1b1b1b", "line-width": 2, "line-dasharray": [2, 2] } }, undefined);
  add({ id: "draft-points", type: "circle", source: "draft", filter: ["==", ["geometry-type"], "Point"],
    paint: { "circle-color": "#ffffff", "circle-radius": 5, "circle-stroke-color": "#1b1b1b", "circle-stroke-width": 2 } },
  undefined);
}

/** The events under a click: a small box around it, widened by the widest side-by-side offset drawn, so every
 * line of a group on one stretch of road is under a click on the road itself (the chooser sorts them out). */
function eventsAt(point, radius = 8 + (state.widestOffset || 0)) {
  const box = [[point.x - radius, point.y - radius], [point.x + radius, point.y + radius]];
  const ids = [];
  for (const hit of state.map.queryRenderedFeatures(box, { layers: EVENT_LAYERS })) {
    if (!ids.includes(hit.properties.id) && state.events.has(hit.properties.id)) ids.push(hit.properties.id);
  }
  return ids;
}

function onMapClick(event) {
  if (state.mode === "draw") {
    addDraftPoint([round6(event.lngLat.lng), round6(event.lngLat.lat)]);
    return;
  }
  closeChooser();
  const ids = eventsAt(event.point);
  if (ids.length === 1) select(ids[0]);
  else if (ids.length > 1) openChooser(ids, event.lngLat);
}

/** A small popup listing the overlapping events under the click; picking one opens its details. */
function openChooser(ids, lngLat) {
  const pick = (id) => () => {
    closeChooser();
    select(id);
  };
  const items = ids.map((id) => {
    const feature = state.events.get(id);
    const p = feature.properties;
    return h("li", {}, h("button", { type: "button", class: "pick", "data-id": id, onclick: pick(id) },
      h("span", { class: "swatch", style: `background:${TYPE_COLOURS[p.type] || TYPE_COLOURS.other}` }),
      h("span", { class: "main" }, h("strong", {}, headline(feature)),
        h("span", { class: "desc" }, p.description || t("no_description")),
        h("span", { class: "meta" }, `${t(`status_${p.status}`)} · ${sourceNames(p).join(", ") || "operator"}`))));
  });
  const content = h("div", { class: "chooser", id: "chooser", role: "dialog", "aria-label": t("pick_title", ids.length) },
    h("p", { class: "chooser-title" }, t("pick_title", ids.length)), h("ul", {}, items));
  content.addEventListener("keydown", (event) => { if (event.key === "Escape") closeChooser(); });
  state.chooser = new state.maplibre.Popup({ maxWidth: "360px", focusAfterOpen: false, className: "chooser-popup" })
    .setLngLat(lngLat).setDOMContent(content).addTo(state.map);
  content.querySelector("button.pick")?.focus();
}

function closeChooser() {
  state.chooser?.remove();
  state.chooser = null;
}

async function initMap() {
  if (!webglAvailable()) {
    noMap();
    return;
  }
  try {
    const maplibregl = await import("/map/vendor/maplibre-gl.mjs");
    const bbox = state.config.bbox || [2.96, 50.6, 3.12, 50.67];
    state.maplibre = maplibregl;
    const styleBasemap = basemap()?.kind === "style";
    const map = new maplibregl.Map({
      container: "map", style: styleBasemap ? basemap().url : baseStyle(), bounds: [[bbox[0], bbox[1]], [bbox[2], bbox[3]]],
      fitBoundsOptions: { padding: 20 }, attributionControl: { compact: false }, doubleClickZoom: false,
    });
    state.map = map;
    window.trafficHubMap = map; // for the browser tests and the console
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    map.on("load", () => {
      if (styleBasemap) addCommuneBoundaries(map);
      addOverlayLayers(map);
      if (canSeeEvents()) installReplay(map, { api, colours: TYPE_COLOURS }); // the day replay (replay.js)
      state.mapReady = true;
      document.body.dataset.map = "ready";
      refreshMapData();
    });
    map.on("click", onMapClick);
    for (const layer of EVENT_LAYERS) {
      map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
      map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
    }
  } catch (error) {
    console.warn("map unavailable", error);
    noMap();
  }
}

/** Over a style JSON basemap: the MEL commune boundaries on top of it (its own names and streets stay). */
function addCommuneBoundaries(map) {
  const url = new URL("/api/v1/communes.geojson", location.href).href;
  map.addSource("communes", { type: "geojson", data: url, attribution: state.config.communes_attribution });
  for (const layer of communeLines()) map.addLayer(layer);
}

function noMap() {
  document.body.dataset.map = "none";
  $("nomap").hidden = false;
  $("nomap").textContent = t("no_webgl");
}

function flyTo(geometry) {
  if (!state.mapReady || !geometry) return;
  const points = geometry.type === "Point" ? [geometry.coordinates]
    : geometry.type === "LineString" ? geometry.coordinates : geometry.coordinates.flat();
  const lons = points.map((c) => c[0]);
  const lats = points.map((c) => c[1]);
  state.map.fitBounds([[Math.min(...lons), Math.min(...lats)], [Math.max(...lons), Math.max(...lats)]],
    { padding: 120, maxZoom: 17, duration: 400 });
}

function refreshMapData() {
  if (!state.mapReady) return;
  const shown = state.mode === "events" ? visibleEvents() : [];
  const offsets = sideBySide(shown);
  state.widestOffset = Math.max(0, ...[...offsets.values()].map(Math.abs));
  const features = shown.map((f) => ({
    type: "Feature", geometry: f.geometry,
    properties: { id: f.id, type: kindOf(f.properties), status: f.properties.status,
      family: eventFamily(f.properties), selected: f.id === state.selected, offset: offsets.get(f.id) || 0 },
  }));
  state.map.getSource("events").setData({ type: "FeatureCollection", features });
  state.map.setLayoutProperty("jams", "visibility", $("f-jams").checked ? "visible" : "none");
  const closures = state.mode === "draw" ? state.closures.filter((c) => c.geometry && !GONE.has(c.status))
    .map((c) => ({ type: "Feature", geometry: c.geometry, properties: { id: c.id, type: c.type } })) : [];
  state.map.getSource("closures").setData({ type: "FeatureCollection", features: closures });
  refreshDraftLayers();
}

// ------------------------------------------------------------------ overlapping events, side by side

const CELL = [0.00015, 0.0001]; // ≈ 11 m × 11 m at Lille's latitude

/** The grid cells a line passes through (sampled every ~5 m), or a point's cell. */
function cells(geometry) {
  const parts = geometry.type === "LineString" ? [geometry.coordinates]
    : geometry.type === "MultiLineString" ? geometry.coordinates
      : geometry.type === "Point" ? [[geometry.coordinates]] : [];
  const out = new Set();
  for (const line of parts) {
    for (let i = 0; i < line.length; i += 1) {
      const [x0, y0] = line[i];
      const [x1, y1] = line[i + 1] || line[i];
      const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0) / CELL[0], Math.abs(y1 - y0) / CELL[1]) * 2));
      for (let k = 0; k <= steps; k += 1) {
        const x = x0 + ((x1 - x0) * k) / steps;
        const y = y0 + ((y1 - y0) * k) / steps;
        out.add(`${Math.floor(x / CELL[0])}:${Math.floor(y / CELL[1])}`);
      }
    }
  }
  return out;
}

/**
 * Line events that run along the same stretch of road (sharing at least 3 cells, i.e. ~30 m, or 2 that are
 * half of the shorter one; a crossing street shares one or two) are grouped, and each gets a pixel offset so the
 * group is drawn side by side, in a stable order (by id), centred on the road.
 */
function sideBySide(features) {
  const lines = features.filter((f) => f.geometry && f.geometry.type !== "Point");
  const cellSets = lines.map((f) => cells(f.geometry));
  const byCell = new Map();
  cellSets.forEach((set, i) => { for (const c of set) byCell.set(c, [...(byCell.get(c) || []), i]); });
  const shared = new Map();
  for (const owners of byCell.values()) {
    for (let a = 0; a < owners.length; a += 1) {
      for (let b = a + 1; b < owners.length; b += 1) {
        const key = `${owners[a]}:${owners[b]}`;
        shared.set(key, (shared.get(key) || 0) + 1);
      }
    }
  }
  const parent = lines.map((_, i) => i);
  const find = (i) => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  for (const [key, count] of shared) {
    const [a, b] = key.split(":").map(Number);
    if (count >= 3 || (count === 2 && count * 2 >= Math.min(cellSets[a].size, cellSets[b].size))) {
      parent[find(a)] = find(b);
    }
  }
  const groups = new Map();
  lines.forEach((f, i) => groups.set(find(i), [...(groups.get(find(i)) || []), f.id]));
  const offsets = new Map();
  for (const ids of groups.values()) {
    ids.sort();
    ids.forEach((id, k) => offsets.set(id, (k - (ids.length - 1) / 2) * OFFSET_STEP_PX));
  }
  return offsets;
}

function renderLegend() {
  const entries = ["closure", "lane_closure", "roadworks", "accident", "hazard", "jam", ...MEASURE_TYPES]
    .map((type) => h("li", {}, h("span", { class: "swatch", style: `background:${TYPE_COLOURS[type]}` }), t(`type_${type}`)));
  const sources = Object.entries(SOURCE_COLOURS)
    .map(([name, colour]) => h("li", {}, h("span", { class: "swatch ring", style: `border-color:${colour}` }), name));
  $("legend").replaceChildren(h("ul", {}, entries), h("ul", {}, sources));
}

// ------------------------------------------------------------------ road-works drawing

const round6 = (x) => Math.round(x * 1e6) / 1e6;

function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function isoWithOffset(local) {
  const date = new Date(local);
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return `${local.length === 16 ? `${local}:00` : local}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

function newReference() {
  const stamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `MAP-${stamp}-${Math.random().toString(36).slice(2, 6).toUpperCase()}`;
}

function setUpDrawForm() {
  const communes = state.who.communes || [];
  $("my-communes").textContent = `${t("your_communes")} : ${communes.length ? communes.map(communeName).join(", ") : t("all")}`;
  $("d-schedule").replaceChildren(...DAYS.map((day) => h("label", {},
    h("span", { "data-i18n": day }, t(day)), h("input", { id: `d-day-${day}`, "data-day": day, placeholder: "08:00-18:00" }))));
  const options = (id, values, label) => $(id).replaceChildren(...values.map((v) => h("option", { value: v }, label(v))));
  options("d-kinds", VEHICLE_KINDS, (v) => t(`kind_${v}`));
  options("d-critair", CRITAIR, (v) => (v === "unclassified" ? "Crit'Air —" : `Crit'Air ${v.replace("critair", "")}`));
  options("d-except", EXEMPTIONS, (v) => t(`except_${v}`));
  $("d-type").addEventListener("change", showMeasureBoxes);
  resetDraftForm();
  $("d-coords").addEventListener("input", () => {
    state.draft = parseCoords($("d-coords").value);
    refreshDraftLayers();
    schedulePreview();
  });
  $("draw-form").addEventListener("input", (event) => {
    if (event.target.id !== "d-coords") schedulePreview();
  });
  $("draw-undo").addEventListener("click", () => setDraft(state.draft.slice(0, -1)));
  $("draw-clear").addEventListener("click", () => setDraft([]));
  $("draw-form").addEventListener("submit", submitClosure);
}

function resetDraftForm() {
  const start = new Date();
  start.setMinutes(0, 0, 0);
  start.setHours(start.getHours() + 1);
  $("d-reference").value = newReference();
  $("d-description").value = "";
  $("d-starts").value = localInput(start);
  $("d-ends").value = localInput(new Date(start.getTime() + 24 * 3600e3));
  $("d-lanes-on").checked = false;
  for (const day of DAYS) $(`d-day-${day}`).value = "";
  $("d-daily").value = "";
  $("d-except-weekends").checked = false;
  $("d-except-holidays").checked = false;
  $("d-type").value = "road_closed";
  for (const [name] of LIMITS) $(`d-${name}`).value = "";
  for (const id of ["d-kinds", "d-critair", "d-except"]) for (const option of $(id).options) option.selected = false;
  showMeasureBoxes();
  setDraft([]);
}

/** Show the fields of the chosen measure type only (speed, vehicles, the closure a detour goes around). */
function showMeasureBoxes() {
  const type = $("d-type").value;
  for (const box of document.querySelectorAll("#draw-form .measure-box")) {
    box.hidden = !box.dataset.for.split(" ").includes(type);
  }
  if (type === "lane_closed") $("d-lanes-on").checked = true;
  $("d-vehicles-legend").textContent = t(type === "detour" ? "vehicles_for" : "vehicles");
  const targets = state.closures.filter((c) => DETOURABLE.has(c.type));
  $("d-detour-of").replaceChildren(...(targets.length ? targets.map((c) => h("option", { value: c.id },
    `${t(`m_${c.type}`)} · ${c.reference} · ${c.normalised?.street || c.street || c.description}`))
    : [h("option", { value: "" }, t("no_target"))]));
}

function selected(id) {
  return [...$(id).selectedOptions].map((option) => option.value);
}

/** The measure's type and values from the form (added to the closure fields by `closureBody`). */
function measureFields(body) {
  let type = $("d-type").value;
  if (type === "road_closed" && body.lanes && body.lanes.closed < body.lanes.total) type = "lane_closed";
  const out = { type };
  if (type === "speed_limit") out.speed_kmh = Number($("d-speed").value);
  if (type === "detour") out.detour_of = $("d-detour-of").value;
  if (type === "vehicle_restriction" || type === "detour") {
    const vehicles = {};
    for (const [name] of LIMITS) if ($(`d-${name}`).value !== "") vehicles[name] = Number($(`d-${name}`).value);
    const lists = { kinds: selected("d-kinds"), critair: selected("d-critair"), except: selected("d-except") };
    for (const [name, values] of Object.entries(lists)) if (values.length) vehicles[name] = values;
    if (Object.keys(vehicles).length) out.vehicles = vehicles;
  }
  return out;
}

function parseCoords(text) {
  return text.split(/\n+/).map((line) => line.split(/[,;\s]+/).filter(Boolean).map(Number))
    .filter((pair) => pair.length === 2 && pair.every(Number.isFinite));
}

function setDraft(points) {
  state.draft = points;
  $("d-coords").value = points.map((p) => `${p[0]},${p[1]}`).join("\n");
  refreshDraftLayers();
  schedulePreview();
}

function addDraftPoint(point) {
  setDraft([...state.draft, point]);
}

function refreshDraftLayers() {
  if (!state.mapReady) return;
  const drawing = state.mode === "draw";
  const points = drawing ? state.draft : [];
  const features = points.map((c) => ({ type: "Feature", geometry: { type: "Point", coordinates: c }, properties: {} }));
  if (points.length > 1) features.push({ type: "Feature", geometry: { type: "LineString", coordinates: points }, properties: {} });
  state.map.getSource("draft").setData({ type: "FeatureCollection", features });
  const snapped = drawing && state.preview?.geometry ? [{ type: "Feature", geometry: state.preview.geometry, properties: {} }] : [];
  state.map.getSource("snapped").setData({ type: "FeatureCollection", features: snapped });
}

function closureBody() {
  const body = {
    reference: $("d-reference").value.trim(),
    description: $("d-description").value.trim(),
    geometry: { type: "LineString", coordinates: state.draft },
    direction: $("d-direction").value,
    cause: $("d-cause").value,
    starts_at: isoWithOffset($("d-starts").value),
    ends_at: isoWithOffset($("d-ends").value),
  };
  if ($("d-lanes-on").checked) {
    body.lanes = { closed: Number($("d-lanes-closed").value), total: Number($("d-lanes-total").value),
      side: $("d-lanes-side").value };
  }
  const schedule = {};
  for (const day of DAYS) {
    const windows = $(`d-day-${day}`).value.split(/[,;\s]+/).filter(Boolean);
    if (windows.length) schedule[day] = windows;
  }
  const daily = $("d-daily").value.split(/[,;\s]+/).filter(Boolean);
  if (daily.length) schedule.daily = daily;
  const skip = { weekends: $("d-except-weekends").checked, public_holidays: $("d-except-holidays").checked };
  if (Object.keys(schedule).length && (skip.weekends || skip.public_holidays)) schedule.except = skip;
  if (Object.keys(schedule).length) body.schedule = schedule;
  return { ...body, ...measureFields(body) };
}

function schedulePreview() {
  clearTimeout(state.previewTimer);
  state.previewTimer = setTimeout(runPreview, 250);
}

async function runPreview() {
  const seq = ++state.previewSeq;
  if (state.draft.length < 2 || !$("d-starts").value || !$("d-ends").value) {
    state.preview = null;
    showMatch(null, state.draft.length ? t("need_points") : "");
    refreshDraftLayers();
    return;
  }
  const body = closureBody();
  body.description ||= "—";
  for (const name of ["reference", "type", "speed_kmh", "vehicles", "detour_of"]) delete body[name]; // a closure preview
  try {
    const preview = await api("/api/v1/closures/preview", { method: "POST", body });
    if (seq !== state.previewSeq) return;
    state.preview = preview;
    showMatch(preview, "");
  } catch (error) {
    if (seq !== state.previewSeq) return;
    state.preview = null;
    showMatch(null, error.message);
  }
  refreshDraftLayers();
}

function showMatch(preview, problem) {
  const box = $("match");
  $("draw-error").textContent = problem;
  $("draw-submit").disabled = !preview;
  if (!preview) {
    box.replaceChildren();
    return;
  }
  const streets = preview.streets?.length ? preview.streets : [preview.street].filter(Boolean);
  const length = (preview.segments || []).reduce((sum, s) => sum + (s.length_m || 0), 0);
  box.replaceChildren(
    h("div", {}, h("strong", {}, `${t("matched")} : `), h("span", { id: "match-street" }, streets.join(", ") || "—")),
    h("div", { class: "meta" }, (preview.communes || []).map(communeName).join(", "),
      length ? ` · ${t("length")} ${Math.round(length)} m` : ""),
    h("div", { id: "match-waze", class: preview.waze_ready ? "badge ok" : "badge warn" },
      preview.waze_ready ? `✓ ${t("waze_ready")}` : `✗ ${t("not_waze_ready")}`),
    h("ul", { class: "withheld" }, (preview.withheld || []).map((r) => h("li", {}, r))));
}

async function submitClosure(event) {
  event.preventDefault();
  if (state.draft.length < 2) {
    $("draw-error").textContent = t("need_points");
    return;
  }
  try {
    const closure = await api("/api/v1/measures", { method: "POST", body: closureBody() });
    const conflicts = (closure.warnings || []).filter((w) => w.code === "detour-conflict").map((w) => w.message);
    toast([t("submitted", closure.reference), ...conflicts.map((m) => `${t("detour_conflict")} : ${m}`)].join(" — "));
    resetDraftForm();
    await loadClosures();
  } catch (error) {
    $("draw-error").textContent = error.message;
  }
}

async function loadClosures() {
  const items = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "500" });
    if (cursor) query.set("cursor", cursor);
    const page = await api(`/api/v1/measures?${query}`);
    items.push(...page.items);
    cursor = page.next;
  } while (cursor);
  state.closures = items.filter((c) => !GONE.has(c.status));
  renderClosures();
  showMeasureBoxes();
  refreshMapData();
}

function renderClosures() {
  $("closure-list").replaceChildren(...state.closures.map((c) => h("li", { class: "item", "data-id": c.id },
    h("span", { class: "swatch", style: `background:${TYPE_COLOURS[c.type] || TYPE_COLOURS.closure}` }),
    h("span", { class: "main" },
      h("strong", {}, c.reference, " · ", t(`m_${c.type}`), " · ", c.normalised?.street || c.street || c.description),
      h("span", { class: "meta" }, measureLines(c).slice(1).join(" · ")),
      h("span", { class: "meta" }, `${t(`status_${c.status}`)} · ${when(c.starts_at)} → ${when(c.ends_at)} · `,
        Object.entries(c.publication || {}).map(([feed, p]) => `${feed}: ${t(p.status)}`).join(", "))),
    h("button", { type: "button", class: "small", onclick: () => deleteClosure(c) }, t("delete")))));
}

async function deleteClosure(closure) {
  try {
    await api(`/api/v1/measures/${encodeURIComponent(closure.id)}`, { method: "DELETE" });
    toast(t("deleted"));
    await loadClosures();
  } catch (error) {
    toast(error.message);
  }
}

// ------------------------------------------------------------------ start-up

function wireUi() {
  const switchLanguage = () => {
    setLanguage(language() === "fr" ? "en" : "fr", { remember: true });
    showLanguageSwitch();
    renderLegend();
    if (state.who) render();
  };
  $("lang").addEventListener("click", switchLanguage);
  $("login-lang").addEventListener("click", switchLanguage);
  $("logout").addEventListener("click", () => {
    localStorage.removeItem("traffic-hub-key");
    location.reload();
  });
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("key-input").value.trim());
  });
  $("login").addEventListener("cancel", (event) => event.preventDefault());
  $("filters").addEventListener("change", () => scheduleRender());
  $("event-list").addEventListener("keydown", onListKey);
  $("details-close").addEventListener("click", closeDetails);
  $("details").addEventListener("keydown", (event) => { if (event.key === "Escape") closeDetails(); });
  for (const button of document.querySelectorAll("#modes button")) {
    button.addEventListener("click", () => setMode(button.dataset.mode));
  }
}

/** The switch names the other language: "EN" in the bar, "English" in the key dialog (and back). */
function showLanguageSwitch() {
  $("lang").textContent = language() === "fr" ? "EN" : "FR";
  $("login-lang").textContent = language() === "fr" ? "English" : "Français";
}

async function main() {
  setLanguage(initialLanguage());
  showLanguageSwitch();
  applyLabels(document);
  renderLegend();
  wireUi();
  state.config = await fetch("/map/config.json").then((r) => r.json());
  const key = keyFromHash() || localStorage.getItem("traffic-hub-key");
  if (key) await signIn(key);
  else askForKey();
}

main();
