// Drives web/index.html in Debian's headless Chromium, as a person would: loads it, drags
// over the plane, draws digits, interpolates, trains in the tab, and feeds it bad
// checkpoints. Serves the repository itself (so the page's links resolve), writes a
// screenshot of each panel to web/test/screenshots/, and prints the timings it measures.
//
// Run: `bash web/build.sh && (cd web/test && npm ci && npm test)`; CHROMIUM overrides the
// browser's path (default /usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shots = path.join(here, 'screenshots');
const checkpoint = await readFile(path.join(root, 'web/model/mnist-2d.safetensors'));
const reference = JSON.parse(await readFile(path.join(here, 'reference.json'), 'utf8'));

// The shipped checkpoint with its configuration's latent size changed to 3 in the header.
function otherLatentSize() {
  const n = Number(checkpoint.readBigUInt64LE(0));
  const header = JSON.parse(checkpoint.subarray(8, 8 + n).toString('utf8'));
  const config = JSON.parse(header.__metadata__.config);
  config.model.latent = 3;
  header.__metadata__.config = JSON.stringify(config);
  const text = Buffer.from(JSON.stringify(header).padEnd(n, ' '), 'utf8');
  const out = Buffer.alloc(8 + text.length + checkpoint.length - 8 - n);
  out.writeBigUInt64LE(BigInt(text.length), 0);
  text.copy(out, 8);
  checkpoint.copy(out, 8 + text.length, 8 + n);
  return out;
}

// Bad checkpoints the server makes up: random bytes, and the real file with one weight's
// byte flipped (its checksum then fails).
const made = {
  '/made/noise.safetensors': Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)),
  '/made/flipped.safetensors': (() => {
    const b = Buffer.from(checkpoint);
    b[b.length - 100] ^= 0x40;
    return b;
  })(),
  '/made/latent3.safetensors': otherLatentSize(),
};

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json', '.md': 'text/markdown' };

let server;
let base;
let browser;

before(async () => {
  server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    try {
      const body = made[url.pathname] ?? await readFile(path.join(root, path.normalize(decodeURIComponent(url.pathname))));
      res.writeHead(200, { 'content-type': TYPES[path.extname(url.pathname)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}/web/index.html`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  await mkdir(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.close();
});

// A new page at `query`, with every console error and uncaught exception collected.
async function open(query = '', init) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1400 } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  if (init) await page.addInitScript(init);
  await page.goto(base + query);
  return { page, errors, close: () => context.close() };
}

async function ready(page) {
  await page.waitForFunction(() => window.vaePage?.ready === true, null, { timeout: 60_000 });
}

async function status(page) {
  return page.locator('#status').evaluate((s) => ({ text: s.textContent, kind: s.className }));
}

// The 28×28 grey levels a canvas shows.
async function canvasGreys(page, id) {
  return page.evaluate((id) => {
    const c = document.getElementById(id);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    return Array.from({ length: d.length / 4 }, (_, i) => d[4 * i]);
  }, id);
}

// Moves the mouse through `points` (page pixels relative to the element) with the button down.
async function stroke(page, selector, points) {
  const box = await page.locator(selector).boundingBox();
  const [x0, y0] = points[0];
  await page.mouse.move(box.x + x0, box.y + y0);
  await page.mouse.down();
  for (const [x, y] of points.slice(1)) await page.mouse.move(box.x + x, box.y + y);
  await page.mouse.up();
}

// A "0" drawn as one closed stroke on the 240-pixel pad.
const zero = Array.from({ length: 41 }, (_, i) => {
  const a = (i / 40) * 2 * Math.PI;
  return [120 + 60 * Math.sin(a), 120 - 85 * Math.cos(a)];
});

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('the page loads with no console error and the model ready', async () => {
  const { page, errors, close } = await open();
  await ready(page);
  const s = await status(page);
  assert.equal(s.kind, 'ok', s.text);
  assert.match(s.text, /^Ready: model\/mnist-2d\.safetensors, 2000 test digits/);
  assert.deepEqual(errors, []);
  // Every link (the guide's chapters) resolves inside the repository.
  const links = await page.locator('a[href]').evaluateAll((as) => as.map((a) => a.href));
  assert.ok(links.length >= 5, `${links.length} links`);
  for (const link of links) assert.equal((await page.request.get(link)).status(), 200, link);
  await page.screenshot({ path: path.join(shots, 'page.png'), fullPage: true });
  await close();
});

test('the page decodes a point to the pixels the native build gives', async () => {
  const { page, close } = await open();
  await ready(page);
  for (const { point, pixels } of reference.points) {
    const got = await page.evaluate((p) => window.vaePage.decode(p), point);
    assert.equal(got.length, pixels.length);
    const worst = Math.max(...got.map((v, i) => Math.abs(v - pixels[i])));
    console.log(`decoded pixels at (${point}): largest difference from the native build ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-5, `at ${point}: largest difference ${worst}`);
  }
  // The decoded panel shows round(255·p) of the point the page opens at, (0, 0).
  const z = await page.evaluate(() => window.vaePage.decode([0, 0]));
  const shown = await canvasGreys(page, 'decoded');
  assert.deepEqual(shown, z.map((v) => Math.round(255 * v)));
  await close();
});

test('dragging over the plane redraws the decoded digit within a frame', async () => {
  const { page, errors, close } = await open();
  await ready(page);
  const before = await canvasGreys(page, 'decoded');
  const path60 = Array.from({ length: 61 }, (_, i) => [40 + 5 * i, 60 + 4 * i]);
  await page.evaluate(() => { window.vaePage.timings.length = 0; });
  await stroke(page, '#plane', path60);
  const after = await canvasGreys(page, 'decoded');
  assert.notDeepEqual(after, before, 'the decoded image did not change');
  const timings = await page.evaluate(() => window.vaePage.timings);
  assert.ok(timings.length >= 60, `${timings.length} redraws for 61 pointer events`);
  const [m, worst] = [median(timings), Math.max(...timings)];
  console.log(`decode + redraw over ${timings.length} moves: median ${m.toFixed(2)} ms, slowest ${worst.toFixed(2)} ms`);
  assert.ok(m < 16, `median decode + redraw ${m} ms is over a 16 ms frame`);
  await page.locator('#panel-plane').screenshot({ path: path.join(shots, 'plane.png') });
  assert.deepEqual(errors, []);
  await close();
});

test('a drawn digit lands among the test digits of its class', async () => {
  const { page, close } = await open();
  await ready(page);
  const one = Array.from({ length: 21 }, (_, i) => [120 + i * 0.5, 30 + 9 * i]);
  await stroke(page, '#draw', one);
  const drawnOne = await page.evaluate(() => window.vaePage.drawn);
  console.log(`a drawn 1: z = (${drawnOne.code.map((v) => v.toFixed(2))}), ${drawnOne.count} of 15 nearest test digits are ${drawnOne.majority}s`);
  assert.equal(drawnOne.majority, 1);
  await page.locator('#panel-draw').screenshot({ path: path.join(shots, 'draw-1.png') });
  await page.click('#draw-clear');
  assert.equal(await page.evaluate(() => window.vaePage.drawn), null);
  await stroke(page, '#draw', zero);
  const drawnZero = await page.evaluate(() => window.vaePage.drawn);
  console.log(`a drawn 0: z = (${drawnZero.code.map((v) => v.toFixed(2))}), ${drawnZero.count} of 15 nearest test digits are ${drawnZero.majority}s`);
  assert.equal(drawnZero.majority, 0);
  await page.locator('#panel-draw').screenshot({ path: path.join(shots, 'draw-0.png') });
  await close();
});

test('an interpolation has the requested number of frames', async () => {
  const { page, close } = await open();
  await ready(page);
  await page.fill('#interp-a', '11');
  await page.fill('#interp-b', '4');
  await page.fill('#interp-frames', '7');
  await page.click('#interp-go');
  assert.equal(await page.locator('#interp-strip canvas.frame').count(), 7);
  assert.equal(await page.locator('#interp-strip canvas.endpoint').count(), 2);
  await page.locator('#panel-interp').screenshot({ path: path.join(shots, 'interpolation.png') });
  await page.fill('#interp-frames', '1');
  await page.click('#interp-go');
  assert.match(await page.locator('#interp-strip').textContent(), /frames must be a whole number from 2 to 40/);
  await close();
});

test('training in the tab lowers the loss, and Stop stops it', async () => {
  const { page, errors, close } = await open();
  await ready(page);
  await page.click('#train-start');
  await page.waitForFunction(() => window.vaePage.train.losses.length >= 3, null, { timeout: 240_000 });
  await page.click('#train-stop');
  const { losses, epochSeconds } = await page.evaluate(() => window.vaePage.train);
  console.log(`in-tab training, 5,000 images an epoch: losses ${losses.map((l) => l.toFixed(2)).join(', ')}; seconds ${epochSeconds.map((s) => s.toFixed(2)).join(', ')}`);
  assert.ok(losses[2] < losses[0], `loss went from ${losses[0]} to ${losses[2]}`);
  // The native command line on the same 5,000 images, model, batch, seed and rate:
  // `mnist_vae --latent 2 --hidden 64 --train-limit 5000 --batch-size 50 --epochs 3`.
  const native = [320.9351, 218.4852, 202.6960];
  native.forEach((l, e) => assert.ok(Math.abs(losses[e] - l) < 0.01, `epoch ${e + 1}: ${losses[e]} in the tab, ${l} natively`));
  const stopped = await page.evaluate(() => window.vaePage.train.losses.length);
  await page.waitForTimeout(1500);
  assert.equal(await page.evaluate(() => window.vaePage.train.losses.length), stopped, 'training went on after Stop');
  assert.match(await page.locator('#train-status').textContent(), /\(stopped\)$/);
  await page.locator('#panel-train').screenshot({ path: path.join(shots, 'training.png') });
  // The whole page in use: a drawn digit, an interpolation, a trained model.
  await stroke(page, '#draw', zero);
  await page.screenshot({ path: path.join(shots, 'page-in-use.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await close();
});

test('a bad checkpoint or a browser without WebAssembly gets a message, not a blank page', async () => {
  const cases = [
    ['?model=model/missing.safetensors', /HTTP 404/],
    ['?model=/made/noise.safetensors', /not a valid safetensors file/],
    ['?model=/made/flipped.safetensors', /does not match its checksum/],
    ['?model=/made/latent3.safetensors', /latent space has 3 dimensions; this page shows 2/],
  ];
  for (const [query, message] of cases) {
    const { page, close } = await open(query);
    await ready(page);
    const s = await status(page);
    assert.equal(s.kind, 'error', `${query}: ${s.text}`);
    assert.match(s.text, message);
    assert.ok(await page.locator('#status').isVisible());
    await close();
  }
  // Opened as a file rather than served.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`file://${path.join(root, 'web/index.html')}`);
    const s = await status(page);
    assert.equal(s.kind, 'error');
    assert.match(s.text, /^Open this page through a web server/);
    await context.close();
  }
  const { page, close } = await open('', () => { delete globalThis.WebAssembly; });
  await page.waitForFunction(() => document.getElementById('status').className === 'error');
  assert.match((await status(page)).text, /cannot run WebAssembly/);
  assert.ok(await page.locator('#train-start').isDisabled());
  await page.screenshot({ path: path.join(shots, 'no-webassembly.png') });
  await close();
});
