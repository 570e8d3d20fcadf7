// Agent desk: look a customer up, show what to do now and why, report the outcome in one
// click (or one key), and show the refreshed ranking. Plain JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const FAMILY = {
  retention_gesture: "Retention gesture",
  installment_offer: "Installment offer",
  information_request: "Information request",
  product_offer: "Product offer",
};
const OUTCOMES = [
  ["accepted", "Accepted", "A"],
  ["declined", "Declined", "D"],
  ["no_response", "No response", "N"],
];
const state = {
  key: sessionStorage.getItem("nba.key") || "",
  agent: sessionStorage.getItem("nba.agent") || "",
  answer: null, // the last recommendation answer
  busy: false,
  confirmation: null, // shown above the refreshed ranking after an outcome
};

class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

// What an agent reads for each error the API can answer (its stable `code`): never the
// API's own wording, which is written for developers.
const PLAIN = {
  unauthorized: "Your access key is missing or not valid. Paste the key you were given.",
  forbidden: "Your access key may not do this. Ask for a key that can look customers up and record outcomes.",
  too_many_failed_keys: "Too many wrong keys were tried from this computer. Wait a minute, then paste the right key.",
  invalid_request: "That customer id does not look right. Check it and try again.",
  not_found: "That decision is no longer known. Look the customer up again.",
  conflict: "A different outcome was already recorded for this action.",
  request_timeout: "The request took too long to arrive. Try again.",
  body_too_large: "That request is too large to send.",
  unreadable_body: "The request could not be read. Reload the page and try again.",
  model_not_ready: "The engine is starting and has no model yet. Try again in a minute.",
  online_store_unavailable: "The customer profiles cannot be read right now. Try again in a moment.",
  decision_log_unavailable: "The engine cannot record answers right now. Try again in a moment.",
  unavailable: "The engine is busy right now. Try again in a moment.",
  internal_error: "Something went wrong in the engine. Try again; if it keeps happening, tell support.",
  offline: "The engine does not answer. Check the network connection and try again.",
};

function plain(err) {
  if (err instanceof ApiError) {
    return PLAIN[err.code] || `Something went wrong (error ${err.status}). Try again.`;
  }
  return PLAIN.internal_error;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.key) headers["X-API-Key"] = state.key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (_) {
    throw new ApiError(0, "offline", "no answer");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : `HTTP ${response.status}`;
    const error = new ApiError(response.status, (data && data.code) || "error", detail);
    if (response.status === 401 || response.status === 403) askKey(plain(error));
    throw error;
  }
  return data;
}

// --- the key --------------------------------------------------------------------------

function askKey(why) {
  const dialog = $("key-dialog");
  $("key-input").value = state.key;
  $("agent-input").value = state.agent;
  if (why) setStatus(why);
  if (!dialog.open) dialog.showModal();
  $("key-input").focus();
}

$("key-form").addEventListener("submit", () => {
  state.key = $("key-input").value.trim();
  state.agent = $("agent-input").value.trim();
  sessionStorage.setItem("nba.key", state.key);
  sessionStorage.setItem("nba.agent", state.agent);
  setStatus("Key saved for this tab.");
  loadExamples();
  $("customer").focus();
});
$("change-key").addEventListener("click", () => askKey());

// --- small helpers --------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function setStatus(text) {
  $("status").textContent = text;
}

function banner(kind, text) {
  const b = $("banner");
  if (!text) {
    b.hidden = true;
    b.textContent = "";
    return;
  }
  b.className = kind;
  b.textContent = text;
  b.hidden = false;
}

function percent(p) {
  return `${Math.round(p * 100)}%`;
}

// --- examples and the model line ------------------------------------------------------

async function loadExamples() {
  try {
    const examples = await api("GET", "/v1/customers/examples");
    const list = $("examples");
    const chips = $("example-list");
    list.replaceChildren();
    chips.replaceChildren();
    if (examples.length) chips.append(el("span", { className: "muted" }, "Try:"));
    for (const ex of examples) {
      list.append(el("option", { value: ex.customer_id, label: ex.why }));
      const chip = el("button", { type: "button", className: "secondary" }, `${ex.customer_id} · ${ex.why}`);
      chip.dataset.customer = ex.customer_id;
      chip.addEventListener("click", () => {
        $("customer").value = ex.customer_id;
        lookUp();
      });
      chips.append(chip);
    }
  } catch (err) {
    if (!(err instanceof ApiError && (err.status === 401 || err.status === 403))) {
      setStatus(`No example customers: ${plain(err)}`);
    }
  }
}

async function loadModelLine() {
  try {
    const response = await fetch("/readyz");
    const ready = await response.json();
    $("model-line").textContent = ready.ready
      ? `model version ${ready.model_version} · ${ready.feature_store} online store`
      : "the engine is not ready yet: try again in a minute";
  } catch (_) {
    $("model-line").textContent = "the engine does not answer";
  }
}

// --- look-up --------------------------------------------------------------------------

$("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  lookUp();
});

async function lookUp(note) {
  const customer = $("customer").value.trim();
  if (!customer) {
    $("customer").focus();
    return;
  }
  const request = { customer_id: customer, channel: $("channel").value, limit: 5 };
  if ($("reason").value) request.reason = $("reason").value;
  if (state.agent) request.agent_id = state.agent;
  setBusy(true);
  setStatus(note || `Looking up ${customer}…`);
  try {
    const [summary, answer] = await Promise.all([
      api("GET", `/v1/customers/${encodeURIComponent(customer)}`).catch((err) => err),
      api("POST", "/v1/recommendations", request),
    ]);
    state.answer = answer;
    renderBanner(answer, summary);
    renderProfile(summary);
    renderActions(answer);
    setStatus(note ? `${note} Ranking updated.` : `Decision ${answer.decision_id.slice(0, 8)}… logged.`);
  } catch (err) {
    state.answer = null;
    $("actions").hidden = true;
    $("profile").hidden = true;
    banner("error", `Could not get recommendations. ${plain(err)}`);
    setStatus("");
  } finally {
    setBusy(false);
  }
}

function setBusy(busy) {
  state.busy = busy;
  $("lookup-button").disabled = busy;
  for (const b of document.querySelectorAll(".buttons button")) b.disabled = busy;
}

function renderBanner(answer, summary) {
  if (!answer.known_customer) {
    banner(
      "warn",
      "New or unknown customer: no profile yet, so these are general suggestions. Check the customer id.",
    );
  } else if (answer.degraded) {
    banner(
      "warn",
      `Limited answer: ${answer.degraded_reason || "the live profile could not be read"}. ` +
        "Ranked without the customer's live profile; use your judgement.",
    );
  } else if (summary instanceof Error) {
    banner("warn", `The customer summary is unavailable. ${plain(summary)}`);
  } else {
    banner(null, "");
  }
}

function renderProfile(summary) {
  const facts = $("profile-facts");
  facts.replaceChildren();
  const stale = $("stale");
  stale.hidden = !(summary && summary.profile_stale);
  if (summary && summary.profile_stale) {
    const days = Math.round(summary.profile_age_days);
    stale.textContent =
      `This profile is ${days} days old: contacts and payments since then are missing. ` +
      "Ask the customer and use your judgement.";
  }
  if (summary instanceof Error || !summary.known) {
    $("profile").hidden = summary instanceof Error;
    if (!(summary instanceof Error)) {
      facts.append(el("dt", {}, "Profile"), el("dd", {}, "none yet"));
    }
    return;
  }
  const rows = [
    ["Customer", summary.customer_id],
    ["Tenure", summary.tenure],
    ["Products", summary.products.length ? summary.products.join(", ") : "none active"],
    ["Recent contacts", summary.recent_contacts.length ? summary.recent_contacts.join("; ") : "none in the last 30 days"],
    ["Last contact", summary.last_contact],
    ["Complaints", summary.complaints],
    ["Payments", summary.payment_status],
    ["Mood", summary.mood],
    ["E-mail", summary.email],
    ["Profile", summary.profile_updated],
  ];
  if (summary.attention.length) {
    facts.append(el("dt", {}, "Keep in mind"), el("dd", { className: "attention" }, summary.attention.join(" · ")));
  }
  if (summary.today && summary.today.length) {
    facts.append(el("dt", {}, "Today"), el("dd", { dataset: { fact: "Today" } }, summary.today.join("; ")));
  }
  for (const [label, value] of rows) {
    if (value) facts.append(el("dt", {}, label), el("dd", { dataset: { fact: label } }, value));
  }
  $("profile").hidden = false;
}

function money(amount, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency, maximumFractionDigits: 0 })
      .format(amount);
  } catch (_) {
    return `${Math.round(amount)} ${currency}`;
  }
}

function signedMoney(amount, currency) {
  const text = money(Math.abs(amount), currency);
  return amount >= 0.5 ? `+${text}` : amount <= -0.5 ? `−${text}` : text;
}

// Why this rank: the expected value that orders the list, and what it is made of.
function numbers(rec, currency) {
  const parts = [
    `expected value ${money(rec.priority, currency)}`,
    `chance of a yes ${percent(rec.propensity)}`,
    rec.value < 0 ? `costs ${money(-rec.value, currency)} if accepted` : `${money(rec.value, currency)} if accepted`,
  ];
  if (rec.long_term_value != null && Math.abs(rec.long_term_value) >= 0.5) {
    parts.push(`changes the coming months' revenue by ${signedMoney(rec.long_term_value, currency)}`);
  }
  return parts.join(" · ");
}

function renderActions(answer) {
  const ranked = $("ranked");
  ranked.replaceChildren();
  answer.recommendations.forEach((rec, i) => {
    const buttons = el("div", { className: "buttons" });
    for (const [outcome, label, key] of OUTCOMES) {
      const button = el(
        "button",
        { type: "button", className: outcome === "accepted" ? "" : "secondary" },
        i === 0 ? `${label} (${key})` : label,
      );
      button.dataset.outcome = outcome;
      button.setAttribute("aria-label", `${label}: ${rec.name}`);
      button.addEventListener("click", () => report(rec, outcome));
      buttons.append(button);
    }
    const item = el(
      "li",
      { className: i === 0 ? "action top" : "action" },
      el("span", { className: "family" }, `${i + 1} · ${FAMILY[rec.family] || rec.family}`),
      el("h3", {}, rec.name),
      rec.script ? el("p", { className: "script" }, rec.script) : null,
      el("ul", { className: "reasons" }, ...rec.reasons.map((r) => el("li", {}, r))),
      el("p", { className: "numbers" }, numbers(rec, answer.currency || "EUR")),
      buttons,
    );
    item.dataset.actionId = rec.action_id;
    ranked.append(item);
  });
  $("nothing").hidden = answer.recommendations.length > 0;
  if (answer.nothing_reason) $("nothing").textContent = answer.nothing_reason;
  const held = $("suppressed");
  held.replaceChildren(
    ...answer.suppressed.map((s) => {
      const item = el("li", {}, el("strong", {}, s.name), ` — ${s.rule}`);
      item.dataset.actionId = s.action_id;
      return item;
    }),
  );
  $("held-count").textContent = String(answer.suppressed.length);
  const confirmation = $("confirmation");
  confirmation.hidden = !state.confirmation;
  confirmation.textContent = state.confirmation || "";
  state.confirmation = null;
  $("actions").hidden = false;
}

// --- outcomes -------------------------------------------------------------------------

async function report(rec, outcome) {
  if (!state.answer || state.busy) return;
  const body = { decision_id: state.answer.decision_id, action_id: rec.action_id, outcome };
  if (state.agent) body.agent_id = state.agent;
  setBusy(true);
  const word = OUTCOMES.find(([o]) => o === outcome)[1].toLowerCase();
  try {
    await api("POST", "/v1/outcomes", body);
  } catch (err) {
    banner("error", `The outcome was not recorded. ${plain(err)}`);
    setBusy(false);
    return;
  }
  setBusy(false);
  const done = `Recorded: ${word} “${rec.name}”.`;
  state.confirmation = `✓ ${done}`;
  await lookUp(done);
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || $("key-dialog").open) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement) return;
  const found = OUTCOMES.find(([, , key]) => key.toLowerCase() === event.key.toLowerCase());
  if (!found || !state.answer || !state.answer.recommendations.length) return;
  event.preventDefault();
  report(state.answer.recommendations[0], found[0]);
});

loadModelLine();
// Without a key every call would be refused: ask for it first, call nothing before.
if (state.key) {
  loadExamples();
  $("customer").focus();
} else {
  askKey();
}
