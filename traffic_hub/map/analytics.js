// The analytics page: what the archive says of the past (issue 19). Tables, a canvas heat map and SVG bars,
// no chart library. Reads /api/v1/analytics/*; the key is the map's (same browser storage).

import { initialLanguage, language, locale, setLanguage } from "/map/static/i18n.js";

const LABELS = {
  fr: {
    title: "Analyses du trafic", back: "← Carte", key: "Clé d'API", sign_in: "Entrer", from: "Du", to: "Au",
    commune: "Commune", all: "Toutes", radius: "Rayon (m)", weeks: "Semaines de référence", refresh: "Actualiser",
    reality: "Vérification terrain (Waze, usage interne)",
    reality_help: "Une fermeture est signalée quand, pendant qu'elle est active, au moins deux rapports Waze montrent du trafic sur la voie fermée (bouchon qui roule, ou alerte d'usager sur place). Données Waze : jamais publiées.",
    impact: "Impact des fermetures",
    impact_help: "Retard moyen des bouchons Waze à proximité, par heure active, comparé aux mêmes heures des semaines précédentes.",
    incidents: "Incidents par heure de la semaine", type: "Type", durations: "Durées",
    jams: "Bouchons Waze par tronçon",
    jams_help: "Retard moyen (s) par heure de la semaine sur la période, et médiane des semaines précédentes.",
    none: "Rien sur cette période.", flagged: "Signalée", not_flagged: "Conforme", evidence: "Indices",
    reference: "Référence", street: "Rue", hours: "Heures actives", delay: "Retard (s/h)", baseline: "Référence (s/h)",
    extra: "Écart (s/h)", ratio: "Rapport", check: "Terrain", last_seen: "Dernier indice", why: "Motif",
    count: "Nombre", median: "Médiane", p90: "90e centile", mean: "Moyenne", segment: "Tronçon", heading: "Sens",
    total_delay: "Retard cumulé", total_baseline: "Référence cumulée", all_types: "Tous types",
    days: ["lun", "mar", "mer", "jeu", "ven", "sam", "dim"], forbidden: "Réservé aux opérateurs.",
    bad_key: "Clé inconnue.", detail: (ref) => `Tronçons autour de ${ref}`, length: "Longueur (m)",
    buckets: ["< 15 min", "15 min–1 h", "1–4 h", "4–24 h", "1–7 j", "≥ 7 j"],
    moving_traffic: (e) => `trafic qui roule à ${num(e.speed_kmh)} km/h sur la voie fermée`,
    driver_alert: (e) => `alerte ${e.waze_type} d'un usager sur la voie fermée`,
    type_closure: "Fermeture", type_lane_closure: "Voies fermées", type_roadworks: "Travaux", type_accident: "Accident",
    type_hazard: "Danger", type_jam: "Bouchon", type_weather: "Météo", type_police: "Police", type_other: "Autre",
  },
  en: {
    title: "Traffic analytics", back: "← Map", key: "API key", sign_in: "Sign in", from: "From", to: "To",
    commune: "Commune", all: "All", radius: "Radius (m)", weeks: "Baseline weeks", refresh: "Refresh",
    reality: "Reality check (Waze, internal)",
    reality_help: "A closure is flagged when, while it is active, at least two Waze reports show traffic on the closed road (a moving jam, or a driver's alert on it). Waze data: never published.",
    impact: "Closure impact",
    impact_help: "Mean delay of nearby Waze jams per active hour, against the same hours in the weeks before.",
    incidents: "Incidents per hour of week", type: "Type", durations: "Durations",
    jams: "Waze jams per road segment",
    jams_help: "Mean delay (s) per hour of week over the period, and the median of the weeks before.",
    none: "Nothing in this period.", flagged: "Flagged", not_flagged: "Consistent", evidence: "Evidence",
    reference: "Reference", street: "Street", hours: "Active hours", delay: "Delay (s/h)", baseline: "Baseline (s/h)",
    extra: "Extra (s/h)", ratio: "Ratio", check: "Reality", last_seen: "Last evidence", why: "Why",
    count: "Count", median: "Median", p90: "90th pct", mean: "Mean", segment: "Segment", heading: "Heading",
    total_delay: "Total delay", total_baseline: "Total baseline", all_types: "All types",
    days: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], forbidden: "Operators only.",
    bad_key: "Unknown key.", detail: (ref) => `Segments around ${ref}`, length: "Length (m)",
    buckets: ["< 15 min", "15 min–1 h", "1–4 h", "4–24 h", "1–7 d", "≥ 7 d"],
    moving_traffic: (e) => `traffic moving at ${num(e.speed_kmh)} km/h on the closed road`,
    driver_alert: (e) => `a ${e.waze_type} alert from a driver on the closed road`,
    type_closure: "Closure", type_lane_closure: "Lane closure", type_roadworks: "Road works", type_accident: "Accident",
    type_hazard: "Hazard", type_jam: "Jam", type_weather: "Weather", type_police: "Police", type_other: "Other",
  },
};
const BUCKETS = ["lt_15min", "lt_1h", "lt_4h", "lt_1d", "lt_7d", "ge_7d"];
const state = { key: null, who: null, communes: {}, data: {} };
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function a(key, ...args) {
  const value = LABELS[language()]?.[key] ?? LABELS.fr[key];
  return typeof value === "function" ? value(...args) : value ?? key;
}

function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function labelAll() {
  for (const el of document.querySelectorAll("[data-a]")) el.textContent = a(el.dataset.a);
  $("lang").textContent = language() === "fr" ? "EN" : "FR";
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${state.key}` } });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(data?.detail || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

const num = (x, digits = 0) => (x === null || x === undefined ? "—"
  : Number(x).toLocaleString(locale(), { maximumFractionDigits: digits }));
const duration = (s) => (s === null || s === undefined ? "—" : s < 3600 ? `${Math.round(s / 60)} min`
  : s < 86400 ? `${(s / 3600).toFixed(1)} h` : `${(s / 86400).toFixed(1)} j`);
const when = (iso) => (iso ? new Date(iso).toLocaleString(locale(), { dateStyle: "short", timeStyle: "short" }) : "—");

function table(headers, rows, { onRow } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, a("none"));
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((cells, i) => h("tr", onRow ? { tabindex: 0, class: "clickable", onclick: () => onRow(i),
      onkeydown: (e) => { if (e.key === "Enter") onRow(i); } } : {}, cells.map((c) => h("td", {}, c))))));
}

// ------------------------------------------------------------------ the period

function localDate(date) {
  const d = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 10);
}

function dayStart(value) {
  return new Date(`${value}T00:00:00`).toISOString(); // local midnight, as an instant
}

function query(extra = {}) {
  const params = new URLSearchParams({ from: dayStart($("p-from").value), to: dayStart($("p-to").value), ...extra });
  const commune = $("p-commune").value;
  if (commune && !("radius_m" in extra) && !("city" in extra)) params.set("commune", commune);
  return params.toString();
}

function defaultPeriod() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const today = new Date();
  $("p-to").value = hash.get("to") || localDate(new Date(today.getTime() + 86400000));
  $("p-from").value = hash.get("from") || localDate(new Date(today.getTime() - 27 * 86400000));
}

// ------------------------------------------------------------------ sections

async function loadAll() {
  $("period-error").textContent = "";
  const operator = ["operator", "admin"].includes(state.who.role);
  const radius = $("p-radius").value;
  const weeks = $("p-weeks").value;
  const jobs = {
    reality: api(`/api/v1/analytics/reality-check?${query()}`),
    impact: api(`/api/v1/analytics/closures/impact?${query({ radius_m: radius, weeks })}`),
    incidents: api(`/api/v1/analytics/incidents?${query()}`),
    durations: api(`/api/v1/analytics/durations?${query()}`),
    jams: operator ? api(`/api/v1/analytics/jams?${query({ weeks, limit: 15 })}`) : Promise.resolve(null),
  };
  for (const [name, job] of Object.entries(jobs)) {
    try {
      state.data[name] = await job;
    } catch (error) {
      state.data[name] = null;
      $("period-error").textContent = `${a(name)} : ${error.message}`;
    }
  }
  $("s-jams").hidden = !operator;
  renderAll();
  document.body.dataset.analytics = "ready";
}

function renderAll() {
  renderReality();
  renderImpact();
  renderIncidents();
  renderDurations();
  renderJams();
}

function flagCell(check) {
  if (!check) return "—";
  return h("span", { class: check.flagged ? "flag on" : "flag off" }, check.flagged ? `⚑ ${a("flagged")}` : a("not_flagged"));
}

function renderReality() {
  const items = state.data.reality?.items || [];
  $("reality").replaceChildren(table(
    [a("reference"), a("street"), a("evidence"), a("last_seen"), a("why")],
    items.map((i) => [i.closure.reference || i.closure_id, i.closure.street || "", flagCell(i),
      when(i.last_seen), why(i.evidence.at(-1))]),
  ));
}

function why(evidence) {
  if (!evidence) return "";
  return LABELS.fr[evidence.code] ? a(evidence.code, evidence) : evidence.why;
}

function renderImpact() {
  const items = state.data.impact?.items || [];
  $("impact").replaceChildren(table(
    [a("reference"), a("street"), a("hours"), a("delay"), a("baseline"), a("extra"), a("ratio"), a("check")],
    items.map((i) => [i.closure.reference || i.closure.id, i.closure.street || "", num(i.active_hours),
      num(i.during.delay_s, 1), num(i.baseline.delay_s, 1), bar(i.impact.extra_delay_s, items),
      i.impact.delay_ratio === null ? "—" : `× ${num(i.impact.delay_ratio, 2)}`, flagCell(i.reality_check)]),
    { onRow: (n) => showImpact(items[n].closure.id) },
  ));
}

function bar(value, items) {
  const widest = Math.max(1, ...items.map((i) => Math.abs(i.impact.extra_delay_s)));
  const width = Math.round((Math.abs(value) / widest) * 80);
  return h("span", { class: "barcell" },
    h("svg:svg", { width: 84, height: 12, "aria-hidden": "true" },
      h("svg:rect", { x: 0, y: 1, width, height: 10, class: value >= 0 ? "worse" : "better" })),
    ` ${value > 0 ? "+" : ""}${num(value, 1)}`);
}

async function showImpact(id) {
  const params = new URLSearchParams({ radius_m: $("p-radius").value, weeks: $("p-weeks").value });
  try {
    const report = await api(`/api/v1/analytics/closures/${encodeURIComponent(id)}/impact?${params}`);
    $("impact-detail").replaceChildren(h("h3", {}, a("detail", report.closure.reference || id)), table(
      [a("segment"), a("heading"), a("delay"), a("baseline"), a("extra"), a("length")],
      report.segments.map((s) => [`${s.street || "?"} (${s.city || ""})`, s.heading, num(s.delay_s, 1),
        num(s.baseline_delay_s, 1), num(s.extra_delay_s, 1), num(s.length_m, 0)]),
    ));
  } catch (error) {
    $("impact-detail").replaceChildren(h("p", { class: "error" }, error.message));
  }
}

function renderIncidents() {
  const rows = state.data.incidents?.rows || [];
  const select = $("i-type");
  const chosen = select.value;
  const types = [...new Set(rows.map((r) => r.type))].sort();
  select.replaceChildren(h("option", { value: "" }, a("all_types")),
    ...types.map((x) => h("option", { value: x, selected: x === chosen }, a(`type_${x}`))));
  const cells = new Array(168).fill(0);
  for (const r of rows) if (!select.value || r.type === select.value) cells[r.hour_of_week] += r.count;
  drawHeatmap($("heatmap"), cells);
  const byCommune = new Map();
  for (const r of rows) {
    const key = `${r.commune}|${r.type}`;
    byCommune.set(key, (byCommune.get(key) || 0) + r.count);
  }
  const top = [...byCommune.entries()].sort((x, y) => y[1] - x[1]).slice(0, 10);
  $("incidents-table").replaceChildren(table([a("commune"), a("type"), a("count")],
    top.map(([key, n]) => { const [c, ty] = key.split("|"); return [communeName(c), a(`type_${ty}`), num(n)]; })));
}

function communeName(code) {
  const name = state.communes[code];
  return name ? `${name} (${code})` : code || "—";
}

function drawHeatmap(canvas, cells) {
  const ctx = canvas.getContext("2d");
  const left = 40, top = 18, cw = (canvas.width - left - 4) / 24, ch = (canvas.height - top - 4) / 7;
  const most = Math.max(1, ...cells);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#1b1b1b";
  for (let hour = 0; hour < 24; hour += 3) ctx.fillText(`${hour}h`, left + hour * cw + 2, 12);
  for (let day = 0; day < 7; day += 1) {
    ctx.fillStyle = "#1b1b1b";
    ctx.fillText(a("days")[day], 4, top + day * ch + ch * 0.65);
    for (let hour = 0; hour < 24; hour += 1) {
      const value = cells[day * 24 + hour];
      const level = value / most;
      ctx.fillStyle = value ? `rgba(192, 57, 43, ${0.15 + 0.85 * level})` : "#f2f1ee";
      ctx.fillRect(left + hour * cw + 1, top + day * ch + 1, cw - 2, ch - 2);
    }
  }
  canvas.dataset.total = String(cells.reduce((x, y) => x + y, 0));
}

function renderDurations() {
  const rows = (state.data.durations?.rows || []).filter((r) => r.commune === null);
  $("durations").replaceChildren(table(
    [a("type"), a("count"), a("median"), a("p90"), a("mean"), ""],
    rows.map((r) => [a(`type_${r.type}`), num(r.count), duration(r.p50_s), duration(r.p90_s), duration(r.mean_s),
      buckets(r)]),
  ));
}

function buckets(row) {
  const counts = BUCKETS.map((b) => row[b] || 0);
  const most = Math.max(1, ...counts);
  const svg = h("svg:svg", { width: 6 * 22, height: 34, role: "img", "aria-label": BUCKETS.map((b, i) =>
    `${a("buckets")[i]}: ${counts[i]}`).join(", ") });
  counts.forEach((n, i) => {
    const height = Math.round((n / most) * 28);
    svg.append(h("svg:rect", { x: i * 22 + 2, y: 30 - height, width: 18, height, class: "bucket" },
      h("svg:title", {}, `${a("buckets")[i]} : ${n}`)));
  });
  return svg;
}

function renderJams() {
  const segments = state.data.jams?.segments || [];
  $("jams").replaceChildren(table(
    [a("segment"), a("heading"), a("total_delay"), a("total_baseline"), ""],
    segments.map((s) => [`${s.street || "?"} (${s.city || ""})`, s.heading, num(s.delay_s_sum, 0),
      num(s.baseline_delay_s_sum, 0), week(s.hours)]),
  ));
}

/** 168 hours of the week: the period's delay (bars) against the baseline (line). */
function week(hours) {
  const delay = new Array(168).fill(0), base = new Array(168).fill(0);
  for (const x of hours) { delay[x.hour_of_week] = x.delay_s; base[x.hour_of_week] = x.baseline_delay_s || 0; }
  const most = Math.max(1, ...delay, ...base);
  const svg = h("svg:svg", { width: 170, height: 30, "aria-hidden": "true" });
  delay.forEach((v, i) => {
    if (v) svg.append(h("svg:rect", { x: i, y: 28 - (v / most) * 26, width: 1, height: (v / most) * 26, class: "worse" }));
  });
  const points = base.map((v, i) => `${i},${28 - (v / most) * 26}`).join(" ");
  svg.append(h("svg:polyline", { points, class: "baseline" }));
  return svg;
}

// ------------------------------------------------------------------ start-up

async function signIn(key) {
  state.key = key;
  try {
    state.who = await api("/api/v1/whoami");
  } catch (error) {
    $("key-form").hidden = false;
    $("key-error").textContent = error.status === 401 ? a("bad_key") : error.message;
    return;
  }
  if (!["operator", "admin", "roadworks"].includes(state.who.role)) {
    $("key-form").hidden = false;
    $("key-error").textContent = a("forbidden");
    return;
  }
  localStorage.setItem("traffic-hub-key", key);
  $("key-form").hidden = true;
  $("report").hidden = false;
  $("who").textContent = `${state.who.name} (${state.who.role})`;
  await loadAll();
}

async function main() {
  setLanguage(initialLanguage());
  labelAll();
  defaultPeriod();
  $("lang").addEventListener("click", () => {
    setLanguage(language() === "fr" ? "en" : "fr", { remember: true });
    labelAll();
    if (state.who) renderAll();
  });
  $("key-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("key-input").value.trim()); });
  $("period").addEventListener("submit", (e) => { e.preventDefault(); loadAll(); });
  $("i-type").addEventListener("change", renderIncidents);
  const config = await fetch("/map/config.json").then((r) => r.json()).catch(() => ({}));
  state.communes = config.communes || {};
  for (const [code, name] of Object.entries(state.communes).sort((x, y) => x[1].localeCompare(y[1]))) {
    $("p-commune").append(h("option", { value: code }, `${name} (${code})`));
  }
  const key = new URLSearchParams(location.hash.slice(1)).get("key") || localStorage.getItem("traffic-hub-key");
  if (key) await signIn(key);
  else $("key-form").hidden = false;
}

main();
