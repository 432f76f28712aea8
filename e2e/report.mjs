// End-to-end test of the scenes' results page: opens REPORT/index.html from disk in headless Chromium (no server,
// no network) and fails on any console error, any picture that does not load or any video that cannot play.
// Keeps a screenshot in e2e/artifacts/report.png.
//
//   node e2e/report.mjs REPORT_DIR      (needs /usr/bin/chromium and `npm ci` in e2e/)

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = join(root, 'e2e/artifacts');
mkdirSync(artifacts, { recursive: true });
const reportDir = process.argv[2];
if (!reportDir) {
  console.error('usage: node e2e/report.mjs REPORT_DIR');
  process.exit(2);
}
const url = pathToFileURL(join(resolve(reportDir), 'index.html')).href;

const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`failed to load ${r.url()}: ${r.failure()?.errorText}`));
  await page.goto(url, { waitUntil: 'load' });

  const images = await page.$$eval('img', (imgs) => imgs.map((i) => ({ src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0 })));
  for (const i of images) if (!i.ok) problems.push(`picture did not load: ${i.src}`);

  // Every video must reach HAVE_CURRENT_DATA (a decoded frame) and have a duration.
  const videos = await page.$$eval('video', (vs) => Promise.all(vs.map((v) => new Promise((done) => {
    const report = () => done({ src: v.getAttribute('src'), ready: v.readyState, duration: v.duration, error: v.error && v.error.message });
    if (v.readyState >= 2) return report();
    v.addEventListener('loadeddata', report, { once: true });
    v.addEventListener('error', report, { once: true });
    v.load();
    setTimeout(report, 15000);
  }))));
  for (const v of videos) {
    if (v.ready < 2 || !(v.duration > 0)) problems.push(`video cannot play: ${v.src} (readyState ${v.ready}, duration ${v.duration}, ${v.error || 'no error'})`);
  }

  const sections = await page.$$eval('section', (s) => s.length);
  const measured = await page.$$eval('section table', (t) => t.length);
  if (sections < 10) problems.push(`only ${sections} scene sections`);
  if (measured < 1) problems.push('no measured table in any scene');
  if (images.length < 2) problems.push(`only ${images.length} pictures`);
  if (videos.length < 1) problems.push('no video');
  await page.screenshot({ path: join(artifacts, 'report.png'), fullPage: false });
  console.log(`report: ${sections} scenes, ${measured} tables, ${images.length} pictures and ${videos.length} videos loaded`);
} finally {
  await browser.close();
}
if (problems.length) {
  for (const p of problems) console.error(`report: ${p}`);
  process.exit(1);
}
