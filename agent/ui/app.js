// The operator's page. One applicant at a time: passport, photo, ten fingers, review, submit; then the bundle's
// delivery. It talks to the local API of the agent only (docs/openapi.yaml), with the bearer token handed over by
// `tamga page --open` (posted to `/`, answered in <meta name="tamga-key">) or taken from the address's fragment
// (#token=...), and kept in this tab's session storage. The event stream and the camera's live
// view are read with fetch() streams, because EventSource and <img> cannot send the token.

const FINGERS = ['right-thumb', 'right-index', 'right-middle', 'right-ring', 'right-little',
  'left-thumb', 'left-index', 'left-middle', 'left-ring', 'left-little'];
const REASONS = ['amputated', 'bandaged', 'unable_to_capture'];
const STEPS = ['document', 'face', 'fingers', 'review'];
const LANGS = ['en', 'ru', 'kk'];

const $ = (id) => document.getElementById(id);

/** Builds an element: h('p', {class: 'x'}, 'text', child). */
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** Sets a live region's text only when it changes, so a screen reader does not repeat it at every event. */
function say1(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

/** Replaces an element's children, skipping absent ones (null, undefined, false). */
function fill(e, ...children) {
  e.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

// ---------------------------------------------------------------------------------------------------------------
// Messages

let messages = {};
let english = {};

/** The message `key` in the page's language, with {name} placeholders filled. */
function t(key, vars) {
  let s = messages[key] ?? english[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replaceAll(`{${k}}`, v);
  return s;
}

async function loadMessages(lang) {
  const get = async (l) => (await fetch(`/ui/i18n/${l}.json`, { cache: 'no-cache' })).json();
  if (!Object.keys(english).length) english = await get('en');
  const m = lang === 'en' ? english : await get(lang);
  if (S.lang !== lang) return; // a later choice won
  messages = m;
  document.documentElement.lang = lang;
  $('lang').value = lang;
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
}

// ---------------------------------------------------------------------------------------------------------------
// State

const S = {
  token: '',
  lang: 'en',
  station: null,
  devices: {},
  outbox: null,
  link: null,
  agentUp: false,
  sessionId: null,
  session: null, // GET /v1/sessions/{id}
  step: 'start', // login | start | document | face | fingers | review | done
  busy: null, // what is running: 'document' | 'face' | 'finger' | 'finalize' | null
  doc: null, // the last document read
  docError: null,
  face: null, // the last photo report
  finger: 'right-thumb', // the selected finger
  fingerResult: {}, // position -> the last capture's answer
  progress: null, // {what, done, total}
  interrupted: null, // {role, step, run}: a capture a device failure cut short, resumed when it returns
  done: null, // {bundle_id, state}
  cropUrl: null, // the accepted photo's crop (object URL)
};

const saved = {
  get session() { return localStorage.getItem('tamga.session'); },
  set session(v) { v ? localStorage.setItem('tamga.session', v) : localStorage.removeItem('tamga.session'); },
  get bundle() { return localStorage.getItem('tamga.bundle'); },
  set bundle(v) { v ? localStorage.setItem('tamga.bundle', v) : localStorage.removeItem('tamga.bundle'); },
  get submitting() { return localStorage.getItem('tamga.submitting'); },
  set submitting(v) { v ? localStorage.setItem('tamga.submitting', v) : localStorage.removeItem('tamga.submitting'); },
};

// ---------------------------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.error || 'http';
    this.action = body.action || '';
  }
}

async function api(method, path, body) {
  let r;
  try {
    r = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${S.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      // Longer than any device wait of the agent (30 s document, 20 s finger): a hung request cannot lock the page.
      signal: AbortSignal.timeout(method === 'GET' ? 15000 : 60000),
    });
  } catch (e) {
    throw new ApiError(0, { error: 'agent_down', message: String(e) });
  }
  if (r.status === 401) {
    showLogin();
    throw new ApiError(401, await r.json().catch(() => ({ error: 'unauthorized' })));
  }
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => ({ error: 'http', message: r.statusText })));
  if (r.status === 204) return null;
  return r.json();
}

/** An image from the API as an object URL (img elements cannot send the token). */
async function imageUrl(path) {
  try {
    const r = await fetch(path, { headers: { Authorization: `Bearer ${S.token}` }, signal: AbortSignal.timeout(15000) });
    if (!r.ok) return null;
    return URL.createObjectURL(await r.blob());
  } catch {
    return null;
  }
}

function setImage(img, url) {
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  img.dataset.url = url || '';
  if (url) img.src = url; else img.removeAttribute('src');
  img.hidden = !url;
}

// ---------------------------------------------------------------------------------------------------------------
// Errors: what happened and what to do, in the operator's language

/** Adds a message to the banner: what happened, what to do, and the agent's own words in small print. */
function say(kind, what, todo, detail, code, key) {
  const b = $('banner');
  // One message per subject: a device's "back" replaces its "disconnected".
  for (const m of [...b.children]) {
    if (m.querySelector('.what').textContent === what || (key && m.dataset.key === key)) m.remove();
  }
  const m = h('div', { class: `message ${kind}`, 'data-code': code || '', 'data-key': key || '' },
    h('div', { class: 'what' }, what), h('div', { class: 'todo' }, todo || ''), h('div', { class: 'detail muted' }, detail || ''));
  b.append(m);
  while (b.children.length > 3) b.firstElementChild.remove();
  b.hidden = false;
}

/** Removes the banner's message about `key`. */
function unsay(key) {
  for (const m of [...$('banner').children]) if (m.dataset.key === key) m.remove();
  if (!$('banner').children.length) $('banner').hidden = true;
}

function showError(e) {
  const code = e.code || 'internal';
  const known = !!messages[`error.${code}`] || !!english[`error.${code}`];
  say('error', known ? t(`error.${code}`) : (e.message || code),
    messages[`todo.${code}`] || english[`todo.${code}`] ? t(`todo.${code}`) : (e.action || ''),
    known ? e.message : '', code);
}

function showNotice(text, kind, key) {
  say(kind || 'notice', text, '', '', '', key);
}

function clearBanner() {
  $('banner').replaceChildren();
  $('banner').hidden = true;
}

// ---------------------------------------------------------------------------------------------------------------
// The bar: station, devices, outbox, link, agent

function renderBar() {
  $('station').textContent = S.station ? S.station.station_id : '';
  for (const role of ['document', 'camera', 'fingerprint']) {
    const st = S.agentUp ? (S.devices[role] || 'missing') : 'unknown';
    const chip = $(`dev-${role}`);
    chip.dataset.state = st;
    chip.querySelector('.state').textContent = t(`state.${st}`);
  }
  const o = S.outbox;
  const ob = $('outbox');
  if (o) {
    const backlog = o.queued + o.sending;
    ob.dataset.state = o.quarantined ? 'bad' : backlog ? 'busy' : 'ready';
    ob.querySelector('.state').textContent =
      t('outbox.summary', { waiting: backlog, delivered: o.delivered }) +
      (o.quarantined ? ' · ' + t('outbox.quarantined', { n: o.quarantined }) : '');
  }
  const l = S.link ? S.link.state : 'unknown';
  $('link').dataset.state = l === 'up' ? 'ready' : l === 'down' ? 'bad' : 'unknown';
  $('link').querySelector('.state').textContent = t(`link.${l}`);
  $('link').title = S.link && S.link.detail ? S.link.detail : '';
  $('agent').dataset.state = S.agentUp ? 'ready' : 'bad';
  $('agent').querySelector('.state').textContent = t(S.agentUp ? 'agent.up' : 'agent.down');
}

async function refreshDevices() {
  S.devices = await api('GET', '/v1/devices');
  if (S.interrupted && STEPS.includes(S.step)) render(); else renderBar();
}

async function refreshOutbox() {
  S.outbox = await api('GET', '/v1/outbox');
  renderBar();
}

// ---------------------------------------------------------------------------------------------------------------
// Steps

function go(step) {
  if (S.busy) return;
  if (STEPS.includes(step) && !S.sessionId) return;
  S.step = step;
  clearBanner();
  render();
}

function render() {
  for (const s of ['login', 'start', 'document', 'face', 'fingers', 'review', 'done']) $(`step-${s}`).hidden = S.step !== s;
  $('steps').hidden = !STEPS.includes(S.step);
  for (const li of document.querySelectorAll('#steps li')) {
    li.classList.toggle('current', li.dataset.step === S.step);
    li.classList.toggle('complete', stepComplete(li.dataset.step));
  }
  if (S.step === 'document') renderDocument();
  if (S.step === 'face') renderFace();
  if (S.step === 'fingers') renderFingers();
  if (S.step === 'review') renderReview();
  if (S.step === 'done') renderDone();
  preview(S.step === 'face');
  renderBar();
}

/** The instruction while a capture on this step waits for its device to come back, or null. */
function waitingFor(step) {
  const i = S.interrupted;
  if (!i || i.step !== step || S.devices[i.role] === 'ready') return null;
  return t('notice.waiting_device', { device: t(`device.${i.role}`).toLowerCase() });
}

function stepComplete(step) {
  const s = S.session;
  if (!s) return false;
  if (step === 'document') return !!(s.document && s.document.valid);
  if (step === 'face') return s.face_accepted;
  if (step === 'fingers') return s.missing.length === 0;
  return false;
}

/** The step's buttons: [label, key, handler, kind]; the first 'primary' one is what Enter does. */
function actions(container, list) {
  container.replaceChildren(...list.map(([label, key, fn, kind]) =>
    h('button', { class: kind, disabled: !!S.busy, 'data-key': key, onclick: fn }, h('kbd', {}, key), ' ', label)));
}

function primaryAction() {
  const b = document.querySelector(`#step-${S.step} button.primary`);
  if (b && !b.disabled) b.click();
}

function keyAction(key) {
  const b = document.querySelector(`#step-${S.step} button[data-key="${key}"]`);
  if (b && !b.disabled) b.click();
}

async function refreshSession() {
  if (!S.sessionId) return;
  try {
    S.session = await api('GET', `/v1/sessions/${S.sessionId}`);
  } catch (e) {
    if (e.code === 'no_session') {
      lostSession();
      return;
    }
    throw e;
  }
  S.doc = S.session.document;
  S.face = S.session.face_report;
}

function lostSession(expired) {
  // Gone while its submit was unanswered: it may be saved; never say "start again" then.
  const submitting = saved.submitting && saved.submitting === S.sessionId;
  S.sessionId = null;
  S.session = null;
  saved.session = null;
  S.step = 'start';
  render();
  const why = expired ? 'notice.session_expired' : 'notice.session_lost';
  showNotice(t(submitting ? 'notice.submit_unknown' : why), 'error');
}

// ------------------------------------------------------------------ start

async function startApplicant() {
  if (S.busy) return;
  const operator = $('operator').value.trim();
  if (!operator) {
    showNotice(t('start.need_operator'), 'error');
    $('operator').focus();
    return;
  }
  localStorage.setItem('tamga.operator', operator);
  S.busy = 'start';
  try {
    const r = await api('POST', '/v1/sessions', { operator_id: operator });
    S.sessionId = r.session_id;
    saved.session = r.session_id;
    saved.bundle = null;
    saved.submitting = null;
    if (S.cropUrl) URL.revokeObjectURL(S.cropUrl);
    S.cropUrl = null;
    S.doc = null; S.face = null; S.fingerResult = {}; S.finger = FINGERS[0]; S.done = null; S.interrupted = null;
    $('finger-image').dataset.pos = '';
    setImage($('finger-image'), null);
    await refreshSession();
    S.busy = null;
    go('document');
  } catch (e) {
    showError(e);
  } finally {
    S.busy = null;
  }
}

// ------------------------------------------------------------------ document

const WARN_SERIOUS = new Set(['expired', 'invalid_expiry_date', 'invalid_birth_date', 'name_repaired']);

function renderDocument() {
  const d = S.doc;
  let instruction;
  if (S.busy === 'document') instruction = t('document.reading');
  else if (!d) instruction = t('document.instruction');
  else if (!d.valid) instruction = t('document.invalid');
  else instruction = t(d.warnings.length ? 'document.ok' : 'document.ok_clean');
  say1($('document-instruction'), waitingFor('document') || instruction);
  const list = [];
  if (!d) list.push([t('document.read'), 'Enter', readDocument, 'primary']);
  else if (!d.valid) list.push([t('document.read_again'), 'Enter', readDocument, 'primary']);
  else {
    list.push([t('action.continue_face'), 'Enter', () => go('face'), 'primary']);
    list.push([t('document.read_again'), 'R', readDocument, 'secondary']);
  }
  actions($('document-actions'), list);
  const out = $('document-result');
  if (!d) { out.replaceChildren(); return; }
  const field = (k, v) => h('tr', {}, h('th', {}, t(`mrz.${k}`)), h('td', { 'data-field': k }, v ?? '—'));
  // In the order the fields stand in the MRZ.
  const order = ['document_number', 'birth_date', 'expiry_date', 'optional_data', 'composite'];
  const checks = order.filter((k) => k in (d.checks || {})).map((k) => [k, d.checks[k]]).map(([k, ok]) =>
    h('li', { class: ok ? 'pass' : 'fail' }, `${ok ? '✔' : '✘'} ${t(`mrz.check.${k}`)}`));
  const warnings = (d.warnings || []).map((w) =>
    h('li', { class: WARN_SERIOUS.has(w) ? 'fail' : 'warn', 'data-warning': w }, `⚠ ${t(`mrz.warning.${w}`)}`));
  const corrections = (d.corrections || []).map((c) =>
    h('li', { class: 'warn' }, `✎ ${t('mrz.corrected', { from: c.from, to: c.to, line: c.line, position: c.position })}`));
  // Repairs the parser found but could not confirm by two checks: the operator compares them with the page.
  const suggestions = (d.suggestions || []).map((c) =>
    h('li', { class: 'fail', 'data-suggestion': c.field },
      `? ${t('mrz.suggested', { value: c.value, from: c.from, to: c.to, line: c.line, position: c.position })}`));
  fill(out,
    h('table', { class: 'record passport' },
      field('surname', d.surname), field('given_names', d.given_names), field('document_number', d.document_number),
      field('nationality', d.nationality), field('birth_date', d.birth_date), field('sex', d.sex),
      field('expiry_date', d.expiry_date), field('issuing_state', d.issuing_state)),
    h('div', {},
      warnings.length ? h('ul', { class: 'checks', id: 'mrz-warnings' }, warnings) : null,
      corrections.length ? h('ul', { class: 'checks' }, corrections) : null,
      suggestions.length ? h('ul', { class: 'checks', id: 'mrz-suggestions' }, suggestions) : null,
      h('ul', { class: 'checks', id: 'mrz-checks' }, checks)),
  );
}

async function readDocument() {
  if (S.busy) return;
  S.busy = 'document';
  S.interrupted = null;
  clearBanner();
  render();
  try {
    const r = await api('POST', `/v1/sessions/${S.sessionId}/document`);
    S.doc = r.mrz;
    await refreshSession();
  } catch (e) {
    failed(e, 'document', readDocument);
  } finally {
    S.busy = null;
    render();
  }
}

// ------------------------------------------------------------------ face

function renderFace() {
  const f = S.face;
  let instruction;
  if (S.busy === 'face') instruction = t('face.taking');
  else if (!f) instruction = t('face.instruction');
  else if (f.accepted) instruction = t('face.accepted');
  else instruction = t('face.rejected');
  say1($('face-instruction'), waitingFor('face') || instruction);
  const list = [];
  if (f && f.accepted) {
    list.push([t('action.continue_fingers'), 'Enter', () => go('fingers'), 'primary']);
    list.push([t('face.retake'), 'R', takePhoto, 'secondary']);
  } else {
    list.push([f ? t('face.retake') : t('face.take'), 'Enter', takePhoto, 'primary']);
  }
  actions($('face-actions'), list);
  const checks = (f ? f.checks : []).map((c) => h('li', { class: c.passed ? 'pass' : 'fail', 'data-check': c.name },
    h('span', {}, `${c.passed ? '✔' : '✘'} ${t(`photo.${c.name}`)}`),
    c.passed ? null : h('div', { class: 'advice' }, english[adviceKey(c)] ? t(adviceKey(c)) : c.advice)));
  $('checks').replaceChildren(...checks);
  showCrop($('crop'));
  const kept = S.session && S.session.face_accepted;
  $('crop-note').textContent = f && !f.accepted ? t(kept ? 'face.kept_earlier' : 'face.no_crop') : '';
}

/** Fetches the accepted photo's crop once (it is shown on the photo step and on the review). */
async function loadCrop() {
  const sid = S.sessionId;
  const url = await imageUrl(`/v1/sessions/${sid}/face`);
  if (S.sessionId !== sid) { if (url) URL.revokeObjectURL(url); return; }
  if (S.cropUrl) URL.revokeObjectURL(S.cropUrl);
  S.cropUrl = url;
  render();
}

function showCrop(img) {
  const url = S.session && S.session.face_accepted ? S.cropUrl : null;
  if (url) img.src = url; else img.removeAttribute('src');
  img.hidden = !url;
}

/** The message key of a failed check's advice; some checks fail in two directions. */
function adviceKey(c) {
  const band = Array.isArray(c.threshold) ? c.threshold : null;
  if (band && c.value !== null && ['brightness', 'head_height'].includes(c.name)) {
    return `photo.advice.${c.name}_${c.value < band[0] ? 'low' : 'high'}`;
  }
  if (c.name === 'face_count') return `photo.advice.face_count_${c.value ? 'many' : 'none'}`;
  return `photo.advice.${c.name}`;
}

async function takePhoto() {
  if (S.busy) return;
  S.busy = 'face';
  S.interrupted = null;
  clearBanner();
  render();
  try {
    S.face = await api('POST', `/v1/sessions/${S.sessionId}/face`);
    await refreshSession();
    if (S.face.accepted) await loadCrop();
  } catch (e) {
    failed(e, 'camera', takePhoto);
  } finally {
    S.busy = null;
    render();
  }
}

// The live view: multipart/x-mixed-replace JPEG frames read from a fetch() stream.
let previewAbort = null;
let previewRetry = null;

function preview(on) {
  if (!on) {
    if (previewAbort) previewAbort.abort();
    previewAbort = null;
    clearTimeout(previewRetry);
    return;
  }
  if (previewAbort) return;
  if (S.busy === 'face') {
    // A still capture holds the camera; the live view comes back after it.
    clearTimeout(previewRetry);
    previewRetry = setTimeout(() => preview(S.step === 'face'), 500);
    return;
  }
  const ctl = new AbortController();
  previewAbort = ctl;
  readPreview(ctl.signal).catch(() => {}).finally(() => {
    if (previewAbort === ctl && !ctl.signal.aborted && $('preview').dataset.url) {
      // The stream ended (camera gone, agent stopping): do not leave its last frame up as if it were live.
      setImage($('preview'), null);
      $('preview-note').textContent = t('face.preview_unavailable');
    }
    if (previewAbort === ctl) {
      previewAbort = null;
      if (S.step === 'face') previewRetry = setTimeout(() => preview(S.step === 'face'), 1000);
    }
  });
}

async function readPreview(signal) {
  const note = $('preview-note');
  const r = await fetch('/v1/devices/camera/preview', { headers: { Authorization: `Bearer ${S.token}` }, signal });
  if (!r.ok) {
    const e = await r.json().catch(() => ({}));
    note.textContent = e.error === 'no_preview' ? t('face.no_preview') : t('face.preview_unavailable');
    setImage($('preview'), null);
    if (e.error === 'no_preview') await new Promise((res) => setTimeout(res, 60000));
    return;
  }
  note.textContent = '';
  const reader = r.body.getReader();
  let buf = new Uint8Array(0);
  const dec = new TextDecoder();
  const sep = (b, from) => {
    for (let i = from; i + 3 < b.length; i++) if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
    return -1;
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const joined = new Uint8Array(buf.length + value.length);
    joined.set(buf); joined.set(value, buf.length);
    buf = joined;
    for (;;) {
      const end = sep(buf, 0);
      if (end < 0) break;
      const head = dec.decode(buf.subarray(0, end));
      const m = /content-length:\s*(\d+)/i.exec(head);
      if (!m) { buf = buf.subarray(end + 4); continue; }
      const len = Number(m[1]);
      if (buf.length < end + 4 + len) break;
      const jpeg = buf.slice(end + 4, end + 4 + len);
      buf = buf.subarray(end + 4 + len);
      const img = $('preview');
      setImage(img, URL.createObjectURL(new Blob([jpeg], { type: 'image/jpeg' })));
      img.dataset.frames = String(Number(img.dataset.frames || 0) + 1);
    }
  }
}

// ------------------------------------------------------------------ fingers

const HAND_LAYOUT = {
  // x, y of each fingertip box on a 460 x 260 drawing of both hands, palms down, seen by the operator.
  'left-little': [20, 70], 'left-ring': [62, 30], 'left-middle': [104, 16], 'left-index': [146, 34], 'left-thumb': [192, 120],
  'right-thumb': [238, 120], 'right-index': [284, 34], 'right-middle': [326, 16], 'right-ring': [368, 30], 'right-little': [410, 70],
};

function fingerState(pos) {
  const s = S.session && S.session.fingers[pos];
  return s ? s.state : 'pending';
}

function fingerDone(pos) {
  return ['captured', 'exception'].includes(fingerState(pos));
}

function renderHands() {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 460 260');
  svg.setAttribute('id', 'hand-diagram');
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    return e;
  };
  svg.append(el('rect', { x: 20, y: 150, width: 200, height: 100, rx: 40, class: 'palm' }));
  svg.append(el('rect', { x: 240, y: 150, width: 200, height: 100, rx: 40, class: 'palm' }));
  svg.append(el('text', { x: 120, y: 215, class: 'hand-label' }, t('hand.left')));
  svg.append(el('text', { x: 340, y: 215, class: 'hand-label' }, t('hand.right')));
  for (const pos of FINGERS) {
    const [x, y] = HAND_LAYOUT[pos];
    const thumb = pos.endsWith('thumb');
    const state = fingerState(pos);
    const g = el('g', {
      class: `finger ${state}${pos === S.finger ? ' selected' : ''}`,
      'data-pos': pos, 'data-state': state, tabindex: '-1', role: 'img',
      'aria-label': `${t(`finger.${pos}`)}: ${t(`fingerstate.${state}`)}`,
    });
    g.append(el('rect', { x, y, width: 32, height: thumb ? 60 : 130 - (y - 16), rx: 16 }));
    const q = S.session && S.session.fingers[pos];
    const mark = state === 'captured' ? String(q.score) : state === 'exception' ? q.code : String(FINGERS.indexOf(pos) + 1);
    g.append(el('text', { x: x + 16, y: y + 24, class: 'finger-mark' }, mark));
    g.addEventListener('click', () => {
      if (S.busy) return;
      if (S.interrupted && S.interrupted.step === 'fingers') S.interrupted = null;
      S.finger = pos;
      render();
    });
    svg.append(g);
  }
  $('hands').replaceChildren(svg);
}

function renderFingers() {
  renderHands();
  const pos = S.finger;
  const name = t(`finger.${pos}`);
  const res = S.fingerResult[pos];
  const state = fingerState(pos);
  const all = FINGERS.every(fingerDone);
  let instruction;
  if (S.busy === 'finger') instruction = t('fingers.place', { finger: name });
  else if (res && res.kind === 'retry') instruction = t('fingers.retry', { finger: name });
  else if (res && res.kind === 'declare') instruction = t('fingers.declare', { finger: name });
  else if (all) instruction = t('fingers.all_done');
  else if (state === 'captured') instruction = t('fingers.captured', { finger: name });
  else if (state === 'exception') instruction = t('fingers.excepted', { finger: name });
  else instruction = t('fingers.instruction', { finger: name });
  say1($('finger-instruction'), waitingFor('fingers') || instruction);
  const list = [];
  if (all && !S.busy) {
    list.push([t('action.continue_review'), 'Enter', () => go('review'), 'primary']);
    list.push([t('fingers.capture_again', { finger: name }), 'R', () => captureFinger(pos), 'secondary']);
  } else if (state === 'captured' || state === 'exception') {
    list.push([t('fingers.next'), 'Enter', () => selectNext(), 'primary']);
    list.push([t('fingers.capture_again', { finger: name }), 'R', () => captureFinger(pos), 'secondary']);
  } else {
    list.push([t('fingers.capture', { finger: name }), 'Enter', () => captureFinger(pos), 'primary']);
  }
  list.push([t('fingers.exception'), 'E', () => openException(), 'secondary']);
  actions($('finger-actions'), list);
  $('finger-caption').textContent = name;
  const q = S.session && S.session.finger_quality[pos];
  const out = $('finger-quality');
  const findings = (res && res.findings) || (q && q.findings) || [];
  const lines = [];
  if (res && res.kind === 'scanner') {
    lines.push(h('p', { class: 'fail' }, english[`scanner.${res.reason}`] ? t(`scanner.${res.reason}`) : res.instruction));
  }
  if (q && state === 'captured') lines.push(h('p', { class: 'pass' }, t('fingers.quality', { score: q.score })));
  if (res && res.kind === 'retry') lines.push(h('p', { class: 'fail' }, t('fingers.rejected', { score: res.score, remaining: res.remaining })));
  if (state === 'exception') lines.push(h('p', { class: 'warn' }, t(`reason.${S.session.fingers[pos].reason}`)));
  for (const f of findings) lines.push(h('p', { class: state === 'captured' ? 'warn' : 'fail', 'data-finding': f }, `• ${t(`finding.${f}`)}`));
  out.replaceChildren(...lines);
  const bar = $('finger-progress');
  const p = S.progress;
  bar.hidden = !(S.busy === 'finger' && p && p.what === `finger/${pos}`);
  if (!bar.hidden) {
    const pct = Math.round((100 * p.done) / p.total);
    bar.querySelector('.fill').style.width = `${pct}%`;
    bar.setAttribute('aria-valuenow', String(pct));
  }
  if ($('finger-image').dataset.pos !== pos) {
    $('finger-image').dataset.pos = pos;
    setImage($('finger-image'), null);
    // The best image so far, also of a rejected attempt: the operator sees what the scanner saw.
    const tried = state === 'captured' || (S.session && (S.session.fingers[pos].scores || []).length > 0);
    if (tried) showFingerImage(pos);
  }
}

async function showFingerImage(pos) {
  const sid = S.sessionId;
  const url = await imageUrl(`/v1/sessions/${sid}/fingers/${pos}`);
  if (S.finger === pos && S.sessionId === sid) setImage($('finger-image'), url);
  else if (url) URL.revokeObjectURL(url);
}

function selectNext() {
  const start = FINGERS.indexOf(S.finger);
  for (let i = 1; i <= FINGERS.length; i++) {
    const p = FINGERS[(start + i) % FINGERS.length];
    if (!fingerDone(p)) { S.finger = p; render(); return; }
  }
  render();
}

function moveFinger(delta) {
  if (S.busy) return;
  if (S.interrupted && S.interrupted.step === 'fingers') S.interrupted = null; // the operator chose otherwise
  S.finger = FINGERS[(FINGERS.indexOf(S.finger) + delta + FINGERS.length) % FINGERS.length];
  render();
}

async function captureFinger(pos) {
  if (S.busy) return;
  S.finger = pos; // the screen names the finger being captured, also when a capture resumes
  S.busy = 'finger';
  S.interrupted = null;
  S.progress = null;
  delete S.fingerResult[pos];
  clearBanner();
  render();
  let next = null;
  try {
    const r = await api('POST', `/v1/sessions/${S.sessionId}/fingers/${pos}`);
    if (typeof r.next === 'string') {
      // The scanner itself asked for another try (no finger, or an unusable image).
      S.fingerResult[pos] = { kind: 'scanner', reason: r.reason, instruction: r.instruction };
    } else {
      const n = r.next;
      const findings = r.quality ? r.quality.findings : [];
      if (n.next === 'retry') S.fingerResult[pos] = { kind: 'retry', score: r.quality.score, remaining: n.remaining, findings };
      else if (n.next === 'declare_exception') S.fingerResult[pos] = { kind: 'declare', findings };
      else next = pos; // accepted or kept as the best
    }
    await refreshSession();
    $('finger-image').dataset.pos = '';
  } catch (e) {
    failed(e, 'fingerprint', () => captureFinger(pos));
  } finally {
    S.busy = null;
    S.progress = null;
  }
  if (next) {
    // On to the next finger without a key press: the applicant moves finger to finger.
    const before = S.finger;
    selectNext();
    if (S.finger !== before && !fingerDone(S.finger) && S.step === 'fingers') {
      captureFinger(S.finger);
      return;
    }
  }
  render();
  if (S.fingerResult[pos] && S.fingerResult[pos].kind === 'declare') openException();
}

function openException() {
  if (S.busy) return;
  const d = $('exception-dialog');
  $('exception-title').textContent = t('exception.title', { finger: t(`finger.${S.finger}`) });
  $('exception-reasons').replaceChildren(...REASONS.map((r, i) =>
    h('li', {}, h('button', { class: 'secondary', 'data-reason': r, onclick: () => declare(r) }, h('kbd', {}, String(i + 1)), ' ', t(`reason.${r}`)))));
  d.showModal();
  $('exception-title').focus(); // no reason button starts focused
}

async function declare(reason) {
  $('exception-dialog').close();
  const pos = S.finger;
  try {
    S.session = await api('POST', `/v1/sessions/${S.sessionId}/fingers/${pos}/exception`, { reason });
    if (S.interrupted && S.interrupted.step === 'fingers') S.interrupted = null; // decided otherwise
    delete S.fingerResult[pos];
    selectNext();
  } catch (e) {
    showError(e);
  }
}

// ------------------------------------------------------------------ review and submit

function renderReview() {
  const s = S.session;
  if (!s) return;
  const missing = [];
  if (!s.document) missing.push(['document', t('review.no_document')]);
  else if (!s.document.valid) missing.push(['document', t('review.document_invalid')]);
  if (!s.face_accepted) missing.push(['face', t('review.no_face')]);
  if (s.missing.length) missing.push(['fingers', t('review.fingers_missing', { fingers: s.missing.map((p) => t(`finger.${p}`)).join(', ') })]);
  const list = [];
  if (s.ready) list.push([t('review.submit'), 'Enter', submit, 'primary']);
  else list.push([t('review.go_missing'), 'Enter', () => go(missing[0][0]), 'primary']);
  actions($('review-actions'), list);
  const d = s.document;
  const crop = h('img', { id: 'review-crop', alt: '' });
  showCrop(crop);
  const fingers = FINGERS.map((p) => {
    const f = s.fingers[p];
    const text = f.state === 'captured' ? t('review.finger_score', { score: f.score })
      : f.state === 'exception' ? t(`reason.${f.reason}`) : t('review.finger_missing');
    return h('tr', { class: f.state === 'pending' ? 'fail' : f.state === 'exception' ? 'warn' : 'pass', 'data-pos': p },
      h('th', {}, t(`finger.${p}`)), h('td', {}, text));
  });
  fill($('review'),
    missing.length ? h('ul', { class: 'checks', id: 'review-missing' }, missing.map(([, m]) => h('li', { class: 'fail' }, `✘ ${m}`))) : null,
    h('div', { class: 'review-grid' },
      h('div', {}, h('h2', {}, t('step.document')),
        d ? h('p', { class: 'big' }, `${d.surname}, ${d.given_names}`) : h('p', {}, '—'),
        d ? h('p', {}, `${d.document_number} · ${d.nationality} · ${d.birth_date ?? '—'}`) : null,
        d && d.warnings.length ? h('p', { class: 'warn' }, d.warnings.map((w) => t(`mrz.warning.${w}`)).join('; ')) : null),
      h('div', {}, h('h2', {}, t('step.face')), crop),
      h('div', {}, h('h2', {}, t('step.fingers')), h('table', { class: 'record' }, fingers))),
  );
}

async function submit() {
  if (S.busy) return;
  S.busy = 'finalize';
  clearBanner();
  render();
  saved.submitting = S.sessionId;
  try {
    const r = await api('POST', `/v1/sessions/${S.sessionId}/finalize`);
    if (!S.done) finished(r.bundle_id);
  } catch (e) {
    S.busy = null;
    if (S.done) return; // the session event said it was saved
    if (e.code === 'no_session' || e.code === 'agent_down') {
      // The answer was lost: the bundle may be saved. Never tell the operator to start again on a guess.
      render();
      showNotice(t('notice.submit_unknown'), 'error');
      return;
    }
    saved.submitting = null;
    showError(e);
    await refreshSession().catch(() => {});
    render();
  }
}

/** The applicant is saved as `bundleId`: show its delivery. */
function finished(bundleId) {
  S.done = { bundle_id: bundleId, state: 'queued' };
  saved.bundle = bundleId;
  saved.session = null;
  saved.submitting = null;
  S.sessionId = null;
  S.session = null;
  S.busy = null;
  go('done');
  watchBundle();
}

// ------------------------------------------------------------------ after submit

function renderDone() {
  if (!S.done) return;
  $('done-bundle').textContent = S.done.bundle_id;
  const st = S.done.state;
  $('done-state').textContent = t(`bundle.${st}`);
  $('done-state').dataset.state = st;
  $('done-text').textContent = t('done.text');
  const r = receipt(S.done.receipt);
  $('done-receipt').textContent = r
    ? t('done.receipt', { time: new Date(r.received_at).toLocaleString(S.lang), reference: r.storage_ref })
    : '';
}

/** The receipt's claims (the agent verified its signature against the central certificate before saying
 * "delivered"; the page only shows them). */
function receipt(jws) {
  try {
    const b64 = jws.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

let bundleTimer = null;
let bundleGeneration = 0;

async function watchBundle() {
  clearTimeout(bundleTimer);
  const generation = ++bundleGeneration; // a later call supersedes this one
  if (!S.done) return;
  try {
    const st = await api('GET', `/v1/bundles/${S.done.bundle_id}`);
    S.done.state = st.state;
    S.done.last_error = st.last_error;
    S.done.receipt = st.receipt;
    if (S.step === 'done') renderDone();
  } catch (e) {
    if (e.code === 'no_bundle') { showError(e); return; }
    /* otherwise the next event or tick tries again */
  }
  if (generation !== bundleGeneration) return;
  if (S.done && !['delivered', 'quarantined'].includes(S.done.state)) bundleTimer = setTimeout(watchBundle, 3000);
}

function nextApplicant() {
  if (S.busy) return;
  S.done = null;
  saved.bundle = null;
  S.step = 'start';
  clearBanner();
  render();
  $('operator').value = localStorage.getItem('tamga.operator') || '';
  if (!$('operator').value) $('operator').focus();
}

// ---------------------------------------------------------------------------------------------------------------
// Device failures: say so, keep what was captured, and resume when the device is back

function failed(e, role, retry) {
  if (e.code === 'no_session') { lostSession(); return; }
  showError(e);
  // Only a device that failed comes back; "not configured" does not, and "busy" is retried by the operator.
  if (e.code !== 'device_failed') { refreshDevices().catch(() => {}); return; }
  const i = { role, step: S.step, run: retry };
  S.interrupted = i;
  refreshDevices().catch(() => {});
  // The supervisor notices an unplug within a second. A device still there after that had a passing fault: no
  // "back" will come, so the operator retries (Enter) rather than wait for one.
  setTimeout(() => {
    refreshDevices().then(() => {
      if (S.interrupted === i && S.devices[role] === 'ready') {
        S.interrupted = null;
        render();
        showNotice(t('notice.retry_device', { device: t(`device.${role}`) }), 'notice', `dev-${role}`);
      }
    }).catch(() => {});
  }, 2000);
}

/** Called when `role` is seen to come back (arrived, or answering again); true when a capture resumed. */
function maybeResume(role) {
  const i = S.interrupted;
  if (!i || i.role !== role || S.busy || S.step !== i.step) return false;
  if (document.querySelector('dialog[open]')) return false; // the operator is deciding something else
  if (S.devices[i.role] !== 'ready') return false;
  S.interrupted = null;
  i.run(); // clears the banner as any new capture does
  showNotice(t('notice.resumed', { device: t(`device.${i.role}`) }), 'notice', `dev-${i.role}`);
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// The event stream (Server-Sent Events read from a fetch() stream)

async function events() {
  for (let wait = 500; ; wait = Math.min(wait * 2, 5000)) {
    // Each connection is aborted when it ends for any reason, so a failed one never holds a browser connection.
    const ctl = new AbortController();
    try {
      const r = await fetch('/v1/events', { headers: { Authorization: `Bearer ${S.token}` }, signal: ctl.signal });
      if (r.status === 401) { showLogin(); return; }
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      S.agentUp = true;
      wait = 500;
      unsay('agent');
      await refreshAll();
      // After a reconnect (the agent may have restarted): is the open applicant still there?
      if (S.sessionId && !S.busy) await refreshSession().then(render).catch(() => {});
      if (S.interrupted) maybeResume(S.interrupted.role);
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let name = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (data) onEvent(name, data);
        }
      }
    } catch (e) {
      /* reconnect below */
    } finally {
      ctl.abort();
    }
    if (S.agentUp) say('error', t('error.agent_down'), t('todo.agent_down'), '', 'agent_down', 'agent');
    S.agentUp = false;
    renderBar();
    await new Promise((res) => setTimeout(res, wait));
  }
}

function onEvent(name, data) {
  let e;
  try { e = JSON.parse(data); } catch { e = data; }
  if (name === 'device') {
    const back = e.state === 'arrived' || e.state === 'responsive';
    const device = t(`device.${e.role}`);
    if (e.state === 'removed' || e.state === 'unresponsive') {
      showNotice(t(`notice.device_${e.state}`, { device }), 'error', `dev-${e.role}`);
    }
    refreshDevices().then(() => {
      if (back && !maybeResume(e.role)) showNotice(t('notice.device_back', { device }), 'notice', `dev-${e.role}`);
    }).catch(() => {});
  } else if (name === 'outbox') {
    S.outbox = e;
    renderBar();
    if (S.done && S.done.state !== 'delivered') watchBundle();
  } else if (name === 'link') {
    S.link = e;
    renderBar();
  } else if (name === 'session') {
    // A finalize whose answer was lost (the agent stopped after saving): the event still names the bundle.
    if (e.state === 'finalized' && e.session === saved.submitting && !S.done) {
      finished(e.bundle_id);
    } else if (e.state === 'expired' && e.session === S.sessionId) {
      // Left idle too long: the agent dropped it and its captures.
      lostSession(true);
    }
  } else if (name === 'capture') {
    if (e.stage === 'progress' && e.session === S.sessionId) {
      S.progress = { what: e.what, done: e.done, total: e.total };
      if (S.step === 'fingers') renderFingers();
    } else if (e.stage !== 'progress') {
      // A capture started or ended: its device turned busy or free.
      refreshDevices().catch(() => {});
    }
  } else if (name === 'lagged') {
    resync().catch(() => {});
  }
}

/** After missed events: everything they could have changed. */
async function resync() {
  await refreshAll();
  if (S.sessionId && !S.busy) await refreshSession();
  if (S.done) watchBundle();
  if (S.interrupted) maybeResume(S.interrupted.role);
  render();
}

async function refreshAll() {
  const [station, devices, outbox] = await Promise.all([
    api('GET', '/v1/station'), api('GET', '/v1/devices'), api('GET', '/v1/outbox')]);
  S.station = station;
  S.link = station.link;
  S.devices = devices;
  S.outbox = outbox;
  renderBar();
}

// ---------------------------------------------------------------------------------------------------------------
// Keys: everything is reachable without the mouse. Physical key codes, so a Cyrillic layout works the same.

function onKey(ev) {
  const dialog = document.querySelector('dialog[open]');
  if (dialog) {
    if (dialog.id === 'exception-dialog') {
      // A reason is chosen by its number only: Enter or Space must not pick whichever button has the focus.
      if (ev.key === 'Enter' || ev.key === ' ') ev.preventDefault();
      const m = /^(?:Digit|Numpad)([1-9])$/.exec(ev.code);
      const r = m && REASONS[Number(m[1]) - 1];
      if (r && !ev.repeat) { ev.preventDefault(); declare(r); }
    } else if (dialog.id === 'cancel-dialog' && ev.key === 'Enter') {
      ev.preventDefault();
      if (ev.repeat || document.activeElement === $('cancel-no')) dialog.close();
      else confirmCancel();
    }
    return; // Esc closes a dialog by itself
  }
  const fkeys = { F1: 'document', F2: 'face', F3: 'fingers', F4: 'review' };
  // The browser's own F1 (help) and F3 (find) never open on the operator's screen.
  if (fkeys[ev.key] || ev.key === 'F9') ev.preventDefault();
  // A held key repeats only where repeating makes sense (moving between fingers).
  if (ev.repeat && ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
  if (ev.altKey && ev.code === 'KeyL') { ev.preventDefault(); setLanguage(LANGS[(LANGS.indexOf(S.lang) + 1) % LANGS.length]); return; }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return; // Ctrl+R reloads, as the operator expects
  const inField = ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement && document.activeElement.tagName);
  if (fkeys[ev.key] && S.sessionId) { go(fkeys[ev.key]); return; }
  if (ev.key === 'F9' && S.sessionId) { askCancel(); return; }
  if (ev.key === 'Enter' && !(inField && S.step === 'login')) {
    if (S.step === 'start') { ev.preventDefault(); startApplicant(); return; }
    if (S.step === 'done') { ev.preventDefault(); nextApplicant(); return; }
    if (!inField) { ev.preventDefault(); primaryAction(); }
    return;
  }
  if (inField) return;
  if (S.step === 'fingers' && ev.key === 'ArrowRight') { ev.preventDefault(); moveFinger(1); return; }
  if (S.step === 'fingers' && ev.key === 'ArrowLeft') { ev.preventDefault(); moveFinger(-1); return; }
  if (ev.code === 'KeyE' && S.step === 'fingers') { ev.preventDefault(); openException(); return; }
  if (ev.code === 'KeyR') { ev.preventDefault(); keyAction('R'); }
}

function askCancel() {
  if (S.busy) return;
  $('cancel-dialog').showModal();
}

async function confirmCancel() {
  $('cancel-dialog').close();
  if (S.busy) return;
  S.busy = 'cancel';
  try {
    await api('DELETE', `/v1/sessions/${S.sessionId}`);
  } catch (e) {
    if (e.code !== 'no_session') { showError(e); return; }
  } finally {
    S.busy = null;
  }
  S.sessionId = null;
  S.session = null;
  saved.session = null;
  nextApplicant();
}

async function setLanguage(lang) {
  const before = S.lang;
  S.lang = lang;
  try {
    await loadMessages(lang);
  } catch {
    if (S.lang === lang) S.lang = before; // the agent is not answering: stay in the language shown
    return;
  }
  if (S.lang !== lang) return; // a later choice won
  localStorage.setItem('tamga.lang', lang);
  render();
}

// ---------------------------------------------------------------------------------------------------------------
// Start-up

function showLogin() {
  S.step = 'login';
  render();
  $('login-token').focus();
}

async function main() {
  // The key `tamga page --open` handed over (POST /): into session storage, out of the document, and the address
  // becomes a plain GET of `/` (a reload does not post again).
  const handed = document.querySelector('meta[name="tamga-key"]');
  if (handed) {
    sessionStorage.setItem('tamga.token', handed.content);
    handed.remove();
    history.replaceState(null, '', '/');
  }
  const m = /(?:^#|&)token=([0-9a-fA-F]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('tamga.token', m[1]);
    history.replaceState(null, '', location.pathname);
  }
  S.token = sessionStorage.getItem('tamga.token') || '';
  S.lang = localStorage.getItem('tamga.lang') || 'en';
  await loadMessages(S.lang);
  $('lang').addEventListener('change', (e) => { setLanguage(e.target.value); e.target.blur(); });
  document.addEventListener('keydown', onKey);
  $('start').addEventListener('click', startApplicant);
  $('next').addEventListener('click', nextApplicant);
  $('cancel').addEventListener('click', askCancel);
  $('cancel-yes').addEventListener('click', confirmCancel);
  $('cancel-no').addEventListener('click', () => $('cancel-dialog').close());
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('tamga.token', $('login-token').value.trim());
    location.reload();
  });
  if (!S.token) { showLogin(); return; }
  try {
    S.station = await api('GET', '/v1/station');
  } catch (e) {
    if (e.status !== 401) { S.step = 'start'; render(); showError(e); setTimeout(() => location.reload(), 5000); }
    return;
  }
  S.lang = localStorage.getItem('tamga.lang') || S.station.language;
  await loadMessages(S.lang);
  $('operator').value = localStorage.getItem('tamga.operator') || '';
  events();
  // Pick up where the page was: an open applicant, or a submitted bundle whose delivery we were showing.
  const open = saved.session;
  if (open) {
    S.sessionId = open;
    try {
      await refreshSession();
    } catch (e) {
      // Known to the page but not readable now: say so and try again shortly, never drop it.
      showError(e);
      setTimeout(() => location.reload(), 5000);
      return;
    }
    if (!S.sessionId) return; // the agent no longer knows it: lostSession said what to do
    if (S.session.face_accepted) loadCrop();
    const first = STEPS.find((s) => s !== 'review' && !stepComplete(s)) || 'review';
    S.finger = FINGERS.find((p) => !fingerDone(p)) || FINGERS[0];
    go(first);
    showNotice(t('notice.session_restored'), 'notice');
    return;
  } else if (saved.submitting) {
    // The page went away while submitting: the answer is unknown.
    go('start');
    showNotice(t('notice.submit_unknown'), 'error');
    return;
  } else if (saved.bundle) {
    S.done = { bundle_id: saved.bundle, state: 'queued' };
    go('done');
    watchBundle();
    return;
  }
  go('start');
  if (!$('operator').value) $('operator').focus();
}

main().catch((e) => {
  // Never a blank screen: say so and try again.
  S.step = 'start';
  render();
  showError(e instanceof ApiError ? e : new ApiError(0, { error: 'agent_down', message: String(e) }));
  setTimeout(() => location.reload(), 5000);
});
