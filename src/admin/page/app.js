// The admin page's script: logs in with a token held in this closure only (never a cookie or web
// storage), calls /v1/* with it, and builds every cell with textContent so agent-chosen names stay text.
'use strict';
(() => {
  const RANK = { viewer: 0, approver: 1, admin: 2 };
  const HOUR_MS = 3_600_000;
  const APPROVAL_HOURS = [1, 8, 24];
  const REFRESH_MS = 10_000;
  /** { token, name, role } while logged in; the only place the token lives */
  let session = null;
  let refreshTimer = null;

  const byId = (id) => document.getElementById(id);

  function say(text, isError = false) {
    const message = byId('message');
    message.textContent = text;
    message.classList.toggle('error', isError);
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function call(token, method, path, body) {
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, data.error ? `${data.error.code}: ${data.error.message}` : `HTTP ${response.status}`);
    return data;
  }

  const api = (method, path, body) => call(session.token, method, path, body);
  const may = (role) => session !== null && RANK[session.role] >= RANK[role];

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = String(text);
    if (className !== undefined) node.className = className;
    return node;
  }

  function button(label, onClick) {
    const node = element('button', label);
    node.type = 'button';
    node.addEventListener('click', () => {
      node.disabled = true;
      onClick().catch(fail).finally(() => {
        node.disabled = false;
      });
    });
    return node;
  }

  /** Replaces a table's rows; `cells` are strings (shown as text) or ready-made nodes. */
  function fill(tableId, rows, empty) {
    const body = byId(tableId).tBodies[0];
    body.replaceChildren();
    if (rows.length === 0) {
      const cell = element('td', empty, 'hint');
      cell.colSpan = byId(tableId).tHead.rows[0].cells.length;
      body.insertRow().append(cell);
      return;
    }
    for (const cells of rows) {
      const row = body.insertRow();
      for (const [index, value] of cells.entries()) {
        const cell = row.insertCell();
        if (value instanceof Node) cell.append(value);
        else cell.textContent = value === null || value === undefined ? '' : String(value);
        if (index === 1) cell.className = 'host';
      }
    }
  }

  function answerControls(request) {
    const box = document.createDocumentFragment();
    const reason = element('input');
    reason.type = 'text';
    reason.placeholder = 'reason (required to approve)';
    reason.setAttribute('aria-label', `reason for ${request.agent} to reach ${request.host}`);
    box.append(reason);
    for (const hours of APPROVAL_HOURS) {
      box.append(
        button(`Approve ${hours} h`, async () => {
          const why = reason.value.trim();
          if (why === '') {
            say('Give a reason before approving: it is recorded with the approval.', true);
            reason.focus();
            return;
          }
          const reply = await api('POST', '/v1/approvals', { request: request.id, ttl_ms: hours * HOUR_MS, reason: why });
          say([`Approved ${request.agent} → ${request.host}:${request.port} for ${hours} h.`, ...reply.warnings].join(' '));
          await refresh();
        }),
      );
    }
    box.append(
      button('Deny', async () => {
        await api('POST', `/v1/requests/${encodeURIComponent(request.id)}/deny`);
        say(`Denied ${request.agent} → ${request.host}:${request.port}.`);
        await refresh();
      }),
    );
    return box;
  }

  function age(seconds) {
    if (seconds === null) return 'never downloaded';
    if (seconds < 120) return `${seconds} s`;
    if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
    return `${Math.floor(seconds / 3600)} h`;
  }

  async function refresh() {
    const [requests, approvals, learned, status] = await Promise.all([api('GET', '/v1/requests?status=pending'), api('GET', '/v1/approvals'), api('GET', '/v1/learned'), api('GET', '/v1/status')]);
    const canAnswer = may('approver');
    fill('requests', requests.requests.map((request) => [request.agent, request.host, request.port, request.count, request.last_seen, canAnswer ? answerControls(request) : 'viewer: read only']), 'No pending requests.');
    fill(
      'approvals',
      approvals.approvals.map((approval) => [
        approval.agent,
        approval.host,
        approval.port ?? 'any',
        approval.approver,
        approval.reason,
        approval.expires,
        canAnswer
          ? button('Revoke', async () => {
              await api('DELETE', `/v1/approvals/${encodeURIComponent(approval.id)}`);
              say(`Revoked ${approval.agent} → ${approval.host}.`);
              await refresh();
            })
          : '',
      ]),
      'No approvals in force.',
    );
    fill('learned', learned.entries.map((entry) => [entry.agent, entry.host, entry.port, entry.count, entry.last_seen]), 'Nothing learned yet.');
    const facts = [
      ['Default mode', status.mode],
      ['Rules in force', status.rules.count],
      ['Bundle version', status.rules.bundle_version ?? 'none (local rules)'],
    ];
    byId('status').replaceChildren(...facts.flatMap(([term, value]) => [element('dt', term), element('dd', value)]));
    fill('agents', status.agents.map((agent) => [agent.name, agent.mode]), 'No agents configured.');
    fill('blocklists', status.blocklists.map((list) => [list.source, list.entries, age(list.age_seconds), list.last_outcome ?? 'not yet']), 'No blocklists configured.');
  }

  async function downloadProposal() {
    const reply = await api('GET', '/v1/learned/proposal');
    const link = element('a');
    link.href = URL.createObjectURL(new Blob([reply.yaml], { type: 'application/yaml' }));
    link.download = 'sluice-proposal.yaml';
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 0);
    const leftOut = reply.left_out.map((entry) => `${entry.host} (${entry.why})`);
    say(leftOut.length === 0 ? 'Proposal downloaded: review it before adding it to rules/.' : `Proposal downloaded; left out: ${leftOut.join(', ')}.`);
  }

  function show(loggedIn) {
    byId('login').hidden = loggedIn;
    byId('console').hidden = !loggedIn;
    byId('who').hidden = !loggedIn;
    byId('logout').hidden = !loggedIn;
  }

  function logout(message, isError) {
    session = null;
    clearInterval(refreshTimer);
    refreshTimer = null;
    show(false);
    say(message, isError);
  }

  function fail(error) {
    if (error instanceof ApiError && error.status === 401) logout(`The token was refused (${error.message}); log in again.`, true);
    else say(error.message, true);
  }

  async function login(event) {
    event.preventDefault();
    const field = byId('token');
    const token = field.value.trim();
    field.value = '';
    try {
      const who = await call(token, 'GET', '/v1/whoami');
      session = { token, name: who.name, role: who.role };
    } catch (error) {
      say(error instanceof ApiError && error.status === 401 ? 'That token was not recognised.' : error.message, true);
      return;
    }
    byId('who').textContent = `Logged in as ${session.name} (${session.role})`;
    show(true);
    say('');
    await refresh().catch(fail);
    refreshTimer = setInterval(() => refresh().catch(fail), REFRESH_MS);
  }

  document.addEventListener('DOMContentLoaded', () => {
    byId('login').addEventListener('submit', (event) => {
      login(event).catch(fail);
    });
    byId('logout').addEventListener('click', () => logout('Logged out.', false));
    byId('refresh').addEventListener('click', () => refresh().catch(fail));
    byId('proposal').addEventListener('click', () => downloadProposal().catch(fail));
  });
})();
