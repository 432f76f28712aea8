// Canvas plots: a 1-D curve with its data points and truth, and loss curves of several runs on one log axis.

export const PALETTE = ['#ffb347', '#5ec8f2', '#b084f5', '#7bd88f', '#ff6b9a', '#f5e663', '#4fd1c5', '#ff8a5b'];

function niceTicks(lo, hi, count) {
  const span = hi - lo || 1;
  const step = Math.pow(10, Math.floor(Math.log10(span / count)));
  const mult = [1, 2, 5, 10].find((m) => span / (m * step) <= count) || 10;
  const s = mult * step;
  const ticks = [];
  for (let t = Math.ceil(lo / s) * s; t <= hi + 1e-9 * span; t += s) ticks.push(+t.toPrecision(12));
  return ticks;
}

function frame(ctx, w, h) {
  ctx.fillStyle = '#0c0e13';
  ctx.fillRect(0, 0, w, h);
  ctx.font = '12px system-ui, sans-serif';
}

/// Draws the learned curve (values at evenly spaced x), the truth (dashed) and the data points.
export function drawCurve(canvas, { x0, x1, values, truth, points, legend = true }) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height, pad = { l: 48, r: 12, t: 12, b: 28 };
  frame(ctx, w, h);
  const ys = [...(values || []), ...(truth || []), ...(points || []).map((p) => p[1])].filter(Number.isFinite);
  if (!ys.length) return;
  let lo = Math.min(...ys), hi = Math.max(...ys);
  const m = (hi - lo) * 0.08 || 0.5;
  lo -= m; hi += m;
  const px = (x) => pad.l + ((x - x0) / (x1 - x0)) * (w - pad.l - pad.r);
  const py = (y) => h - pad.b - ((y - lo) / (hi - lo)) * (h - pad.t - pad.b);
  ctx.strokeStyle = '#2a2f3b'; ctx.fillStyle = '#9aa1b2'; ctx.lineWidth = 1;
  for (const t of niceTicks(lo, hi, 6)) {
    ctx.beginPath(); ctx.moveTo(pad.l, py(t)); ctx.lineTo(w - pad.r, py(t)); ctx.stroke();
    ctx.fillText(String(t), 4, py(t) + 4);
  }
  for (const t of niceTicks(x0, x1, 8)) {
    ctx.beginPath(); ctx.moveTo(px(t), pad.t); ctx.lineTo(px(t), h - pad.b); ctx.stroke();
    ctx.fillText(String(t), px(t) - 8, h - 8);
  }
  const line = (vals, color, width, dash) => {
    ctx.strokeStyle = color; ctx.lineWidth = width; ctx.setLineDash(dash);
    ctx.beginPath();
    vals.forEach((v, i) => {
      const x = px(x0 + ((x1 - x0) * i) / Math.max(1, vals.length - 1));
      if (i) ctx.lineTo(x, py(v)); else ctx.moveTo(x, py(v));
    });
    ctx.stroke(); ctx.setLineDash([]);
  };
  if (truth) line(truth, '#9aa1b2', 1.5, [6, 5]);
  ctx.fillStyle = '#5ec8f2';
  for (const [x, y] of points || []) { ctx.beginPath(); ctx.arc(px(x), py(y), 2.2, 0, 2 * Math.PI); ctx.fill(); }
  if (values) line(values, '#ffb347', 2.5, []);
  if (!legend) return;
  // Legend, right-aligned, each entry measured so that none overlaps the next.
  let x = w - pad.r - 4;
  ctx.textAlign = 'right';
  for (const [text, color] of [['• data', '#5ec8f2'], ['- - truth', '#9aa1b2'], ['— learned', '#ffb347']]) {
    ctx.fillStyle = color;
    ctx.fillText(text, x, pad.t + 14);
    x -= ctx.measureText(text).width + 14;
  }
  ctx.textAlign = 'left';
}

/// Loss curves of several runs: `series` is [{label, color, points: [{step, wall_s, loss}]}], log-scaled loss,
/// against `x`: 'step' or 'wall_s' (seconds of training, for equal-time comparisons).
export function drawLosses(canvas, series, x = 'step') {
  const ctx = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height, pad = { l: 58, r: 14, t: 12, b: 28 };
  frame(ctx, w, h);
  const all = series.flatMap((s) => s.points).filter((p) => p.loss > 0 && Number.isFinite(p.loss));
  if (!all.length) {
    ctx.fillStyle = '#9aa1b2'; ctx.fillText('loss curves appear here as runs train', pad.l, h / 2);
    return;
  }
  const maxStep = Math.max(x === 'step' ? 1 : 1e-3, ...all.map((p) => p[x]));
  let lo = Math.log10(Math.min(...all.map((p) => p.loss))), hi = Math.log10(Math.max(...all.map((p) => p.loss)));
  if (hi - lo < 0.5) { lo -= 0.25; hi += 0.25; }
  const px = (s) => pad.l + (s / maxStep) * (w - pad.l - pad.r);
  const py = (l) => h - pad.b - ((Math.log10(l) - lo) / (hi - lo)) * (h - pad.t - pad.b);
  ctx.strokeStyle = '#2a2f3b'; ctx.fillStyle = '#9aa1b2'; ctx.lineWidth = 1;
  // Decades, and 2x and 5x between them when the curves span less than two decades.
  const mantissas = hi - lo < 2 ? [1, 2, 5] : [1];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of mantissas) {
      const v = m * 10 ** e, l = Math.log10(v);
      if (l < lo - 1e-9 || l > hi + 1e-9) continue;
      ctx.beginPath(); ctx.moveTo(pad.l, py(v)); ctx.lineTo(w - pad.r, py(v)); ctx.stroke();
      ctx.fillText(m === 1 ? `1e${e}` : `${m}e${e}`, 6, py(v) + 4);
    }
  }
  for (const t of niceTicks(0, maxStep, 8)) ctx.fillText(String(t), px(t) - 10, h - 8);
  ctx.fillText(x === 'step' ? 'step' : 'seconds', w - 56, h - 8);
  series.forEach((s, k) => {
    ctx.strokeStyle = s.color; ctx.lineWidth = 1.8; ctx.beginPath();
    let started = false;
    for (const p of s.points) {
      if (!(p.loss > 0) || !Number.isFinite(p.loss)) continue;
      if (started) ctx.lineTo(px(p[x]), py(p.loss)); else { ctx.moveTo(px(p[x]), py(p.loss)); started = true; }
    }
    ctx.stroke();
    ctx.fillStyle = s.color; ctx.fillText(s.label, w - 150, 22 + 16 * k);
  });
}
