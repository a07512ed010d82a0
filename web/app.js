// The page: loads the engine's WebAssembly build (web/pkg, made by web/build.sh), the shipped
// checkpoint and digits, and wires the four panels to it. Every number a panel shows comes
// from the engine; this file only moves pixels between canvases and the engine.

const $ = (id) => document.getElementById(id);
const SIDE = 28;
// The colours of the native scatter plot (vae::images), one per digit.
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
  '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const TRAIN_BATCH = 50;
const TRAIN_LR = 1e-3;
const TRAIN_SEED = 1;
const NEIGHBOURS = 15;

// What the tests (web/test) read; a person sees the same numbers on the page.
const page = { ready: false, timings: [], drawn: null, interpolation: null, train: { losses: [], epochSeconds: [] } };
window.vaePage = page;

function setStatus(message, kind) {
  const s = $('status');
  s.textContent = message;
  s.className = kind;
}

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`${what} (${url}) could not be fetched: ${e.message}`);
  }
  if (!response.ok) {
    throw new Error(`${what} (${url}) could not be loaded: HTTP ${response.status} ${response.statusText}`.trim());
  }
  return new Uint8Array(await response.arrayBuffer());
}

// Draws `pixels` (values in [0, 1], `SIDE²` of them from `offset`) on a 28×28 canvas, white
// on black, each value as round(255·v) as the native PNGs store it.
function putDigit(canvas, pixels, offset = 0) {
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(SIDE, SIDE);
  for (let i = 0; i < SIDE * SIDE; i++) {
    const v = Math.round(255 * Math.min(1, Math.max(0, pixels[offset + i])));
    image.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
}

// A square view of the plane around a set of codes: its centre and half-width in latent
// units, with a tenth of margin.
function extentOf(codes) {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < codes.length; i += 2) {
    x0 = Math.min(x0, codes[i]); x1 = Math.max(x1, codes[i]);
    y0 = Math.min(y0, codes[i + 1]); y1 = Math.max(y1, codes[i + 1]);
  }
  const half = 0.55 * Math.max(x1 - x0, y1 - y0, 1e-3);
  return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, half };
}

// The plane's mapping between latent points and canvas pixels (y up).
function planeView(canvas, extent) {
  const w = canvas.width;
  return {
    toCanvas: (x, y) => [(x - extent.cx + extent.half) / (2 * extent.half) * w,
      (extent.cy + extent.half - y) / (2 * extent.half) * w],
    toLatent: (px, py) => [extent.cx - extent.half + px / w * 2 * extent.half,
      extent.cy + extent.half - py / w * 2 * extent.half],
  };
}

// The codes as coloured dots with the axes through the origin, on an offscreen canvas.
function dotsLayer(canvas, view, codes, labels) {
  const layer = document.createElement('canvas');
  layer.width = canvas.width;
  layer.height = canvas.height;
  const ctx = layer.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, layer.width, layer.height);
  const [ox, oy] = view.toCanvas(0, 0);
  ctx.strokeStyle = '#ddd';
  ctx.beginPath();
  ctx.moveTo(ox, 0); ctx.lineTo(ox, layer.height);
  ctx.moveTo(0, oy); ctx.lineTo(layer.width, oy);
  ctx.stroke();
  ctx.globalAlpha = 0.7;
  for (let i = 0; i < labels.length; i++) {
    const [x, y] = view.toCanvas(codes[2 * i], codes[2 * i + 1]);
    ctx.fillStyle = PALETTE[labels[i]];
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
  }
  return layer;
}

function drawStar(ctx, x, y, r) {
  ctx.beginPath();
  for (let i = 0; i < 10; i++) {
    const a = Math.PI / 2 + i * Math.PI / 5;
    const rr = i % 2 ? r * 0.45 : r;
    ctx.lineTo(x + rr * Math.cos(a), y - rr * Math.sin(a));
  }
  ctx.closePath();
  ctx.fillStyle = '#000';
  ctx.fill();
  ctx.strokeStyle = '#fff';
  ctx.stroke();
}

// Everything the first three panels share: the loaded model, the test digits' codes and
// the plane's view of them.
const state = { wasm: null, explorer: null, test: null, testPixels: null, labels: null, codes: null,
  view: null, dots: null, point: [0, 0], star: null, segment: null };

function redrawPlane() {
  const canvas = $('plane');
  const ctx = canvas.getContext('2d');
  if (!state.dots) {
    ctx.fillStyle = '#f4f4f4';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    return;
  }
  ctx.drawImage(state.dots, 0, 0);
  if (state.segment) {
    const [a, b] = state.segment.map(([x, y]) => state.view.toCanvas(x, y));
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(...a); ctx.lineTo(...b); ctx.stroke();
    ctx.lineWidth = 1;
  }
  if (state.star) drawStar(ctx, ...state.view.toCanvas(...state.star), 9);
  const [x, y] = state.view.toCanvas(...state.point);
  ctx.strokeStyle = '#000';
  ctx.lineWidth = 2.5;
  ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.stroke();
  ctx.lineWidth = 1;
}

// Decodes the ring's point and draws it; the time from the event to the drawn frame is
// what the page reports.
function showPoint(x, y) {
  const start = performance.now();
  state.point = [x, y];
  const pixels = state.explorer.decode(new Float32Array([x, y]));
  putDigit($('decoded'), pixels);
  redrawPlane();
  const ms = performance.now() - start;
  page.timings.push(ms);
  $('decode-ms').textContent = ms.toFixed(2);
  $('z-readout').textContent = `(${x.toFixed(2)}, ${y.toFixed(2)})`;
}

function setupPlane() {
  const canvas = $('plane');
  let dragging = false;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return state.view.toLatent((e.clientX - r.left) * canvas.width / r.width,
      (e.clientY - r.top) * canvas.height / r.height);
  };
  canvas.addEventListener('pointerdown', (e) => {
    if (!state.explorer) return;
    dragging = true;
    canvas.setPointerCapture(e.pointerId);
    showPoint(...at(e));
  });
  canvas.addEventListener('pointermove', (e) => { if (dragging) showPoint(...at(e)); });
  canvas.addEventListener('pointerup', () => { dragging = false; });
  $('legend').innerHTML = PALETTE.map((c, d) => `<span style="--c:${c}">${d}</span>`).join('');
}

// The drawing as MNIST prepares its digits: the stroke's bounding box scaled to fit 20×20
// pixels, then placed in 28×28 with its centre of mass at the centre.
function drawingToPixels(source) {
  const { width: w, height: h } = source;
  const data = source.getContext('2d').getImageData(0, 0, w, h).data;
  let [x0, y0, x1, y1] = [w, h, -1, -1];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (data[4 * (y * w + x)] > 0) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return null;
  const [bw, bh] = [x1 - x0 + 1, y1 - y0 + 1];
  const scale = 20 / Math.max(bw, bh);
  const [tw, th] = [Math.max(1, Math.round(bw * scale)), Math.max(1, Math.round(bh * scale))];
  const small = document.createElement('canvas');
  small.width = tw;
  small.height = th;
  const sctx = small.getContext('2d');
  sctx.imageSmoothingQuality = 'high';
  sctx.drawImage(source, x0, y0, bw, bh, 0, 0, tw, th);
  const sd = sctx.getImageData(0, 0, tw, th).data;
  let [mass, mx, my] = [0, 0, 0];
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      const v = sd[4 * (y * tw + x)];
      mass += v; mx += v * x; my += v * y;
    }
  }
  const [ox, oy] = [Math.round(SIDE / 2 - mx / mass), Math.round(SIDE / 2 - my / mass)];
  const pixels = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      const [X, Y] = [x + ox, y + oy];
      if (X >= 0 && X < SIDE && Y >= 0 && Y < SIDE) pixels[Y * SIDE + X] = sd[4 * (y * tw + x)] / 255;
    }
  }
  return pixels;
}

// The labels of the `k` test digits whose codes are nearest to `code`.
function nearestLabels(code, k) {
  const d = [];
  for (let i = 0; i < state.labels.length; i++) {
    const [dx, dy] = [state.codes[2 * i] - code[0], state.codes[2 * i + 1] - code[1]];
    d.push([dx * dx + dy * dy, state.labels[i]]);
  }
  d.sort((a, b) => a[0] - b[0]);
  return d.slice(0, k).map(([, label]) => label);
}

function encodeDrawing() {
  const pixels = drawingToPixels($('draw'));
  if (!pixels || !state.explorer) return;
  putDigit($('drawn-input'), pixels);
  const code = state.explorer.encode(pixels);
  putDigit($('drawn-recon'), state.explorer.decode(code));
  state.star = [code[0], code[1]];
  redrawPlane();
  const near = nearestLabels(code, NEIGHBOURS);
  const counts = Array(10).fill(0);
  near.forEach((l) => counts[l]++);
  const majority = counts.indexOf(Math.max(...counts));
  page.drawn = { code: [code[0], code[1]], majority, count: counts[majority] };
  $('drawn-neighbours').textContent =
    `z = (${code[0].toFixed(2)}, ${code[1].toFixed(2)}); of the ${NEIGHBOURS} nearest test digits, ${counts[majority]} are ${majority}s`;
}

function setupDraw() {
  const canvas = $('draw');
  // Each stroke is read back to encode it.
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let last = null;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 22;
    ctx.lineCap = 'round';
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke();
    last = p;
  });
  canvas.addEventListener('pointerup', () => {
    last = null;
    encodeDrawing();
  });
  $('draw-clear').addEventListener('click', () => {
    clear();
    state.star = null;
    page.drawn = null;
    $('drawn-neighbours').textContent = '—';
    for (const id of ['drawn-input', 'drawn-recon']) $(id).getContext('2d').clearRect(0, 0, SIDE, SIDE);
    redrawPlane();
  });
}

// Reads a whole-number input within [lo, hi], or throws naming the field.
function intInput(id, lo, hi, what) {
  const raw = $(id).value.trim();
  const v = Number(raw);
  if (raw === '' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new Error(`${what} must be a whole number from ${lo} to ${hi} (got "${raw}")`);
  }
  return v;
}

function interpolate() {
  const strip = $('interp-strip');
  if (!state.explorer) return;
  let a, b, frames;
  try {
    const last = state.labels.length - 1;
    a = intInput('interp-a', 0, last, 'the first test digit');
    b = intInput('interp-b', 0, last, 'the second test digit');
    frames = intInput('interp-frames', 2, 40, 'frames');
  } catch (e) {
    strip.innerHTML = `<p class="error">${e.message}</p>`;
    return;
  }
  const [za, zb] = [a, b].map((i) => [state.codes[2 * i], state.codes[2 * i + 1]]);
  const points = new Float32Array(2 * frames);
  for (let f = 0; f < frames; f++) {
    const t = f / (frames - 1);
    points[2 * f] = za[0] + t * (zb[0] - za[0]);
    points[2 * f + 1] = za[1] + t * (zb[1] - za[1]);
  }
  const pixels = state.explorer.decode(points);
  strip.replaceChildren();
  const add = (source, offset, title) => {
    const c = document.createElement('canvas');
    c.width = c.height = SIDE;
    c.title = title;
    putDigit(c, source, offset);
    strip.append(c);
    return c;
  };
  add(state.testPixels, a * SIDE * SIDE, `test digit ${a} (a ${state.labels[a]})`).className = 'endpoint';
  for (let f = 0; f < frames; f++) add(pixels, f * SIDE * SIDE, `frame ${f + 1} of ${frames}`).className = 'frame';
  add(state.testPixels, b * SIDE * SIDE, `test digit ${b} (a ${state.labels[b]})`).className = 'endpoint';
  state.segment = [za, zb];
  redrawPlane();
  page.interpolation = { a, b, frames };
}

function setupInterpolation() {
  $('interp-go').addEventListener('click', interpolate);
  $('interp-random').addEventListener('click', () => {
    const n = state.labels.length;
    $('interp-a').value = Math.floor(Math.random() * n);
    $('interp-b').value = Math.floor(Math.random() * n);
    interpolate();
  });
}

// Loads a checkpoint into the first three panels, or says in the status line why not.
async function loadModel(name, getBytes) {
  let explorer;
  try {
    explorer = new state.wasm.Explorer(name, await getBytes());
  } catch (e) {
    setStatus(`The model could not be loaded: ${e.message}`, 'error');
    return false;
  }
  if (explorer.input() !== state.test.dim()) {
    setStatus(`The model could not be loaded: ${name} takes ${explorer.input()}-pixel images, not MNIST's ${state.test.dim()}`, 'error');
    return false;
  }
  state.explorer?.free();
  state.explorer = explorer;
  state.codes = explorer.encode(state.testPixels);
  state.view = planeView($('plane'), extentOf(state.codes));
  state.dots = dotsLayer($('plane'), state.view, state.codes, state.labels);
  state.star = null;
  state.segment = null;
  $('model-name').textContent = name;
  showPoint(0, 0);
  encodeDrawing();
  interpolate();
  setStatus(`Ready: ${name}, ${state.labels.length} test digits on the plane.`, 'ok');
  return true;
}

// The fourth panel: a fresh model trained on the shipped training digits a few steps at a
// time, yielding to the page between slices so it stays responsive and Stop takes effect.
function setupTraining() {
  let trainer = null;
  let train = null;
  let running = false;
  let epochStart = 0;
  let curve = [];
  const status = $('train-status');
  const channel = new MessageChannel();

  const drawCurve = () => {
    const canvas = $('train-curve');
    const ctx = canvas.getContext('2d');
    const [w, h, left, bottom] = [canvas.width, canvas.height, 48, 24];
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#000';
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillText('negative ELBO per image (nats)', left, 12);
    if (curve.length < 2) return;
    const xs = curve.map((p) => p[0]);
    const ys = curve.map((p) => p[1]);
    const [x1, y0, y1] = [Math.max(...xs, 1), Math.min(...ys), Math.max(...ys)];
    const X = (x) => left + x / x1 * (w - left - 8);
    const Y = (y) => 20 + (y1 - y) / Math.max(y1 - y0, 1e-9) * (h - bottom - 24);
    ctx.strokeStyle = '#999';
    ctx.strokeRect(left, 20, w - left - 8, h - bottom - 24);
    ctx.fillText(y1.toFixed(1), 2, Y(y1) + 4);
    ctx.fillText(y0.toFixed(1), 2, Y(y0) + 4);
    ctx.fillText('0', left, h - 8);
    ctx.fillText(`${x1.toFixed(1)} epochs`, w - 70, h - 8);
    ctx.strokeStyle = PALETTE[0];
    ctx.beginPath();
    curve.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    ctx.fillStyle = PALETTE[3];
    page.train.losses.forEach((l, e) => ctx.fillRect(X(e + 1) - 3, Y(l) - 3, 6, 6));
  };

  const drawTrainPlane = () => {
    const canvas = $('train-plane');
    const codes = trainer.encode(state.testPixels);
    const view = planeView(canvas, extentOf(codes));
    canvas.getContext('2d').drawImage(dotsLayer(canvas, view, codes, state.labels), 0, 0);
  };

  const slice = () => {
    if (!running) return;
    const start = performance.now();
    let ended = false;
    try {
      while (!ended && performance.now() - start < 40) ended = trainer.train(1);
    } catch (e) {
      stop();
      status.textContent = `training stopped: ${e.message}`;
      status.className = 'error';
      return;
    }
    curve.push([trainer.epoch() + (ended ? 0 : trainer.progress()), ended ? trainer.losses().at(-1) : trainer.running_loss()]);
    if (ended) {
      const seconds = (performance.now() - epochStart) / 1000;
      epochStart = performance.now();
      page.train.losses = Array.from(trainer.losses());
      page.train.epochSeconds.push(seconds);
      drawTrainPlane();
      status.textContent = `epoch ${trainer.epoch()}: ${page.train.losses.at(-1).toFixed(2)} nats per image, ${seconds.toFixed(2)} s`;
    } else {
      status.textContent = `epoch ${trainer.epoch() + 1}: ${(100 * trainer.progress()).toFixed(0)} %, ${trainer.running_loss().toFixed(2)} nats per image so far`;
    }
    drawCurve();
    channel.port2.postMessage(null);
  };
  channel.port1.onmessage = slice;

  const stop = () => {
    running = false;
    $('train-start').disabled = false;
    $('train-stop').disabled = true;
    $('train-hidden').disabled = false;
  };

  $('train-start').addEventListener('click', async () => {
    let hidden;
    try {
      hidden = intInput('train-hidden', 1, 1024, 'hidden units');
    } catch (e) {
      status.textContent = e.message;
      status.className = 'error';
      return;
    }
    status.className = '';
    $('train-start').disabled = true;
    try {
      if (!train) {
        status.textContent = 'loading the training digits…';
        const [images, labels] = await Promise.all([
          fetchBytes('data/train-5000-images-idx3-ubyte.gz', 'the training images'),
          fetchBytes('data/train-5000-labels-idx1-ubyte.gz', 'the training labels'),
        ]);
        train = new state.wasm.Digits('the training digits', images, labels);
      }
      if (!trainer || trainer.hidden !== hidden) {
        trainer?.free();
        trainer = new state.wasm.TabTrainer(train, hidden, TRAIN_BATCH, TRAIN_LR, TRAIN_SEED);
        trainer.hidden = hidden;
        curve = [];
        page.train = { losses: [], epochSeconds: [] };
        $('train-hidden-label').textContent = hidden;
      }
    } catch (e) {
      $('train-start').disabled = false;
      status.textContent = e.message;
      status.className = 'error';
      return;
    }
    running = true;
    $('train-stop').disabled = false;
    $('train-hidden').disabled = true;
    epochStart = performance.now();
    channel.port2.postMessage(null);
  });
  const placeholder = $('train-plane').getContext('2d');
  placeholder.font = '12px system-ui, sans-serif';
  placeholder.fillStyle = '#777';
  placeholder.fillText('the plane appears after each epoch', 30, 130);
  $('train-stop').addEventListener('click', () => {
    stop();
    status.textContent += ' (stopped)';
  });
  drawCurve();
}

// Says why the page cannot run and turns its controls off, so nothing looks usable that is not.
function cannotRun(message) {
  setStatus(message, 'error');
  for (const control of document.querySelectorAll('main button, main input, header input')) control.disabled = true;
}

async function main() {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.instantiate !== 'function') {
    cannotRun('This browser cannot run WebAssembly, which the page needs to run the model; a current Firefox, Chrome or Safari can.');
    return;
  }
  try {
    state.wasm = await import('./pkg/vae_web.js');
    await state.wasm.default();
  } catch (e) {
    cannotRun(`The engine's WebAssembly module did not load (${e.message}); build it with web/build.sh.`);
    return;
  }
  try {
    const [images, labels] = await Promise.all([
      fetchBytes('data/t10k-2000-images-idx3-ubyte.gz', 'the test images'),
      fetchBytes('data/t10k-2000-labels-idx1-ubyte.gz', 'the test labels'),
    ]);
    state.test = new state.wasm.Digits('the test digits', images, labels);
  } catch (e) {
    cannotRun(e.message);
    return;
  }
  state.labels = state.test.labels();
  state.testPixels = state.test.pixels(state.test.count());
  page.decode = (points) => Array.from(state.explorer.decode(new Float32Array(points)));
  setupPlane();
  setupDraw();
  setupInterpolation();
  setupTraining();
  redrawPlane();
  const url = new URLSearchParams(location.search).get('model') ?? 'model/mnist-2d.safetensors';
  await loadModel(url, () => fetchBytes(url, 'the checkpoint'));
  $('model-file').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    if (file) await loadModel(file.name, async () => new Uint8Array(await file.arrayBuffer()));
  });
  page.ready = true;
}

main().catch((e) => setStatus(`Unexpected error: ${e.message}`, 'error'));
