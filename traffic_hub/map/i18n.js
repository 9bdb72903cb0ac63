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
    live_key_full: "Trop de flux ouverts avec cette clé", live_hub_full: "Hub saturé",
    live_retry: (s) => `nouvel essai dans ${s} s`,
    street: "Rue", commune: "Commune", validity: "Validité", from: "du", to: "au", no_end: "sans fin prévue",
    sources: "Sources", said: "a dit", publication: "Publication par flux", published: "publié", withheld: "retenu",
    pending: "en attente", verification: "Vérification", actions: "Actions opérateur",
    confirm: "Confirmer", dismiss: "Écarter", end: "Terminer", merge: "Fusionner dans…", merge_into: "Fusionner dans",
    note: "Note (facultative)", action_done: (a, by) => `Action « ${a} » enregistrée par ${by}.`,
    action_failed: "L'action a échoué", lanes_txt: (c, t) => `${c} voie(s) fermée(s) sur ${t}`,
    schedule_txt: "Créneaux", direction: "Sens", both_directions: "Les deux sens", one_direction: "Sens du tracé",
    draw_title: "Nouvelle mesure",
    draw_help: "Cliquez sur la carte le long de la rue : le tracé est recalé sur le réseau à chaque point.",
    your_communes: "Vos communes", undo: "Annuler le dernier point", clear: "Effacer",
    coords: "Points (lon,lat ; un par ligne)", reference: "Référence", description: "Description", starts: "Début",
    ends: "Fin", cause: "Cause", cause_roadworks: "Travaux", cause_event: "Événement", cause_hazard: "Danger",
    cause_other: "Autre", lanes: "Voies", lanes_partial: "Fermeture partielle (voies)", lanes_closed: "Fermées",
    lanes_total: "Total", lanes_side: "Côté", right: "Droite", left: "Gauche", center: "Centre",
    schedule: "Créneaux récurrents (ex. 08:00-18:00)", submit: "Envoyer la mesure", my_closures: "Mes mesures",
    matched: "Rue reconnue", waze_ready: "Prête pour Waze", not_waze_ready: "Pas prête pour Waze",
    need_points: "Ajoutez au moins deux points.", submitted: (id) => `Mesure enregistrée (${id}).`,
    monday: "lundi", tuesday: "mardi", wednesday: "mercredi", thursday: "jeudi", friday: "vendredi",
    saturday: "samedi", sunday: "dimanche", no_webgl: "La carte ne peut pas s'afficher (WebGL indisponible) : la liste, les détails et la saisie par coordonnées restent utilisables.",
    delete: "Supprimer", deleted: "Mesure supprimée.", length: "longueur",
    source: "Source", no_description: "(sans description)",
    pick_title: (n) => `${n} éléments à cet endroit : lequel ?`, analytics: "Analyses",
    // measures (issue 18)
    measure_type: "Mesure", measure: "Mesure",
    m_road_closed: "Route fermée", m_lane_closed: "Voie(s) fermée(s)", m_alternate_traffic: "Circulation alternée",
    m_no_overtaking: "Interdiction de dépasser", m_speed_limit: "Limitation de vitesse",
    m_vehicle_restriction: "Restriction par véhicule", m_detour: "Déviation",
    type_alternate_traffic: "Circulation alternée", type_no_overtaking: "Interdiction de dépasser",
    type_speed_limit: "Limitation de vitesse", type_vehicle_restriction: "Restriction par véhicule",
    type_detour: "Déviation",
    speed_kmh: "Vitesse maximale (km/h)", speed_txt: (v) => `limitée à ${v} km/h`,
    vehicles: "Véhicules interdits", vehicles_for: "Véhicules concernés",
    max_weight_t: "Poids > (t)", max_axle_load_t: "Charge à l'essieu > (t)", max_height_m: "Hauteur > (m)",
    max_width_m: "Largeur > (m)", max_length_m: "Longueur > (m)", kinds: "Catégories", critair: "Crit'Air",
    except: "Sauf", detour_of: "Déviation de", no_target: "Aucune fermeture à dévier",
    kind_heavy_goods_vehicle: "poids lourds", kind_hazardous_goods: "matières dangereuses",
    kind_abnormal_load: "convois exceptionnels", kind_bus: "autocars et bus", kind_commercial: "véhicules utilitaires",
    kind_light_commercial_vehicle: "utilitaires légers", kind_car: "voitures", kind_vehicle_with_trailer: "avec remorque",
    kind_tanker: "citernes", kind_agricultural_vehicle: "engins agricoles", kind_motorcycle: "motos",
    kind_moped: "cyclomoteurs", kind_bicycle: "vélos", kind_pedestrians: "piétons",
    except_emergency_services: "secours", except_residents: "riverains", except_local_access: "desserte locale",
    except_deliveries: "livraisons", except_public_transport: "transports en commun", except_taxi: "taxis",
    except_car_sharing: "autopartage", except_road_maintenance: "services de voirie",
    except_recovery_services: "dépannage", except_military: "militaires", except_agricultural: "agricoles",
    except_bicycle: "vélos",
    daily: "Tous les jours", except_weekends: "Sauf week-ends", except_holidays: "Sauf jours fériés",
    except_txt: "sauf", weekends: "week-ends", public_holidays: "jours fériés",
    detour_conflict: "Attention",
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
    live_key_full: "Too many streams open with this key", live_hub_full: "Hub full",
    live_retry: (s) => `retrying in ${s} s`,
    street: "Street", commune: "Commune", validity: "Validity", from: "from", to: "to", no_end: "no planned end",
    sources: "Sources", said: "said", publication: "Publication per feed", published: "published", withheld: "withheld",
    pending: "pending", verification: "Verification", actions: "Operator actions",
    confirm: "Confirm", dismiss: "Dismiss", end: "End", merge: "Merge into…", merge_into: "Merge into",
    note: "Note (optional)", action_done: (a, by) => `Action "${a}" recorded by ${by}.`,
    action_failed: "The action failed", lanes_txt: (c, t) => `${c} of ${t} lane(s) closed`,
    schedule_txt: "Windows", direction: "Direction", both_directions: "Both directions",
    one_direction: "Drawing direction", draw_title: "New measure",
    draw_help: "Click on the map along the street: the line snaps to the road network at each point.",
    your_communes: "Your communes", undo: "Undo last point", clear: "Clear",
    coords: "Points (lon,lat; one per line)", reference: "Reference", description: "Description", starts: "Starts",
    ends: "Ends", cause: "Cause", cause_roadworks: "Road works", cause_event: "Event", cause_hazard: "Hazard",
    cause_other: "Other", lanes: "Lanes", lanes_partial: "Partial closure (lanes)", lanes_closed: "Closed",
    lanes_total: "Total", lanes_side: "Side", right: "Right", left: "Left", center: "Centre",
    schedule: "Recurring windows (e.g. 08:00-18:00)", submit: "Submit the measure", my_closures: "My measures",
    matched: "Matched street", waze_ready: "Waze-ready", not_waze_ready: "Not Waze-ready",
    need_points: "Add at least two points.", submitted: (id) => `Measure recorded (${id}).`,
    monday: "Monday", tuesday: "Tuesday", wednesday: "Wednesday", thursday: "Thursday", friday: "Friday",
    saturday: "Saturday", sunday: "Sunday", no_webgl: "The map cannot be drawn (no WebGL): the list, details and entry by coordinates still work.",
    delete: "Delete", deleted: "Measure deleted.", length: "length",
    source: "Source", no_description: "(no description)",
    pick_title: (n) => `${n} items here: which one?`, analytics: "Analytics",
    measure_type: "Measure", measure: "Measure",
    m_road_closed: "Road closed", m_lane_closed: "Lane(s) closed", m_alternate_traffic: "Alternating traffic",
    m_no_overtaking: "No overtaking", m_speed_limit: "Speed limit", m_vehicle_restriction: "Vehicle restriction",
    m_detour: "Detour",
    type_alternate_traffic: "Alternating traffic", type_no_overtaking: "No overtaking", type_speed_limit: "Speed limit",
    type_vehicle_restriction: "Vehicle restriction", type_detour: "Detour",
    speed_kmh: "Maximum speed (km/h)", speed_txt: (v) => `limited to ${v} km/h`,
    vehicles: "Vehicles banned", vehicles_for: "Vehicles it is for",
    max_weight_t: "Weight > (t)", max_axle_load_t: "Axle load > (t)", max_height_m: "Height > (m)",
    max_width_m: "Width > (m)", max_length_m: "Length > (m)", kinds: "Kinds", critair: "Crit'Air",
    except: "Except", detour_of: "Detour of", no_target: "No closure to go around",
    kind_heavy_goods_vehicle: "heavy goods vehicles", kind_hazardous_goods: "hazardous goods",
    kind_abnormal_load: "oversize convoys", kind_bus: "buses and coaches", kind_commercial: "commercial vehicles",
    kind_light_commercial_vehicle: "vans", kind_car: "cars", kind_vehicle_with_trailer: "with a trailer",
    kind_tanker: "tankers", kind_agricultural_vehicle: "agricultural vehicles", kind_motorcycle: "motorcycles",
    kind_moped: "mopeds", kind_bicycle: "bicycles", kind_pedestrians: "pedestrians",
    except_emergency_services: "emergency services", except_residents: "residents", except_local_access: "local access",
    except_deliveries: "deliveries", except_public_transport: "public transport", except_taxi: "taxis",
    except_car_sharing: "car sharing", except_road_maintenance: "road maintenance",
    except_recovery_services: "recovery services", except_military: "military", except_agricultural: "agricultural",
    except_bicycle: "bicycles",
    daily: "Every day", except_weekends: "Except weekends", except_holidays: "Except public holidays",
    except_txt: "except", weekends: "weekends", public_holidays: "public holidays",
    detour_conflict: "Warning",
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
