// Measures berth's web console in Debian's Chromium (playwright-core from the browser tests'
// install): first meaningful paint of the overview with every agent listed, event-to-screen
// latency, and what the overview page weighs. Run by `berth-bench web`, which prepares the
// daemon and its agents and passes LOGIN (a one-time link), BERTH_BIN, BERTH_HOME, REPO, AGENTS
// and SAMPLES; prints one JSON object.

import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const env = (k) => { if (!process.env[k]) throw new Error(`${k} is not set`); return process.env[k]; };
const testsDir = join(import.meta.dirname, '../../crates/berth/tests/browser');
const { chromium } = createRequire(join(testsDir, 'package.json'))('playwright-core');
const AGENTS = Number(env('AGENTS'));
const SAMPLES = Number(env('SAMPLES'));
const berth = (...args) => execFileSync(env('BERTH_BIN'), args,
  { cwd: env('REPO'), env: { ...process.env, BERTH_HOME: env('BERTH_HOME') }, encoding: 'utf8' });

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const context = await browser.newContext();
const login = await context.newPage();
await login.goto(env('LOGIN'));
const origin = new URL(env('LOGIN')).origin;
await login.close();

// Each paint sample is a fresh page (the session cookie stays): the time from navigation start
// until every agent's row is in the document, taken in the page by a MutationObserver.
await context.addInitScript((want) => {
  const seen = () => document.querySelectorAll('tr[data-agent]').length >= want;
  new MutationObserver((_, obs) => {
    if (!window.__painted && seen()) { window.__painted = performance.now(); obs.disconnect(); }
  }).observe(document, { childList: true, subtree: true });
}, AGENTS);

const paints = [];
const fcps = [];
let weight = null;
for (let i = 0; i < SAMPLES + 1; i++) {
  const page = await context.newPage();
  const responses = [];
  page.on('response', async (r) => {
    try { responses.push({ url: r.url(), body: await r.body() }); } catch { /* a stream */ }
  });
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => window.__painted, null, { timeout: 10000 });
  const painted = await page.evaluate(() => window.__painted);
  const fcp = await page.evaluate(() =>
    performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
  if (i > 0) { paints.push(painted); if (fcp !== null) fcps.push(fcp); } // the first warms up
  if (i === 0) {
    await page.waitForTimeout(300);
    const files = responses.filter((r) => !r.url.includes('/v1/'))
      .map((r) => ({ url: new URL(r.url).pathname, raw: r.body.length, gzip: gzipSync(r.body).length }));
    const data = responses.filter((r) => r.url.includes('/v1/'))
      .map((r) => ({ url: new URL(r.url).pathname, raw: r.body.length, gzip: gzipSync(r.body).length }));
    weight = { files, data };
  }
  await page.close();
}

// Event to screen: the agent's row changes state on an open overview; the daemon's event time
// (its wall clock, in ms) against the page's clock when the new state is in the document.
const page = await context.newPage();
await page.goto(`${origin}/`);
await page.waitForFunction(() => window.__painted, null, { timeout: 10000 });
const name = 'a000';
const latencies = [];
for (let i = 0; i < SAMPLES; i++) {
  const running = (await page.locator(`tr[data-agent="${name}"] .state`).textContent()) === 'running';
  const want = running ? 'stopped' : 'running';
  const kind = running ? 'agent.stopped' : 'agent.started';
  await page.evaluate(([n, w]) => {
    window.__changed = null;
    const obs = new MutationObserver(() => {
      const el = document.querySelector(`tr[data-agent="${n}"] .state`);
      if (el && el.textContent === w) { window.__changed = Date.now(); obs.disconnect(); }
    });
    obs.observe(document.getElementById('main'), { childList: true, subtree: true, characterData: true });
  }, [name, want]);
  berth('agent', running ? 'stop' : 'start', name);
  await page.waitForFunction(() => window.__changed, null, { timeout: 10000 });
  const shown = await page.evaluate(() => window.__changed);
  const events = berth('--json', 'events', '--agent', name).trim().split('\n')
    .map((l) => JSON.parse(l)).filter((e) => e.kind === kind);
  const at = events[events.length - 1].time_ms;
  latencies.push(shown - at);
}
await browser.close();
console.log(JSON.stringify({ paints, fcps, latencies, weight }));
