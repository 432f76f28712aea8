// A learned parametric surface in WebGL: a lit mesh of the (u, v) grid and the sample points, orbited by mouse.

const VERTEX = `
attribute vec3 position;
attribute vec3 normal;
uniform mat4 mvp;
uniform float pointSize;
varying vec3 vNormal;
void main() {
  vNormal = normal;
  gl_Position = mvp * vec4(position, 1.0);
  gl_PointSize = pointSize;
}`;

const FRAGMENT = `
precision mediump float;
varying vec3 vNormal;
uniform vec3 color;
uniform bool lit;
void main() {
  if (!lit) { gl_FragColor = vec4(color, 1.0); return; }
  vec3 n = normalize(vNormal);
  vec3 light = normalize(vec3(0.4, 0.8, 0.6));
  float d = abs(dot(n, light));
  gl_FragColor = vec4(color * (0.25 + 0.75 * d), 1.0);
}`;

function multiply(a, b) {
  const out = new Float32Array(16);
  for (let i = 0; i < 4; i++)
    for (let j = 0; j < 4; j++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + j] * b[i * 4 + k];
      out[i * 4 + j] = s;
    }
  return out;
}

function perspective(fovy, aspect, near, far) {
  const f = 1 / Math.tan(fovy / 2), nf = 1 / (near - far);
  return new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0]);
}

function lookAt(eye, target, up) {
  const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const norm = (a) => { const l = Math.hypot(...a) || 1; return a.map((x) => x / l); };
  const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const z = norm(sub(eye, target)), x = norm(cross(up, z)), y = cross(z, x);
  return new Float32Array([x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0, -dot(x, eye), -dot(y, eye), -dot(z, eye), 1]);
}

export class SurfaceView {
  constructor(canvas) {
    this.canvas = canvas;
    const gl = canvas.getContext('webgl', { preserveDrawingBuffer: true, antialias: true });
    this.gl = gl;
    this.yaw = 0.7; this.pitch = 0.45; this.zoom = 1;
    this.center = [0, 0, 0]; this.radius = 1;
    this.meshCount = 0; this.pointCount = 0;
    if (!gl) return;
    const shader = (type, src) => { const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s); return s; };
    const prog = gl.createProgram();
    gl.attachShader(prog, shader(gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(prog, shader(gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(prog);
    this.prog = prog;
    this.loc = {
      position: gl.getAttribLocation(prog, 'position'), normal: gl.getAttribLocation(prog, 'normal'),
      mvp: gl.getUniformLocation(prog, 'mvp'), color: gl.getUniformLocation(prog, 'color'),
      lit: gl.getUniformLocation(prog, 'lit'), pointSize: gl.getUniformLocation(prog, 'pointSize'),
    };
    this.meshPos = gl.createBuffer(); this.meshNormal = gl.createBuffer(); this.meshIndex = gl.createBuffer();
    this.pointPos = gl.createBuffer();
    this.orbit();
  }

  get available() { return !!this.gl; }

  orbit() {
    let drag = null;
    const c = this.canvas;
    c.addEventListener('pointerdown', (e) => { drag = { x: e.clientX, y: e.clientY }; c.setPointerCapture(e.pointerId); });
    c.addEventListener('pointermove', (e) => {
      if (!drag) return;
      this.yaw -= (e.clientX - drag.x) * 0.01;
      this.pitch = Math.max(-1.5, Math.min(1.5, this.pitch + (e.clientY - drag.y) * 0.01));
      drag = { x: e.clientX, y: e.clientY };
      this.draw();
    });
    const end = () => { drag = null; };
    c.addEventListener('pointerup', end); c.addEventListener('pointercancel', end);
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.zoom = Math.max(0.2, Math.min(5, this.zoom * Math.exp(e.deltaY * 0.001)));
      this.draw();
    }, { passive: false });
  }

  /// Sample points `[[x, y, z], ...]`; they also fix the camera's centre and distance.
  setPoints(points) {
    const gl = this.gl;
    if (!gl || !points || !points.length) return;
    const flat = new Float32Array(points.flat());
    const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    for (const p of points) for (let k = 0; k < 3; k++) { lo[k] = Math.min(lo[k], p[k]); hi[k] = Math.max(hi[k], p[k]); }
    this.center = lo.map((l, k) => (l + hi[k]) / 2);
    this.radius = Math.max(1e-3, Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) / 2);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.pointPos);
    gl.bufferData(gl.ARRAY_BUFFER, flat, gl.STATIC_DRAW);
    this.pointCount = points.length;
  }

  /// A `nu x nv` grid of learned points (row-major in u).
  setMesh(nu, nv, xyz) {
    const gl = this.gl;
    if (!gl) return;
    const at = (i, j) => 3 * (i * nv + j);
    const normals = new Float32Array(xyz.length);
    for (let i = 0; i < nu; i++)
      for (let j = 0; j < nv; j++) {
        const a = at(Math.min(i + 1, nu - 1), j), b = at(Math.max(i - 1, 0), j);
        const c = at(i, Math.min(j + 1, nv - 1)), d = at(i, Math.max(j - 1, 0));
        const du = [xyz[a] - xyz[b], xyz[a + 1] - xyz[b + 1], xyz[a + 2] - xyz[b + 2]];
        const dv = [xyz[c] - xyz[d], xyz[c + 1] - xyz[d + 1], xyz[c + 2] - xyz[d + 2]];
        const n = [du[1] * dv[2] - du[2] * dv[1], du[2] * dv[0] - du[0] * dv[2], du[0] * dv[1] - du[1] * dv[0]];
        normals.set(n, at(i, j));
      }
    if (this.meshCount === 0 && this.pointCount === 0) {
      const pts = [];
      for (let k = 0; k < xyz.length; k += 3) pts.push([xyz[k], xyz[k + 1], xyz[k + 2]]);
      this.setPoints(pts);
      this.pointCount = 0;
    }
    const index = new Uint16Array((nu - 1) * (nv - 1) * 6);
    let k = 0;
    for (let i = 0; i + 1 < nu; i++)
      for (let j = 0; j + 1 < nv; j++) {
        const p = i * nv + j;
        index.set([p, p + nv, p + 1, p + 1, p + nv, p + nv + 1], k);
        k += 6;
      }
    gl.bindBuffer(gl.ARRAY_BUFFER, this.meshPos); gl.bufferData(gl.ARRAY_BUFFER, xyz, gl.DYNAMIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.meshNormal); gl.bufferData(gl.ARRAY_BUFFER, normals, gl.DYNAMIC_DRAW);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.meshIndex); gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, index, gl.DYNAMIC_DRAW);
    this.meshCount = index.length;
    this.draw();
  }

  draw() {
    const gl = this.gl;
    if (!gl) return;
    const { width, height } = this.canvas;
    gl.viewport(0, 0, width, height);
    gl.clearColor(0.047, 0.055, 0.075, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.enable(gl.DEPTH_TEST);
    gl.useProgram(this.prog);
    const d = this.radius * 2.6 * this.zoom;
    const eye = [
      this.center[0] + d * Math.cos(this.pitch) * Math.cos(this.yaw),
      this.center[1] + d * Math.cos(this.pitch) * Math.sin(this.yaw),
      this.center[2] + d * Math.sin(this.pitch),
    ];
    const mvp = multiply(perspective(0.8, width / height, d * 0.05, d * 4), lookAt(eye, this.center, [0, 0, 1]));
    gl.uniformMatrix4fv(this.loc.mvp, false, mvp);
    if (this.meshCount) {
      gl.uniform1i(this.loc.lit, 1);
      gl.uniform3f(this.loc.color, 1.0, 0.70, 0.28);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.meshPos);
      gl.enableVertexAttribArray(this.loc.position);
      gl.vertexAttribPointer(this.loc.position, 3, gl.FLOAT, false, 0, 0);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.meshNormal);
      gl.enableVertexAttribArray(this.loc.normal);
      gl.vertexAttribPointer(this.loc.normal, 3, gl.FLOAT, false, 0, 0);
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.meshIndex);
      gl.drawElements(gl.TRIANGLES, this.meshCount, gl.UNSIGNED_SHORT, 0);
    }
    if (this.pointCount) {
      gl.uniform1i(this.loc.lit, 0);
      gl.uniform3f(this.loc.color, 0.37, 0.78, 0.95);
      gl.uniform1f(this.loc.pointSize, 3.0);
      gl.disableVertexAttribArray(this.loc.normal);
      gl.vertexAttrib3f(this.loc.normal, 0, 0, 1);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.pointPos);
      gl.enableVertexAttribArray(this.loc.position);
      gl.vertexAttribPointer(this.loc.position, 3, gl.FLOAT, false, 0, 0);
      gl.drawArrays(gl.POINTS, 0, this.pointCount);
    }
  }

  reset() { this.yaw = 0.7; this.pitch = 0.45; this.zoom = 1; this.draw(); }
}
