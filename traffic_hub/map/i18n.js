// French and English labels. `data-i18n="key"` sets an element's text, `data-i18n-label` its aria-label.

const LABELS = {
  fr: {
    title: "Carte des incidents", skip_to_list: "Aller à la liste", mode_events: "Incidents", mode_draw: "Travaux",
    logout: "Changer de clé", login_title: "Clé d'accès",
    login_help: "Entrez votre clé d'API (opérateur ou équipe travaux). Elle reste dans ce navigateur.",
    key: "Clé", sign_in: "Entrer", bad_key: "Clé inconnue.", partner_only: "Cette clé ne donne pas accès à la carte.",
    filters: "Filtres", f_type: "Type", f_source: "Source", f_commune: "Commune", f_status: "Statut", f_time: "Période",
    all: "Tous", time_all: "Toute", time_now: "Maintenant", time_24h: "Prochaines 24 h", time_7d: "7 prochains jours",
    traffic_layer: "Trafic (bouchons Waze)", count: (n) => `${n} événement${n > 1 ? "s" : ""}`,
    status_planned: "Prévu", status_active: "En cours", status_ended: "Terminé", status_cancelled: "Annulé",
    verification_unverified: "Non vérifié", verification_confirmed: "Confirmé", verification_dismissed: "Écarté",
    type_closure: "Fermeture", type_lane_closure: "Voies fermées", type_roadworks: "Travaux", type_accident: "Accident",
    type_hazard: "Danger", type_jam: "Bouchon", type_weather: "Météo", type_police: "Police", type_other: "Autre",
    live_on: "En direct", live_off: "Reconnexion…", close: "Fermer",
    street: "Rue", commune: "Commune", validity: "Validité", from: "du", to: "au", no_end: "sans fin prévue",
    sources: "Sources", said: "a dit", publication: "Publication par flux", published: "publié", withheld: "retenu",
    pending: "en attente", verification: "Vérification", actions: "Actions opérateur",
    confirm: "Confirmer", dismiss: "Écarter", end: "Terminer", merge: "Fusionner dans…", merge_into: "Fusionner dans",
    note: "Note (facultative)", action_done: (a, by) => `Action « ${a} » enregistrée par ${by}.`,
    action_failed: "L'action a échoué", lanes_txt: (c, t) => `${c} voie(s) fermée(s) sur ${t}`,
    schedule_txt: "Créneaux", direction: "Sens", both_directions: "Les deux sens", one_direction: "Sens du tracé",
    draw_title: "Nouvelle fermeture",
    draw_help: "Cliquez sur la carte le long de la rue : le tracé est recalé sur le réseau à chaque point.",
    your_communes: "Vos communes", undo: "Annuler le dernier point", clear: "Effacer",
    coords: "Points (lon,lat ; un par ligne)", reference: "Référence", description: "Description", starts: "Début",
    ends: "Fin", cause: "Cause", cause_roadworks: "Travaux", cause_event: "Événement", cause_hazard: "Danger",
    cause_other: "Autre", lanes: "Voies", lanes_partial: "Fermeture partielle (voies)", lanes_closed: "Fermées",
    lanes_total: "Total", lanes_side: "Côté", right: "Droite", left: "Gauche", center: "Centre",
    schedule: "Créneaux récurrents (ex. 08:00-18:00)", submit: "Envoyer la fermeture", my_closures: "Mes fermetures",
    matched: "Rue reconnue", waze_ready: "Prête pour Waze", not_waze_ready: "Pas prête pour Waze",
    need_points: "Ajoutez au moins deux points.", submitted: (id) => `Fermeture enregistrée (${id}).`,
    monday: "lundi", tuesday: "mardi", wednesday: "mercredi", thursday: "jeudi", friday: "vendredi",
    saturday: "samedi", sunday: "dimanche", no_webgl: "La carte ne peut pas s'afficher (WebGL indisponible) : la liste, les détails et la saisie par coordonnées restent utilisables.",
    delete: "Supprimer", deleted: "Fermeture supprimée.", length: "longueur",
    source: "Source", no_description: "(sans description)",
    pick_title: (n) => `${n} éléments à cet endroit : lequel ?`, analytics: "Analyses",
  },
  en: {
    title: "Incident map", skip_to_list: "Skip to the list", mode_events: "Incidents", mode_draw: "Road works",
    logout: "Change key", login_title: "Access key",
    login_help: "Enter your API key (operator or road-works team). It stays in this browser.",
    key: "Key", sign_in: "Sign in", bad_key: "Unknown key.", partner_only: "This key gives no access to the map.",
    filters: "Filters", f_type: "Type", f_source: "Source", f_commune: "Commune", f_status: "Status", f_time: "Time",
    all: "All", time_all: "Any", time_now: "Now", time_24h: "Next 24 h", time_7d: "Next 7 days",
    traffic_layer: "Traffic (Waze jams)", count: (n) => `${n} event${n === 1 ? "" : "s"}`,
    status_planned: "Planned", status_active: "Active", status_ended: "Ended", status_cancelled: "Cancelled",
    verification_unverified: "Unverified", verification_confirmed: "Confirmed", verification_dismissed: "Dismissed",
    type_closure: "Closure", type_lane_closure: "Lane closure", type_roadworks: "Road works", type_accident: "Accident",
    type_hazard: "Hazard", type_jam: "Jam", type_weather: "Weather", type_police: "Police", type_other: "Other",
    live_on: "Live", live_off: "Reconnecting…", close: "Close",
    street: "Street", commune: "Commune", validity: "Validity", from: "from", to: "to", no_end: "no planned end",
    sources: "Sources", said: "said", publication: "Publication per feed", published: "published", withheld: "withheld",
    pending: "pending", verification: "Verification", actions: "Operator actions",
    confirm: "Confirm", dismiss: "Dismiss", end: "End", merge: "Merge into…", merge_into: "Merge into",
    note: "Note (optional)", action_done: (a, by) => `Action "${a}" recorded by ${by}.`,
    action_failed: "The action failed", lanes_txt: (c, t) => `${c} of ${t} lane(s) closed`,
    schedule_txt: "Windows", direction: "Direction", both_directions: "Both directions",
    one_direction: "Drawing direction", draw_title: "New closure",
    draw_help: "Click on the map along the street: the line snaps to the road network at each point.",
    your_communes: "Your communes", undo: "Undo last point", clear: "Clear",
    coords: "Points (lon,lat; one per line)", reference: "Reference", description: "Description", starts: "Starts",
    ends: "Ends", cause: "Cause", cause_roadworks: "Road works", cause_event: "Event", cause_hazard: "Hazard",
    cause_other: "Other", lanes: "Lanes", lanes_partial: "Partial closure (lanes)", lanes_closed: "Closed",
    lanes_total: "Total", lanes_side: "Side", right: "Right", left: "Left", center: "Centre",
    schedule: "Recurring windows (e.g. 08:00-18:00)", submit: "Submit the closure", my_closures: "My closures",
    matched: "Matched street", waze_ready: "Waze-ready", not_waze_ready: "Not Waze-ready",
    need_points: "Add at least two points.", submitted: (id) => `Closure recorded (${id}).`,
    monday: "Monday", tuesday: "Tuesday", wednesday: "Wednesday", thursday: "Thursday", friday: "Friday",
    saturday: "Saturday", sunday: "Sunday", no_webgl: "The map cannot be drawn (no WebGL): the list, details and entry by coordinates still work.",
    delete: "Delete", deleted: "Closure deleted.", length: "length",
    source: "Source", no_description: "(no description)",
    pick_title: (n) => `${n} items here: which one?`, analytics: "Analytics",
  },
};

export const LANGUAGES = Object.keys(LABELS);

let current = "fr";
// only a choice made with the switch is kept; the old "traffic-hub-lang" was saved on every visit (the
// browser's language as guessed then, English for any non-French browser) and is ignored
const CHOSEN = "traffic-hub-lang-chosen";

/**
 * The page's language: the one chosen with the FR/EN switch (kept in this browser), else the first of the
 * browser's preferred languages (navigator.languages, in order) that the page speaks, else French (the
 * operators are French: a German or Dutch browser gets French, not English).
 */
export function initialLanguage() {
  const saved = localStorage.getItem(CHOSEN);
  if (saved && LABELS[saved]) return saved;
  const preferred = navigator.languages?.length ? navigator.languages : [navigator.language || ""];
  for (const tag of preferred) {
    const base = String(tag).toLowerCase().split(/[-_]/)[0];
    if (LABELS[base]) return base;
  }
  return "fr";
}

/** The BCP 47 locale used to format dates in the current language. */
export function locale() {
  return current === "fr" ? "fr-FR" : "en-GB";
}

/** Switch language; `remember` (the FR/EN button) keeps the choice over the browser's preference. */
export function setLanguage(lang, { remember = false } = {}) {
  current = LABELS[lang] ? lang : "fr";
  if (remember) localStorage.setItem(CHOSEN, current);
  document.documentElement.lang = current;
  applyLabels(document);
}

export function language() {
  return current;
}

/** The label for `key` (a function label is called with `args`); the key itself when unknown. */
export function t(key, ...args) {
  const value = LABELS[current][key] ?? LABELS.fr[key];
  if (typeof value === "function") return value(...args);
  return value ?? key;
}

export function applyLabels(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
}
