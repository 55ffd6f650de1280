// Canarymesh dashboard: three views (mesh, canaries, one canary) over the REST API,
// live through server-sent events. No framework: DOM and SVG are built by h() and s().
'use strict';

const API = '/ui/api/apis/canarymesh.dev/v1alpha1';
const CSRF = { 'X-Canarymesh-Dashboard': '1' };
const SVGNS = 'http://www.w3.org/2000/svg';

const state = {
  session: null, // what /ui/session said
  es: null, // the EventSource
  connected: false,
  view: null, // {name, ns, canary, render}
  pending: null, // debounce timer of a re-read
  meshJSON: '',
  recheck: null,
};

// ---- DOM helpers -----------------------------------------------------------------

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, kids) {
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

const $ = (id) => document.getElementById(id);

function banner(kind, text) {
  const b = $('banner');
  if (!text) { b.hidden = true; b.textContent = ''; return; }
  b.className = 'banner ' + kind;
  b.textContent = text;
  b.hidden = false;
}

function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  return isNaN(d) || d.getFullYear() < 2000 ? '' : d.toLocaleTimeString([], { hour12: false });
}

function ago(t) {
  if (!t) return '—';
  const d = new Date(t);
  if (isNaN(d) || d.getFullYear() < 2000) return '—';
  const s = Math.max(0, Math.round((Date.now() - d) / 1000));
  if (s < 60) return s + 's ago';
  if (s < 3600) return Math.round(s / 60) + 'm ago';
  if (s < 86400) return Math.round(s / 3600) + 'h ago';
  return Math.round(s / 86400) + 'd ago';
}

const num = (v, d) => (v === undefined || v === null ? '—' : Number(v).toFixed(d));

// ---- talking to the server -----------------------------------------------------

class HTTPError extends Error {
  constructor(status, reason, message) { super(message); this.status = status; this.reason = reason; }
}

async function call(method, path, body) {
  let resp;
  try {
    resp = await fetch(path, {
      method, credentials: 'same-origin', cache: 'no-store',
      headers: Object.assign({ 'Accept': 'application/json' }, method === 'GET' ? {} : CSRF,
        body ? { 'Content-Type': 'application/json' } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new HTTPError(0, 'Unreachable', 'the server cannot be reached: it may be restarting');
  }
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) {
    const msg = (data && data.message) || ('the server answered ' + resp.status);
    throw new HTTPError(resp.status, (data && data.reason) || '', msg);
  }
  return data;
}

const get = (p) => call('GET', p);

// handleReadError turns a failed read into the right page state.
function handleReadError(e) {
  if (e.status === 401) { sessionLost(e.message); return true; }
  if (e.status === 0) { serverDown(); return true; }
  return false;
}

// ---- session ----------------------------------------------------------------------

async function boot() {
  window.addEventListener('hashchange', route);
  $('logout').addEventListener('click', logout);
  $('login-open').addEventListener('click', () => showLogin(''));
  await checkSession();
}

async function checkSession() {
  let info;
  try {
    info = await get('/ui/session');
  } catch (e) {
    serverDown();
    return;
  }
  clearTimeout(state.recheck);
  state.session = info;
  updateWho();
  if (info.loggedIn || info.anonymousRead) {
    if (info.expired && !info.anonymousRead) { showLogin(info.message); return; }
    if (info.expired) banner('info', 'Your session expired or the server restarted: log in again to act on canaries.');
    connect();
    route();
  } else {
    showLogin(info.expired ? info.message : '');
  }
}

// syncSession reads the session again after a reconnect, without leaving the view: a
// restarted server has forgotten the login.
async function syncSession() {
  try {
    const info = await get('/ui/session');
    state.session = info;
    updateWho();
    if (info.expired && info.anonymousRead) banner('info', 'Your session expired or the server restarted: log in again to act on canaries.');
  } catch (e) { /* the stream's error handler reports it */ }
}

function updateWho() {
  const i = state.session || {};
  $('who').textContent = i.loggedIn ? 'logged in' + (i.readOnly ? ' · read-only' : '')
    : (i.anonymousRead ? 'viewing without login' + (i.readOnly ? ' · read-only' : '') : '');
  $('logout').hidden = !i.loggedIn;
  $('login-open').hidden = !!i.loggedIn || !i.anonymousRead;
}

function showLogin(reason) {
  disconnect();
  state.view = null;
  setNav('');
  const main = $('main');
  main.replaceChildren($('login-template').content.cloneNode(true));
  if (reason) { $('login-reason').textContent = reason; $('login-reason').hidden = false; }
  banner('', '');
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('login-error');
    err.hidden = true;
    try {
      await call('POST', '/ui/login', { token: $('token').value });
      $('token').value = '';
      if (location.hash === '' || location.hash === '#/login') location.hash = '#/canaries';
      await checkSession();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });
  $('token').focus();
}

async function logout() {
  try { await call('POST', '/ui/logout'); } catch (e) { /* shown by checkSession */ }
  await checkSession();
}

// sessionLost: the server no longer knows our session (expiry or restart).
function sessionLost(msg) {
  if (state.session && state.session.anonymousRead) {
    state.session.loggedIn = false;
    updateWho();
    banner('info', msg || 'Your session expired: log in again to act on canaries.');
    return;
  }
  showLogin(msg || 'Your session expired or the server restarted: log in again.');
}

function serverDown() {
  setLive(false);
  banner('error', 'The server cannot be reached (restarting or stopped). Reconnecting…');
  clearTimeout(state.recheck);
  state.recheck = setTimeout(checkSession, 2000);
}

// ---- live updates -------------------------------------------------------------------

function setLive(on) {
  state.connected = on;
  const l = $('live');
  l.className = 'live ' + (on ? 'on' : 'off');
  l.textContent = on ? 'live' : 'offline';
}

function disconnect() {
  if (state.es) { state.es.close(); state.es = null; }
  setLive(false);
}

function connect() {
  if (state.es) return;
  const es = new EventSource('/ui/events');
  state.es = es;
  es.addEventListener('hello', () => {
    const wasDown = !state.connected && $('banner').classList.contains('error');
    setLive(true);
    if (wasDown) banner('ok', 'Reconnected to the server.');
    syncSession();
    refresh();
  });
  es.addEventListener('change', (e) => onChange(JSON.parse(e.data)));
  // Ticks bring the traffic figures and the "last transition" ages up to date.
  es.addEventListener('tick', () => { if (state.view && state.view.name !== 'canary') refresh(); });
  es.addEventListener('expired', () => { disconnect(); checkSession(); });
  es.onerror = () => {
    setLive(false);
    if (es.readyState === EventSource.CLOSED) {
      // Refused (401) or broken for good: find out which.
      state.es = null;
      checkSession();
    } else {
      banner('error', 'The server cannot be reached (restarting or stopped). Reconnecting…');
    }
  };
}

function onChange(c) {
  const v = state.view;
  if (!v) return;
  if (v.name === 'canaries' && c.kind === 'Canary') {
    soon();
  } else if (v.name === 'canary') {
    if (c.kind === 'Canary' && c.namespace === v.ns && c.name === v.canary) {
      if (c.type === 'DELETED') { canaryGone(v); return; }
      soon();
    } else if (c.kind === 'Event' && c.namespace === v.ns) {
      soon();
    }
  } else if (v.name === 'mesh' && c.kind !== 'Event') {
    soon();
  }
}

function soon() {
  clearTimeout(state.pending);
  state.pending = setTimeout(refresh, 150);
}

function refresh() {
  if (state.view && state.view.render) state.view.render();
}

// ---- routing ----------------------------------------------------------------------

function setNav(name) {
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === name);
}

function route() {
  if (!state.session || !(state.session.loggedIn || state.session.anonymousRead)) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  let v;
  if (parts[0] === 'canary' && parts.length >= 3) {
    v = { name: 'canary', ns: parts[1], canary: parts[2] };
    v.render = () => renderCanary(v);
    setNav('canaries');
  } else if (parts[0] === 'canaries') {
    v = { name: 'canaries' };
    v.render = () => renderCanaries(v);
    setNav('canaries');
  } else {
    v = { name: 'mesh' };
    v.render = () => renderMesh(v);
    setNav('mesh');
  }
  state.view = v;
  state.meshJSON = '';
  $('main').replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  v.render();
}

// stale reports whether a view was left while its data loaded.
const stale = (v) => state.view !== v;

// ---- canaries list ------------------------------------------------------------------

function phaseBadge(st) {
  const p = (st && st.phase) || 'Unknown';
  return [h('span', { class: 'badge ' + p }, p), st && st.paused ? h('span', { class: 'badge paused' }, 'paused') : null];
}

function weightCell(w) {
  const bar = h('span', { class: 'wbar' }, h('span'));
  bar.firstChild.style.width = Math.max(0, Math.min(100, w || 0)) + '%';
  return [bar, (w || 0) + '%'];
}

async function renderCanaries(v) {
  let list;
  try {
    list = await get(API + '/canaries');
  } catch (e) {
    if (!handleReadError(e)) banner('error', 'Cannot list canaries: ' + e.message);
    return;
  }
  if (stale(v)) return;
  const items = (list.items || []).slice().sort((a, b) =>
    (a.metadata.namespace + '/' + a.metadata.name).localeCompare(b.metadata.namespace + '/' + b.metadata.name));
  const rows = items.map((c) => {
    const st = c.status || {};
    const thr = (c.spec && c.spec.analysis && c.spec.analysis.threshold) || 1;
    return h('tr', { 'data-canary': c.metadata.namespace + '/' + c.metadata.name },
      h('td', {}, h('a', { href: '#/canary/' + encodeURIComponent(c.metadata.namespace) + '/' + encodeURIComponent(c.metadata.name) }, c.metadata.name)),
      h('td', {}, c.metadata.namespace),
      h('td', { class: 'phase' }, phaseBadge(st)),
      h('td', { class: 'weight' }, weightCell(st.canaryWeight)),
      h('td', { class: 'failed' }, (st.failedChecks || 0) + ' / ' + thr),
      h('td', { title: st.lastTransitionTime || '' }, ago(st.lastTransitionTime)),
      h('td', { class: 'muted' }, st.message || ''));
  });
  $('main').replaceChildren(
    h('h1', {}, 'Canaries'),
    items.length === 0
      ? h('div', { class: 'card empty' }, 'No canaries yet. Apply a Canary with canarymesh apply -f.')
      : h('table', { id: 'canaries' },
        h('thead', {}, h('tr', {}, ['Name', 'Namespace', 'Phase', 'Weight', 'Failed checks', 'Last transition', 'Message'].map((t) => h('th', {}, t)))),
        h('tbody', {}, rows)));
}

// ---- one canary ---------------------------------------------------------------------

function canaryGone(v) {
  if (stale(v)) return;
  banner('error', 'Canary ' + v.ns + '/' + v.canary + ' was deleted. It is no longer in the store.');
  $('main').replaceChildren(h('h1', {}, v.ns + '/' + v.canary),
    h('div', { class: 'card empty', id: 'gone' }, 'This canary was deleted. ', h('a', { href: '#/canaries' }, 'Back to the canaries')));
}

async function renderCanary(v) {
  const base = API + '/namespaces/' + encodeURIComponent(v.ns);
  let cd, hist, evs;
  try {
    [cd, hist, evs] = await Promise.all([
      get(base + '/canaries/' + encodeURIComponent(v.canary)),
      get('/ui/history/' + encodeURIComponent(v.ns) + '/' + encodeURIComponent(v.canary)),
      get(base + '/events'),
    ]);
  } catch (e) {
    if (e.status === 404) { canaryGone(v); return; }
    if (!handleReadError(e)) banner('error', 'Cannot read canary ' + v.ns + '/' + v.canary + ': ' + e.message);
    return;
  }
  if (stale(v)) return;
  const st = cd.status || {};
  const an = (cd.spec && cd.spec.analysis) || {};
  const events = (evs.items || []).filter((e) => e.involvedObject && e.involvedObject.kind === 'Canary' && e.involvedObject.name === v.canary)
    .sort((a, b) => new Date(b.lastTimestamp) - new Date(a.lastTimestamp)).slice(0, 40);
  const prevResult = $('action-result');
  const kept = prevResult ? [prevResult.className, prevResult.textContent] : null;

  $('main').replaceChildren(
    h('p', {}, h('a', { href: '#/canaries' }, '← Canaries')),
    h('h1', {}, v.ns + '/' + v.canary, ' ', phaseBadge(st)),
    h('div', { class: 'row' },
      stat('weight', (st.canaryWeight || 0) + '%', 'canary weight'),
      stat('failed', (st.failedChecks || 0) + ' / ' + (an.threshold || 1), 'failed checks'),
      stat('iterations', String(st.iterations || 0), 'iterations'),
      stat('transition', ago(st.lastTransitionTime), 'last transition')),
    st.message ? h('p', { class: 'muted', id: 'message' }, st.message) : null,
    actions(v),
    h('h2', {}, 'Analysis timeline'),
    chart(hist),
    h('h2', {}, 'Last metric checks'),
    metricsTable(st.lastMetrics || []),
    h('h2', {}, 'Last webhook results'),
    webhooksTable(st.lastWebhooks || []),
    h('h2', {}, 'Events'),
    eventsTable(events));
  if (kept && kept[1]) { $('action-result').className = kept[0]; $('action-result').textContent = kept[1]; }
}

function stat(id, value, label) {
  return h('div', { class: 'stat', id: 'stat-' + id }, h('b', {}, value), h('span', {}, label));
}

const VERBS = [
  ['promote', 'Promote', 'Promote the revision under analysis now'],
  ['abort', 'Abort', 'Roll back the release under analysis now'],
  ['retry', 'Retry', 'Analyse a failed revision again'],
  ['pause', 'Pause', 'Hold the release where it is'],
  ['resume', 'Resume', 'Continue a paused release'],
];

function actions(v) {
  const ro = state.session && state.session.readOnly;
  const box = h('div', { class: 'actions' },
    VERBS.map(([verb, label, title]) => h('button', {
      type: 'button', class: verb, id: 'action-' + verb, title, disabled: ro,
      onclick: () => act(v, verb),
    }, label)),
    h('span', { id: 'action-result', role: 'status' }, ro ? 'Read-only dashboard: actions are switched off.' : ''));
  return box;
}

async function act(v, verb) {
  const out = $('action-result');
  out.className = 'muted';
  out.textContent = verb + '…';
  try {
    const r = await call('POST', '/ui/actions/' + encodeURIComponent(v.ns) + '/' + encodeURIComponent(v.canary) + '/' + verb);
    out.className = 'pass';
    out.textContent = r.message;
  } catch (e) {
    out.className = 'error';
    out.textContent = e.message;
    if (e.reason === 'SessionExpired') { state.session.loggedIn = false; updateWho(); }
  }
}

function metricsTable(ms) {
  if (ms.length === 0) return h('p', { class: 'muted' }, 'No metric checked yet.');
  return h('table', { id: 'metrics' },
    h('thead', {}, h('tr', {}, ['Metric', 'Value', 'Accepted', 'Result', 'Message', 'Time'].map((t) => h('th', {}, t)))),
    h('tbody', {}, ms.map((m) => h('tr', {},
      h('td', {}, m.name), h('td', {}, num(m.value, 2)),
      h('td', {}, (m.thresholdMin !== undefined ? '≥ ' + m.thresholdMin + ' ' : '') + (m.thresholdMax !== undefined ? '≤ ' + m.thresholdMax : '')),
      h('td', { class: m.passed ? 'pass' : 'fail' }, m.passed ? 'passed' : 'failed'),
      h('td', { class: 'muted' }, m.message || ''), h('td', {}, fmtTime(m.time))))));
}

function webhooksTable(ws) {
  if (ws.length === 0) return h('p', { class: 'muted', id: 'webhooks' }, 'No webhook called yet.');
  return h('table', { id: 'webhooks' },
    h('thead', {}, h('tr', {}, ['Webhook', 'Type', 'Status', 'Result', 'Answer', 'Time'].map((t) => h('th', {}, t)))),
    h('tbody', {}, ws.map((w) => h('tr', {},
      h('td', {}, w.name), h('td', {}, w.type), h('td', {}, w.statusCode || '—'),
      h('td', { class: w.passed ? 'pass' : 'fail' }, w.passed ? 'passed' : 'failed'),
      h('td', { class: 'muted' }, w.message || ''), h('td', {}, fmtTime(w.time))))));
}

function eventsTable(evs) {
  if (evs.length === 0) return h('p', { class: 'muted' }, 'No events.');
  return h('table', { id: 'events' },
    h('thead', {}, h('tr', {}, ['Last seen', 'Type', 'Reason', 'Message', 'Count'].map((t) => h('th', {}, t)))),
    h('tbody', {}, evs.map((e) => h('tr', { class: 'ev-' + e.type },
      h('td', { title: e.lastTimestamp }, fmtTime(e.lastTimestamp)), h('td', {}, e.type), h('td', {}, e.reason),
      h('td', {}, e.message), h('td', {}, e.count)))));
}

// chart draws the release's steps: weight and success rate (percent) above, P99 (ms)
// below, both against time, with the thresholds dashed and the end of the release
// marked.
function chart(hist) {
  const pts = hist.points || [];
  const marks = hist.markers || [];
  if (pts.length === 0) {
    return h('div', { class: 'card empty', id: 'chart' }, 'No analysis step yet: the chart fills in as the release advances.');
  }
  const W = 900, H1 = 210, H2 = 130, L = 48, R = 56, T = 14, GAP = 34;
  const H = T + H1 + GAP + H2 + 28;
  const times = pts.map((p) => +new Date(p.time)).concat(marks.map((m) => +new Date(m.time)));
  let t0 = Math.min(...times), t1 = Math.max(...times);
  if (t1 - t0 < 1000) { t0 -= 1000; t1 += 1000; }
  const pad = (t1 - t0) * 0.04;
  t0 -= pad; t1 += pad;
  const x = (t) => L + ((+new Date(t) - t0) / (t1 - t0)) * (W - L - R);
  const y1 = (v) => T + H1 - (v / 100) * H1;
  const thr = hist.thresholds || {};
  const p99s = pts.filter((p) => p.p99 !== undefined).map((p) => p.p99);
  const p99Max = Math.max(1, ...p99s, thr.p99Max ? thr.p99Max * 1.15 : 0) * 1.1;
  const top2 = T + H1 + GAP;
  const y2 = (v) => top2 + H2 - (v / p99Max) * H2;
  const g = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'analysis timeline' });

  // Grids and axes.
  for (const v of [0, 25, 50, 75, 100]) {
    g.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: y1(v), y2: y1(v) }),
      s('text', { class: 'tick', x: L - 6, y: y1(v) + 4, 'text-anchor': 'end' }, v + '%'));
  }
  for (const f of [0, 0.5, 1]) {
    const v = (p99Max / 1.1) * f;
    g.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: y2(v), y2: y2(v) }),
      s('text', { class: 'tick', x: W - R + 6, y: y2(v) + 4 }, Math.round(v) + ' ms'));
  }
  g.append(s('line', { class: 'axis', x1: L, x2: L, y1: T, y2: T + H1 }),
    s('line', { class: 'axis', x1: L, x2: W - R, y1: T + H1, y2: T + H1 }),
    s('line', { class: 'axis', x1: L, x2: W - R, y1: top2 + H2, y2: top2 + H2 }),
    s('text', { class: 'tick', x: L, y: top2 - 8 }, 'P99 request duration'));
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    g.append(s('text', { class: 'tick', x: x(t), y: top2 + H2 + 18, 'text-anchor': 'middle' }, fmtTime(t)));
  }

  // Thresholds.
  if (thr.successRateMin !== undefined) {
    g.append(s('line', { class: 'thr', id: 'thr-sr', x1: L, x2: W - R, y1: y1(thr.successRateMin), y2: y1(thr.successRateMin) }),
      s('text', { class: 'thr-label', x: W - R + 4, y: y1(thr.successRateMin) + 4 }, 'min ' + thr.successRateMin + '%'));
  }
  if (thr.p99Max !== undefined) {
    g.append(s('line', { class: 'thr', id: 'thr-p99', x1: L, x2: W - R, y1: y2(thr.p99Max), y2: y2(thr.p99Max) }),
      s('text', { class: 'thr-label', x: L + 4, y: y2(thr.p99Max) - 4 }, 'max ' + thr.p99Max + ' ms'));
  }

  // Series: a step line for the weight (it holds between steps), lines for the rest.
  const stepPath = pts.map((p, i) => (i === 0 ? `M${x(p.time)},${y1(p.weight)}` : `H${x(p.time)}V${y1(p.weight)}`)).join('');
  g.append(s('path', { class: 'line-weight', d: stepPath }));
  const linePath = (key, y) => pts.filter((p) => p[key] !== undefined)
    .map((p, i) => (i === 0 ? 'M' : 'L') + x(p.time) + ',' + y(p[key])).join('');
  const sr = linePath('successRate', y1), p99 = linePath('p99', y2);
  if (sr) g.append(s('path', { class: 'line-sr', d: sr }));
  if (p99) g.append(s('path', { class: 'line-p99', d: p99 }));
  pts.forEach((p, i) => {
    const tip = `step ${i + 1} · ${fmtTime(p.time)} · ${p.phase || ''} · weight ${p.weight}%` +
      (p.successRate !== undefined ? ` · success ${num(p.successRate, 2)}%` : '') +
      (p.p99 !== undefined ? ` · P99 ${num(p.p99, 1)} ms` : '') + (p.failedChecks ? ` · ${p.failedChecks} failed` : '');
    g.append(s('circle', { class: 'pt-weight step', 'data-step': i + 1, 'data-weight': p.weight, cx: x(p.time), cy: y1(p.weight), r: 4 },
      s('title', {}, tip)));
    if (p.successRate !== undefined) {
      const bad = thr.successRateMin !== undefined && p.successRate < thr.successRateMin;
      g.append(s('circle', { class: bad ? 'pt-failed' : 'pt-sr', cx: x(p.time), cy: y1(p.successRate), r: 3.2 }, s('title', {}, tip)));
    }
    if (p.p99 !== undefined) {
      const bad = thr.p99Max !== undefined && p.p99 > thr.p99Max;
      g.append(s('circle', { class: bad ? 'pt-failed' : 'pt-p99', cx: x(p.time), cy: y2(p.p99), r: 3.2 }, s('title', {}, tip)));
    }
  });

  // The end of the release.
  for (const m of marks) {
    const mx = x(m.time);
    const label = m.kind === 'promoted' ? 'promoted' : 'rolled back';
    g.append(s('line', { class: 'marker-' + m.kind, id: 'marker-' + m.kind, x1: mx, x2: mx, y1: T, y2: top2 + H2 }),
      s('text', { class: 'marker-label ' + m.kind, x: mx - 4, y: T + 12, 'text-anchor': 'end' }, label + ' ' + fmtTime(m.time),
        s('title', {}, m.message || label)));
  }

  return h('div', { class: 'chart', id: 'chart', 'data-points': pts.length },
    g,
    h('div', { class: 'legend' },
      h('span', {}, h('i', { class: 'lg-weight' }), 'canary weight'),
      h('span', {}, h('i', { class: 'lg-sr' }), 'success rate'),
      h('span', {}, h('i', { class: 'lg-p99' }), 'P99 (ms, lower panel)'),
      h('span', {}, h('i', { class: 'lg-thr' }), 'thresholds'),
      h('span', {}, h('i', { class: 'lg-promo' }), 'promotion'),
      h('span', {}, h('i', { class: 'lg-rb' }), 'rollback'),
      h('span', {}, pts.length + ' steps')));
}

// ---- mesh graph -----------------------------------------------------------------------

const COLUMNS = ['VirtualGateway', 'VirtualService', 'VirtualRouter', 'VirtualNode'];
const COLUMN_TITLES = ['Gateways', 'Virtual services', 'Virtual routers', 'Virtual nodes'];

async function renderMesh(v) {
  let g;
  try {
    g = await get('/ui/mesh');
  } catch (e) {
    if (!handleReadError(e)) banner('error', 'Cannot read the mesh: ' + e.message);
    return;
  }
  if (stale(v)) return;
  const js = JSON.stringify(g);
  if (js === state.meshJSON) return; // nothing changed: keep the drawing steady
  state.meshJSON = js;
  $('main').replaceChildren(
    h('h1', {}, 'Mesh'),
    g.nodes.length === 0
      ? h('div', { class: 'card empty' }, 'No mesh objects yet. Apply manifests with canarymesh apply -f.')
      : meshGraph(g),
    g.traffic ? h('p', { class: 'muted' }, 'Arrows: route weight, requests per second and success rate; virtual nodes: the same with P99 — over the last minute, from the proxies.')
      : h('p', { class: 'muted' }, 'No in-process proxies (--no-proxies): edges show no traffic figures.'));
}

function boxHeight(n) {
  return 46 + (n.stats ? 15 : 0) + (n.endpoints ? Math.min(n.endpoints.length, 8) * 15 + 4 : 0);
}

const pct = (v) => (v >= 99.95 ? '100' : num(v, 1)) + '%';

// meshGraph lays the mesh out in columns, callers left of callees, and draws each arrow
// straight through the columns it skips and curved in the last gap, with its figures
// in that gap.
function meshGraph(g) {
  const boxW = 190, gapY = 24, top = 40, left = 16;
  const cols = COLUMNS.map(() => []);
  for (const n of g.nodes) {
    const c = COLUMNS.indexOf(n.kind);
    if (c >= 0) cols[c].push(n);
  }
  // A virtual node's box shows the traffic into it (any edge's figures: they are the node's).
  for (const e of g.edges) {
    const n = g.nodes.find((m) => m.id === e.to);
    if (n && e.stats && !e.stats.noData) n.stats = e.stats;
  }
  const used = cols.map((c) => c.length > 0);
  const ncols = used.filter(Boolean).length;
  const avail = Math.max(900, $('main').clientWidth - 48); // inside main's padding and the card's border
  const gap = ncols > 1 ? Math.max(130, (avail - 2 * left - ncols * boxW) / (ncols - 1)) : 0;
  const colX = [];
  let cx = left;
  for (let c = 0; c < cols.length; c++) { colX.push(cx); if (used[c]) cx += boxW + gap; }
  const pos = {};
  let height = 0;
  cols.forEach((col, c) => {
    if (c > 0) {
      // Order each column by where its callers sit, so arrows cross less.
      const rank = (n) => {
        const ys = g.edges.filter((e) => e.to === n.id && pos[e.from]).map((e) => pos[e.from].y);
        return ys.length ? Math.min(...ys) : 1e9;
      };
      col.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
    }
    let y = top;
    for (const n of col) {
      pos[n.id] = { x: colX[c], y, h: boxHeight(n) };
      y += boxHeight(n) + gapY;
    }
    height = Math.max(height, y);
  });
  const width = Math.max(avail, cx - gap + left);
  const svg = s('svg', { width, height: height + 10, viewBox: `0 0 ${width} ${height + 10}`, id: 'mesh-graph' });
  cols.forEach((col, c) => {
    if (used[c]) svg.append(s('text', { class: 'kind', x: colX[c], y: 22 }, COLUMN_TITLES[c]));
  });
  svg.append(s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 2, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
    s('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#9aa6b8' }))));
  // Arrows first, under the boxes.
  const labels = [];
  for (const e of g.edges) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const x1 = a.x + boxW, y1 = a.y + 22, x2 = b.x - 6, y2 = b.y + 22;
    const xs = Math.max(x1, b.x - gap); // where the last gap begins
    const mx = (xs + x2) / 2;
    let cls = 'edge';
    const st = e.stats;
    if (st && !st.noData) cls += st.successRate >= 99 ? ' good' : st.successRate >= 95 ? ' warn' : ' bad';
    svg.append(s('path', { class: cls, d: `M${x1},${y1} H${xs} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, 'marker-end': 'url(#arrow)' }));
    const parts = [];
    if (e.weight !== undefined && e.weight !== null) parts.push(e.weight + '%');
    if (st && !st.noData) parts.push(num(st.rps, 1) + ' rps', pct(st.successRate) + ' ok');
    else if (st && st.noData) parts.push('no traffic');
    if (parts.length) {
      let ly = (y1 + y2) / 2 - 5;
      while (labels.some((l) => Math.abs(l.x - mx) < 100 && Math.abs(l.y - ly) < 13)) ly += 14;
      labels.push({ x: mx, y: ly, text: parts.join(' · '), title: (e.label ? 'route ' + e.label + ': ' : '') + e.from + ' → ' + e.to });
    }
  }
  for (const n of g.nodes) {
    const p = pos[n.id];
    if (!p) continue;
    const grp = s('g', { class: 'node', 'data-id': n.id, transform: `translate(${p.x},${p.y})` },
      s('rect', { class: 'box ' + n.health, width: boxW, height: p.h, rx: 6 }),
      s('text', { class: 'box-title', x: 10, y: 19 }, clip(n.name, 24), s('title', {}, n.namespace + '/' + n.name + ' (' + n.kind + ')')),
      s('text', { class: 'box-detail', x: 10, y: 35 }, clip(n.namespace + (n.detail ? ' · ' + n.detail : ''), 32),
        s('title', {}, n.detail || '')));
    let y = 54;
    if (n.stats) {
      grp.append(s('text', { class: 'box-detail', x: 10, y }, `${num(n.stats.rps, 1)} rps · ${pct(n.stats.successRate)} ok · p99 ${num(n.stats.p99, 0)} ms`));
      y += 15;
    }
    (n.endpoints || []).slice(0, 8).forEach((ep, i) => {
      grp.append(s('text', { class: 'ep ' + (ep.ready ? 'ready' : 'notready'), x: 10, y: y + i * 15 },
        (ep.ready ? '● ' : '○ ') + ep.address + (ep.revision ? ' ' + ep.revision.slice(0, 7) : ''),
        s('title', {}, ep.ready ? 'ready' : 'not ready')));
    });
    svg.append(grp);
  }
  // Labels last, over the arrows.
  for (const l of labels) {
    svg.append(s('text', { class: 'edge-label', x: l.x, y: l.y, 'text-anchor': 'middle' }, l.text, s('title', {}, l.title)));
  }
  return h('div', { class: 'mesh' }, svg);
}

function clip(t, n) {
  return t.length > n ? t.slice(0, n - 1) + '…' : t;
}

boot();
