// End-to-end test of the live view in headless Chromium: start a run from the page, see the learned function
// change, zoom, pause, stop, orbit a surface; any console error fails. Keeps a screenshot in e2e/artifacts/.
//
//   node e2e/live.mjs            (needs target/release/approxlab, /usr/bin/chromium and `npm ci` in e2e/)

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = process.env.APPROXLAB_BIN || join(root, 'target/release/approxlab');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = join(root, 'e2e/artifacts');
mkdirSync(artifacts, { recursive: true });
const out = mkdtempSync(join(tmpdir(), 'approxlab-e2e-'));

function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['serve', '--port', '0', '--out', out], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => reject(new Error('approxlab serve printed no address within 20 s')), 20000);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`approxlab serve exited with ${code}`)));
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      const m = text.match(/http:\/\/[\d.]+:\d+/);
      if (m) { clearTimeout(timer); resolve({ child, url: m[0] }); }
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const { child, url } = await startServer();
const browser = await chromium.launch({
  executablePath: browserPath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--enable-unsafe-swiftshader',
    '--disable-background-networking', '--no-first-run'],
});
const page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
const errors = [];
page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));

const canvasData = (id) => page.evaluate((id) => document.getElementById(id).toDataURL(), id);
const bodyCount = (key) => page.evaluate((key) => Number(document.body.dataset[key] || 0), key);
const stat = (key) => page.evaluate((key) => document.getElementById('stats').dataset[key], key);
/// Starts a run from the form and waits until the page shows it (as `id`) with two frames drawn.
async function startRun(id) {
  await page.click('#start');
  await page.waitForFunction((id) => document.getElementById('run-title').textContent.startsWith(id), id, { timeout: 20000 });
  const frames = await bodyCount('frames');
  await page.waitForFunction((n) => Number(document.body.dataset.frames || 0) >= n + 2, frames, { timeout: 20000 });
}

try {
  await check('the page loads and describes the model before start', async () => {
    await page.goto(`${url}/#data=mandelbrot:periodic&encoding=fourier:8&network=mlp:3x32&batch=1024&steps=200000&lr=0.003`);
    await page.waitForFunction(() => /parameters/.test(document.getElementById('model-info').textContent), null, { timeout: 15000 });
    const info = await page.textContent('#model-info');
    assert(/34 encoded features/.test(info), `model info '${info}' should count 2 x (2*8+1) = 34 features`);
  });

  await check('a run started from the page shows its learned function changing', async () => {
    await page.click('#start');
    await page.waitForFunction(() => Number(document.body.dataset.frames || 0) >= 1, null, { timeout: 20000 });
    const first = await canvasData('learned');
    const frames = await bodyCount('frames');
    await page.waitForFunction((n) => Number(document.body.dataset.frames || 0) >= n + 3, frames, { timeout: 20000 });
    await sleep(1000);
    const later = await canvasData('learned');
    assert(first !== later, 'the learned picture did not change between two moments');
    assert(Number(await stat('step')) > 0, 'the step counter did not move');
    const orange = await page.evaluate(() => {
      const c = document.getElementById('loss-plot');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] > 140 && d[i + 1] < 210 && d[i + 2] < 120) n++;
      return n;
    });
    assert(orange > 50, `the loss plot shows no curve of run-1 (${orange} pixels of its colour)`);
  });

  await check('the neurons view shows every layer, and its tiles change while training', async () => {
    await page.check('#neurons-toggle');
    await page.waitForFunction(() => Number(document.body.dataset.neuronFrames || 0) >= 1, null, { timeout: 20000 });
    const picture = () => page.evaluate(async () => {
      const img = document.getElementById('neurons');
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      c.getContext('2d').drawImage(img, 0, 0);
      return { step: Number(img.dataset.step), width: c.width, height: c.height, data: c.toDataURL() };
    });
    const first = await picture();
    // fourier:8 features and three layers of 32: four blocks side by side.
    assert(first.width > 600 && first.height > 100, `neurons picture ${first.width}x${first.height}`);
    // Tens of thousands of steps into run-1 on a loaded machine, two frames apart can round to the same 8-bit tiles:
    // wait a few more frames before calling the tiles frozen.
    let later;
    for (let tries = 0; tries < 8; tries++) {
      const n = await bodyCount('neuronFrames');
      await page.waitForFunction((n) => Number(document.body.dataset.neuronFrames || 0) >= n + 2, n, { timeout: 20000 });
      later = await picture();
      if (later.data !== first.data) break;
    }
    assert(later.step > first.step, `neurons of step ${later.step} after ${first.step}`);
    assert(later.data !== first.data, 'the neurons did not change while training');
    await page.screenshot({ path: join(artifacts, 'live-neurons.png') });
    await page.uncheck('#neurons-toggle');
    assert(await page.locator('#neurons-figure').isHidden(), 'the neurons view stays after unticking it');
  });

  await check('zooming asks the server for the window and redraws', async () => {
    const before = await canvasData('learned');
    const renders = await bodyCount('renders');
    const box = await page.locator('#learned').boundingBox();
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.45);
    for (let i = 0; i < 4; i++) { await page.mouse.wheel(0, -300); await sleep(60); }
    await page.waitForFunction((n) => Number(document.body.dataset.renders || 0) >= n + 2, renders, { timeout: 20000 });
    const hash = await page.evaluate(() => location.hash);
    const w = new URLSearchParams(hash.slice(1)).get('window');
    assert(w, `the window is not in the URL: ${hash}`);
    const [x0, x1] = w.split(',').map(Number);
    assert(x1 - x0 < 3.8 / 2, `zooming in should shrink the window, got ${w}`);
    assert((await canvasData('learned')) !== before, 'the zoomed picture is the same as before');
    // Drag to pan: the window moves.
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction((w) => new URLSearchParams(location.hash.slice(1)).get('window') !== w, w, { timeout: 5000 });
    await page.selectOption('#mode', 'slider');
    await sleep(300);
    await page.screenshot({ path: join(artifacts, 'live-zoom.png') });
    await page.selectOption('#mode', 'side');
    // The challenge's target: its public zoom windows are one pick away.
    assert(await page.locator('#zooms-label').isVisible(), 'a run of the challenge target offers no zoom windows');
    await page.selectOption('#zooms', '0');
    await page.waitForFunction(() => {
      const w = new URLSearchParams(location.hash.slice(1)).get('window');
      const [x0, x1] = (w || '').split(',').map(Number);
      return Math.abs(x1 - x0 - 0.1) < 1e-6 && Math.abs((x0 + x1) / 2 + 0.7453) < 1e-6;
    }, null, { timeout: 5000 });
    await page.selectOption('#zooms', '');
  });

  await check('pause holds the step; resume, checkpoint, stop and continue work', async () => {
    await page.click('#pause');
    await page.waitForFunction(() => document.getElementById('stats').dataset.status === 'paused', null, { timeout: 5000 });
    await sleep(400);
    const a = Number(await stat('step'));
    await sleep(800);
    const b = Number(await stat('step'));
    assert(a === b, `the step moved while paused: ${a} -> ${b}`);
    await page.click('#pause');
    await page.waitForFunction((a) => Number(document.getElementById('stats').dataset.step) > a, a, { timeout: 10000 });
    await page.click('#checkpoint');
    await page.waitForFunction(() => /checkpoint saved/.test(document.getElementById('message').textContent), null, { timeout: 10000 });
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('stats').dataset.status === 'stopped', null, { timeout: 10000 });
    // An ended run continues from its checkpoint.
    const stoppedAt = Number(await stat('step'));
    await page.click('#continue');
    await page.waitForFunction((a) => Number(document.getElementById('stats').dataset.step) > a + 10, stoppedAt, { timeout: 20000 });
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('stats').dataset.status === 'stopped', null, { timeout: 10000 });
  });

  await check('a surface trains and its WebGL view orbits with the mouse', async () => {
    await page.selectOption('#data-choice', 'surface:sphere');
    await page.fill('input[name=encoding]', 'fourier:4');
    await page.fill('input[name=network]', 'mlp:3x32');
    await page.fill('input[name=steps]', '200000');
    await startRun('run-2');
    const before = await canvasData('surface');
    const box = await page.locator('#surface').boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 200, box.y + box.height / 2 + 40, { steps: 8 });
    await page.mouse.up();
    const after = await canvasData('surface');
    assert(before !== after, 'orbiting did not change the WebGL picture');
    const blank = await page.evaluate(() => {
      const c = document.createElement('canvas');
      const src = document.getElementById('surface');
      c.width = src.width; c.height = src.height;
      const ctx = c.getContext('2d');
      ctx.drawImage(src, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let lit = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 60) lit++;
      return lit;
    });
    assert(blank > 500, `the surface view has only ${blank} bright pixels`);
  });

  await check('an uploaded image trains beside its truth', async () => {
    await page.click('#stop');
    // Any PNG will do: the server's own picture of the Mandelbrot set.
    const png = await page.evaluate(async () => {
      const r = await fetch('/api/runs/run-1/render?what=truth&size=48x32');
      return Array.from(new Uint8Array(await r.arrayBuffer()));
    });
    await page.setInputFiles('#upload', { name: 'set.png', mimeType: 'image/png', buffer: Buffer.from(png) });
    await page.waitForFunction(() => document.getElementById('data').value.startsWith('upload:'), null, { timeout: 10000 });
    await page.fill('input[name=encoding]', 'fourier:8');
    await page.fill('input[name=steps]', '200000');
    await startRun('run-3');
    const [learned, truth] = [await canvasData('learned'), await canvasData('truth')];
    assert(learned !== truth, 'the learned picture should not be the truth yet');
    assert(await page.isVisible('#truth'), 'the truth is shown beside the learned picture');
    // Images zoom too: (column, row) windows rendered by the server.
    const renders = await bodyCount('renders');
    const box = await page.locator('#learned').boundingBox();
    await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.4);
    for (let i = 0; i < 3; i++) { await page.mouse.wheel(0, -400); await sleep(60); }
    await page.waitForFunction((n) => Number(document.body.dataset.renders || 0) >= n + 2, renders, { timeout: 20000 });
    assert((await canvasData('learned')) !== learned, 'the zoomed image is the same as before');
    await page.screenshot({ path: join(artifacts, 'live-image-zoom.png') });
  });

  await check('every run is listed with its loss curve', async () => {
    assert((await page.locator('.card').count()) === 3, 'expected three run cards');
    const bySteps = await canvasData('loss-plot');
    await page.selectOption('#loss-x', 'wall_s');
    assert((await canvasData('loss-plot')) !== bySteps, 'the loss plot did not switch to seconds');
    await page.selectOption('#loss-x', 'step');
    await page.screenshot({ path: join(artifacts, 'live.png') });
    await page.click('#stop');
  });

  await check('a reload restores the view from the URL', async () => {
    const hash = await page.evaluate(() => location.hash);
    await page.reload();
    await page.waitForFunction(() => document.getElementById('run-title').textContent.startsWith('run-3'), null, { timeout: 15000 });
    const again = await page.evaluate(() => location.hash);
    assert(new URLSearchParams(again.slice(1)).get('run') === 'run-3', `run lost on reload: ${again} (was ${hash})`);
    const zoom = new URLSearchParams(hash.slice(1)).get('window');
    assert(zoom && new URLSearchParams(again.slice(1)).get('window') === zoom, `zoom window lost on reload: ${again}`);
    assert((await page.inputValue('#data')).startsWith('upload:'), 'the data set was not restored');
    assert(await page.inputValue('input[name=encoding]') === 'fourier:8', 'the encoding was not restored');
  });

  await check('a scene preset starts its comparison in one click', async () => {
    const cards = await page.locator('.card').count();
    await page.selectOption('#scene', 'tanh-vs-sigmoid');
    await page.waitForFunction((n) => document.querySelectorAll('.card').length === n + 2, cards, { timeout: 20000 });
    await page.waitForFunction(() => document.getElementById('run-title').textContent.includes('image'), null, { timeout: 10000 });
    const claim = await page.textContent('#scene-info');
    assert(/sigmoid/i.test(claim), `the scene's claim is not shown: ${claim}`);
    assert(await page.inputValue('#scene') === '', 'the picker should be ready for the next scene');
    const frames = await bodyCount('frames');
    await page.waitForFunction((n) => Number(document.body.dataset.frames || 0) >= n + 1, frames, { timeout: 20000 });
    // Stopped from here, not the page: a quick scene's run may have finished already (409), which the page would
    // log as a failed request.
    for (const k of [cards + 1, cards + 2]) await fetch(`${url}/api/runs/run-${k}/stop`, { method: 'POST' });
  });

  await check('no console errors', async () => {
    assert(errors.length === 0, errors.join(' | '));
  });
} finally {
  await browser.close();
  child.kill('SIGINT');
  await sleep(500);
  rmSync(out, { recursive: true, force: true });
}

const failed = results.filter((r) => !r[1]).length;
console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
console.log(`screenshot: ${join(artifacts, 'live.png')}`);
process.exit(failed ? 1 : 0);
