// ODAVL Sync dashboard: plain DOM, no framework, no HTML strings (the page's
// CSP enforces Trusted Types with no policy, so innerHTML would throw).
'use strict';

(() => {
  const SESSION = 'odavl.dashboard';
  const TABS = ['trends', 'jobs', 'insight', 'autopilot', 'guardian', 'alerts'];
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
  // errorBox says what failed; with retry, its "Try again" button reads it again.
  const errorBox = (text, retry) => el('div', { class: 'alert', role: 'alert' }, el('span', { text }),
    retry ? el('button', { type: 'button', class: 'small secondary', 'data-reload': '', onclick: retry }, 'Try again') : null);
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
  // runsWhen says in words when a DELAYED job runs (its runAt, the next
  // attempt of a retried job): "runs in 2 min", later "runs at 14:05".
  function runsWhen(s) {
    const t = Date.parse(s);
    if (isNaN(t)) return '';
    const min = Math.round((t - Date.now()) / 60000);
    if (min <= 0) return 'runs any moment now';
    if (min < 60) return 'runs in ' + min + ' min';
    const d = new Date(t);
    const sameDay = d.toDateString() === new Date().toDateString();
    return 'runs ' + (sameDay ? 'at ' + d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' }) : 'on ' + fmtTime(s));
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
    // A refused key keeps its organization and project in the form: only
    // the key needs typing again.
    if (session && typeof reason === 'string') {
      $('f-org').value = session.org;
      $('f-project').value = session.project;
    }
    session = null;
    sessionStorage.removeItem(SESSION);
    $('tenant').replaceChildren();
    $('app').hidden = true;
    $('session').hidden = true;
    $('signin').hidden = false;
    showError(typeof reason === 'string' ? reason : '');
  }

  // ---- words -----------------------------------------------------------------
  const STATUS = ['WAITING', 'ACTIVE', 'COMPLETED', 'FAILED', 'DELAYED', 'PAUSED', 'CANCELLED'];
  const STATUS_LABEL = {
    WAITING: 'Waiting', ACTIVE: 'Running', COMPLETED: 'Completed', FAILED: 'Failed',
    DELAYED: 'Delayed', PAUSED: 'Paused', CANCELLED: 'Cancelled',
  };
  const JOB_TYPE = {
    INSIGHT_ANALYSIS: 'Insight analysis', AUTOPILOT_CYCLE: 'Autopilot cycle', GUARDIAN_TEST: 'Guardian test',
    REPORT_GENERATION: 'Report', BULK_INVITATION: 'Bulk invitation', EMAIL_SEND: 'Email', DATA_EXPORT: 'Data export',
  };
  const SEVERITIES = ['critical', 'high', 'medium', 'low'];
  const PRODUCT_WORDS = {
    insight: ['analysis', 'analyses', 'Insight'], autopilot: ['run', 'runs', 'Autopilot'], guardian: ['test run', 'test runs', 'Guardian'],
  };
  // plural is "1 issue", "2 issues"; many is the irregular plural.
  const plural = (n, one, many) => fmtNum(n, 0) + ' ' + (n === 1 ? one : (many || one + 's'));
  const capital = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : s);
  const pct = (v) => (typeof v === 'number' && isFinite(v) ? fmtNum(v, 1) + '%' : '—');
  const trust = (v) => (typeof v === 'number' && isFinite(v) ? fmtNum(v * (v <= 1 ? 100 : 1), 0) + '%' : '—');
  const statusBadge = (st) => el('span', { class: 'badge ' + st.toLowerCase(), 'data-status': st, text: STATUS_LABEL[st] || capital(st.toLowerCase()) || 'Unknown' });
  // humanize turns an API field name into words: "averageLoadTime" → "Average load time".
  const humanize = (k) => capital(String(k).replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/[_-]+/g, ' ').toLowerCase())
    .replace(/\b(ttfb|fcp|lcp|cls|tbt|url|id)\b/g, (w) => w.toUpperCase());

  // ---- statistics ----------------------------------------------------------

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

  // SUMMARY names the figures of GET /api/v1/stats/summary for people.
  const SUMMARY = [
    ['analyses', 'Insight analyses', (b) => b.insight && b.insight.analyses, (v) => fmtNum(v, 0)],
    ['issues', 'Issues found', (b) => b.insight && b.insight.totalIssues, (v) => fmtNum(v, 0)],
    ['critical', 'Critical issues', (b) => b.insight && b.insight.issuesBySeverity && b.insight.issuesBySeverity.critical, (v) => fmtNum(v, 0)],
    ['autopilot-runs', 'Autopilot runs', (b) => b.autopilot && b.autopilot.total, (v) => fmtNum(v, 0)],
    ['success-rate', 'Autopilot success rate', (b) => b.autopilot && b.autopilot.successRate, pct],
    ['trust', 'Average trust score', (b) => b.autopilot && b.autopilot.averageTrustScore, trust],
    ['guardian-runs', 'Guardian test runs', (b) => b.guardian && b.guardian.total, (v) => fmtNum(v, 0)],
    ['pass-rate', 'Guardian pass rate', (b) => b.guardian && b.guardian.passRate, pct],
    ['accessibility', 'Average accessibility score', (b) => b.guardian && b.guardian.averageAccessibilityScore, (v) => fmtNum(v, 1)],
    ['load-time', 'Average load time', (b) => b.guardian && b.guardian.averageLoadTime, fmtMs],
    ['lcp', 'Average LCP', (b) => b.guardian && b.guardian.averageLcp, fmtMs],
    ['vulnerabilities', 'Vulnerabilities', (b) => b.guardian && b.guardian.totalVulnerabilities, (v) => fmtNum(v, 0)],
    ['files', 'Files uploaded', (b) => b.files && b.files.uploaded, (v) => fmtNum(v, 0)],
  ];

  // renderSummary shows the figures of the stats summary as labelled chips.
  function renderSummary(r) {
    const box = $('summary');
    if (!r.ok) {
      box.replaceChildren(el('span', { class: 'chip muted', text: 'Statistics summary: ' + (r.unavailable ? 'not available' : r.message) }));
      return;
    }
    const b = r.body || {};
    box.replaceChildren(...SUMMARY.map(([key, label, get, fmt]) => {
      const v = get(b);
      return el('span', { class: 'chip', 'data-summary': key, title: v === null ? 'nothing to count yet' : null }, label + ': ', el('b', { text: typeof v === 'number' ? fmt(v) : '—' }));
    }));
  }

  async function loadSummary() {
    const r = await api('GET', '/api/v1/stats/summary');
    if (session) renderSummary(r);
  }

  // ---- tabs ----------------------------------------------------------------
  let current = 'trends';
  const loaded = {};

  function selectTab(name) {
    current = name;
    for (const t of TABS) {
      $('tab-' + t).setAttribute('aria-selected', String(t === name));
      $('panel-' + t).hidden = t !== name;
    }
    if (!loaded[name]) load(name);
  }

  // ---- filters and pages -----------------------------------------------------
  const PAGE = 20;
  const RANGE_FILTER = [{ key: 'from', label: 'From', date: true }, { key: 'to', label: 'To', date: true }];
  const FILTERS = {
    jobs: [
      { key: 'status', label: 'Status', options: [['', 'Any status']].concat(STATUS.map((s) => [s, STATUS_LABEL[s]])) },
      { key: 'type', label: 'Type', options: [['', 'Any type']].concat(Object.entries(JOB_TYPE)) },
    ].concat(RANGE_FILTER),
    insight: RANGE_FILTER,
    autopilot: [{ key: 'success', label: 'Result', options: [['', 'Any result'], ['true', 'Succeeded'], ['false', 'Failed']] }].concat(RANGE_FILTER),
    guardian: [
      { key: 'environment', label: 'Environment', options: [['', 'Any environment'], ['development', 'Development'], ['staging', 'Staging'], ['production', 'Production']] },
      { key: 'passed', label: 'Result', options: [['', 'Any result'], ['true', 'Passed'], ['false', 'Failed']] },
    ].concat(RANGE_FILTER),
  };
  // view keeps each list's filters and page while the tab is open.
  const view = {};
  for (const name of Object.keys(FILTERS)) view[name] = { filter: {}, offset: 0 };

  // listQuery is the query of a list read: its page and filters (a date
  // range covers whole UTC days, "to" included).
  function listQuery(name) {
    const v = view[name];
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(v.offset) });
    for (const [k, val] of Object.entries(v.filter)) {
      if (!val) continue;
      if (k === 'from') q.set('from', val + 'T00:00:00Z');
      else if (k === 'to') q.set('to', new Date(Date.parse(val + 'T00:00:00Z') + 864e5).toISOString().replace('.000Z', 'Z'));
      else q.set(k, val);
    }
    return q.toString();
  }

  function filterBar(name) {
    const fields = FILTERS[name].map((f) => {
      const id = 'filter-' + name + '-' + f.key;
      const input = f.date
        ? el('input', { id, type: 'date', 'data-filter': f.key })
        : el('select', { id, 'data-filter': f.key }, f.options.map(([v, label]) => el('option', { value: v, text: label })));
      input.addEventListener('change', () => {
        view[name].filter[f.key] = input.value;
        view[name].offset = 0;
        load(name);
      });
      return el('label', { for: id }, f.label, input);
    });
    return el('div', { class: 'filters', role: 'search', 'aria-label': 'Filter ' + (name === 'jobs' ? 'jobs' : PRODUCT_WORDS[name][2] + ' ' + PRODUCT_WORDS[name][1]) }, fields);
  }

  // pager shows where the page is and moves between pages.
  function pager(name, count, total) {
    const v = view[name];
    if (!total || total <= PAGE && v.offset === 0) return null;
    const go = (offset) => () => { v.offset = Math.max(0, offset); load(name); };
    return el('nav', { class: 'pager', 'aria-label': 'Pages' },
      el('button', { type: 'button', class: 'small secondary', 'data-page': 'prev', disabled: v.offset === 0, onclick: go(v.offset - PAGE) }, '‹ Newer'),
      el('span', { class: 'muted', 'data-range': '', text: fmtNum(v.offset + 1, 0) + '–' + fmtNum(v.offset + count, 0) + ' of ' + fmtNum(total, 0) }),
      el('button', { type: 'button', class: 'small secondary', 'data-page': 'next', disabled: v.offset + count >= total, onclick: go(v.offset + PAGE) }, 'Older ›'));
  }

  const filtered = (name) => Object.values(view[name].filter).some(Boolean);

  // results is the part of a list's panel below its filters.
  function results(name) {
    const panel = $('panel-' + name);
    let box = panel.querySelector(':scope > .results');
    if (!box) {
      box = el('div', { class: 'results', 'aria-live': 'polite' });
      panel.replaceChildren(filterBar(name), box);
    }
    return box;
  }

  async function load(name, opts) {
    if (name === 'trends') return loadTrends(opts);
    if (name === 'alerts') return loadAlerts(opts);
    const box = results(name);
    const words = PRODUCT_WORDS[name];
    if (!(opts && opts.quiet)) box.replaceChildren(spinner(name === 'jobs' ? 'jobs' : words[2] + ' ' + words[1]));
    loaded[name] = true;
    if (name === 'jobs') return loadJobs(opts);
    const seq = ++requestSeq[name];
    const r = await api('GET', '/api/v1/sync/' + name + '?' + listQuery(name));
    if (!session || seq !== requestSeq[name]) return; // a newer read is under way
    if (!r.ok) {
      box.replaceChildren(r.unavailable ? note(words[2] + ' ' + words[1] + ' are not available: ' + r.message) : errorBox('Could not load ' + words[2] + ' ' + words[1] + ': ' + r.message, () => load(name)));
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
      n.querySelector('.item-head').append(detailsButton(name, it.id, n));
      if (seen && !seen.has(it.id)) n.classList.add('fresh');
      return n;
    });
    renderedIDs[name] = new Set(items.map((it) => it.id));
    const children = [];
    if (r.body.summary && typeof r.body.summary === 'object') children.push(summaryLine(r.body.summary));
    if (!items.length) {
      children.push(note(filtered(name) ? 'No ' + words[2] + ' ' + words[1] + ' match these filters.'
        : 'No ' + words[2] + ' ' + words[1] + ' yet. They appear here as soon as they are processed.'));
    } else children.push(el('div', { class: 'list', 'data-list': name }, nodes));
    children.push(pager(name, items.length, r.body.total));
    box.replaceChildren(...children.filter(Boolean));
    $('panel-' + name).dataset.total = String(r.body.total || 0);
    openWanted(name, nodes, box);
  }
  const renderedIDs = {};
  // requestSeq numbers the reads of each list, so an answer that arrives
  // after a newer read was sent is dropped instead of showing older data.
  const requestSeq = { trends: 0, jobs: 0, insight: 0, autopilot: 0, guardian: 0, alerts: 0, projects: 0 };
  const signatures = {};

  function summaryLine(s) {
    const box = el('div', { class: 'summary' });
    for (const [k, v] of Object.entries(s)) if (typeof v === 'number') box.append(el('span', { class: 'chip' }, humanize(k) + ': ', el('b', { text: fmtNum(v, 2) })));
    return box;
  }

  // ---- drill-down ----------------------------------------------------------------
  // openDetails keeps, per list, the drill-downs that are open, so a live
  // refresh of the list keeps them open (with their own filters).
  const openDetails = { insight: new Map(), autopilot: new Map(), guardian: new Map(), jobs: new Map() };

  function detailsButton(name, id, host) {
    const b = el('button', { type: 'button', class: 'small secondary', 'aria-expanded': 'false', 'data-details': id }, 'Details');
    const toggle = () => {
      const open = openDetails[name];
      if (open.has(id)) {
        open.get(id).remove();
        open.delete(id);
        b.setAttribute('aria-expanded', 'false');
        b.textContent = 'Details';
        return;
      }
      const box = name === 'jobs'
        ? el('tr', { class: 'detail-row', 'data-detail': id }, el('td', { colspan: 6 }, el('div', { class: 'detail' })))
        : el('section', { class: 'detail', 'data-detail': id });
      open.set(id, box);
      showDetail(name, id, b, host, box, true);
    };
    b.addEventListener('click', toggle);
    if (openDetails[name].has(id)) showDetail(name, id, b, host, openDetails[name].get(id), name === 'jobs');
    return b;
  }

  // showDetail places a drill-down under its item and, when fresh, reads it.
  async function showDetail(name, id, btn, host, box, fresh) {
    btn.setAttribute('aria-expanded', 'true');
    btn.textContent = 'Hide details';
    queueMicrotask(() => (name === 'jobs' ? host.after(box) : host.append(box)));
    if (!fresh) return;
    const body = name === 'jobs' ? box.querySelector('.detail') : box;
    // A drill-down read again (a job on a live refresh) keeps what it shows
    // until the new answer is there.
    if (!body.firstChild) body.replaceChildren(spinner('details'));
    const r = await api('GET', '/api/v1/sync/' + name + '/' + encodeURIComponent(id));
    if (!session || openDetails[name].get(id) !== box) return; // closed meanwhile
    if (!r.ok) {
      body.replaceChildren(r.unavailable && r.status !== 404 ? note('Details are not available: ' + r.message) : errorBox('Could not load the details: ' + r.message, () => { body.replaceChildren(); showDetail(name, id, btn, host, box, true); }));
      return;
    }
    body.replaceChildren(...{ insight: insightDetail, autopilot: autopilotDetail, guardian: guardianDetail, jobs: jobDetail }[name](r.body || {}).filter(Boolean));
  }

  const table = (cls, heads, rows) => el('div', { class: 'table-wrap' }, el('table', { class: cls },
    el('thead', {}, el('tr', {}, heads.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, rows)));
  const facts = (pairs) => el('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', {}, v))));

  function insightDetail(it) {
    const issues = Array.isArray(it.issues) ? it.issues : [];
    if (!issues.length) return [note('This analysis found no issues.')];
    const count = (key, v) => issues.filter((i) => i[key] === v).length;
    const sev = el('select', { 'data-issue-filter': 'severity', 'aria-label': 'Severity' },
      el('option', { value: '', text: 'Every severity' }),
      SEVERITIES.filter((s) => count('severity', s)).map((s) => el('option', { value: s, text: capital(s) + ' (' + count('severity', s) + ')' })));
    const detectors = [...new Set(issues.map((i) => i.detector).filter(Boolean))].sort();
    const det = el('select', { 'data-issue-filter': 'detector', 'aria-label': 'Detector' },
      el('option', { value: '', text: 'Every detector' }),
      detectors.map((d) => el('option', { value: d, text: d + ' (' + count('detector', d) + ')' })));
    const shown = el('p', { class: 'muted', 'aria-live': 'polite' });
    const holder = el('div');
    const draw = () => {
      const list = issues.filter((i) => (!sev.value || i.severity === sev.value) && (!det.value || i.detector === det.value));
      shown.textContent = 'Showing ' + plural(list.length, 'issue') + (list.length === issues.length ? '' : ' of ' + issues.length) + '.';
      holder.replaceChildren(table('issues', ['Location', 'Severity', 'Detector', 'Message'], list.map((i) => {
        const loc = (i.file || '?') + (i.line ? ':' + i.line + (i.column ? ':' + i.column : '') : '');
        return el('tr', { 'data-issue': '' },
          el('td', { class: 'mono', 'data-location': '', text: loc }),
          el('td', {}, badge(capital(i.severity || 'unknown'), String(i.severity || '').toLowerCase())),
          el('td', { text: i.detector || '—' }),
          el('td', { text: i.message || '' }));
      })));
    };
    sev.addEventListener('change', draw);
    det.addEventListener('change', draw);
    draw();
    return [el('h4', { text: 'Issues' }), el('div', { class: 'filters' }, el('label', {}, 'Severity', sev), el('label', {}, 'Detector', det)), shown, holder];
  }

  function autopilotDetail(it) {
    const phases = it.phases || {};
    const files = Array.isArray(it.filesModified) ? it.filesModified : [];
    return [
      el('h4', { text: 'Phases' }),
      table('phases-table', ['Phase', 'Status', 'Duration'], ['observe', 'decide', 'act', 'verify', 'learn'].map((p) => {
        const ph = phases[p] || {};
        return el('tr', { 'data-phase-row': p }, el('td', { text: capital(p) }), el('td', {}, badge(capital(ph.status || 'unknown'), ph.status)), el('td', { text: fmtMs(ph.duration) }));
      })),
      facts([['Recipe', it.selectedRecipe || '—'], ['Trust score', trust(it.trustScore)], ['Quality improved', it.qualityImproved ? 'Yes' : 'No'],
        ['Files modified', files.length ? plural(files.length, 'file') : 'None']]),
      files.length ? el('ul', { class: 'files mono' }, files.map((f) => el('li', { text: f }))) : null,
    ];
  }

  function guardianDetail(it) {
    const t = it.tests || {};
    const group = (title, obj, fmt) => {
      const rows = Object.entries(obj || {}).filter(([, v]) => typeof v === 'number' || typeof v === 'string');
      return rows.length ? [el('h4', { text: title }), facts(rows.map(([k, v]) => [humanize(k), typeof v === 'number' ? fmt(k, v) : v]))] : [];
    };
    const ms = (k, v) => (/score|violations|passes|count/i.test(k) ? fmtNum(v, 0) : fmtMs(v));
    const shots = Array.isArray(it.screenshots) ? it.screenshots : [];
    return [
      facts([['URL', it.url || '—'], ['Environment', capital(it.environment || 'unknown')], ['Result', it.passed ? 'Passed' : 'Failed'], ['Test run', it.testRunId || '—']]),
      ...group('Accessibility', t.accessibility, (k, v) => fmtNum(v, 0)),
      ...group('Performance', t.performance, ms),
      ...group('Security', t.security, (k, v) => fmtNum(v, 0)),
      el('h4', { text: shots.length ? plural(shots.length, 'screenshot') : 'No screenshots' }),
      shots.length ? el('div', { class: 'shots' }, shots.map(screenshot)) : null,
    ];
  }

  // screenshot shows one of a run's screenshots: a stored file as its image,
  // through a signed download link read now (the page's policy loads images
  // of its own origin and of the configured blob store only); an http(s)
  // URL elsewhere as a link, as it is.
  function screenshot(u) {
    if (/^https?:\/\//.test(u)) {
      return el('figure', { class: 'shot', 'data-shot': u }, el('a', { href: u, target: '_blank', rel: 'noopener noreferrer', class: 'mono', text: u }));
    }
    const img = el('img', { alt: 'Screenshot ' + u, 'data-screenshot': u, decoding: 'async' });
    const link = el('a', { target: '_blank', rel: 'noopener noreferrer' }, img);
    const state = el('span', { class: 'muted sub', role: 'status', text: 'Loading the image…' });
    const fig = el('figure', { class: 'shot', 'data-shot': u }, link, el('figcaption', { class: 'mono', text: u }), state);
    img.addEventListener('load', () => { state.remove(); fig.dataset.loaded = ''; });
    img.addEventListener('error', () => { state.textContent = 'The image did not load.'; });
    api('GET', '/api/v1/storage/upload-url?fileId=' + encodeURIComponent(u)).then((r) => {
      const url = r.ok && r.body && r.body.downloadUrl;
      if (!url) {
        img.remove();
        state.textContent = 'The file is not available' + (r.message ? ': ' + r.message : '.');
        return;
      }
      link.href = url;
      img.src = url;
    });
    return fig;
  }

  // downloads finds the download links in a job's output, wherever its
  // handler put them ({downloadUrl}, {file:{…}}, {files:[…]}).
  function downloads(out, name, found, depth) {
    found = found || [];
    if (!out || typeof out !== 'object' || depth > 3) return found;
    // The named files first: an output's own link is often one of them.
    for (const [k, v] of Object.entries(out)) if (v && typeof v === 'object') downloads(v, out.name || (Array.isArray(out) ? name : k), found, (depth || 0) + 1);
    if (typeof out.downloadUrl === 'string' && !found.some((f) => f.url === out.downloadUrl)) found.push({ url: out.downloadUrl, name: out.name || name || 'output' });
    return found;
  }

  function jobDetail(status) {
    const j = status.job || status;
    const st = String(j.status || status.status || '').toUpperCase();
    const links = downloads(j.output);
    const product = { INSIGHT_ANALYSIS: 'insight', AUTOPILOT_CYCLE: 'autopilot', GUARDIAN_TEST: 'guardian' }[j.type];
    const history = Array.isArray(j.history) ? j.history : [];
    return [
      facts([['Status', statusBadge(st || 'UNKNOWN')], ['Type', JOB_TYPE[j.type] || j.type || '—'], ['Progress', num(j.progress) + '%'],
        ['Attempts', typeof j.maxAttempts === 'number' ? fmtNum(num(j.attempts), 0) + ' of ' + fmtNum(j.maxAttempts, 0) : fmtNum(num(j.attempts), 0)],
        ['Created', fmtTime(j.createdAt)], st === 'DELAYED' && j.runAt && ['Runs', el('span', { 'data-run-at': j.runAt, title: fmtTime(j.runAt), text: capital(runsWhen(j.runAt)) + ' (' + fmtTime(j.runAt) + ')' })], j.startedAt && ['Started', fmtTime(j.startedAt)], j.finishedAt && ['Finished', fmtTime(j.finishedAt)],
        (j.error || status.reason) && ['Error', el('span', { class: 'error-text', text: j.error || status.reason })]]),
      links.length ? el('div', { class: 'downloads' }, el('h4', { text: 'Output' }),
        links.map((l) => el('a', { class: 'download', href: l.url, download: '', rel: 'noopener noreferrer', 'data-download': '', text: 'Download ' + l.name }))) : null,
      product && j.resultId ? el('p', {}, el('button', { type: 'button', class: 'small secondary', onclick: () => selectTab(product) }, 'Open in ' + PRODUCT_WORDS[product][2])) : null,
      el('h4', { text: 'History' }),
      history.length ? table('history', ['Time', 'Status', 'Attempt', 'Error'], history.map((h) => el('tr', { 'data-history': '' },
        el('td', { text: fmtTime(h.at) }), el('td', {}, statusBadge(String(h.status || '').toUpperCase())),
        el('td', { text: h.attempt ? String(h.attempt) : '—' }), el('td', { text: h.error || '' })))) : note('No history yet.'),
    ];
  }

  // ---- jobs ----------------------------------------------------------------
  async function loadJobs(opts) {
    const box = results('jobs');
    const seq = ++requestSeq.jobs;
    const r = await api('GET', '/api/v1/sync/jobs?' + listQuery('jobs'));
    if (!session || seq !== requestSeq.jobs) return; // a newer read is under way
    const items = r.ok ? ((r.body && (r.body.items || r.body.jobs)) || (Array.isArray(r.body) ? r.body : [])) : [];
    if (r.ok) r.stats = jobStats(r.body || {}, items);
    if (!filtered('jobs')) renderStats(r);
    if (!r.ok) {
      box.replaceChildren(r.unavailable ? note('Sync jobs are not available: ' + r.message) : errorBox('Could not load jobs: ' + r.message, () => load('jobs')));
      return;
    }
    if (!items.length) { box.replaceChildren(note(filtered('jobs') ? 'No jobs match these filters.' : 'No jobs yet.')); return; }
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
      const tr = el('tr', { 'data-job': j.id },
        el('td', { class: 'mono', title: j.id, text: shortID(j.id) }),
        el('td', { 'data-type': j.type, text: JOB_TYPE[j.type] || j.type || '—' }),
        el('td', {}, statusBadge(st || 'UNKNOWN'),
          st === 'DELAYED' && j.runAt ? el('div', { class: 'sub muted', 'data-run-at': j.runAt, title: fmtTime(j.runAt), text: runsWhen(j.runAt) }) : null,
          j.error ? el('div', { class: 'sub muted', text: j.error }) : null),
        el('td', {}, el('progress', { max: 100, value: pct, 'aria-label': 'progress ' + pct + '%' }), el('span', { class: 'pct', text: pct + '%' })),
        el('td', { text: fmtTime(j.createdAt) }),
        el('td', { class: 'actions' }, actions));
      tr.lastChild.append(detailsButton('jobs', j.id, tr));
      return tr;
    });
    box.replaceChildren(...[table('jobs', ['Job ID', 'Type', 'Status', 'Progress', 'Created', 'Actions'], rows), pager('jobs', items.length, r.body.total)].filter(Boolean));
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
        el('span', { class: 'total', text: num(it.totalIssues) ? plural(num(it.totalIssues), 'issue') + ' found' : 'No issues found' })),
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
        metric('Trust score', trust(it.trustScore)),
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
          plural(num(a.violations), 'violation') + ', ' + plural(num(a.passes), 'pass', 'passes'), { 'data-test': 'accessibility' }),
        card('Load time', fmtMs(p.loadTime), 'blue', 'TTFB ' + fmtMs(p.ttfb) + ' · FCP ' + fmtMs(p.fcp) + ' · LCP ' + fmtMs(p.lcp), { 'data-test': 'performance' }),
        card('Vulnerabilities', fmtNum(num(s.vulnerabilities), 0), num(s.vulnerabilities) ? 'red' : 'green', plural(num(s.warnings), 'warning'), { 'data-test': 'security' })),
      el('div', { class: 'metrics' },
        metric('Test run', it.testRunId || '—'),
        metric('Tests', '3'),
        metric('Screenshots', fmtNum((it.screenshots || []).length, 0))));
  }

  // ---- alerts (GET /api/v1/alerts) ---------------------------------------------
  // wanted names, per list, an item to open once the list shows it (an
  // alert's link to its analysis).
  const wanted = {};

  function openWanted(name, nodes, box) {
    const id = wanted[name];
    if (!id) return;
    wanted[name] = null;
    const n = nodes.find((x) => x.dataset.id === id);
    if (!n) {
      box.prepend(note(capital(PRODUCT_WORDS[name][0]) + ' ' + shortID(id) + ' is not among the newest ' + PAGE + '.'));
      return;
    }
    if (!openDetails[name].has(id)) n.querySelector('[data-details]').click();
    n.scrollIntoView({ block: 'start' });
  }

  // openAnalysis shows the Insight analysis id with its drill-down open.
  function openAnalysis(id) {
    view.insight = { filter: {}, offset: 0 };
    for (const f of document.querySelectorAll('#panel-insight [data-filter]')) f.value = '';
    wanted.insight = id;
    selectTab('insight');
    if (loaded.insight) load('insight');
  }

  async function loadAlerts(opts) {
    const panel = $('panel-alerts');
    loaded.alerts = true;
    if (!(opts && opts.quiet)) panel.replaceChildren(spinner('alerts'));
    const seq = ++requestSeq.alerts;
    const r = await api('GET', '/api/v1/alerts?limit=' + PAGE);
    if (!session || seq !== requestSeq.alerts) return;
    if (!r.ok) {
      panel.replaceChildren(r.unavailable ? note('Alerts are not available: ' + r.message) : errorBox('Could not load the alerts: ' + r.message, () => loadAlerts()));
      return;
    }
    const items = (r.body && r.body.items) || [];
    if (!items.length) { panel.replaceChildren(note('No critical alerts. An Insight analysis that finds critical issues raises one.')); return; }
    const total = num(r.body.total) || items.length;
    panel.replaceChildren(
      el('p', { class: 'muted', text: plural(total, 'critical alert') + ', newest first' + (total > items.length ? ' (the newest ' + items.length + ' shown)' : '') + '.' }),
      el('div', { class: 'list', 'data-list': 'alerts' }, items.map((a) => el('article', { class: 'item', 'data-alert': a.id },
        el('div', { class: 'item-head' },
          el('h3', { class: 'critical', text: '⚠ ' + plural(num(a.critical), 'critical issue') }),
          el('span', { class: 'when', text: fmtTime(a.raisedAt) }),
          el('a', { href: '#insight/' + encodeURIComponent(a.uploadId || ''), 'data-analysis': a.uploadId,
            onclick: (e) => { e.preventDefault(); openAnalysis(a.uploadId); } }, 'Open analysis ', el('span', { class: 'mono', text: shortID(a.uploadId) }))),
        Array.isArray(a.messages) && a.messages.length ? el('ul', { class: 'files mono' }, a.messages.map((m) => el('li', { text: m }))) : null))));
  }

  // ---- projects (GET /api/v1/projects): an admin key switches between them ---
  async function loadProjects() {
    const seq = ++requestSeq.projects;
    const r = await api('GET', '/api/v1/projects');
    if (!session || seq !== requestSeq.projects) return;
    const ids = r.ok && r.body && Array.isArray(r.body.items) ? r.body.items.map((p) => p.projectId).filter(Boolean) : [];
    if (!ids.includes(session.project)) ids.push(session.project);
    if (ids.length < 2) return;
    const sel = el('select', { id: 'project-switch', 'aria-label': 'Project' }, ids.map((id) => el('option', { value: id, text: id, selected: id === session.project })));
    sel.addEventListener('change', () => switchProject(sel.value));
    $('tenant').replaceChildren(session.org + ' / ', sel);
  }

  // switchProject shows another project of the organization: the same key,
  // another X-Project-Id, every list and the stream read again.
  function switchProject(project) {
    session.project = project;
    sessionStorage.setItem(SESSION, JSON.stringify(session));
    for (const m of Object.values(openDetails)) m.clear();
    for (const k of Object.keys(signatures)) delete signatures[k];
    for (const k of Object.keys(renderedIDs)) delete renderedIDs[k];
    for (const name of Object.keys(view)) view[name] = { filter: {}, offset: 0 };
    for (const t of TABS) if (t !== 'trends') $('panel-' + t).replaceChildren();
    $('banner').hidden = true;
    start();
  }

  // ---- trends (charts of GET /api/v1/stats/trends, drawn by uPlot) -----------
  const RANGES = [7, 30, 90];
  let trendDays = 7;
  const charts = new Map(); // chart key → uPlot instance
  const COLORS = {
    critical: '#b91c1c', high: '#c2410c', medium: '#a16207', low: '#2563eb',
    runs: '#94a3b8', success: '#15803d', pass: '#15803d', a11y: '#7c3aed', load: '#2563eb', lcp: '#0e7490',
    COMPLETED: '#15803d', FAILED: '#b91c1c', CANCELLED: '#57606a', ACTIVE: '#2563eb', WAITING: '#a16207', DELAYED: '#c2410c',
  };

  // JOB_EVENT names what the day's count of a status means: how many jobs
  // entered it that day.
  const JOB_EVENT = { COMPLETED: 'completed', FAILED: 'failed', CANCELLED: 'cancelled', ACTIVE: 'started', WAITING: 'queued', DELAYED: 'delayed' };

  // isoDay is the UTC day n days before today, YYYY-MM-DD.
  const isoDay = (back) => new Date(Date.now() - back * 864e5).toISOString().slice(0, 10);

  function trendsShell() {
    const panel = $('panel-trends');
    let body = panel.querySelector(':scope > .results');
    if (body) return body;
    const buttons = RANGES.map((n) => el('button', {
      type: 'button', class: 'small secondary', 'data-days': n, 'aria-pressed': String(n === trendDays),
      onclick: () => { trendDays = n; for (const b of buttons) b.setAttribute('aria-pressed', String(Number(b.dataset.days) === n)); loadTrends(); },
    }, n + ' days'));
    body = el('div', { class: 'results' });
    panel.replaceChildren(el('div', { class: 'filters range', role: 'group', 'aria-label': 'Range' }, el('span', { class: 'muted', text: 'Last' }), buttons), body);
    return body;
  }

  // series of a day list: x in seconds (UTC midnight), then each figure.
  const at = (days, f) => days.map((d) => { const v = f(d); return typeof v === 'number' && isFinite(v) ? v : null; });
  const sum = (a) => a.reduce((s, v) => s + (v || 0), 0);

  // chartSpecs turns the days into the charts: a title, a caption that says
  // what the range holds in words, the series and how they are drawn.
  function chartSpecs(days) {
    const n = days.length;
    const sev = SEVERITIES.map((s) => at(days, (d) => d.insight && d.insight.issuesBySeverity && d.insight.issuesBySeverity[s]));
    const runs = at(days, (d) => d.autopilot && d.autopilot.total);
    const tests = at(days, (d) => d.guardian && d.guardian.total);
    const statuses = ['COMPLETED', 'FAILED', 'CANCELLED', 'ACTIVE', 'WAITING', 'DELAYED'];
    const jobs = statuses.map((s) => at(days, (d) => (d.jobs && d.jobs.byStatus && d.jobs.byStatus[s]) || 0));
    const shownStatuses = statuses.filter((s, i) => sum(jobs[i]) > 0);
    const issues = sum(sev.flat());
    const lcp = at(days, (d) => d.guardian && d.guardian.averageLcp);
    const lcpDays = lcp.filter((v) => v !== null).length;
    const lastDays = 'in the last ' + plural(n, 'day');
    return [
      { key: 'issues', title: 'Insight issues by severity', stacked: true,
        caption: issues ? plural(issues, 'issue') + ' found ' + lastDays + ' (' + SEVERITIES.map((s, i) => sum(sev[i]) + ' ' + s).join(', ') + ')' : 'No issues found ' + lastDays,
        series: SEVERITIES.map((s, i) => ({ label: capital(s), color: COLORS[s], values: sev[i], bars: true })) },
      { key: 'autopilot', title: 'Autopilot runs and success rate',
        caption: sum(runs) ? plural(sum(runs), 'run') + ' ' + lastDays : 'No Autopilot runs ' + lastDays,
        series: [
          { label: 'Runs', color: COLORS.runs, values: runs, bars: true, scale: 'count' },
          { label: 'Success rate', color: COLORS.success, values: at(days, (d) => d.autopilot && d.autopilot.successRate), scale: '%' }] },
      { key: 'guardian', title: 'Guardian pass rate and accessibility',
        caption: sum(tests) ? plural(sum(tests), 'test run') + ' ' + lastDays : 'No Guardian test runs ' + lastDays,
        series: [
          { label: 'Pass rate', color: COLORS.pass, values: at(days, (d) => d.guardian && d.guardian.passRate), scale: '%' },
          { label: 'Accessibility score', color: COLORS.a11y, values: at(days, (d) => d.guardian && d.guardian.averageAccessibilityScore), scale: '%' }] },
      { key: 'load', title: 'Guardian average load time',
        caption: sum(tests) ? 'Milliseconds, the average of each day\'s test runs' : 'No Guardian test runs ' + lastDays,
        series: [{ label: 'Load time (ms)', color: COLORS.load, values: at(days, (d) => d.guardian && d.guardian.averageLoadTime), scale: 'ms' }] },
      { key: 'lcp', title: 'Guardian largest contentful paint (LCP)',
        caption: lcpDays ? 'The average LCP of each day\'s test runs: ' + plural(lcpDays, 'day') + ' with runs ' + lastDays + ', the latest ' + fmtMs(lcp.filter((v) => v !== null).pop()) : 'No Guardian test runs with an LCP ' + lastDays,
        series: [{ label: 'LCP (ms)', color: COLORS.lcp, values: lcp, scale: 'ms' }] },
      { key: 'jobs', title: 'Jobs by status',
        caption: shownStatuses.length ? 'Jobs ' + lastDays + ': ' + shownStatuses.map((s) => fmtNum(sum(jobs[statuses.indexOf(s)]), 0) + ' ' + JOB_EVENT[s]).join(', ') : 'No jobs ' + lastDays,
        series: (shownStatuses.length ? shownStatuses : ['COMPLETED']).map((s) => ({ label: capital(JOB_EVENT[s]), color: COLORS[s], values: jobs[statuses.indexOf(s)] })) },
    ];
  }

  // drawChart draws (or redraws) one chart into its figure. Stacked bars are
  // drawn as running totals, the tallest first, so each band shows its part.
  function drawChart(fig, spec, xs) {
    const plot = fig.querySelector('.plot');
    const old = charts.get(spec.key);
    if (old) old.destroy();
    let series = spec.series;
    let data = series.map((s) => s.values);
    if (spec.stacked) {
      const acc = xs.map(() => 0);
      data = series.map((s) => s.values.map((v, i) => (acc[i] += v || 0)));
      series = series.slice().reverse();
      data = data.slice().reverse();
    }
    const bars = uPlot.paths.bars({ size: [0.7, 28, 3] });
    // Half a day of room on each side, so the first and last bars show whole.
    const scales = { x: { time: true, range: (u, min, max) => [min - 43200, max + 43200] } };
    const axes = [{ stroke: '#656d76', grid: { show: false }, space: 50 }];
    const used = [...new Set(series.map((s) => s.scale || 'count'))];
    used.forEach((sc, i) => {
      scales[sc] = sc === '%' ? { range: [0, 100] } : { range: (u, min, max) => [0, Math.max(1, max)] };
      axes.push({ scale: sc, side: i ? 1 : 3, stroke: '#656d76', size: sc === 'ms' ? 64 : 48, grid: { show: i === 0, stroke: '#eaeef2' },
        incrs: sc === 'count' ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 1e4, 2e4, 5e4, 1e5] : undefined,
        values: (u, ticks) => ticks.map((v) => (sc === '%' ? v + '%' : sc === 'ms' ? fmtMs(v) : fmtNum(v, 0))) });
    });
    const width = Math.max(240, plot.clientWidth || fig.clientWidth || 300);
    const opts = {
      width, height: 200, scales, axes,
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
      series: [{}].concat(series.map((s) => ({
        label: s.label, scale: s.scale || 'count', stroke: s.color, width: s.bars ? 0 : 2, fill: s.bars ? s.color : undefined,
        paths: s.bars ? bars : undefined, points: { show: !s.bars, size: 5 }, spanGaps: !s.bars,
      }))),
      hooks: { draw: [(u) => {
        fig.dataset.points = String(u.data[0].length);
        // How many days of each series have a value (a day without runs has none).
        fig.dataset.values = u.data.slice(1).map((d) => d.filter((v) => v !== null && v !== undefined).length).join(',');
        fig.dataset.drawn = String(Number(fig.dataset.drawn || 0) + 1);
      }] },
    };
    plot.replaceChildren();
    charts.set(spec.key, new uPlot(opts, [xs].concat(data), plot));
  }

  async function loadTrends(opts) {
    const body = trendsShell();
    loaded.trends = true;
    const n = trendDays;
    if (!(opts && opts.quiet)) body.replaceChildren(spinner('trends'));
    const seq = ++requestSeq.trends;
    const r = await api('GET', '/api/v1/stats/trends?from=' + isoDay(n - 1) + '&to=' + isoDay(0));
    if (!session || seq !== requestSeq.trends) return;
    if (!r.ok) {
      for (const c of charts.values()) c.destroy();
      charts.clear();
      body.replaceChildren(r.unavailable ? note('Trends are not available: ' + r.message) : errorBox('Could not load the trends: ' + r.message, () => loadTrends()));
      return;
    }
    if (typeof uPlot !== 'function') { body.replaceChildren(errorBox('The chart library did not load.')); return; }
    const days = (r.body && r.body.days) || [];
    const sig = JSON.stringify([n, days]);
    if (opts && opts.quiet && signatures.trends === sig) return;
    signatures.trends = sig;
    const xs = days.map((d) => Date.parse(d.day + 'T00:00:00Z') / 1000);
    const specs = chartSpecs(days);
    const grid = body.querySelector('.charts') || el('div', { class: 'charts' });
    const figs = specs.map((spec) => {
      let fig = grid.querySelector('[data-chart="' + spec.key + '"]');
      if (!fig) fig = el('figure', { class: 'chart', 'data-chart': spec.key }, el('figcaption', {}, el('h3', { text: spec.title }), el('div', { class: 'sub muted' })), el('div', { class: 'plot' }));
      fig.querySelector('.sub').textContent = spec.caption;
      fig.setAttribute('aria-label', spec.title + ': ' + spec.caption);
      fig.dataset.range = String(n);
      return fig;
    });
    grid.replaceChildren(...figs);
    if (!grid.isConnected) body.replaceChildren(grid);
    specs.forEach((spec, i) => drawChart(figs[i], spec, xs));
  }

  // Charts follow their column's width (a phone turned, a window resized).
  const resize = new ResizeObserver(() => {
    for (const [key, u] of charts) {
      const plot = document.querySelector('[data-chart="' + key + '"] .plot');
      if (plot && plot.clientWidth && Math.abs(plot.clientWidth - u.width) > 4) u.setSize({ width: plot.clientWidth, height: 200 });
    }
  });

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
      if (resp.status === 401) {
        const p = await resp.json().catch(() => null);
        if (stream === ctl) signOut('Your API key was refused: ' + ((p && (p.detail || p.title)) || 'HTTP 401'));
        return;
      }
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
      pending.add('trends');
    } else if (/\.alert\.critical\.v1$/.test(type)) {
      const b = $('banner');
      b.textContent = '⚠ ' + num(d.critical) + ' critical issue' + (num(d.critical) === 1 ? '' : 's') + ' in Insight upload ' + shortID(d.uploadId) + ' (' + fmtTime(d.raisedAt) + ')';
      b.hidden = false;
      pending.add('alerts');
    } else if (/^dev\.odavl\.jobs\./.test(type)) {
      pending.add('jobs');
      pending.add('trends');
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
    // A switch between projects keeps the switcher where it is (its value is
    // already the new project) until loadProjects draws it again.
    if (!$('project-switch')) $('tenant').textContent = session.org + ' / ' + session.project;
    for (const t of TABS) loaded[t] = false;
    $('stats').replaceChildren(spinner('statistics'));
    resize.observe($('panel-trends'));
    selectTab(current);
    if (current !== 'jobs') loadJobs({ quiet: true }); // the statistics cards

    loadSummary();
    loadProjects();
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
