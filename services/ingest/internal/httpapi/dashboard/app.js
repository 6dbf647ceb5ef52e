// ODAVL Sync dashboard: plain DOM, no framework, no HTML strings (the page's
// CSP enforces Trusted Types with no policy, so innerHTML would throw).
'use strict';

(() => {
  const SESSION = 'odavl.dashboard';
  const TABS = ['jobs', 'insight', 'autopilot', 'guardian'];
  const LIMIT = 20;
  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers -------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'value' || k === 'max') e[k] = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const spinner = (what) => el('div', { class: 'spinner', role: 'status', text: 'Loading ' + what + '…' });
  const note = (text) => el('div', { class: 'note', text });
  const errorBox = (text) => el('div', { class: 'alert', role: 'alert', text });
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : 0);
  const fmtNum = (v, digits) => (typeof v === 'number' && isFinite(v)
    ? v.toLocaleString('en-US', { maximumFractionDigits: digits === undefined ? 1 : digits }) : '—');
  const fmtMs = (v) => (typeof v === 'number' && isFinite(v)
    ? (v >= 1000 ? fmtNum(v / 1000, 2) + ' s' : fmtNum(v, 0) + ' ms') : '—');
  function fmtTime(s) {
    if (!s) return '—';
    const d = new Date(s);
    return isNaN(d) ? String(s) : d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
  }
  const shortID = (s) => (s && s.length > 14 ? s.slice(0, 14) + '…' : s || '—');
  function card(label, value, color, sub, extra) {
    return el('div', Object.assign({ class: 'card ' + (color || '') }, extra || {}),
      el('div', { class: 'label', text: label }),
      el('div', { class: 'value', text: value }),
      sub ? el('div', { class: 'sub', text: sub }) : null);
  }
  const badge = (text, cls) => el('span', { class: 'badge ' + (cls || String(text).toLowerCase()), text });
  const metric = (label, value) => el('span', {}, label + ': ', el('b', { text: value }));

  // ---- session -----------------------------------------------------------
  let session = null;
  try { session = JSON.parse(sessionStorage.getItem(SESSION) || 'null'); } catch (_) { session = null; }

  function headers() {
    return {
      'Authorization': 'Bearer ' + session.key,
      'X-Organization-Id': session.org,
      'X-Project-Id': session.project,
      'Accept': 'application/json',
    };
  }

  // api calls the public API; it answers {ok, status, body, unavailable, message}.
  async function api(method, path, body) {
    const init = { method, headers: headers(), cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      return { ok: false, status: 0, message: 'The server cannot be reached (' + e.message + ').' };
    }
    let data = null;
    const text = await resp.text();
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    const out = { ok: resp.ok, status: resp.status, body: data };
    if (!resp.ok) {
      out.message = (data && (data.detail || data.title)) || ('HTTP ' + resp.status);
      if (data && Array.isArray(data.errors) && data.errors.length) {
        out.message += ': ' + data.errors.map((f) => f.field + ' ' + f.message).join('; ');
      }
      // A route another release adds, or a service that is not running.
      out.unavailable = [404, 405, 501, 503].includes(resp.status);
      if (resp.status === 401) signOut('Your API key was refused: ' + out.message);
    }
    return out;
  }

  function showError(msg) {
    const e = $('error');
    e.textContent = msg || '';
    e.hidden = !msg;
  }

  // ---- sign in / out -------------------------------------------------------
  async function signIn(ev) {
    ev.preventDefault();
    const key = $('f-key').value.trim();
    const org = $('f-org').value.trim();
    const project = $('f-project').value.trim();
    const missing = [!key && 'API key', !org && 'organization', !project && 'project'].filter(Boolean);
    if (missing.length) { showError('Please enter the ' + missing.join(', ') + '.'); return; }
    const btn = $('signin-submit');
    btn.disabled = true;
    btn.textContent = 'Checking…';
    session = { key, org, project };
    const r = await api('GET', '/api/v1/sync/insight?limit=1');
    btn.disabled = false;
    btn.textContent = 'Open dashboard';
    if (!r.ok && r.status !== 503) {
      session = null;
      showError('Sign-in failed: ' + r.message);
      return;
    }
    sessionStorage.setItem(SESSION, JSON.stringify(session));
    $('f-key').value = '';
    showError('');
    start();
  }

  function signOut(reason) {
    stopStream();
    session = null;
    sessionStorage.removeItem(SESSION);
    $('app').hidden = true;
    $('session').hidden = true;
    $('signin').hidden = false;
    showError(typeof reason === 'string' ? reason : '');
  }

  // ---- statistics ----------------------------------------------------------
  const STATUS = ['WAITING', 'ACTIVE', 'COMPLETED', 'FAILED', 'DELAYED', 'PAUSED', 'CANCELLED'];

  // jobStats reads the counts by status from a jobs answer, whatever the
  // exact shape: {stats:{byStatus:{…}}}, {stats:{WAITING:n…}} or the items.
  function jobStats(body, items) {
    const s = (body && (body.stats || body.statistics)) || {};
    const src = s.byStatus || s.status || s;
    const by = {};
    let found = false;
    for (const st of STATUS) {
      const v = src[st] !== undefined ? src[st] : src[st.toLowerCase()];
      if (typeof v === 'number') { by[st] = v; found = true; } else by[st] = 0;
    }
    if (!found) for (const j of items) by[String(j.status).toUpperCase()] = (by[String(j.status).toUpperCase()] || 0) + 1;
    let total = typeof s.total === 'number' ? s.total : STATUS.reduce((a, st) => a + by[st], 0);
    if (!found && typeof body.total === 'number') total = body.total;
    return { by, total, paused: s.paused === true };
  }

  function renderStats(jobs) {
    const box = $('stats');
    if (jobs.unavailable || !jobs.ok) {
      const why = jobs.unavailable ? 'not available' : 'error: ' + jobs.message;
      box.replaceChildren(...[['Total jobs', 'total'], ['Completed', 'completed'], ['Failed', 'failed'], ['Pending', 'pending'], ['Active', 'active']].map(
        ([label, key]) => card(label, '—', 'na', why, { 'data-stat': key, title: jobs.message })));
      return;
    }
    const { by, total, paused } = jobs.stats;
    box.replaceChildren(
      card('Total jobs', fmtNum(total, 0), 'gray', paused ? 'queue paused' : null, { 'data-stat': 'total' }),
      card('Completed', fmtNum(by.COMPLETED, 0), 'green', null, { 'data-stat': 'completed' }),
      card('Failed', fmtNum(by.FAILED, 0), 'red', by.CANCELLED ? by.CANCELLED + ' cancelled' : null, { 'data-stat': 'failed' }),
      card('Pending', fmtNum(by.WAITING + by.DELAYED + by.PAUSED, 0), 'yellow',
        (by.DELAYED || by.PAUSED) ? by.DELAYED + ' delayed, ' + by.PAUSED + ' paused' : null, { 'data-stat': 'pending' }),
      card('Active', fmtNum(by.ACTIVE, 0), 'blue', 'processing now', { 'data-stat': 'active' }));
  }

  // renderSummary shows the numeric figures of the stats summary as chips.
  function renderSummary(r) {
    const box = $('summary');
    if (!r.ok) {
      box.replaceChildren(el('span', { class: 'chip muted', text: 'Statistics summary: ' + (r.unavailable ? 'not available' : r.message) }));
      return;
    }
    const chips = [];
    const walk = (prefix, v, depth) => {
      if (chips.length >= 12 || depth > 2 || v === null) return;
      if (typeof v === 'number') chips.push(el('span', { class: 'chip' }, prefix + ': ', el('b', { text: fmtNum(v, 2) })));
      else if (typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(prefix ? prefix + ' ' + k : k, x, depth + 1);
    };
    walk('', r.body, 0);
    box.replaceChildren(...chips);
  }

  async function loadSummary() {
    const r = await api('GET', '/api/v1/stats/summary');
    if (session) renderSummary(r);
  }

  // ---- tabs ----------------------------------------------------------------
  let current = 'jobs';
  const loaded = {};

  function selectTab(name) {
    current = name;
    for (const t of TABS) {
      $('tab-' + t).setAttribute('aria-selected', String(t === name));
      $('panel-' + t).hidden = t !== name;
    }
    if (!loaded[name]) load(name);
  }

  async function load(name, opts) {
    const panel = $('panel-' + name);
    if (!(opts && opts.quiet)) panel.replaceChildren(spinner(name === 'jobs' ? 'jobs' : name + ' results'));
    loaded[name] = true;
    if (name === 'jobs') return loadJobs(opts);
    const seq = ++requestSeq[name];
    const r = await api('GET', '/api/v1/sync/' + name + '?limit=' + LIMIT);
    if (!session || seq !== requestSeq[name]) return; // a newer read is under way
    if (!r.ok) {
      panel.replaceChildren(r.unavailable ? note(name + ' results are not available: ' + r.message) : errorBox('Could not load ' + name + ' results: ' + r.message));
      return;
    }
    const items = (r.body && r.body.items) || [];
    // A live refresh that brings nothing new leaves the page as it is.
    const sig = JSON.stringify([r.body.total, r.body.summary, items.map((it) => it.id + '@' + it.processedAt)]);
    if (opts && opts.quiet && signatures[name] === sig) return;
    signatures[name] = sig;
    const render = { insight: insightItem, autopilot: autopilotItem, guardian: guardianItem }[name];
    const seen = renderedIDs[name];
    const nodes = items.map((it) => {
      const n = render(it);
      n.dataset.id = it.id || '';
      if (seen && !seen.has(it.id)) n.classList.add('fresh');
      return n;
    });
    renderedIDs[name] = new Set(items.map((it) => it.id));
    const children = [];
    if (r.body.summary && typeof r.body.summary === 'object') children.push(summaryLine(r.body.summary));
    if (!items.length) children.push(note('No ' + name + ' uploads yet. They appear here as soon as they are processed.'));
    else children.push(el('div', { class: 'list', 'data-list': name }, nodes));
    if (r.body.total > items.length) children.push(el('div', { class: 'more', text: 'Showing the newest ' + items.length + ' of ' + r.body.total + '.' }));
    panel.replaceChildren(...children);
    panel.dataset.total = String(r.body.total || 0);
  }
  const renderedIDs = {};
  // requestSeq numbers the reads of each list, so an answer that arrives
  // after a newer read was sent is dropped instead of showing older data.
  const requestSeq = { jobs: 0, insight: 0, autopilot: 0, guardian: 0 };
  const signatures = {};

  function summaryLine(s) {
    const box = el('div', { class: 'summary' });
    for (const [k, v] of Object.entries(s)) if (typeof v === 'number') box.append(el('span', { class: 'chip' }, k + ': ', el('b', { text: fmtNum(v, 2) })));
    return box;
  }

  // ---- jobs ----------------------------------------------------------------
  async function loadJobs(opts) {
    const panel = $('panel-jobs');
    const seq = ++requestSeq.jobs;
    const r = await api('GET', '/api/v1/sync/jobs?limit=' + LIMIT);
    if (!session || seq !== requestSeq.jobs) return; // a newer read is under way
    const items = r.ok ? ((r.body && (r.body.items || r.body.jobs)) || (Array.isArray(r.body) ? r.body : [])) : [];
    if (r.ok) r.stats = jobStats(r.body || {}, items);
    renderStats(r);
    if (!r.ok) {
      panel.replaceChildren(r.unavailable ? note('Sync jobs are not available: ' + r.message) : errorBox('Could not load jobs: ' + r.message));
      return;
    }
    if (!items.length) { panel.replaceChildren(note('No jobs yet.')); return; }
    const rows = items.map((j) => {
      const st = String(j.status || '').toUpperCase();
      const pct = Math.max(0, Math.min(100, num(j.progress)));
      const actions = [];
      const product = { INSIGHT_ANALYSIS: 'insight', AUTOPILOT_CYCLE: 'autopilot', GUARDIAN_TEST: 'guardian' }[j.type];
      if (st === 'FAILED' || st === 'CANCELLED') {
        // A failed upload is processed again from what its record keeps;
        // a cancelled one is uploaded again.
        if (product && st === 'CANCELLED') actions.push(el('span', { class: 'muted sub', title: 'Upload the result again to retry it', text: 'upload again to retry' }));
        else {
          const b = el('button', { type: 'button', class: 'small', 'data-retry': j.id }, 'Retry');
          b.addEventListener('click', () => retry(j.id, b));
          actions.push(b);
        }
      }
      if (st === 'COMPLETED' && j.resultId && product) {
        actions.push(el('button', { type: 'button', class: 'small secondary', onclick: () => selectTab(product) }, 'View'));
      }
      return el('tr', { 'data-job': j.id },
        el('td', { class: 'mono', title: j.id, text: shortID(j.id) }),
        el('td', { text: j.type || '—' }),
        el('td', {}, badge(st || 'UNKNOWN'), j.error ? el('div', { class: 'sub muted', text: j.error }) : null),
        el('td', {}, el('progress', { max: 100, value: pct, 'aria-label': 'progress ' + pct + '%' }), el('span', { class: 'pct', text: pct + '%' })),
        el('td', { text: fmtTime(j.createdAt) }),
        el('td', {}, actions));
    });
    panel.replaceChildren(el('div', { class: 'table-wrap' }, el('table', { class: 'jobs' },
      el('thead', {}, el('tr', {}, ['Job ID', 'Type', 'Status', 'Progress', 'Created', 'Actions'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows))));
  }

  async function retry(id, btn) {
    if (btn) { btn.disabled = true; btn.textContent = 'Retrying…'; }
    const r = await api('POST', '/api/v1/sync/jobs', { action: 'retry', jobId: id });
    if (!r.ok) showError('Retry of job ' + id + ' failed: ' + (r.unavailable ? 'not available (' + r.message + ')' : r.message));
    else showError('');
    loadJobs();
  }

  // ---- products ------------------------------------------------------------
  function insightItem(it) {
    const s = it.issuesBySeverity || {};
    const m = it.metrics || {};
    return el('article', { class: 'item', 'data-product': 'insight' },
      el('div', { class: 'item-head' },
        el('h3', {}, 'Analysis ', el('span', { class: 'mono', title: it.id, text: shortID(it.id) })),
        el('span', { class: 'when', text: fmtTime(it.timestamp || it.receivedAt) }),
        el('span', { class: 'total' }, el('b', { text: fmtNum(num(it.totalIssues), 0) }), ' issues')),
      el('div', { class: 'cards severity' },
        card('Critical', fmtNum(num(s.critical), 0), 'red', null, { 'data-severity': 'critical' }),
        card('High', fmtNum(num(s.high), 0), 'orange', null, { 'data-severity': 'high' }),
        card('Medium', fmtNum(num(s.medium), 0), 'yellow', null, { 'data-severity': 'medium' }),
        card('Low', fmtNum(num(s.low), 0), 'blue', null, { 'data-severity': 'low' })),
      el('div', { class: 'metrics' },
        metric('Files analyzed', fmtNum(m.filesAnalyzed, 0)),
        metric('Duration', fmtMs(m.duration)),
        metric('Detectors', fmtNum((it.detectors || []).length, 0)),
        m.codeLines !== undefined ? metric('Code lines', fmtNum(m.codeLines, 0)) : null));
  }

  function autopilotItem(it) {
    const phases = it.phases || {};
    const order = ['observe', 'decide', 'act', 'verify', 'learn'];
    let total = it.totalDuration;
    if (typeof total !== 'number') total = order.reduce((a, p) => a + num(phases[p] && phases[p].duration), 0);
    return el('article', { class: 'item', 'data-product': 'autopilot' },
      el('div', { class: 'item-head' },
        el('h3', {}, 'Run ', el('span', { class: 'mono', text: it.runId || shortID(it.id) })),
        el('span', { class: 'when', text: fmtTime(it.timestamp || it.receivedAt) }),
        it.success ? badge('success', 'success') : badge('failed', 'failed')),
      el('div', { class: 'phases' }, order.map((p) => {
        const ph = phases[p] || {};
        const st = ph.status || 'unknown';
        return el('div', { class: 'phase ' + st, 'data-phase': p },
          el('div', { class: 'name', text: p }),
          badge(st),
          el('div', { class: 'dur', text: fmtMs(ph.duration) }));
      })),
      el('div', { class: 'metrics' },
        metric('Trust score', typeof it.trustScore === 'number' ? fmtNum(it.trustScore * (it.trustScore <= 1 ? 100 : 1), 0) + '%' : '—'),
        metric('Files modified', fmtNum((it.filesModified || []).length, 0)),
        metric('Total duration', fmtMs(total)),
        metric('Quality improved', it.qualityImproved ? 'yes' : 'no'),
        it.selectedRecipe ? metric('Recipe', it.selectedRecipe) : null));
  }

  function guardianItem(it) {
    const t = it.tests || {};
    const a = t.accessibility || {}, p = t.performance || {}, s = t.security || {};
    const env = it.environment || 'unknown';
    return el('article', { class: 'item', 'data-product': 'guardian' },
      el('div', { class: 'item-head' },
        el('h3', { class: 'mono', text: it.url || it.testRunId }),
        el('span', { class: 'when', text: fmtTime(it.timestamp || it.receivedAt) }),
        el('span', {}, badge(env, 'env ' + env), ' ', it.passed ? badge('passed', 'passed') : badge('failed', 'failed'))),
      el('div', { class: 'cards' },
        card('Accessibility', fmtNum(a.score, 0), num(a.score) >= 90 ? 'green' : num(a.score) >= 70 ? 'yellow' : 'red',
          fmtNum(a.violations, 0) + ' violations, ' + fmtNum(a.passes, 0) + ' passes', { 'data-test': 'accessibility' }),
        card('Load time', fmtMs(p.loadTime), 'blue', 'TTFB ' + fmtMs(p.ttfb) + ' · FCP ' + fmtMs(p.fcp) + ' · LCP ' + fmtMs(p.lcp), { 'data-test': 'performance' }),
        card('Vulnerabilities', fmtNum(num(s.vulnerabilities), 0), num(s.vulnerabilities) ? 'red' : 'green', fmtNum(s.warnings, 0) + ' warnings', { 'data-test': 'security' })),
      el('div', { class: 'metrics' },
        metric('Test run', it.testRunId || '—'),
        metric('Tests', '3'),
        metric('Screenshots', fmtNum((it.screenshots || []).length, 0))));
  }

  // ---- live updates (fetch streaming, the key stays in a header) -------------
  let stream = null; // AbortController of the open stream
  let backoff = 1000;
  let events = 0;
  let connectedOnce = false;
  const pending = new Set();
  let flushTimer = null;

  function setLive(state, text) {
    const l = $('live');
    l.dataset.state = state;
    l.textContent = text || state;
  }

  function stopStream() {
    if (stream) stream.abort();
    stream = null;
  }

  async function openStream() {
    stopStream();
    const ctl = new AbortController();
    stream = ctl;
    setLive('connecting', 'connecting');
    try {
      const resp = await fetch('/api/v1/events/stream', { headers: Object.assign(headers(), { Accept: 'text/event-stream' }), cache: 'no-store', credentials: 'omit', signal: ctl.signal });
      if (resp.status === 401) { signOut('Your API key was refused.'); return; }
      if (!resp.ok || !resp.body) throw new Error('HTTP ' + resp.status);
      setLive('live', 'live');
      backoff = 1000;
      // The stream has no replay: after a gap, read the lists again.
      if (connectedOnce) {
        pending.add('jobs');
        pending.add('summary');
        for (const t of TABS) if (loaded[t]) pending.add(t);
        if (!flushTimer) flushTimer = setTimeout(flush, 0);
      }
      connectedOnce = true;
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          onFrame(frame);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    if (stream !== ctl || !session) return;
    setLive('offline', 'reconnecting');
    setTimeout(() => { if (stream === ctl && session) openStream(); }, backoff);
    backoff = Math.min(backoff * 2, 30000);
  }

  function onFrame(frame) {
    let type = 'message';
    const data = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'event') type = val;
      else if (field === 'data') data.push(val);
    }
    if (!data.length || type === 'shutdown') return;
    let ev;
    try { ev = JSON.parse(data.join('\n')); } catch (_) { return; }
    events++;
    document.body.dataset.events = String(events);
    onEvent(type, ev);
  }

  function onEvent(type, ev) {
    const d = ev.data || {};
    if (/\.processed\.v1$/.test(type)) {
      const p = d.product || (type.split('.')[3]);
      if (TABS.includes(p)) pending.add(p);
      pending.add('jobs');
      pending.add('summary');
    } else if (/\.alert\.critical\.v1$/.test(type)) {
      const b = $('banner');
      b.textContent = '⚠ ' + num(d.critical) + ' critical issue' + (num(d.critical) === 1 ? '' : 's') + ' in Insight upload ' + shortID(d.uploadId) + ' (' + fmtTime(d.raisedAt) + ')';
      b.hidden = false;
    } else if (/^dev\.odavl\.jobs\./.test(type)) {
      pending.add('jobs');
    }
    // Events come in bursts (status changes, then processed): refresh once.
    if (!flushTimer) flushTimer = setTimeout(flush, 250);
  }

  function flush(trailing) {
    flushTimer = null;
    // Records are written in batches beside their events: read once more
    // a little later so the last event of a burst is never shown stale.
    if (trailing !== true && pending.size) {
      const again = new Set(pending);
      setTimeout(() => { for (const n of again) pending.add(n); if (!flushTimer) flush(true); }, 1500);
    }
    for (const name of pending) {
      if (name === 'summary') loadSummary();
      else if (name === 'jobs') loadJobs({ quiet: true });
      else if (loaded[name]) load(name, { quiet: true });
    }
    pending.clear();
  }

  // ---- start -----------------------------------------------------------------
  function start() {
    connectedOnce = false;
    $('signin').hidden = true;
    $('app').hidden = false;
    $('session').hidden = false;
    $('tenant').textContent = session.org + ' / ' + session.project;
    for (const t of TABS) loaded[t] = false;
    $('stats').replaceChildren(spinner('statistics'));
    selectTab(current);
    if (current !== 'jobs') loadJobs({ quiet: true }); // the statistics cards

    loadSummary();
    openStream();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', () => signOut());
    for (const t of TABS) $('tab-' + t).addEventListener('click', () => selectTab(t));
    document.querySelector('.tabs').addEventListener('keydown', (e) => {
      const i = TABS.indexOf(current);
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        const next = TABS[(i + (e.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length];
        selectTab(next);
        $('tab-' + next).focus();
      }
    });
    if (session && session.key) start();
  });
})();
