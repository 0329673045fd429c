// berth's web console in a real browser: Debian's Chromium driven by playwright-core.
// Run by crates/berth/tests/cli/console.rs with BERTH_BIN (the binary under test) and
// BERTH_SCREENSHOTS (where each page's screenshot goes). Everything here is real: a daemon in a
// temporary home, a git repository, agents that are processes, a pairing, a daemon restart.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.BERTH_BIN;
const SHOTS = process.env.BERTH_SCREENSHOTS || join(tmpdir(), 'berth-console-screenshots');
assert.ok(BIN, 'BERTH_BIN must name the berth binary under test');

const root = mkdtempSync(join(tmpdir(), 'berth-console-'));
const home = join(root, 'home');
const repo = join(root, 'project');
const feed = join(root, 'feed.txt');
let browser;
let context;
let page;
let link;
let origin;

function run(cmd, args, cwd = repo) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const git = (...args) => run('git', args);
const berth = (...args) => JSON.parse(run(BIN, ['--home', home, '--json', ...args]) || 'null');
const berthPlain = (...args) => run(BIN, ['--home', home, ...args]);

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  mkdirSync(repo);
  git('init', '-q', '-b', 'main');
  git('config', 'user.name', 'Test');
  git('config', 'user.email', 'test@example.com');
  writeFileSync(join(repo, 'a.txt'), 'alpha\n');
  git('add', '.');
  git('commit', '-qm', 'first');
  writeFileSync(feed, '');
  berthPlain('daemon', 'start');
  link = berth('web');
  origin = new URL(link.url).origin;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', `--host-resolver-rules=MAP rebind.test 127.0.0.1`],
  });
  context = await browser.newContext();
  page = await context.newPage();
  // What the page itself reports goes to the test's output, so a failure shows its cause.
  page.on('console', (m) => { if (m.type() === 'error') console.log(`page console: ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
});

after(async () => {
  if (browser) await browser.close();
  try { berthPlain('daemon', 'stop', '--all'); } catch { /* reported by the tests */ }
  rmSync(root, { recursive: true, force: true });
});

const stateOf = (name) => page.locator(`tr[data-agent="${name}"] .state`);

test('a login link works once and leaves no code in the address', async () => {
  const resp = await page.goto(link.url);
  assert.equal(resp.status(), 200);
  assert.equal(page.url(), `${origin}/`);
  await page.getByRole('heading', { name: 'Daemon' }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'berth_session');
  assert.ok(session, 'a session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  await page.locator('#connection[data-state="live"]').waitFor();
  await shot('overview-empty');

  const other = await browser.newContext();
  const second = await other.newPage();
  const again = await second.goto(link.url);
  assert.equal(again.status(), 401, 'a second use of the link is refused');
  assert.match(await second.textContent('body'), /already used/);
  await second.goto(`${origin}/`);
  await second.getByRole('heading', { name: 'Not logged in' }).waitFor();
  await other.close();
});

test('agents appear when started from the CLI, without a reload', async () => {
  berth('agent', 'new', 'worker', '--cmd', 'sleep 600', '--start');
  await stateOf('worker').filter({ hasText: 'running' }).waitFor({ timeout: 5000 });
  berth('agent', 'new', 'talker', '--cmd', `tail -n0 -F ${feed}`, '--start');
  await stateOf('talker').filter({ hasText: 'running' }).waitFor({ timeout: 5000 });
  await shot('overview');
});

test('stopping an agent with a click changes its state on the page and in the daemon', async () => {
  await page.getByRole('button', { name: 'Stop worker', exact: true }).click();
  await stateOf('worker').filter({ hasText: 'stopped' }).waitFor({ timeout: 15000 });
  const shown = berth('agent', 'show', 'worker');
  assert.equal(shown.state, 'stopped');
  // And with the keyboard alone: focus the button, press Enter.
  const start = page.getByRole('button', { name: 'Start worker', exact: true });
  await start.focus();
  await page.keyboard.press('Enter');
  await stateOf('worker').filter({ hasText: 'running' }).waitFor({ timeout: 15000 });
});

test('a line an agent writes is on its page within a second', async () => {
  await page.getByRole('link', { name: 'talker' }).click();
  await page.getByText('following the log live').waitFor({ timeout: 5000 });
  const definition = page.locator('dl');
  await definition.getByText(`tail -n0 -F ${feed}`).waitFor();
  assert.doesNotMatch(await page.textContent('main'), /object HTMLElement|null/);
  const marker = `marker-${Date.now()}`;
  const line = page.locator('pre.log', { hasText: marker });
  const t0 = Date.now();
  appendFileSync(feed, `${marker}\n`);
  await line.waitFor({ timeout: 1000 });
  const took = Date.now() - t0;
  assert.ok(took < 1000, `the line took ${took} ms`);
  console.log(`log line on the page after ${took} ms`);
  await shot('agent');
});

test("a terminal agent's terminal works in the page", async () => {
  berth('agent', 'new', 'shell', '--tty', '--start', '--cmd', 'sh');
  berth('timer', 'add', 'shell', '--every', '30m', '--message', 'stand-up time');
  await page.goto(`${origin}/#/agent/${encodeURIComponent(repo)}/shell`);
  await page.locator('li', { hasText: 'stand-up time' }).waitFor({ timeout: 5000 });
  await page.getByRole('button', { name: 'Open terminal' }).click();
  await page.getByText('attached: type in the terminal').waitFor({ timeout: 10000 });
  await page.locator('.xterm').click();
  await page.keyboard.type('echo "typed in $((6 * 7)) the browser"\n');
  try {
    await page.locator('.xterm-rows', { hasText: 'typed in 42 the browser' })
      .waitFor({ timeout: 5000 });
  } finally {
    await shot('terminal');
  }
  // Joined without breaks: the keeper's screen keeps a line wrapped at the width it had when
  // it was written (the page's terminal may have been narrower for a moment before it was
  // fitted), where the page's rows read as one text.
  const screen = berth('agent', 'screen', 'shell', '--scrollback', '100');
  const text = [...screen.scrollback, ...screen.rows].join('');
  assert.ok(text.includes('typed in 42 the browser'),
    `the keys reached the agent; its screen: ${JSON.stringify(screen)}`);
  await shot('terminal');
  await page.getByRole('button', { name: 'Close terminal' }).click();
  await page.getByRole('button', { name: 'Open terminal' }).waitFor();
});

test('a pairing pauses when the checkout switches branch, and resumes', async () => {
  berth('agent', 'new', 'fixer');
  berth('pair', 'fixer');
  await page.goto(`${origin}/#/pairing/${encodeURIComponent(repo)}`);
  const state = page.locator('#pair-h + p .state');
  await state.filter({ hasText: 'active' }).waitFor({ timeout: 5000 });
  git('switch', '-q', 'main');
  await state.filter({ hasText: 'paused' }).waitFor({ timeout: 10000 });
  await page.locator('.notice', { hasText: 'user switched branch' }).waitFor();
  await shot('pairing-paused');
  git('switch', '-q', 'berth/fixer');
  await state.filter({ hasText: 'active' }).waitFor({ timeout: 10000 });
  await shot('pairing');
  await page.getByRole('button', { name: 'Stop pairing' }).click();
  await state.filter({ hasText: 'off' }).waitFor({ timeout: 30000 });
  assert.equal(git('branch', '--show-current').trim(), 'main', 'the checkout is back on main');
});

test('the events page follows the log live and filters it', async () => {
  await page.getByRole('link', { name: 'Events' }).click();
  await page.getByRole('heading', { name: 'Events' }).waitFor();
  berth('agent', 'new', 'eventful');
  await page.locator('tbody tr', { hasText: 'eventful' }).first().waitFor({ timeout: 5000 });
  await page.getByLabel('Filter').fill('agent.created');
  const rows = page.locator('tbody tr');
  const kinds = await rows.locator('td:nth-child(3)').allTextContents();
  assert.ok(kinds.length > 0 && kinds.every((k) => k.includes('agent.created')), kinds.join(','));
  await shot('events');
});

test('the page reconnects by itself after a daemon restart', async () => {
  await page.goto(`${origin}/`);
  await page.locator('#connection[data-state="live"]').waitFor();
  berthPlain('daemon', 'stop');
  await page.locator('#connection[data-state="lost"]').waitFor({ timeout: 10000 });
  await shot('connection-lost');
  berthPlain('daemon', 'start');
  await page.locator('#connection[data-state="live"]').waitFor({ timeout: 20000 });
  // Still live: an agent made now appears.
  berth('agent', 'new', 'after-restart');
  await page.locator('tr[data-agent="after-restart"]').waitFor({ timeout: 5000 });
});

test('usable from the keyboard alone and readable at 200 % zoom', async () => {
  await page.goto(`${origin}/`);
  await page.locator('tr[data-agent="worker"]').waitFor();
  // Tab reaches every control, in order; the skip link comes first.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  let reached = false;
  for (let i = 0; i < 60 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() =>
      document.activeElement.getAttribute('aria-label') === 'Stop worker');
  }
  assert.ok(reached, 'the Stop button of an agent is reached with Tab');
  // 200 % zoom of a 1280×720 window is a 640×360 viewport in CSS pixels: nothing may need
  // scrolling sideways except inside a table's own box.
  await page.setViewportSize({ width: 640, height: 360 });
  const overflow = await page.evaluate(() =>
    document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the window at 200 %`);
  await shot('overview-200-percent');
  await page.setViewportSize({ width: 1280, height: 720 });
});

test('a request from another origin is refused even with the session cookie', async () => {
  // An attacker's page on the same host but another port: the same site, so the SameSite
  // cookie goes along; the Origin check is what refuses it.
  const attacker = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><form id="f" method="POST" enctype="text/plain"
      action="${origin}/v1/agents/stop"><input name='{"repo":"${repo}","name":"worker","x":"'
      value='"}'></form><script>
      fetch('${origin}/v1/agents/stop', { method: 'POST', mode: 'no-cors', credentials: 'include',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ repo: ${JSON.stringify(repo)}, name: 'worker' }) })
        .finally(() => document.getElementById('f').submit());
    </script>`);
  });
  await new Promise((r) => attacker.listen(0, '127.0.0.1', r));
  const evil = await context.newPage();
  const refused = evil.waitForResponse((r) => r.url() === `${origin}/v1/agents/stop`
    && r.request().resourceType() === 'document');
  await evil.goto(`http://127.0.0.1:${attacker.address().port}/`);
  const resp = await refused;
  assert.equal(resp.status(), 403, 'the cross-origin form post is refused');
  await evil.close();
  attacker.close();
  assert.equal(berth('agent', 'show', 'worker').state, 'running', 'nothing was stopped');

  // The console's own page without its CSRF token is refused too.
  const status = await page.evaluate(async ([r]) => (await fetch('/v1/agents/stop', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ repo: r, name: 'worker' }),
  })).status, [repo]);
  assert.equal(status, 403);
  assert.equal(berth('agent', 'show', 'worker').state, 'running');
});

test('a page served under another name (DNS rebinding) is refused', async () => {
  const port = new URL(origin).port;
  const rebound = await context.newPage();
  const resp = await rebound.goto(`http://rebind.test:${port}/`);
  assert.equal(resp.status(), 403);
  assert.match(await rebound.textContent('body'), /Host header/);
  await rebound.close();
});
