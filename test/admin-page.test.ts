// The admin page in Debian's headless Chromium (driven by playwright-core): an approver answers a
// held request by clicking, a viewer gets no buttons, agent-chosen names stay text, CSP holds.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { adminApi, makeAdminToken } from './support/admin-api.js';
import { curl } from './support/curl.js';
import { startHttpOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { until } from './support/until.js';

const sha = (token: string): string => createHash('sha256').update(token).digest('hex');
const HOLDING_AGENT_TOKEN = 'coder-agent-token';
const LEARNING_AGENT_TOKEN = 'learner-agent-token';
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// What a hostile agent might ask for, hoping the page parses it as markup.
const MARKUP_HOST = '<img src=x onerror="window.pwned=1">.example.test';

describe('the admin page', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const sluice = keep(
      await startSluice({
        config: `${ALLOW_LOOPBACK}
mode: strict
agents:
  - { name: coder, token_sha256: ["${sha(HOLDING_AGENT_TOKEN)}"], on_unknown: hold, hold_timeout_ms: 60000 }
  - { name: learner, token_sha256: ["${sha(LEARNING_AGENT_TOKEN)}"], mode: learn }
`,
      }),
    );
    const browser: Browser = keep(await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS }));
    const approver = await makeAdminToken(sluice, 'alice', 'approver');
    const viewer = await makeAdminToken(sluice, 'victor', 'viewer');
    return { origin, sluice, browser, approver, viewer };
  });

  /** A fresh browser context on the page, logged in with `token`; page errors and CSP reports collected. */
  async function loggedIn(token: string, t: { after: (fn: () => Promise<void>) => void }): Promise<{ page: Page; problems: string[] }> {
    const { browser, sluice } = fixture();
    const context = await browser.newContext();
    t.after(() => context.close());
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${sluice.adminUrl}/`);
    await page.getByLabel('Admin API token').fill(token);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#who').getByText(/Logged in as/).waitFor();
    return { page, problems };
  }

  test('the page is served without a token, with a strict CSP and no inline script or style', async () => {
    const { sluice } = fixture();
    const response = await fetch(`${sluice.adminUrl}/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-security-policy'), CSP);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
    const html = await response.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)/, 'every script is a file');
    assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i, 'no inline style or event handler');
    const script = await fetch(`${sluice.adminUrl}/ui/app.js`);
    assert.equal(script.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal((await adminApi(sluice, 'GET', '/v1/status', undefined)).status, 401, 'the data behind it still needs a token');
  });

  test('an approver approves a held request for 1 h on the page and the held curl gets 200', async (t) => {
    const { origin, sluice, approver } = fixture();
    const waiting = curl(['-x', sluice.proxyUrl, '-U', `coder:${HOLDING_AGENT_TOKEN}`, `http://127.0.0.1:${origin.port}/held`]);
    await until(() => sluice.sluice.heldRequests === 1, 'the request to be held');
    const { page, problems } = await loggedIn(approver, t);
    assert.equal(await page.locator('#who').textContent(), 'Logged in as alice (approver)');
    const row = page.locator('#requests tbody tr', { hasText: String(origin.port) });
    await row.getByRole('button', { name: 'Approve 1 h' }).click();
    await page.getByText('Give a reason before approving').waitFor();
    assert.equal(sluice.sluice.heldRequests, 1, 'no reason, no approval');
    await row.getByRole('textbox').fill('needs the test origin');
    await row.getByRole('button', { name: 'Approve 1 h' }).click();

    const result = await waiting;
    assert.equal(result.status, 200, result.headers);
    assert.match(result.headers, /Sluice-Decision: allow; reason=approval_allow; rule=approval:apr_/i);
    const approvals = (await adminApi(sluice, 'GET', '/v1/approvals', approver)).body['approvals'] as { id: string; approver: string; reason: string; created: string; expires: string }[];
    assert.equal(approvals.length, 1);
    const [approval] = approvals;
    assert.deepEqual([approval?.approver, approval?.reason], ['alice', 'needs the test origin']);
    assert.equal(Date.parse(approval?.expires ?? '') - Date.parse(approval?.created ?? ''), 3_600_000);

    const listed = page.locator('#approvals tbody tr', { hasText: 'needs the test origin' });
    await listed.waitFor();
    await page.locator('#requests tbody').getByText('No pending requests.').waitFor();
    await listed.getByRole('button', { name: 'Revoke' }).click();
    await page.locator('#approvals tbody').getByText('No approvals in force.').waitFor();
    assert.deepEqual((await adminApi(sluice, 'GET', '/v1/approvals', approver)).body['approvals'], [], 'revoked through the API');

    // Evaluated in the page, where the DOM exists (this file is compiled without DOM types).
    const stored = JSON.parse(await page.evaluate<string>('JSON.stringify({ cookie: document.cookie, local: { ...localStorage }, session: { ...sessionStorage } })')) as Record<string, unknown>;
    for (const [where, value] of Object.entries(stored)) assert.ok(!JSON.stringify(value).includes(approver), `the token is not in ${where}`);
    assert.deepEqual(problems, [], 'no script error or CSP violation');
  });

  test('a viewer sees requests without buttons, and a host name full of markup is shown as text', async (t) => {
    const { sluice } = fixture();
    // Recorded as the proxy or the DNS server records a refused name; the store keeps it verbatim.
    const recorded = sluice.sluice.accessRequests.record({ name: 'coder', groups: [], mode: 'strict', via: 'token' }, MARKUP_HOST, 443);
    assert.ok(recorded !== null);
    t.after(() => {
      sluice.sluice.accessRequests.deny(recorded.id, 'test');
    });
    const { page, problems } = await loggedIn(fixture().viewer, t);
    const row = page.locator('#requests tbody tr', { hasText: MARKUP_HOST });
    await row.waitFor();
    assert.equal(await row.locator('td.host').textContent(), MARKUP_HOST);
    assert.equal(await page.locator('img').count(), 0, 'no element was injected');
    assert.equal(await page.evaluate<boolean>("'pwned' in window"), false, 'no injected handler ran');
    assert.equal(await page.getByRole('button', { name: /Approve|Deny|Revoke/ }).count(), 0, 'a viewer is offered nothing to click');
    assert.equal(await row.locator('td').last().textContent(), 'viewer: read only');
    assert.deepEqual(problems, []);

    const { page: approverPage } = await loggedIn(fixture().approver, t);
    const approverRow = approverPage.locator('#requests tbody tr', { hasText: MARKUP_HOST });
    // count() does not wait: the row must be drawn first, or the page may still be loading its data.
    await approverRow.getByRole('button', { name: 'Deny' }).waitFor();
    assert.equal(await approverRow.getByRole('button', { name: /Approve/ }).count(), 3, 'an approver gets the 1 h / 8 h / 24 h buttons');
    await approverRow.getByRole('button', { name: 'Deny' }).click();
    await approverPage.locator('#requests tbody').getByText('No pending requests.').waitFor();
    assert.equal(sluice.sluice.accessRequests.get(recorded.id)?.status, 'denied');
  });

  test('status shows each agent\'s mode; learned hosts download as a proposal', async (t) => {
    const { origin, sluice, viewer } = fixture();
    const learned = await curl(['-x', sluice.proxyUrl, '-U', `learner:${LEARNING_AGENT_TOKEN}`, `http://localhost:${origin.port}/learn-me`]);
    assert.equal(learned.status, 200, learned.headers);
    await until(async () => ((await adminApi(sluice, 'GET', '/v1/learned?agent=learner', viewer)).body['entries'] as unknown[]).length > 0, 'the host to be learned');
    const { page } = await loggedIn(viewer, t);
    assert.deepEqual(await page.locator('#agents tbody tr').allTextContents(), ['anonymousstrict', 'coderstrict', 'learnerlearn']);
    await page.locator('#learned tbody tr', { hasText: 'localhost' }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download proposal' }).click()]);
    assert.equal(download.suggestedFilename(), 'sluice-proposal.yaml');
    const proposal = await readFile(await download.path(), 'utf8');
    assert.match(proposal, /^rules:$/m);
    assert.match(proposal, /localhost/);
  });
});
