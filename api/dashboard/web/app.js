// The dashboard: each panel loads its read model from the /v1 API once, then follows GET /v1/stream.
import { ApiError, call, current, follow, signIn, signOut } from "./api.js";
import { Candles } from "./chart.js";

const $ = (id) => document.getElementById(id);
const ROWS = 1000; // rows each panel loads; the live feed adds to them
const SHOWN = 200; // rows each table shows, newest first: a frame redraws a table whole, so its cost stays bounded
const OPEN = new Set(["PENDING", "ACCEPTED", "PARTIALLY_FILLED"]);
// An order's status only moves up this rank (as the orders read model folds it), whichever news arrives first.
const RANK = { PENDING: 0, ACCEPTED: 1, PARTIALLY_FILLED: 2, FILLED: 3, CANCELLED: 3, EXPIRED: 3, REJECTED: 3 };
const CAPTIONS = { order: "orders-checkpoint", fill: "fills-checkpoint", pnl: "pnl-checkpoint",
  rejection: "rejections-checkpoint" };

const state = { orders: new Map(), fills: new Map(), pnl: new Map(), rejections: new Map(), limits: new Map() };
let stream = null; // the AbortController of the live feed
let selected = null; // the order whose audit trail is shown
let tracked = null; // {order_id, statuses} of the ticket's last order
let chart = null;
const dirty = new Set(); // the tables to draw in the next frame
// When each fill arrived from the stream and when it was in the page (browser clock, ms), for bench/dashboard.py:
// fill_id -> Date.now().
window.tradecoreArrived = new Map();
window.tradecoreSeen = new Map();

const has = (...roles) => roles.some((r) => current()?.roles.includes(r));
const fillKey = (f) => `${f.topic}:${f.partition}:${f.offset}`;
const time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "");

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  return td;
}

function sideCell(side) {
  // Buy and sell differ by word and arrow, not by colour alone.
  return cell(side === "BUY" ? "▲ BUY" : side === "SELL" ? "▼ SELL" : side, side === "BUY" ? "buy" : "sell");
}

function fillTable(id, rows, make) {
  const body = $(id).tBodies[0];
  body.replaceChildren(...rows.map(make));
}

function showCheckpoint(id, page) {
  const at = page.checkpoint?.updated_at;
  $(id).textContent = `checkpoint of ${page.checkpoint?.projection}: ${at ? time(at) : "nothing projected yet"}`;
}

// -- blotter -------------------------------------------------------------------------------------------------------
function filters() {
  const form = new FormData($("blotter-filters"));
  return Object.fromEntries([...form.entries()].filter(([, v]) => v !== ""));
}

function visible(order, f) {
  if (f.account_id && order.account_id !== f.account_id) return false;
  if (f.instrument && order.instrument !== f.instrument) return false;
  if (f.status && order.status !== f.status) return false;
  if (f.since && Date.now() - new Date(order.updated_at).getTime() > Number(f.since) * 1000) return false;
  return true;
}

async function loadOrders() {
  const f = filters();
  $("blotter-error").textContent = "";
  state.orders.clear();
  try {
    const page = await call("GET", "/v1/orders", { query: { ...f, since: undefined, limit: ROWS } });
    for (const o of page.items) state.orders.set(o.order_id, o);
    showCheckpoint("orders-checkpoint", page);
  } catch (err) {
    $("blotter-error").textContent = err.message;
  }
  render();
}

function renderOrders() {
  const f = filters();
  const rows = [...state.orders.values()].filter((o) => visible(o, f));
  rows.sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1));
  $("orders-count").textContent = rows.length > SHOWN
    ? `The newest ${SHOWN} of ${rows.length} orders; filter to find the others.` : "";
  fillTable("orders", rows.slice(0, SHOWN), (o) => {
    const tr = document.createElement("tr");
    tr.dataset.order = o.order_id;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    open.textContent = o.order_id.slice(0, 8);
    open.title = `Audit trail of ${o.order_id}`;
    open.addEventListener("click", () => showDetail(o.order_id));
    const first = document.createElement("td");
    first.append(open);
    tr.append(first, cell(o.account_id), cell(o.instrument), sideCell(o.side), cell(o.order_type),
      cell(o.quantity), cell(o.limit_price), cell(o.filled_quantity), cell(o.status, "status"),
      cell(o.reason), cell(time(o.updated_at)));
    return tr;
  });
}

async function showDetail(orderId) {
  selected = orderId;
  $("detail").hidden = false;
  $("detail-title").textContent = `Order ${orderId}`;
  const order = state.orders.get(orderId);
  $("amend-form").hidden = !(has("trader") && order && OPEN.has(order.status));
  $("amend-error").textContent = "";
  try {
    const page = await call("GET", `/v1/orders/${encodeURIComponent(orderId)}/events`);
    fillTable("trail", page.items, (e) => {
      const tr = document.createElement("tr");
      const p = e.payload || {};
      const detail = p.reason || [p.quantity && `qty ${p.quantity}`, p.price && `@ ${p.price}`,
        p.limit_price && `limit ${p.limit_price}`].filter(Boolean).join(" ");
      tr.append(cell(e.event_type), cell(time(e.occurred_at)), cell(e.correlation_id), cell(e.causation_id),
        cell(`${e.topic}:${e.partition}:${e.offset}`), cell(detail));
      return tr;
    });
  } catch (err) {
    $("amend-error").textContent = err.message;
  }
  $("detail").scrollIntoView({ block: "nearest" });
}

// -- ticket --------------------------------------------------------------------------------------------------------
function clearErrors(form) {
  for (const p of form.querySelectorAll(".error")) p.textContent = "";
}

function showProblem(err, fallbackId) {
  const errors = err instanceof ApiError ? err.problem.errors || [] : [];
  let shown = false;
  for (const e of errors) {
    const target = $(`e-${e.field}`);
    if (target) {
      target.textContent = e.message;
      shown = true;
    }
  }
  if (!shown) $(fallbackId).textContent = err.message;
}

function validate(order) {
  // The API's rules a user most often trips on, checked before sending; the API checks everything again.
  const problems = [];
  const decimal = /^\d+(\.\d+)?$/;
  if (!decimal.test(order.quantity || "") || Number(order.quantity) <= 0) {
    problems.push({ field: "quantity", message: "a positive decimal, e.g. 0.25" });
  }
  if (order.order_type === "LIMIT" && (!decimal.test(order.limit_price || "") || Number(order.limit_price) <= 0)) {
    problems.push({ field: "limit_price", message: "a LIMIT order needs a positive limit price" });
  }
  return problems;
}

async function placeOrder(event) {
  event.preventDefault();
  const form = $("order-form");
  clearErrors(form);
  const order = Object.fromEntries(new FormData(form).entries());
  if (order.order_type === "MARKET") delete order.limit_price;
  order.client_order_id = `web-${crypto.randomUUID().slice(0, 18)}`;
  const problems = validate(order);
  if (problems.length) return showProblem(new ApiError(422, { errors: problems }), "e-body");
  try {
    const ack = await call("POST", "/v1/orders", { query: { wait: "ACCEPTED" }, json: order });
    tracked = { order_id: ack.order_id, statuses: ["PENDING"], reason: null };
    advance(ack.status.toUpperCase(), ack.reason);
    const known = state.orders.get(ack.order_id); // the live feed may have been quicker than the answer
    if (known) advance(known.status, known.reason);
  } catch (err) {
    showProblem(err, "e-body");
  }
}

function advance(status, reason) {
  if (!tracked) return;
  if (RANK[status] > RANK[tracked.statuses.at(-1)]) tracked.statuses.push(status);
  if (reason) tracked.reason = reason;
  $("lifecycle").textContent = `Order ${tracked.order_id.slice(0, 8)}: ${tracked.statuses.join(" → ")}` +
    (tracked.reason ? ` — ${tracked.reason}` : "");
}

async function amend(event) {
  event.preventDefault();
  $("amend-error").textContent = $("amend-status").textContent = "";
  const body = Object.fromEntries([...new FormData($("amend-form")).entries()].filter(([, v]) => v !== ""));
  try {
    await call("PATCH", `/v1/orders/${encodeURIComponent(selected)}`, { json: body });
    $("amend-status").textContent = "amend requested";
  } catch (err) {
    $("amend-error").textContent = (err.problem?.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ")
      || err.message;
  }
}

async function cancelOrder() {
  $("amend-error").textContent = $("amend-status").textContent = "";
  try {
    await call("DELETE", `/v1/orders/${encodeURIComponent(selected)}`, { query: { reason: "from the dashboard" } });
    $("amend-status").textContent = "cancel requested";
  } catch (err) {
    $("amend-error").textContent = err.message;
  }
}

// -- fills, pnl, risk ----------------------------------------------------------------------------------------------
async function loadTable(path, into, key, checkpointId, query = {}) {
  into.clear();
  const page = await call("GET", path, { query: { limit: ROWS, ...query } });
  for (const row of page.items) into.set(key(row), row);
  if (checkpointId) showCheckpoint(checkpointId, page);
}

const pnlKey = (r) => `${r.account_id}|${r.instrument}`;

function renderFills() {
  const fills = [...state.fills.values()].sort((a, b) => (a.occurred_at < b.occurred_at ? 1 : -1));
  fillTable("fills", fills.slice(0, SHOWN), (f) => {
    const tr = document.createElement("tr");
    tr.dataset.fill = f.fill_id;
    tr.append(cell(time(f.occurred_at)), cell(f.order_id.slice(0, 8)), cell(f.account_id), sideCell(f.side),
      cell(f.quantity), cell(f.price), cell(f.liquidity), cell(`${f.fee} ${f.fee_currency}`));
    return tr;
  });
}

function renderPnl() {
  fillTable("pnl", [...state.pnl.values()], (p) => {
    const tr = document.createElement("tr");
    tr.append(cell(p.account_id), cell(p.instrument), cell(p.quantity), cell(p.average_price), cell(p.mark_price),
      cell(p.realized_pnl), cell(p.unrealized_pnl), cell(p.fees_paid), cell(p.total_pnl));
    return tr;
  });
}

function renderRejections() {
  const rejections = [...state.rejections.values()].sort((a, b) => (a.occurred_at < b.occurred_at ? 1 : -1));
  fillTable("rejections", rejections.slice(0, SHOWN), (r) => {
    const tr = document.createElement("tr");
    tr.append(cell(time(r.occurred_at)), cell(r.order_id.slice(0, 8)), cell(r.account_id), cell(r.kind),
      cell(r.reason_code), cell(r.reason));
    return tr;
  });
  const counts = {};
  for (const r of rejections) counts[r.reason_code] = (counts[r.reason_code] || 0) + 1;
  $("rejection-counts").textContent = Object.keys(counts).length
    ? "Rejections by reason: " + Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")
    : "No rejections.";
}

function renderLimits() {
  fillTable("limits", [...state.limits.values()], (l) => {
    const tr = document.createElement("tr");
    tr.append(cell(l.account_id), cell(l.max_order_quantity), cell(l.max_order_notional),
      cell(l.max_position_quantity), cell(l.daily_loss_limit), cell(l.price_collar_bps),
      cell(l.kill_switch_engaged ? `ENGAGED: ${l.kill_switch_reason}` : "released"));
    return tr;
  });
}

const TABLES = { orders: renderOrders, fills: renderFills, pnl: renderPnl, rejections: renderRejections,
  limits: renderLimits };

async function killSwitch(event) {
  event.preventDefault();
  const engaged = event.submitter?.value === "true";
  const data = Object.fromEntries(new FormData($("kill-form")).entries());
  const verb = engaged ? "Engage" : "Release";
  if (!confirm(`${verb} the kill switch of ${data.account_id}?${engaged ? " Its open orders will be cancelled." : ""}`)) {
    return;
  }
  $("kill-error").textContent = $("kill-status").textContent = "";
  try {
    await call("POST", "/v1/kill-switch", { json: { account_id: data.account_id, reason: data.reason, engaged } });
    $("kill-status").textContent = `${verb} requested for ${data.account_id}`; // the limits table follows live
  } catch (err) {
    $("kill-error").textContent = err.message;
  }
}

// -- live ----------------------------------------------------------------------------------------------------------
function onChange(kind, message, id) {
  const row = message.row;
  if (kind === "ready" || kind === "reset") {
    $("live").textContent = `live: on · checkpoint ${message.checkpoint}`;
    if (kind === "reset") loadAll();
    return;
  }
  $("live").textContent = `live: on · checkpoint ${id}`;
  if (CAPTIONS[kind]) $(CAPTIONS[kind]).textContent = `live: committed ${time(message.committed_at)} (checkpoint ${id})`;
  if (kind === "order") {
    const known = state.orders.get(row.order_id);
    if (!known || known.events <= row.events) state.orders.set(row.order_id, row);
    if (tracked && tracked.order_id === row.order_id) advance(row.status, row.reason);
    if (selected === row.order_id && !$("detail").hidden) showDetail(row.order_id);
    render("orders");
  } else if (kind === "fill") {
    window.tradecoreArrived.set(row.fill_id, Date.now());
    state.fills.set(fillKey(row), row);
    chart?.fill(row);
    render("fills"); // its frame is requested first, so the time below is taken once the row is in the table
    requestAnimationFrame(() => window.tradecoreSeen.set(row.fill_id, Date.now()));
  } else if (kind === "pnl") {
    state.pnl.set(pnlKey(row), row);
    render("pnl");
  } else if (kind === "rejection") {
    state.rejections.set(fillKey(row), row);
    render("rejections");
  } else if (kind === "limits") {
    state.limits.set(row.account_id, row);
    render("limits");
  } else if (kind === "candle") {
    chart?.candle(row);
  } else if (kind === "signal") {
    chart?.signal(row);
  }
}

// Draw the named tables (all of them when none is named) in the next frame, each once however many changes came.
function render(...tables) {
  const first = dirty.size === 0;
  for (const name of tables.length ? tables : Object.keys(TABLES)) dirty.add(name);
  if (!first) return;
  requestAnimationFrame(() => {
    for (const name of dirty) TABLES[name]();
    dirty.clear();
  });
}

async function health() {
  try {
    const res = await fetch("/readyz", { cache: "no-store" });
    const ready = await res.json();
    $("ready").textContent = `readiness: ${ready.status} (` +
      Object.entries(ready.checks).map(([k, v]) => `${k} ${v.status}`).join(", ") + ")";
    const projections = Object.entries(ready.checks).find(([k]) => k.startsWith("projection"));
    $("lag").textContent = projections ? `lag: ${projections[1].detail}` : "";
  } catch (err) {
    $("ready").textContent = "readiness: API not answering";
  }
}

async function loadAll() {
  const instruments = await call("GET", "/v1/instruments");
  const symbols = instruments.filter((i) => i.tradable).map((i) => i.symbol);
  for (const id of ["f-instrument", "c-instrument"]) {
    const select = $(id);
    if (!select.options.length) select.replaceChildren(...symbols.map((s) => new Option(s, s)));
  }
  const fills = loadTable("/v1/fills", state.fills, fillKey, "fills-checkpoint");
  await Promise.all([
    loadOrders(),
    fills,
    loadTable("/v1/pnl", state.pnl, pnlKey, "pnl-checkpoint"),
    loadTable("/v1/risk/rejections", state.rejections, fillKey, "rejections-checkpoint"),
    has("risk") ? loadTable("/v1/risk/limits", state.limits, (l) => l.account_id) : null,
    fills.then(() => chart.load($("c-instrument").value, $("c-timeframe").value, [...state.fills.values()])),
  ]);
  render();
}

async function start() {
  const who = current();
  $("signin").hidden = true;
  $("desk").hidden = false;
  $("whoami").hidden = false;
  const accounts = who.accounts.length > 4 ? `${who.accounts.length} accounts` : who.accounts.join(", ");
  $("user").textContent = `${who.user} (${who.roles.join(", ")}${accounts ? ": " + accounts : ""})`;
  $("ticket").hidden = !has("trader");
  $("risk-controls").hidden = !has("risk");
  $("f-account_id").replaceChildren(...who.accounts.map((a) => new Option(a, a)));
  const wanted = new URLSearchParams(location.hash.slice(1)).get("account");
  if (wanted) $("q-account").value = wanted;
  chart = new Candles($("chart"), (text) => ($("signals").textContent = text), call);
  stream = new AbortController();
  follow(onChange, (s, err) => ($("live").textContent = s === "refused" ? `live: refused (${err.message})` : `live: ${s}`),
    stream.signal);
  await loadAll();
}

function stop() {
  stream?.abort();
  signOut();
  chart?.remove();
  chart = null;
  tracked = selected = null;
  for (const map of Object.values(state)) map.clear();
  $("desk").hidden = true;
  $("whoami").hidden = true;
  $("signin").hidden = false;
  $("detail").hidden = true;
  $("lifecycle").textContent = "";
  $("live").textContent = "live: off";
  $("password").value = "";
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").textContent = "";
  try {
    await signIn($("username").value, $("password").value);
    performance.mark("tradecore:signed-in"); // bench/dashboard.py times the data load from here
    await start();
    performance.mark("tradecore:loaded");
  } catch (err) {
    $("signin-error").textContent = err.message;
  }
});
$("signout").addEventListener("click", stop);
$("order-form").addEventListener("submit", placeOrder);
$("f-order_type").addEventListener("change", (e) => ($("f-limit_price").disabled = e.target.value === "MARKET"));
$("blotter-filters").addEventListener("submit", (e) => {
  e.preventDefault();
  loadOrders();
});
$("amend-form").addEventListener("submit", amend);
$("cancel-order").addEventListener("click", cancelOrder);
$("kill-form").addEventListener("submit", killSwitch);
$("chart-form").addEventListener("change", () =>
  chart.load($("c-instrument").value, $("c-timeframe").value, [...state.fills.values()]));
health();
setInterval(health, 5000);
