// Load test of the live view: how much do 50 simultaneous viewers slow training down?
//
// One run trains on the Mandelbrot set while phases of 0, 1 and 50 WebSocket viewers alternate; each phase's
// training speed is read from the run's own step counter. Prints steps/s per phase and the ratios.
//
//   bench/viewers [--phase-seconds 4] [--rounds 6] [--viewers 50] [--neurons 1]
//
// With --neurons 1 every viewer also asks for the neurons' view, as the page does when its box is ticked.

import WebSocket from 'ws';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, value) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : value;
};
const phaseSeconds = arg('phase-seconds', 4);
const rounds = arg('rounds', 6);
const many = arg('viewers', 50);
const neurons = arg('neurons', 0) > 0;
const bin = process.env.APPROXLAB_BIN || join(root, 'target/release/approxlab');
const out = mkdtempSync(join(tmpdir(), 'approxlab-viewers-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = spawn(bin, ['serve', '--port', '0', '--out', out], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  let text = '';
  server.stdout.on('data', (d) => {
    text += d;
    const m = text.match(/http:\/\/([\d.]+:\d+)/);
    if (m) resolve(m[1]);
  });
  server.on('exit', (c) => reject(new Error(`approxlab serve exited with ${c}`)));
});

async function api(path, body) {
  const r = await fetch(`http://${url}${path}`, body ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {});
  const v = await r.json();
  if (!r.ok) throw new Error(v.error);
  return v;
}

// No video frames: their cost does not depend on the viewers and would only add noise.
const request = { data: 'mandelbrot', encoding: 'fourier:16', network: 'mlp:4x128', batch: 4096, steps: 100000000, frame_seconds: 0 };
const run = await api('/api/runs', request);
console.log(`run ${run.id}: ${run.description.params} parameters, batch ${request.batch}; ${phaseSeconds} s phases` +
  (neurons ? '; viewers watch the neurons too' : ''));

function openViewers(n) {
  const viewers = [];
  for (let i = 0; i < n; i++) {
    const v = { frames: 0, bytes: 0, ws: new WebSocket(`ws://${url}/api/runs/${run.id}/live`) };
    v.ws.on('message', (data, binary) => { if (binary) { v.frames += 1; v.bytes += data.length; } });
    v.ws.on('error', () => {});
    if (neurons) v.ws.on('open', () => v.ws.send(JSON.stringify({ neurons: true })));
    viewers.push(v);
  }
  return viewers;
}

const step = async () => (await api(`/api/runs/${run.id}`)).step;
const renderSeconds = async () => (await api(`/api/runs/${run.id}`)).render_s;
const ticks = 100; // clock ticks per second of /proc's CPU times on Linux
/// CPU seconds of the server's web threads (tokio's workers and blocking pool), from /proc.
function webCpuSeconds() {
  let total = 0;
  for (const tid of readdirSync(`/proc/${server.pid}/task`)) {
    const stat = readFileSync(`/proc/${server.pid}/task/${tid}/stat`, 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (!name.startsWith('approxlab-')) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(fields[11]) + Number(fields[12])) / ticks;
  }
  return total;
}
const results = [];
await sleep(3000); // past data set build-up and the first steps
for (let r = 0; r < rounds; r++) {
  // The order turns each round so that a drift of the machine's speed does not favour one count.
  const order = [[0, 1, many], [many, 0, 1], [1, many, 0]][r % 3];
  for (const n of order) {
    const viewers = openViewers(n);
    await sleep(1000); // connections up, renders running
    const s0 = await step();
    const r0 = await renderSeconds();
    const w0 = webCpuSeconds();
    const t0 = performance.now();
    const f0 = viewers.reduce((a, v) => a + v.frames, 0);
    const b0 = viewers.reduce((a, v) => a + v.bytes, 0);
    const cpu0 = process.cpuUsage();
    await sleep(phaseSeconds * 1000);
    const s1 = await step();
    const r1 = await renderSeconds();
    const w1 = webCpuSeconds();
    const t1 = performance.now();
    const frames = viewers.reduce((a, v) => a + v.frames, 0) - f0;
    const bytes = viewers.reduce((a, v) => a + v.bytes, 0) - b0;
    const cpu = process.cpuUsage(cpu0);
    // The viewers run on this machine too: their own CPU time is taken from training, as a remote browser's is not.
    const clientCpu = (cpu.user + cpu.system) / 1000 / (t1 - t0);
    const sps = ((s1 - s0) * 1000) / (t1 - t0);
    // What watching costs training, accounted rather than timed: frames are rendered between steps (training
    // waits for them), and the web threads take their CPU time from the two training threads.
    const seconds = (t1 - t0) / 1000;
    const cost = (r1 - r0) / seconds + (w1 - w0) / (2 * seconds);
    results.push({ n, sps, cost, round: r });
    console.log(`round ${r + 1}  ${String(n).padStart(3)} viewers  ${sps.toFixed(2)} steps/s  cost ${(100 * cost).toFixed(1)} %` +
      (n ? `  ${(frames / n / ((t1 - t0) / 1000)).toFixed(1)} frames/s per viewer, ` +
        `${(bytes / frames / 1024).toFixed(0)} KiB/frame, viewers' own CPU ${(100 * clientCpu).toFixed(1)} % of a core` : ''));
    for (const v of viewers) v.ws.terminate();
    await sleep(500);
  }
}
const mean = (n) => { const xs = results.filter((x) => x.n === n).map((x) => x.sps); return xs.reduce((a, b) => a + b, 0) / xs.length; };
const [none, one, lots] = [mean(0), mean(1), mean(many)];
console.log(`mean steps/s: 0 viewers ${none.toFixed(2)}, 1 viewer ${one.toFixed(2)}, ${many} viewers ${lots.toFixed(2)}`);
console.log(`measured slowdown with ${many} viewers: ${(100 * (1 - lots / none)).toFixed(1)} % against none, ${(100 * (1 - lots / one)).toFixed(1)} % against one`);
// Each round has all three counts side by side in time: their ratios are less exposed to the machine's drift.
const ratios = [...new Set(results.map((x) => x.round))].map((r) => {
  const at = (n) => results.find((x) => x.round === r && x.n === n).sps;
  return at(many) / at(0);
}).sort((a, b) => a - b);
console.log(`median per-round ratio ${many} viewers / none: ${ratios[Math.floor(ratios.length / 2)].toFixed(3)}`);
const costOf = (n) => { const xs = results.filter((x) => x.n === n).map((x) => x.cost); return xs.reduce((a, b) => a + b, 0) / xs.length; };
console.log(`accounted cost of watching (render time + web threads' CPU): 0 viewers ${(100 * costOf(0)).toFixed(2)} %, ` +
  `1 viewer ${(100 * costOf(1)).toFixed(2)} %, ${many} viewers ${(100 * costOf(many)).toFixed(2)} %`);
await api(`/api/runs/${run.id}/stop`, {});
server.kill('SIGINT');
await sleep(1000);
rmSync(out, { recursive: true, force: true });
