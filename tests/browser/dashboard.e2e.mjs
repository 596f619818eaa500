// `nearcode dashboard` in a real browser: Debian's chromium driven by playwright-core, against
// the real dashboard process on a seeded insight database (tests/insight_seed.py). No mocks.
//
//   make -C tests/browser e2e       (make test-dashboard at the top level)
//
// Checks: a request without the one-time token is refused; the link with it loads the page (and
// leaves the token out of the address); the four plots render (non-empty boxes) and draw exactly
// the figures `nearcode stats --json` gives for the same database; nothing is requested from any
// other origin; the spent link is refused in another browser context.
//
// Environment: NEARCODE_PYTHON (the venv's python; the Makefile sets it), CHROMIUM [/usr/bin/chromium].
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const PYTHON = process.env.NEARCODE_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(HERE, 'test-artifacts');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nearcode-dashboard-'));
const env = { ...process.env, NEARCODE_INSIGHT_DIR: path.join(tmp, 'insight') };
let dashboard;
let browser;
let link;
let base;
let summary;

function log(msg) {
  process.stdout.write(`# ${msg}\n`);
}

before(async () => {
  for (const [what, p] of [['python', PYTHON], ['chromium', CHROMIUM]]) assert.ok(fs.existsSync(p), `${what} not found at ${p}`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  fs.mkdirSync(env.NEARCODE_INSIGHT_DIR, { recursive: true, mode: 0o700 });
  const seeded = spawnSync(PYTHON, ['-m', 'tests.insight_seed', env.NEARCODE_INSIGHT_DIR], { cwd: REPO, env, encoding: 'utf8' });
  assert.equal(seeded.status, 0, seeded.stderr);
  const stats = spawnSync(PYTHON, ['-m', 'nearcode', 'stats', '--json'], { cwd: tmp, env, encoding: 'utf8' });
  assert.equal(stats.status, 0, stats.stderr);
  summary = JSON.parse(stats.stdout);
  log(`seeded: ${summary.total.shown} suggestions, ${summary.total.accepted} accepted`);

  dashboard = spawn(PYTHON, ['-m', 'nearcode', 'dashboard', '--no-browser'], { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  link = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no link from nearcode dashboard: ${out}`)), 30_000);
    const onData = (b) => {
      out += b.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    dashboard.stdout.on('data', onData);
    dashboard.stderr.on('data', onData);
    dashboard.on('exit', (code) => reject(new Error(`nearcode dashboard exited (${code}): ${out}`)));
  });
  base = new URL(link).origin;
  log(`dashboard at ${base}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  if (dashboard && dashboard.exitCode === null) dashboard.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a request without the token is refused', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const response = await page.goto(`${base}/`);
  assert.equal(response.status(), 403);
  assert.match(await page.textContent('body'), /refused/);
  assert.equal((await page.goto(`${base}/summary.json`)).status(), 403);
  assert.equal((await page.goto(`${base}/?token=not-the-token`)).status(), 403);
  await context.close();
});

test('the link loads the page and the plots draw the database\'s figures', async () => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
  const page = await context.newPage();
  const requested = [];
  page.on('request', (request) => requested.push(request.url()));
  const response = await page.goto(link);
  assert.equal(response.status(), 200);
  assert.equal(page.url(), `${base}/`, 'the token stays out of the address bar');
  await page.locator('svg[data-plot]').first().waitFor();

  const plots = await page.$$eval('svg[data-plot]', (svgs) => svgs.map((svg) => {
    const box = svg.getBoundingClientRect();
    const marks = [...svg.querySelectorAll('[data-value]')].map((el) => {
      const b = el.getBoundingClientRect();
      return { kind: el.getAttribute('class'), value: Number(el.getAttribute('data-value')), key:
        el.getAttribute('data-day') ?? el.getAttribute('data-language') ?? el.getAttribute('data-bin') ?? el.getAttribute('data-at'),
        w: b.width, h: b.height };
    });
    return { plot: svg.getAttribute('data-plot'), width: box.width, height: box.height, marks };
  }));
  const byName = Object.fromEntries(plots.map((p) => [p.plot, p]));
  assert.deepEqual(Object.keys(byName).sort(), ['languages', 'latency', 'survival', 'timeline']);
  for (const p of plots) assert.ok(p.width > 300 && p.height > 100, `${p.plot} is not rendered: ${p.width}x${p.height}`);

  // Per day: shown and accepted bars, the seeded days drawn with a height, summing to the totals.
  const shownBars = byName.timeline.marks.filter((m) => m.kind === 'bar shown');
  const acceptedBars = byName.timeline.marks.filter((m) => m.kind === 'bar accepted');
  assert.equal(shownBars.reduce((n, m) => n + m.value, 0), summary.total.shown);
  assert.equal(acceptedBars.reduce((n, m) => n + m.value, 0), summary.total.accepted);
  for (const [day, totals] of Object.entries(summary.by_day)) {
    const bar = shownBars.find((m) => m.key === day);
    assert.ok(bar && bar.value === totals.shown && bar.h > 1, `day ${day}: ${JSON.stringify(bar)}`);
  }
  // Acceptance by language: one bar each, its rate, wider for the higher rate.
  const rates = byName.languages.marks;
  assert.deepEqual(rates.map((m) => m.key).sort(), Object.keys(summary.by_language).sort());
  for (const m of rates) assert.ok(Math.abs(m.value - summary.by_language[m.key].rate) < 1e-3, m.key);
  const python = rates.find((m) => m.key === 'python');
  const go = rates.find((m) => m.key === 'go');
  assert.ok(python.w > go.w, 'python (50%) is drawn wider than go (0%)');
  // Latency histogram: every suggestion in one bin.
  assert.deepEqual(byName.latency.marks.map((m) => m.value), summary.latency_histogram);
  // Survival curve: 100% at acceptance, then the three checkpoints.
  const points = byName.survival.marks;
  assert.deepEqual(points.map((m) => m.key), ['0s', ...summary.checkpoints]);
  assert.deepEqual(points.map((m) => Math.round(m.value * 1e4)), [1, ...summary.total.survival].map((v) => Math.round(v * 1e4)));
  assert.equal(await page.locator('svg[data-plot="survival"] path.curve').count(), 1);

  const cards = await page.$$eval('[data-card]', (els) => els.map((e) => e.textContent));
  assert.ok(cards.some((c) => c.includes(String(summary.total.shown))), cards.join(' | '));
  const foreign = requested.filter((u) => !u.startsWith(base));
  assert.deepEqual(foreign, [], 'the page loads nothing from anywhere else');
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  log(`screenshot ${path.relative(REPO, path.join(ARTIFACTS, 'dashboard.png'))}`);
  // Reloading in the same browser works (its session cookie), the token is not needed again.
  assert.equal((await page.reload()).status(), 200);
  await context.close();
});

test('the spent link is refused in another browser', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const response = await page.goto(link);
  assert.equal(response.status(), 403);
  assert.match(await page.textContent('body'), /already used/);
  await context.close();
});
