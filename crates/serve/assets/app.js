// approxlab live: start runs, watch them learn, steer them, zoom into them and compare them.
// The page's state (form, focused run, window, view mode) lives in the URL hash so that a view can be shared.

import { drawCurve, drawLosses, PALETTE } from './plots.js';
import { SurfaceView } from './surface.js';

const $ = (id) => document.getElementById(id);
const FIELDS = ['data', 'encoding', 'network', 'head', 'loss', 'optimizer', 'lr', 'schedule', 'batch', 'steps', 'time', 'seed'];
const NUMBERS = new Set(['lr', 'batch', 'steps', 'seed']);
const form = $('setup');
const runs = new Map();
const page = { focus: null, window: null, mode: 'side', neurons: false, learned: null, truth: null, fetchToken: 0, lastFetch: 0, fetching: false };
let surface = null;

const fmt = (x, digits = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : Math.abs(x) >= 1e4 || Math.abs(x) < 1e-2 ? x.toExponential(digits - 1) : x.toPrecision(digits));
const count = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n));

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get('content-type') || '';
  const body = type.includes('json') ? await response.json() : await response.blob();
  if (!response.ok) throw new Error(body && body.error ? body.error : `${response.status} ${response.statusText}`);
  return body;
}

const post = (path, value) => api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(value ?? {}) });

// ---- URL state -------------------------------------------------------------------------------------------------

function writeHash() {
  const p = new URLSearchParams();
  for (const f of FIELDS) {
    const v = form.elements[f].value.trim();
    if (v !== '') p.set(f, v);
  }
  if (page.focus) p.set('run', page.focus);
  if (page.window) p.set('window', page.window.map((v) => +v.toPrecision(10)).join(','));
  if (page.mode !== 'side') p.set('mode', page.mode);
  if (page.neurons) p.set('neurons', '1');
  history.replaceState(null, '', `#${p.toString()}`);
}

function readHash() {
  return new URLSearchParams(location.hash.slice(1));
}

// ---- The form --------------------------------------------------------------------------------------------------

function options(select, values, labels = {}) {
  select.replaceChildren(...values.map((v) => new Option(labels[v] ?? (v === '' ? 'default for the data' : v), v)));
}

function datalist(list, values) {
  list.replaceChildren(...values.map((v) => new Option(v, v)));
}

function formValues() {
  const out = {};
  for (const f of FIELDS) {
    const v = form.elements[f].value.trim();
    if (v === '') continue;
    out[f] = NUMBERS.has(f) ? Number(v) : v;
  }
  return out;
}

function syncDataChoice() {
  const v = $('data').value.trim();
  const choice = $('data-choice');
  choice.value = [...choice.options].some((o) => o.value === v) ? v : '';
}

let describeToken = 0;
let describeTimer = 0;
function describeSoon() {
  clearTimeout(describeTimer);
  describeTimer = setTimeout(describe, 250);
}

async function describe() {
  const token = ++describeToken;
  writeHash();
  try {
    const d = await post('/api/describe', formValues());
    if (token !== describeToken) return;
    $('form-error').textContent = '';
    $('model-info').textContent = `${count(d.params)} parameters · ${count(d.encoded_features)} encoded features · ` +
      `${count(d.flops_per_sample)} FLOPs/sample${d.steps ? ` · ${d.steps} steps` : ''}`;
  } catch (e) {
    if (token !== describeToken) return;
    $('model-info').textContent = '';
    $('form-error').textContent = e.message;
  }
}

async function setupForm() {
  const catalog = await api('/api/catalog');
  const choice = $('data-choice');
  choice.replaceChildren(...catalog.data.map((d) => new Option(d.label, d.value)), new Option('custom (type below)', ''));
  datalist($('data-list'), catalog.data.map((d) => d.value));
  datalist($('encoding-list'), catalog.encoding);
  datalist($('network-list'), catalog.network);
  datalist($('optimizer-list'), catalog.optimizer);
  datalist($('schedule-list'), catalog.schedule);
  setupScenes(catalog.scenes || []);
  options(form.elements.head, catalog.head);
  options(form.elements.loss, catalog.loss);
  const hash = readHash();
  for (const f of FIELDS) {
    const v = hash.has(f) ? hash.get(f) : catalog.defaults[f];
    const el = form.elements[f];
    if (el.tagName === 'SELECT' && ![...el.options].some((o) => o.value === String(v ?? ''))) el.add(new Option(v, v));
    el.value = v ?? '';
  }
  page.mode = hash.get('mode') === 'slider' ? 'slider' : 'side';
  $('mode').value = page.mode;
  page.neurons = hash.get('neurons') === '1';
  $('neurons-toggle').checked = page.neurons;
  const w = (hash.get('window') || '').split(',').map(Number);
  if (w.length === 4 && w.every(Number.isFinite) && w[0] < w[1] && w[2] < w[3]) page.window = w;
  syncDataChoice();
  choice.addEventListener('change', () => {
    if (choice.value) $('data').value = choice.value;
    describeSoon();
  });
  form.addEventListener('input', (e) => {
    if (e.target.id === 'data') syncDataChoice();
    if (e.target.id !== 'upload') describeSoon();
  });
  form.addEventListener('submit', start);
  $('upload').addEventListener('change', upload);
  await describe();
  return hash.get('run');
}

function setupScenes(scenes) {
  const select = $('scene');
  $('scenes-box').hidden = scenes.length === 0;
  const budget = (s) => ($('scene-full').checked ? s.full : s.quick);
  const fill = () => select.replaceChildren(new Option('choose one to start it…', ''),
    ...scenes.map((s) => new Option(`${s.title} · ${budget(s)}${s.runs > 1 ? ` · ${s.runs} runs` : ''}`, s.name)));
  fill();
  $('scene-full').addEventListener('change', fill);
  select.addEventListener('change', async () => {
    const scene = scenes.find((s) => s.name === select.value);
    if (!scene) return;
    select.disabled = true;
    $('scene-error').textContent = '';
    $('scene-info').textContent = scene.claim;
    try {
      const started = await post(`/api/scenes/${encodeURIComponent(scene.name)}`, { full: $('scene-full').checked });
      for (const summary of started) addRun(summary);
      if (started.length) focus(started[0].id);
    } catch (err) {
      $('scene-error').textContent = err.message;
    } finally {
      select.disabled = false;
      select.value = '';
    }
  });
}

async function start(e) {
  e.preventDefault();
  $('start').disabled = true;
  $('form-error').textContent = '';
  try {
    const summary = await post('/api/runs', formValues());
    addRun(summary);
    focus(summary.id);
  } catch (err) {
    $('form-error').textContent = err.message;
  } finally {
    $('start').disabled = false;
  }
}

async function upload() {
  const file = $('upload').files[0];
  if (!file) return;
  $('form-error').textContent = '';
  try {
    const r = await api('/api/upload', { method: 'POST', body: file });
    $('data-choice').add(new Option(`uploaded: ${file.name} (${r.width}x${r.height})`, r.data), $('data-choice').options.length - 1);
    $('data').value = r.data;
    syncDataChoice();
    describeSoon();
  } catch (err) {
    $('form-error').textContent = err.message;
  }
}

// ---- Runs ------------------------------------------------------------------------------------------------------

class Run {
  constructor(summary, color) {
    this.id = summary.id;
    this.summary = summary;
    this.info = summary.info;
    this.color = color;
    this.history = [];
    this.status = summary.status;
    this.onPlot = true;
    this.frame = null;
    this.card = this.makeCard();
    this.connect();
  }

  get running() { return ['queued', 'starting', 'running'].includes(this.status); }

  makeCard() {
    const card = document.createElement('div');
    card.className = 'card';
    card.dataset.run = this.id;
    const r = this.summary.request || {};
    const thumb = ['curve', 'surface'].includes(this.info.kind) ? document.createElement('canvas') : document.createElement('img');
    if (thumb.tagName === 'CANVAS') { thumb.width = 240; thumb.height = 150; }
    thumb.className = 'thumb';
    card.innerHTML = `<div class="name"><span class="swatch"></span><span>${this.id}</span><span class="status"></span></div>`;
    card.querySelector('.swatch').style.background = this.color;
    card.append(thumb);
    const meta = document.createElement('div');
    meta.className = 'meta';
    // The parts as the engine describes them, so that runs from the page and from `train --serve` read alike.
    const parts = ((this.summary.description || {}).parts || []).map((p) => p.description);
    meta.textContent = [this.info.name, ...parts].filter(Boolean).join(' · ');
    meta.title = JSON.stringify(r);
    const loss = document.createElement('div');
    loss.className = 'meta loss';
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox'; box.checked = true;
    box.addEventListener('change', () => { this.onPlot = box.checked; plotLosses(); });
    label.append(box, ' on the loss plot');
    label.addEventListener('click', (e) => e.stopPropagation());
    card.append(meta, loss, label);
    card.addEventListener('click', () => {
      focus(this.id);
      $('focus').scrollIntoView({ block: 'nearest' });
    });
    $('runs').append(card);
    return card;
  }

  connect() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${proto}://${location.host}/api/runs/${encodeURIComponent(this.id)}/live`);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (m) => (typeof m.data === 'string' ? this.message(JSON.parse(m.data)) : this.binary(m.data));
    ws.onopen = () => { if (page.focus === this.id && page.neurons) this.askNeurons(true); };
    ws.onclose = () => {
      if (this.running && this.ws === ws) setTimeout(() => this.connect(), 2000);
    };
    this.ws = ws;
  }

  /// Asks the server for the neurons' view of this run (rendered only while someone asks), or stops asking.
  askNeurons(on) {
    if (this.info.neurons && this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ neurons: on }));
  }

  /// The server replaced this run by its continuation: listen to the new one, whose loss curve starts with ours.
  restart(summary) {
    const old = this.ws;
    this.summary = summary;
    this.status = summary.status;
    this.history = [];
    this.connect();
    old.close();
  }

  message(m) {
    if (m.type === 'hello') {
      this.summary = m.run;
      return;
    }
    if (m.type !== 'progress') return;
    this.history.push(...m.points);
    Object.assign(this.summary, { step: m.step, steps: m.steps, paused: m.paused, message: m.message });
    this.status = m.status;
    const last = this.history[this.history.length - 1];
    this.card.querySelector('.status').textContent = m.paused ? 'paused' : m.status;
    this.card.querySelector('.loss').textContent = `step ${m.step}${last ? ` · loss ${fmt(last.loss)}` : ''}`;
    if (page.focus === this.id) showStats();
    plotLossesSoon();
  }

  async binary(buffer) {
    const view = new DataView(buffer);
    const length = view.getUint32(0, true);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
    const offset = 4 + length;
    if (header.type === 'neurons') {
      if (this.neuronsUrl) URL.revokeObjectURL(this.neuronsUrl);
      this.neuronsUrl = URL.createObjectURL(new Blob([new Uint8Array(buffer, offset)], { type: 'image/png' }));
      this.neuronsStep = header.step;
      if (page.focus === this.id) showNeurons(this);
      return;
    }
    if (header.type === 'png') {
      const blob = new Blob([new Uint8Array(buffer, offset)], { type: 'image/png' });
      const bitmap = await createImageBitmap(blob);
      const img = this.card.querySelector('img.thumb');
      if (img) {
        if (img.src) URL.revokeObjectURL(img.src);
        img.src = URL.createObjectURL(blob);
      }
      this.frame = { ...header, bitmap };
    } else if (header.type === 'curve') {
      this.frame = { ...header, values: Array.from(new Float32Array(buffer, offset, header.n)) };
      drawCurve(this.card.querySelector('canvas.thumb'), { ...this.frame, truth: this.info.truth, points: this.info.points, legend: false });
    } else if (header.type === 'mesh') {
      this.frame = { ...header, xyz: new Float32Array(buffer.slice(offset)) };
      drawMeshThumb(this.card.querySelector('canvas.thumb'), this.frame);
    }
    if (page.focus === this.id) showFrame(this);
  }
}

function drawMeshThumb(canvas, { xyz }) {
  // A quick orthographic scatter of the learned points: the card only needs to show the shape.
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  let lo = [Infinity, Infinity], hi = [-Infinity, -Infinity];
  const proj = (k) => [xyz[k] * 0.8 - xyz[k + 1] * 0.6, xyz[k + 2] + 0.3 * (xyz[k] * 0.6 + xyz[k + 1] * 0.8)];
  for (let k = 0; k < xyz.length; k += 3) { const p = proj(k); lo = lo.map((l, i) => Math.min(l, p[i])); hi = hi.map((h, i) => Math.max(h, p[i])); }
  const s = Math.min((canvas.width - 10) / (hi[0] - lo[0] || 1), (canvas.height - 10) / (hi[1] - lo[1] || 1));
  ctx.fillStyle = '#ffb347';
  for (let k = 0; k < xyz.length; k += 3) {
    const p = proj(k);
    ctx.fillRect(5 + (p[0] - lo[0]) * s, canvas.height - 5 - (p[1] - lo[1]) * s, 1.5, 1.5);
  }
}

function addRun(summary) {
  if (runs.has(summary.id)) return runs.get(summary.id);
  const run = new Run(summary, PALETTE[runs.size % PALETTE.length]);
  runs.set(summary.id, run);
  plotLossesSoon();
  return run;
}

let plotPending = false;
function plotLossesSoon() {
  if (plotPending) return;
  plotPending = true;
  requestAnimationFrame(() => { plotPending = false; plotLosses(); });
}

function plotLosses() {
  const series = [...runs.values()].filter((r) => r.onPlot).map((r) => ({ label: r.id, color: r.color, points: r.history }));
  drawLosses($('loss-plot'), series, $('loss-x').value);
}

// ---- The focused run -------------------------------------------------------------------------------------------

const focused = () => runs.get(page.focus);
const kindOf = (run) => (run ? run.info.kind : null);
const zoomable = (run) => ['field2d', 'image'].includes(kindOf(run));
const domainWindow = (run) => run.info.window_domain ||
  [run.info.domain[0][0], run.info.domain[0][1], run.info.domain[1][0], run.info.domain[1][1]];

function focus(id) {
  const run = runs.get(id);
  if (!run) return;
  if (page.focus !== id) {
    if (page.neurons) { focused()?.askNeurons(false); run.askNeurons(true); }
    page.window = null;
    page.learned = null; page.truth = null;
  }
  page.focus = id;
  for (const r of runs.values()) r.card.classList.toggle('focused', r.id === id);
  const kind = run.info.kind;
  const twoD = ['field2d', 'image', 'classification'].includes(kind);
  $('view2d').hidden = !twoD;
  $('curve').hidden = kind !== 'curve';
  $('surface').hidden = kind !== 'surface';
  $('hint').textContent = ['field2d', 'image'].includes(kind) ? 'Scroll to zoom, drag to pan: the server renders the learned function and the truth for the window.'
    : kind === 'surface' ? 'Drag to orbit, scroll to zoom.' : kind === 'table' ? 'Tables have no picture: watch the loss curve.' : '';
  $('mode-label').hidden = !['field2d', 'image'].includes(kind);
  $('reset-view').hidden = !['field2d', 'image', 'surface'].includes(kind);
  $('run-title').textContent = `${run.id} · ${run.info.name}`;
  $('video').href = `/api/runs/${encodeURIComponent(id)}/video`;
  if (twoD) sizeCanvases(run);
  if (kind === 'surface') {
    if (!surface) surface = new SurfaceView($('surface'));
    surface.meshCount = 0; surface.pointCount = 0;
    surface.setPoints(run.info.points);
  }
  $('neurons-label').hidden = !run.info.neurons;
  showZooms(run);
  showNeurons(run);
  applyMode();
  fetchTruth();
  if (zoomable(run) && page.window) fetchLearned();
  showStats();
  if (run.frame) showFrame(run);
  writeHash();
}

/// The challenge's public windows, for a run of its target: picking one zooms the view to it.
function showZooms(run) {
  const zooms = run.info.zooms || [];
  $('zooms-label').hidden = zooms.length === 0;
  $('zooms').replaceChildren(new Option('the whole window', ''),
    ...zooms.map((z, i) => new Option(`${z.name} (width ${z.width})`, String(i))));
}

function zoomTo(index) {
  const run = focused();
  const z = run?.info.zooms?.[index];
  if (!z) { page.window = null; windowChanged(); return; }
  const canvas = $('learned');
  const height = z.width * canvas.height / canvas.width;
  page.window = [z.cx - z.width / 2, z.cx + z.width / 2, z.cy - height / 2, z.cy + height / 2];
  windowChanged();
}

function showNeurons(run) {
  const img = $('neurons');
  $('neurons-figure').hidden = !(page.neurons && run.info.neurons);
  if ($('neurons-figure').hidden || !run.neuronsUrl) return;
  img.src = run.neuronsUrl;
  img.dataset.step = run.neuronsStep;
  document.body.dataset.neuronFrames = String(Number(document.body.dataset.neuronFrames || 0) + 1);
}

function sizeCanvases(run) {
  const [w, h] = run.info.live_size || [320, 320];
  const kind = run.info.kind;
  // Images are shown at a whole multiple of their size so that their pixels stay square; fields at 480 wide.
  const scale = kind === 'image' ? Math.max(1, Math.floor(480 / w)) : kind === 'field2d' ? 480 / w : 1;
  for (const c of [$('learned'), $('truth')]) {
    c.width = Math.round(w * scale);
    c.height = Math.round(h * scale);
  }
  $('split').style.width = `${$('learned').width}px`;
}

function applyMode() {
  const run = focused();
  const slider = page.mode === 'slider' && ['field2d', 'image'].includes(kindOf(run));
  const hasTruth = ['field2d', 'image'].includes(kindOf(run));
  $('truth-figure').hidden = slider || !hasTruth;
  $('split').hidden = !slider;
  $('learned').nextElementSibling.textContent = slider ? 'learned ◂ ▸ truth' : 'learned';
}

/// How many more steps "Continue" trains: the form's step budget, or 1000.
function moreSteps() {
  const n = Number(form.elements.steps.value);
  return Number.isInteger(n) && n > 0 ? n : 1000;
}

function showStats() {
  const run = focused();
  if (!run) return;
  const s = run.summary, last = run.history[run.history.length - 1], d = s.description || {};
  const steps = s.steps ? `/${s.steps}` : '';
  const status = s.paused ? 'paused' : run.status;
  $('stats').innerHTML = `step <b>${s.step ?? 0}${steps}</b> · loss <b>${fmt(last?.loss)}</b> · ` +
    `<b>${last ? count(Math.round(last.samples_per_s)) : '–'}</b> samples/s · lr <b>${fmt(last?.lr, 2)}</b> · ` +
    `<b>${status}</b> · ${count(d.params || 0)} parameters · ${count(d.encoded_features || 0)} features`;
  $('stats').dataset.step = s.step ?? 0;
  $('stats').dataset.status = status;
  $('message').textContent = s.message || '';
  const live = run.running;
  $('pause').disabled = !live;
  $('pause').textContent = s.paused ? 'Resume' : 'Pause';
  $('stop').disabled = !live;
  $('checkpoint').disabled = !live;
  $('continue').hidden = live || !run.summary.dir;
  $('continue').textContent = `Continue +${moreSteps()} steps`;
  $('video').classList.toggle('disabled', !(s.step > 0));
}

function showFrame(run) {
  const kind = run.info.kind;
  if (kind === 'curve') {
    drawCurve($('curve'), { ...run.frame, truth: run.info.truth, points: run.info.points });
  } else if (kind === 'surface') {
    if (surface && run.frame) surface.setMesh(run.frame.nu, run.frame.nv, run.frame.xyz);
  } else if (run.frame && run.frame.bitmap) {
    if (zoomable(run) && page.window) {
      // Zoomed in: the live frame shows the whole domain, so ask the server for the window now and then.
      if (run.running && !page.fetching && performance.now() - page.lastFetch > 700) fetchLearned();
    } else {
      const c = $('learned'), b = run.frame.bitmap;
      if (kind === 'classification' && (c.width !== b.width || c.height !== b.height)) {
        // Classification panels come at their own size (digits, confusion matrix): show them as they are.
        c.width = b.width;
        c.height = b.height;
      }
      page.learned = b;
      page.learnedWindow = null;
      paint();
    }
  }
  document.body.dataset.frames = String(Number(document.body.dataset.frames || 0) + 1);
}

/// Draws `bitmap`, which covers `from` (a window, or null for the current one), into the current window.
function drawInto(ctx, bitmap, from, clip) {
  const c = ctx.canvas;
  ctx.save();
  if (clip) { ctx.beginPath(); ctx.rect(clip[0], 0, clip[1] - clip[0], c.height); ctx.clip(); }
  const kind = kindOf(focused());
  ctx.imageSmoothingEnabled = kind !== 'image';
  const to = page.window;
  if (from && to) {
    // Place the old picture where its window falls in the new one: instant feedback while the server renders.
    const sx = c.width / (to[1] - to[0]), sy = c.height / (to[3] - to[2]);
    ctx.drawImage(bitmap, (from[0] - to[0]) * sx, (to[3] - from[3]) * sy, (from[1] - from[0]) * sx, (from[3] - from[2]) * sy);
  } else {
    ctx.drawImage(bitmap, 0, 0, c.width, c.height);
  }
  ctx.restore();
}

function paint() {
  const learned = $('learned').getContext('2d');
  const run = focused();
  const domain = run && zoomable(run) ? domainWindow(run) : null;
  const fromOf = (w) => (domain ? w || domain : null);
  learned.fillStyle = '#000';
  learned.fillRect(0, 0, learned.canvas.width, learned.canvas.height);
  if (page.mode === 'slider' && ['field2d', 'image'].includes(kindOf(run))) {
    const x = Math.round(Number($('split').value) * learned.canvas.width);
    if (page.learned) drawInto(learned, page.learned, fromOf(page.learnedWindow), [0, x]);
    if (page.truth) drawInto(learned, page.truth, fromOf(page.truthWindow), [x, learned.canvas.width]);
    learned.fillStyle = '#fff';
    learned.fillRect(x - 1, 0, 2, learned.canvas.height);
  } else {
    if (page.learned) drawInto(learned, page.learned, fromOf(page.learnedWindow));
    const truth = $('truth').getContext('2d');
    truth.fillStyle = '#000';
    truth.fillRect(0, 0, truth.canvas.width, truth.canvas.height);
    if (page.truth) drawInto(truth, page.truth, fromOf(page.truthWindow));
  }
}

function renderUrl(run, what) {
  const c = $('learned');
  const p = new URLSearchParams({ what, size: `${c.width}x${c.height}` });
  if (page.window) p.set('window', page.window.join(','));
  return `/api/runs/${encodeURIComponent(run.id)}/render?${p}`;
}

async function fetchPicture(what) {
  const run = focused();
  if (!run || !['field2d', 'image'].includes(run.info.kind)) return;
  const token = page.fetchToken;
  const window = page.window ? [...page.window] : null;
  try {
    const blob = await api(renderUrl(run, what));
    const bitmap = await createImageBitmap(blob);
    if (token !== page.fetchToken || page.focus !== run.id) return;
    if (what === 'truth') { page.truth = bitmap; page.truthWindow = window; } else { page.learned = bitmap; page.learnedWindow = window; }
    paint();
    document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
  } catch (e) {
    $('message').textContent = e.message;
  }
}

function fetchTruth() {
  return fetchPicture('truth');
}

async function fetchLearned() {
  page.fetching = true;
  page.lastFetch = performance.now();
  try {
    await fetchPicture('learned');
  } finally {
    page.fetching = false;
  }
}

let zoomTimer = 0;
function windowChanged() {
  page.fetchToken += 1;
  paint();
  writeHash();
  clearTimeout(zoomTimer);
  zoomTimer = setTimeout(() => { fetchLearned(); fetchTruth(); }, 120);
}

function setupZoom() {
  for (const canvas of [$('learned'), $('truth')]) {
    canvas.addEventListener('wheel', (e) => {
      const run = focused();
      if (!zoomable(run)) return;
      e.preventDefault();
      const w = page.window || domainWindow(run);
      const r = canvas.getBoundingClientRect();
      const fx = (e.clientX - r.left) / r.width, fy = (e.clientY - r.top) / r.height;
      const cx = w[0] + fx * (w[1] - w[0]), cy = w[3] - fy * (w[3] - w[2]);
      const k = Math.exp(Math.max(-3, Math.min(3, e.deltaY * 0.0015)));
      page.window = [cx - fx * (w[1] - w[0]) * k, cx + (1 - fx) * (w[1] - w[0]) * k, cy - (1 - fy) * (w[3] - w[2]) * k, cy + fy * (w[3] - w[2]) * k];
      windowChanged();
    }, { passive: false });
    let drag = null;
    canvas.addEventListener('pointerdown', (e) => {
      if (!zoomable(focused())) return;
      drag = { x: e.clientX, y: e.clientY, window: page.window || domainWindow(focused()) };
      canvas.setPointerCapture(e.pointerId);
      canvas.classList.add('grabbing');
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const r = canvas.getBoundingClientRect(), w = drag.window;
      const dx = ((e.clientX - drag.x) / r.width) * (w[1] - w[0]), dy = ((e.clientY - drag.y) / r.height) * (w[3] - w[2]);
      page.window = [w[0] - dx, w[1] - dx, w[2] + dy, w[3] + dy];
      page.fetchToken += 1;
      paint();
    });
    const end = () => {
      if (!drag) return;
      drag = null;
      canvas.classList.remove('grabbing');
      windowChanged();
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }
  $('reset-view').addEventListener('click', () => {
    if (kindOf(focused()) === 'surface') { surface?.reset(); return; }
    page.window = null;
    windowChanged();
    const run = focused();
    if (run?.frame?.bitmap) { page.learned = run.frame.bitmap; page.learnedWindow = null; paint(); }
  });
  $('zooms').addEventListener('change', () => zoomTo($('zooms').value === '' ? -1 : Number($('zooms').value)));
  $('mode').addEventListener('change', () => { page.mode = $('mode').value; applyMode(); paint(); writeHash(); });
  $('split').addEventListener('input', paint);
  $('neurons-toggle').addEventListener('change', () => {
    page.neurons = $('neurons-toggle').checked;
    const run = focused();
    if (run) { run.askNeurons(page.neurons); showNeurons(run); }
    writeHash();
  });
}

function setupControls() {
  const act = async (action) => {
    const run = focused();
    if (!run) return;
    try {
      const r = await post(`/api/runs/${encodeURIComponent(run.id)}/${action}`);
      if (action === 'checkpoint') $('message').textContent = r.message || `checkpoint saved at step ${r.saved}`;
      else { run.summary.paused = r.paused; showStats(); }
    } catch (e) {
      $('message').textContent = e.message;
    }
  };
  $('video').addEventListener('click', async (e) => {
    // Fetched rather than followed, so that a run without frames says why instead of failing a download.
    e.preventDefault();
    const run = focused();
    if (!run) return;
    $('message').textContent = 'encoding the frames as MP4…';
    try {
      const blob = await api(`/api/runs/${encodeURIComponent(run.id)}/video`);
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `approxlab-${run.id}.mp4`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      $('message').textContent = `video of ${run.id} downloaded`;
    } catch (err) {
      $('message').textContent = err.message;
    }
  });
  $('large').addEventListener('change', () => { $('runs').classList.toggle('large', $('large').checked); });
  $('loss-x').addEventListener('change', plotLosses);
  $('continue').addEventListener('click', async () => {
    const run = focused();
    if (!run) return;
    try {
      const summary = await post(`/api/runs/${encodeURIComponent(run.id)}/continue`, { steps: (run.summary.step || 0) + moreSteps() });
      run.restart(summary);
      showStats();
    } catch (e) {
      $('message').textContent = e.message;
    }
  });
  $('pause').addEventListener('click', () => act(focused()?.summary.paused ? 'resume' : 'pause'));
  $('stop').addEventListener('click', () => act('stop'));
  $('checkpoint').addEventListener('click', () => act('checkpoint'));
}

async function main() {
  setupZoom();
  setupControls();
  plotLosses();
  try {
    const wanted = await setupForm();
    const list = await api('/api/runs');
    for (const s of list) addRun(s);
    $('connection').textContent = 'connected';
    $('connection').classList.add('ok');
    const target = wanted && runs.has(wanted) ? wanted : list.length ? list[list.length - 1].id : null;
    if (target) {
      const keep = page.window;
      focus(target);
      page.window = keep;
      if (keep && zoomable(focused())) windowChanged();
    }
  } catch (e) {
    $('connection').textContent = 'server unreachable';
    $('form-error').textContent = e.message;
  }
}

main();
