// berth's web console: one page, no build step. It reads the daemon's JSON API, follows the
// event stream to stay current, and changes things only through the same API the CLI uses
// (with the session's CSRF token). Every wait has a timeout and says what failed.

const REQUEST_TIMEOUT_MS = 10000;
const ACTION_TIMEOUT_MS = 120000;
const MAX_LOG_LINES = 5000;
const MAX_EVENTS = 1000;

const app = {
  csrf: null,
  lastSeq: 0,
  view: null,       // { render(), onEvent(ev), close() }
  events: [],       // recent events, newest last (the events page)
  source: null,     // the event stream
  retryMs: 500,
  lostSince: null,
  prefetched: null, // the overview fetched at start, for the first page if it is the overview
};

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const main = () => document.getElementById('main');

// Replaces the page's content, keeping the focus on the control that had it (the same element
// when it is part of the new content too, as an open terminal is).
function show(...nodes) {
  const active = document.activeElement;
  const key = active && active.dataset ? active.dataset.key : undefined;
  main().replaceChildren(...nodes.filter((n) => n));
  if (active && active !== document.body && active.isConnected) {
    active.focus({ preventScroll: true });
  } else if (key) {
    const again = main().querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

function problem(text) {
  const el = document.getElementById('problem');
  el.hidden = !text;
  el.textContent = text || '';
}

function connection(state, text) {
  const el = document.getElementById('connection');
  el.dataset.state = state;
  el.textContent = text;
}

function ago(ms) {
  if (ms === undefined || ms === null) return '—';
  let s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s`;
  let m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  m %= 60;
  if (hours < 48) return `${hours} h ${m} min`;
  return `${Math.floor(hours / 24)} d`;
}

const time = (ms) => (ms ? new Date(ms).toLocaleString() : '—');

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, error, what) {
    const message = error && error.message ? error.message : `HTTP ${status}`;
    super(`${what}: ${message}${error && error.hint ? `\n${error.hint}` : ''}`);
    this.status = status;
    this.code = error && error.code;
  }
}

async function api(method, path, body, timeoutMs = REQUEST_TIMEOUT_MS) {
  const what = `${method} ${path.split('?')[0]}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-berth-csrf'] = app.csrf || '';
  try {
    const resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal: controller.signal,
    });
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!resp.ok) {
      if (resp.status === 401) loggedOut();
      throw new ApiError(resp.status, data && data.error, what);
    }
    return data;
  } catch (e) {
    if (e.name === 'AbortError') {
      throw new Error(`${what}: no answer within ${Math.round(timeoutMs / 1000)} s`);
    }
    if (e instanceof ApiError) throw e;
    throw new Error(`${what}: the daemon cannot be reached (${e.message})`);
  } finally {
    clearTimeout(timer);
  }
}

// Runs an action from a button: disabled while it runs, its failure shown.
async function act(button, label, fn) {
  button.disabled = true;
  problem(null);
  try {
    await fn();
  } catch (e) {
    problem(`${label} failed. ${e.message}`);
  } finally {
    button.disabled = false;
    app.view && app.view.render();
  }
}

function loggedOut() {
  if (app.source) app.source.close();
  app.source = null;
  connection('out', 'not logged in');
  show(
    h('section', {},
      h('h2', {}, 'Not logged in'),
      h('p', {}, 'Run ', h('code', {}, 'berth web'),
        ' in a terminal and open the link it prints. A link works once, for 60 seconds; ',
        'a session lasts 12 hours.')));
}

// ---------------------------------------------------------------- the event stream

function connect() {
  const source = new EventSource(`/v1/events?since=${app.lastSeq}`);
  app.source = source;
  source.onopen = () => {
    app.retryMs = 500;
    const wasLost = app.lostSince !== null;
    app.lostSince = null;
    connection('live', 'live');
    if (wasLost) {
      problem(null);
      app.view && app.view.render();
    }
  };
  source.onmessage = (msg) => {
    let ev;
    try { ev = JSON.parse(msg.data); } catch { return; }
    app.lastSeq = Math.max(app.lastSeq, ev.seq);
    app.events.push(ev);
    if (app.events.length > MAX_EVENTS) app.events.splice(0, app.events.length - MAX_EVENTS);
    app.view && app.view.onEvent(ev);
  };
  source.onerror = () => {
    source.close();
    if (app.source !== source) return;
    if (app.lostSince === null) app.lostSince = Date.now();
    const secs = Math.round((Date.now() - app.lostSince) / 1000);
    connection('lost', `connection lost ${secs} s ago; reconnecting…`);
    if (secs >= 30) {
      problem('The daemon has not answered for 30 s. Is it running? `berth daemon status` ' +
        'says; `berth daemon start` starts it. This page reconnects by itself.');
    }
    setTimeout(async () => {
      if (app.source !== source) return;
      // A daemon that is back but no longer knows this session answers 401.
      try { await api('GET', '/v1/console/session'); } catch { /* shown by api() or next try */ }
      if (app.source === source) connect();
    }, app.retryMs);
    app.retryMs = Math.min(app.retryMs * 2, 5000);
  };
}

// Calls `fn` at most once per `ms`, with the latest arguments.
function debounce(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}

// ---------------------------------------------------------------- pieces

const hasProcess = (state) => ['starting', 'running', 'stopping', 'backoff'].includes(state);

function stateBadge(state) {
  return h('span', { class: 'state', dataset: { state } }, state);
}

// What an agent's state asks of its person, in plain words (nothing when all is well).
function advice(a) {
  switch (a.state) {
    case 'failed':
      return 'It kept failing and its restart policy gave up: read its output, fix the cause, then Start.';
    case 'lost':
      return 'Its keeper is gone (the machine restarted, or it was killed): Start runs it again.';
    case 'unreachable':
      return `berth cannot reach where it runs (${a.unreachable || 'no answer'}); it keeps trying, and the agent keeps running there. If that host is gone for good: berth agent rm ${a.name} --forget.`;
    case 'backoff':
      return 'It exited; its restart policy starts it again shortly.';
    case 'exited':
      return a.exit_code ? `It exited with status ${a.exit_code}: read its output, then Start or Restart.` : null;
    default:
      return null;
  }
}

function agentActions(a) {
  const target = { repo: a.project, name: a.name };
  const key = (what) => `${what}:${a.project}:${a.name}`;
  const running = hasProcess(a.state);
  const button = (what, label, fn) => {
    const b = h('button', { type: 'button', dataset: { key: key(what) },
      'aria-label': `${label} ${a.name}` }, label);
    b.addEventListener('click', () => act(b, `${label} ${a.name}`, fn));
    return b;
  };
  return h('div', { class: 'actions' },
    running
      ? button('stop', 'Stop', () => api('POST', '/v1/agents/stop', target, ACTION_TIMEOUT_MS))
      : button('start', 'Start', () => api('POST', '/v1/agents/start', target, ACTION_TIMEOUT_MS)),
    button('restart', 'Restart', async () => {
      if (running) await api('POST', '/v1/agents/stop', target, ACTION_TIMEOUT_MS);
      await api('POST', '/v1/agents/start', target, ACTION_TIMEOUT_MS);
    }));
}

const agentHref = (a) => `#/agent/${encodeURIComponent(a.project)}/${encodeURIComponent(a.name)}`;
const pairingHref = (root) => `#/pairing/${encodeURIComponent(root)}`;

function notices(list) {
  return list.map((n) => h('div', { class: 'notice' },
    h('strong', {}, n.code.replaceAll('_', ' ')), n.side ? ` (${n.side})` : '', ': ', n.message));
}

// ---------------------------------------------------------------- pages

function overviewPage() {
  let data = null;
  const render = async () => {
    try {
      data = app.prefetched || await api('GET', '/v1/overview');
      app.prefetched = null;
    } catch (e) {
      problem(`Cannot load the overview. ${e.message}`);
      return;
    }
    const d = data.daemon;
    const daemon = h('section', { 'aria-labelledby': 'daemon-h' },
      h('h2', { id: 'daemon-h' }, 'Daemon'),
      h('dl', {},
        h('dt', {}, 'state'), h('dd', {}, stateBadge(d.handshake.phase)),
        h('dt', {}, 'version'), h('dd', {}, d.handshake.version),
        h('dt', {}, 'pid'), h('dd', {}, d.handshake.pid),
        h('dt', {}, 'up'), h('dd', {}, ago(d.started_at_ms))));
    const projects = data.projects.map((p) => {
      const pair = p.pairing;
      return h('section', { class: 'project', dataset: { project: p.root } },
        h('h2', {}, p.root),
        h('p', {}, 'Pairing: ', stateBadge(pair.state), ' ', pair.describe,
          pair.agent ? ` with ${pair.agent}` : '', ' · ',
          h('a', { href: pairingHref(p.root) }, 'pairing details')),
        notices(pair.notices),
        p.agents.length === 0
          ? h('p', { class: 'muted' }, 'No agents or services yet.')
          : h('div', { class: 'table' }, h('table', {},
            h('thead', {}, h('tr', {},
              ['name', 'kind', 'state', 'up', 'restarts', 'readiness', 'last exit', 'actions']
                .map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, p.agents.map((a) => h('tr', { dataset: { agent: a.name } },
              h('td', {}, h('a', { href: agentHref(a) }, a.name)),
              h('td', {}, a.kind, a.tty ? ' (terminal)' : '', a.turn ? ' (turns)' : ''),
              h('td', {}, stateBadge(a.state),
                advice(a) ? h('div', { class: 'advice' }, advice(a)) : null),
              h('td', {}, hasProcess(a.state) ? ago(a.started_ms) : '—'),
              h('td', {}, a.restarts),
              h('td', {}, a.ready || 'when started'),
              h('td', {}, a.exit_code === null || a.exit_code === undefined ? '—' : a.exit_code),
              h('td', {}, agentActions(a))))))));
    });
    show(daemon, ...(projects.length ? projects
      : [h('section', {}, h('p', {}, 'No projects yet: create an agent with ',
        h('code', {}, 'berth agent new NAME'), ' in a repository.'))]));
    problem(null);
  };
  const later = debounce(render, 30);
  return { render, onEvent: later, close() {} };
}

function agentPage(repo, name) {
  const target = { repo, name };
  const logPre = h('pre', { class: 'log', tabindex: '0', 'aria-label': `Output of ${name}`,
    'aria-live': 'off' });
  const logStatus = h('p', { class: 'muted', role: 'status' }, 'connecting to the log…');
  const logs = new EventSource(
    `/v1/agents/logs?repo=${encodeURIComponent(repo)}&name=${encodeURIComponent(name)}`);
  logs.addEventListener('open', () => { logStatus.textContent = 'following the log live'; });
  logs.addEventListener('error', () => {
    logStatus.textContent = 'the log stream was lost; reconnecting…';
  });
  logs.addEventListener('reset', () => logPre.replaceChildren());
  logs.addEventListener('line', (msg) => {
    const atBottom = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 4;
    logPre.append(`${msg.data}\n`);
    while (logPre.childNodes.length > MAX_LOG_LINES) logPre.firstChild.remove();
    if (atBottom) logPre.scrollTop = logPre.scrollHeight;
  });
  const terminal = h('div', {});
  let term = null;

  const render = async () => {
    let a, inbox = null, turns = null, timers = null, hooks = null;
    try {
      a = await api('POST', '/v1/agents/show', target);
      if (a.turn || a.tty) {
        [inbox, turns, timers, hooks] = await Promise.all([
          api('POST', '/v1/inbox/list', target),
          api('POST', '/v1/turns/list', target),
          api('POST', '/v1/timers/list', target),
          api('POST', '/v1/hooks/list', target),
        ]);
      }
    } catch (e) {
      problem(`Cannot load agent ${name}. ${e.message}`);
      return;
    }
    const def = [
      ['kind', a.kind], ['state', stateBadge(a.state)], ['pid', a.pid ?? '—'],
      ['up', hasProcess(a.state) ? ago(a.started_ms) : '—'], ['restarts', a.restarts],
      ['last exit', a.exit_code ?? '—'], ['command', a.command ?? '—'],
      ['turn command', a.turn], ['branch', a.branch ?? '—'], ['base', a.base],
      ['runs on', a.on], ['workspace', a.workspace], ['restart policy', a.restart],
      ['readiness', a.ready || 'when started'], ['terminal', a.tty ? 'yes' : 'no'],
      ['log', a.log],
    ].filter(([, v]) => v !== undefined && v !== null);
    show(
      h('section', { 'aria-labelledby': 'agent-h' },
        h('h2', { id: 'agent-h' }, `${a.kind} ${a.name}`),
        h('p', { class: 'muted' }, a.project),
        advice(a) ? h('p', { class: 'advice' }, advice(a)) : null,
        agentActions(a),
        h('h3', {}, 'Definition'),
        h('dl', {}, def.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
      a.tty ? terminalSection(a) : null,
      inbox ? inboxSection(a, inbox.items, turns.turns) : null,
      timers ? triggersSection(timers.timers, hooks.hooks) : null,
      h('section', { 'aria-labelledby': 'log-h' },
        h('h2', { id: 'log-h' }, 'Output'), logStatus, logPre));
    problem(null);
  };

  function terminalSection(a) {
    const open = h('button', { type: 'button', dataset: { key: 'terminal-open' } },
      term ? 'Close terminal' : 'Open terminal');
    const readOnly = h('input', { type: 'checkbox', id: 'read-only', dataset: { key: 'ro' } });
    open.addEventListener('click', () => {
      if (term) { term.close(); term = null; terminal.replaceChildren(); render(); return; }
      term = openTerminal(terminal, a, readOnly.checked, () => { term = null; });
      render();
    });
    return h('section', { 'aria-labelledby': 'term-h' },
      h('h2', { id: 'term-h' }, 'Terminal'),
      hasProcess(a.state)
        ? h('div', { class: 'actions' }, open,
          h('label', { for: 'read-only' }, readOnly, 'watch only'))
        : h('p', { class: 'muted' }, 'Start the agent to use its terminal.'),
      terminal);
  }

  function inboxSection(a, items, turnList) {
    const text = h('textarea', { id: 'message', dataset: { key: 'message' },
      'aria-label': `Message to ${a.name}` });
    const send = h('button', { type: 'submit', dataset: { key: 'send' } }, 'Send');
    const form = h('form', { class: 'inline' }, text, send);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const body = { ...target, text: text.value };
      act(send, 'Sending the message', async () => {
        await api('POST', '/v1/inbox/send', body);
        text.value = '';
      });
    });
    return h('section', { 'aria-labelledby': 'inbox-h' },
      h('h2', { id: 'inbox-h' }, 'Inbox'),
      items.length === 0 ? h('p', { class: 'muted' }, 'Nothing queued or delivered yet.')
        : h('div', { class: 'table' }, h('table', {},
          h('thead', {}, h('tr', {}, ['id', 'state', 'priority', 'source', 'text', 'queued']
            .map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, items.slice(-50).reverse().map((i) => h('tr', {},
            h('td', {}, i.id), h('td', {}, stateBadge(i.state)), h('td', {}, i.priority),
            h('td', {}, i.source), h('td', {}, i.text.slice(0, 200)),
            h('td', {}, time(i.created_ms))))))),
      form,
      h('h3', {}, 'Turns'),
      turnList.length === 0 ? h('p', { class: 'muted' }, 'No turns yet.')
        : h('div', { class: 'table' }, h('table', {},
          h('thead', {}, h('tr', {}, ['id', 'item', 'attempt', 'status', 'started', 'took', 'exit']
            .map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, turnList.slice(-50).reverse().map((t) => h('tr', {},
            h('td', {}, t.id), h('td', {}, t.item), h('td', {}, t.attempt),
            h('td', {}, stateBadge(t.status)), h('td', {}, time(t.started_ms)),
            h('td', {}, t.duration_ms === null ? '—' : `${(t.duration_ms / 1000).toFixed(1)} s`),
            h('td', {}, t.exit_code ?? '—')))))));
  }

  // What feeds the inbox besides messages: timers (`berth timer add`) and webhooks
  // (`berth hook add`).
  function triggersSection(timerList, hookList) {
    return h('section', { 'aria-labelledby': 'triggers-h' },
      h('h2', { id: 'triggers-h' }, 'Timers and webhooks'),
      timerList.length === 0 && hookList.length === 0
        ? h('p', { class: 'muted' }, 'None: `berth timer add` and `berth hook add` make them.')
        : h('ul', {},
          timerList.map((t) => h('li', {}, `timer ${t.id}: ${t.kind} ${t.spec} (${t.zone}), next `,
            t.next_ms ? time(t.next_ms) : 'never', `, fired ${t.fired} times: `, h('q', {}, t.message))),
          hookList.map((k) => h('li', {}, `webhook ${k.hook}: POST `, h('code', {}, k.path)))));
  }

  const later = debounce(render, 30);
  return {
    render,
    onEvent(ev) { if (!ev.subject || ev.subject === name) later(); },
    close() { logs.close(); if (term) term.close(); },
  };
}

// The agent's terminal in the page: xterm.js over the attach WebSocket. Output arrives as binary
// messages, events as text; keys go out as binary, the window size as a `resize` control.
function openTerminal(container, a, readOnly, onEnd) {
  const status = h('p', { role: 'status' }, 'attaching…');
  const box = h('div', { class: 'terminal' });
  container.replaceChildren(status, box);
  let ws = null;
  let closed = false;
  const giveUp = setTimeout(() => {
    if (ws && ws.readyState !== WebSocket.OPEN) {
      status.textContent = 'The terminal did not attach within 10 s; close it and try again.';
      ws.close();
    }
  }, 10000);
  (async () => {
    const link = h('link', { rel: 'stylesheet', href: '/assets/vendor/xterm.css' });
    document.head.append(link);
    const [{ Terminal }, { FitAddon }] = await Promise.all([
      import('/assets/vendor/xterm.mjs'), import('/assets/vendor/addon-fit.mjs')]);
    if (closed) return;
    const term = new Terminal({ convertEol: false, scrollback: 1000, disableStdin: readOnly,
      screenReaderMode: true });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box);
    fit.fit();
    const q = new URLSearchParams({ repo: a.project, name: a.name, rows: term.rows,
      cols: term.cols, read_only: readOnly });
    ws = new WebSocket(`ws://${location.host}/v1/agents/attach?${q}`);
    ws.binaryType = 'arraybuffer';
    const encoder = new TextEncoder();
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') {
        const ev = JSON.parse(m.data);
        if (ev.event === 'attached') {
          clearTimeout(giveUp);
          status.textContent = readOnly ? 'attached (watching only)' : 'attached: type in the terminal';
          term.focus();
        } else if (ev.event === 'exit') {
          status.textContent = `the program exited (${ev.code ?? `signal ${ev.signal}`})`;
        }
      } else {
        term.write(new Uint8Array(m.data));
      }
    };
    ws.onclose = (e) => {
      clearTimeout(giveUp);
      if (!closed) status.textContent = `detached${e.reason ? `: ${e.reason}` : ''}`;
      onEnd();
    };
    term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(d)); });
    term.onResize(({ rows, cols }) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ resize: { rows, cols } }));
    });
    window.addEventListener('resize', () => fit.fit());
  })().catch((e) => { status.textContent = `The terminal could not be opened: ${e.message}`; });
  return { close() { closed = true; clearTimeout(giveUp); if (ws) ws.close(1000); } };
}

function pairingPage(repo) {
  const diffs = new Map(); // refname → the <pre> showing its diff, once asked for
  const diffButton = (c) => {
    const b = h('button', { type: 'button', dataset: { key: `diff:${c.refname}` },
      'aria-expanded': diffs.has(c.refname) ? 'true' : 'false' },
    diffs.has(c.refname) ? 'Hide diff' : 'Show diff');
    b.addEventListener('click', () => {
      if (diffs.has(c.refname)) { diffs.delete(c.refname); render(); return; }
      act(b, `The diff of ${c.path}`, async () => {
        const d = await api('POST', '/v1/pair/conflict', { repo, refname: c.refname });
        const lines = d.diff ? d.diff.split('\n') : ['(the kept version and the file now are equal)'];
        diffs.set(c.refname, h('pre', { class: 'diff', tabindex: '0',
          'aria-label': `kept version of ${c.path} (-) against the file now (+)` },
        lines.map((l) => h('span', { dataset: { sign: l[0] === '+' || l[0] === '-' ? l[0] : ' ' } },
          `${l}\n`))));
      });
    });
    return b;
  };
  const render = async () => {
    let st, agents;
    try {
      [st, agents] = await Promise.all([
        api('POST', '/v1/pair/status', { repo }),
        api('POST', '/v1/agents/list', { repo }),
      ]);
    } catch (e) {
      problem(`Cannot load the pairing of ${repo}. ${e.message}`);
      return;
    }
    const paired = st.state !== 'off';
    const choice = h('select', { id: 'pair-agent', dataset: { key: 'pair-agent' } },
      agents.agents.filter((a) => a.kind === 'agent').map((a) =>
        h('option', { value: a.name, selected: a.name === st.agent }, a.name)));
    const button = (key, label, fn) => {
      const b = h('button', { type: 'button', dataset: { key } }, label);
      b.addEventListener('click', () => act(b, label, fn));
      return b;
    };
    const start = button('pair-start', paired ? 'Switch' : 'Pair', () =>
      api('POST', '/v1/pair/start', { repo, agent: choice.value }, ACTION_TIMEOUT_MS));
    show(h('section', { 'aria-labelledby': 'pair-h' },
      h('h2', { id: 'pair-h' }, `Pairing of ${repo}`),
      h('p', {}, stateBadge(st.state), ' ', st.describe),
      notices(st.notices),
      h('dl', {},
        h('dt', {}, 'agent'), h('dd', {}, st.agent ?? '—'),
        h('dt', {}, 'branch'), h('dd', {}, st.branch ?? '—'),
        h('dt', {}, 'before pairing'), h('dd', {}, st.original_branch ?? '—'),
        h('dt', {}, 'snapshot'), h('dd', {}, st.snapshot ?? '—'),
        h('dt', {}, 'last agreed'), h('dd', {}, st.last_sync_ms ? `${ago(st.last_sync_ms)} ago` : '—'),
        h('dt', {}, 'changes carried'), h('dd', {}, `${st.to_user} to you, ${st.to_agent} to the agent`),
        h('dt', {}, 'commits carried'),
        h('dd', {}, `${st.commits_to_user} to you, ${st.commits_to_agent} to the agent`),
        h('dt', {}, 'edit latency'),
        h('dd', {}, st.latency ? `p50 ${st.latency.p50_ms.toFixed(1)} ms, p99 ${st.latency.p99_ms.toFixed(1)} ms` : '—')),
      h('div', { class: 'actions' },
        agents.agents.length ? [h('label', { for: 'pair-agent' }, 'agent'), choice, start] : null,
        paired ? button('pair-flush', 'Flush', () =>
          api('POST', '/v1/pair/flush', { repo }, ACTION_TIMEOUT_MS)) : null,
        paired ? button('pair-stop', 'Stop pairing', () =>
          api('POST', '/v1/pair/stop', { repo }, ACTION_TIMEOUT_MS)) : null),
      h('h3', {}, 'Files not synced'),
      st.warnings.length ? h('ul', {}, st.warnings.map((w) => h('li', {}, w)))
        : h('p', { class: 'muted' }, 'None.'),
      h('h3', {}, 'Kept conflicts'),
      st.conflicts.length ? h('ul', {}, st.conflicts.map((c) => h('li', {},
        h('code', {}, c.path), ` (${time(c.time_ms)}): the agent's version is kept at `,
        h('code', {}, c.refname), ' ', diffButton(c), diffs.get(c.refname))))
        : h('p', { class: 'muted' }, 'None.')));
    problem(null);
  };
  const later = debounce(render, 30);
  return { render, onEvent(ev) { if (ev.kind.startsWith('pair')) later(); }, close() {} };
}

function eventsPage() {
  const filter = h('input', { type: 'search', id: 'filter', dataset: { key: 'filter' },
    placeholder: 'kind or subject, e.g. agent.exited' });
  const body = h('tbody', {});
  const row = (ev) => h('tr', {},
    h('td', {}, ev.seq), h('td', {}, time(ev.time_ms)), h('td', {}, ev.kind),
    h('td', {}, ev.subject ?? ''), h('td', {}, h('code', {}, JSON.stringify(ev.data))));
  const matches = (ev) => {
    const f = filter.value.trim();
    return !f || ev.kind.includes(f) || (ev.subject || '').includes(f);
  };
  const fill = () => body.replaceChildren(...app.events.filter(matches).reverse().map(row));
  filter.addEventListener('input', fill);
  const render = async () => {
    try {
      const from = Math.max(0, app.lastSeq - 200);
      const page = await api('GET', `/v1/events/log?since=${from}&limit=200`);
      const known = new Set(app.events.map((e) => e.seq));
      app.events = [...page.events.filter((e) => !known.has(e.seq)), ...app.events]
        .sort((x, y) => x.seq - y.seq);
    } catch (e) {
      problem(`Cannot load the event log. ${e.message}`);
    }
    fill();
    if (!main().contains(body)) {
      show(h('section', { 'aria-labelledby': 'events-h' },
        h('h2', { id: 'events-h' }, 'Events'),
        h('label', { for: 'filter' }, 'Filter ', filter),
        h('div', { class: 'table' }, h('table', {},
          h('thead', {}, h('tr', {}, ['seq', 'time', 'kind', 'subject', 'data']
            .map((c) => h('th', { scope: 'col' }, c)))), body))));
    }
  };
  return {
    render,
    onEvent(ev) { if (matches(ev)) body.prepend(row(ev)); },
    close() {},
  };
}

// ---------------------------------------------------------------- routing

// Shows the page the address names; after a navigation (not the first load) the focus moves to
// the new content, so a keyboard or screen reader user starts there.
function route(event) {
  if (app.view) app.view.close();
  problem(null);
  if (event) app.prefetched = null;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  let page = 'overview';
  if (parts[0] === 'agent' && parts.length === 3) {
    app.view = agentPage(parts[1], parts[2]);
    page = null;
  } else if (parts[0] === 'pairing' && parts.length === 2) {
    app.view = pairingPage(parts[1]);
    page = null;
  } else if (parts[0] === 'events') {
    app.view = eventsPage();
    page = 'events';
  } else {
    app.view = overviewPage();
  }
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.nav === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  app.view.render();
  if (event) main().focus({ preventScroll: true });
}

async function start() {
  try {
    // Both at once: the overview is the first page's data and says where the event stream
    // starts (its daemon status carries the last event's sequence number).
    const [session, overview] = await Promise.all([
      api('GET', '/v1/console/session'), api('GET', '/v1/overview')]);
    app.csrf = session.csrf;
    app.lastSeq = overview.daemon.activity.last_event_seq;
    app.prefetched = overview;
  } catch (e) {
    if (e.status !== 401) {
      connection('out', 'not connected');
      problem(`The console cannot start. ${e.message}`);
    }
    return;
  }
  connect();
  window.addEventListener('hashchange', route);
  route();
}

start();
