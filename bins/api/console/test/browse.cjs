// Drives the operator console in headless chromium (playwright-core), as operators would:
// the flows of the console's acceptance, a screenshot of every page, an axe-core scan of
// every page, and a record of every request the pages make. Started by the Rust test
// `bins/worker/tests/it/console.rs`, which prepares the stack and checks the outcomes in
// the database and on the chain; this script fails (exit 1) on anything the browser sees
// wrong: a console error, a CSP violation, a request leaving 127.0.0.1, a serious or
// critical accessibility violation, an action button shown to a viewer, a forged action
// not refused.
//
// Environment: CONSOLE_URL (http://127.0.0.1:<port>), CHROMIUM_BIN, SCREENSHOT_DIR,
// OPERATOR_EMAIL, ADMIN_EMAIL, VIEWER_EMAIL, CONSOLE_PASSWORD, ALERT_ID, REWARD_ID,
// MEMBER_ID, FAILED_TX, BREAKER, NONCE_ADDRESS, DEAD_LETTER. NODE_PATH must reach playwright-core and
// axe-core.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('CONSOLE_URL');
const ORIGIN = new URL(BASE).origin;
const SHOTS = env('SCREENSHOT_DIR');
const PASSWORD = env('CONSOLE_PASSWORD');
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const problems = [];
const requests = [];
const screenshots = [];
const scanned = [];
let cspSelfCheck = false;
let refreshed = false;

function step(message) { process.stderr.write(`browse: ${message}\n`); }

async function open(browser, viewport) {
  const context = await browser.newContext({ viewport, serviceWorkers: 'block' });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
  const page = await context.newPage();
  page.on('request', (r) => {
    const url = r.url();
    requests.push(url);
    if (!url.startsWith(`${ORIGIN}/`) && !url.startsWith('data:')) problems.push(`a request left ${ORIGIN}: ${url}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught error on ${page.url()}: ${e.message}`));
  return { context, page };
}

let lastPage = null;

async function loaded(page, id) {
  lastPage = page;
  await page.waitForSelector(`#page > section[data-loaded="${id}"]:not([data-stale])`, { timeout: 15000 });
}

async function show(page, id, params) {
  await page.evaluate(() => {
    const s = document.querySelector('#page > section');
    if (s) s.dataset.stale = '1';
  });
  const q = params ? `?${new URLSearchParams(params)}` : '';
  await page.evaluate((hash) => { location.hash = hash; }, `#/${id}${q}`);
  await loaded(page, id);
}

async function axe(page, name) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') {
      const where = v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ');
      problems.push(`axe on ${name}: ${v.id} (${v.impact}) ${v.help}: ${where}`);
    }
  }
  scanned.push(name);
}

async function capture(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
  await axe(page, name);
}

async function signIn(page, email, landing) {
  await page.goto(`${BASE}/console`);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await loaded(page, landing);
}

// Signs in and moves with the keyboard alone: the e-mail field has the focus, Enter submits,
// Tab reaches the skip link first and then the pages, every focus ring shows.
async function keyboardSignIn(page, email, landing) {
  await page.goto(`${BASE}/console`);
  const first = await page.evaluate(() => document.activeElement && document.activeElement.id);
  if (first !== 'login-email') problems.push(`the sign-in page does not focus the e-mail field (${first})`);
  await page.keyboard.type(email);
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await loaded(page, landing);
  await page.reload();
  await loaded(page, landing);
  const ring = () => page.evaluate(() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return { text: el.textContent.trim(), outline: style.outlineStyle, width: parseFloat(style.outlineWidth), visible: box.left >= 0 && box.width > 0 };
  });
  await page.keyboard.press('Tab');
  const skip = await ring();
  if (skip.text !== 'Skip to content' || !skip.visible) problems.push(`the first Tab does not show the skip link: ${JSON.stringify(skip)}`);
  for (let i = 0; i < 10; i += 1) {
    await page.keyboard.press('Tab');
    const at = await ring();
    if (at.outline === 'none' || at.width < 2) problems.push(`no visible focus ring on "${at.text}"`);
    if (at.text === 'Transactions') break;
  }
  const chosen = await ring();
  if (chosen.text !== 'Transactions') problems.push('Tab never reached the Transactions link');
  await page.keyboard.press('Enter');
  await loaded(page, 'transactions');
  // the skip link lands on the content and stays on the page
  await page.reload();
  await loaded(page, 'transactions');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  const after = await page.evaluate(() => [document.activeElement.id, location.hash]);
  if (after[0] !== 'main' || after[1] !== '#/transactions') problems.push(`the skip link went to ${after}`);
}

async function signOut(page) {
  const { access, refresh } = await page.evaluate(() => JSON.parse(sessionStorage.getItem('haven.console.tokens')));
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await page.waitForSelector('#login:not([hidden])');
  const kept = await page.evaluate(() => sessionStorage.getItem('haven.console.tokens'));
  if (kept !== null) problems.push('tokens were kept after logging out');
  const res = await page.request.get(`${BASE}/api/v1/auth/whoami`, { headers: { authorization: `Bearer ${access}` } });
  if (res.status() !== 401) problems.push(`the access token still works after logging out: ${res.status()}`);
  const again = await page.request.post(`${BASE}/api/v1/auth/refresh`, { data: { refresh_token: refresh } });
  if (again.status() !== 401) problems.push(`the refresh token still works after logging out: ${again.status()}`);
}

// Clicks the action button named `name` and waits for the status line to say `expect`.
async function act(page, name, expect) {
  await page.getByRole('button', { name, exact: true }).click();
  const flash = page.locator('#flash');
  await flash.filter({ hasText: expect }).waitFor({ timeout: 15000 }).catch(async () => {
    throw new Error(`after "${name}" the status line says "${await flash.textContent()}", not "${expect}"`);
  });
}

async function operator(browser) {
  step('operator: sign in, review an alert, approve a held reward, retry a failed transaction');
  const { context, page } = await open(browser, DESKTOP);
  await signIn(page, env('OPERATOR_EMAIL'), 'alerts');
  await capture(page, 'operator-alerts');
  const alert = env('ALERT_ID');
  await page.getByLabel(`Note on alert ${alert}`).fill('looked at the velocity: a known partner batch');
  await act(page, `Acknowledge alert ${alert}`, 'is acknowledged');
  await page.getByLabel(`Note on alert ${alert}`).fill('closed: expected traffic');
  await act(page, `Resolve alert ${alert}`, 'is resolved');
  await act(page, `Approve reward ${env('REWARD_ID')}`, 'approved: it will be minted');
  await show(page, 'alerts', { state: 'resolved' });
  await capture(page, 'operator-alerts-resolved');

  await show(page, 'transactions', { status: 'failed' });
  await capture(page, 'operator-transactions');
  await act(page, `Retry transaction ${env('FAILED_TX')}`, 'is queued again');
  await show(page, 'transactions', { tx: env('FAILED_TX'), status: 'queued' });
  await capture(page, 'operator-transaction-detail');
  await show(page, 'rewards', { member: env('MEMBER_ID') });
  await capture(page, 'operator-rewards');
  // breakers are the admins' (system:operate): the page says so, with no button
  await show(page, 'breakers');
  const says = await page.locator('#page').innerText();
  if (!says.includes('cannot see this page') || await page.locator('[data-action]').count()) {
    problems.push(`an operator's breakers page: ${says}`);
  }
  // An access token about to expire is refreshed before the next call (a new pair).
  const before = await page.evaluate(() => {
    const t = JSON.parse(sessionStorage.getItem('haven.console.tokens'));
    sessionStorage.setItem('haven.console.tokens', JSON.stringify({ ...t, expires: Date.now() }));
    return t.access;
  });
  await show(page, 'sessions');
  const after = await page.evaluate(() => JSON.parse(sessionStorage.getItem('haven.console.tokens')).access);
  if (after === before) problems.push('the access token was not refreshed before it expired');
  refreshed = after !== before;
  await capture(page, 'operator-sessions');
  await signOut(page);
  await capture(page, 'sign-in');
  await context.close();
}

async function admin(browser) {
  step('admin: status, breakers (reset one), nonces, audit, webhooks');
  const { context, page } = await open(browser, DESKTOP);
  await signIn(page, env('ADMIN_EMAIL'), 'status');
  await capture(page, 'admin-status');
  await show(page, 'breakers');
  await capture(page, 'admin-breakers');
  await act(page, `Reset breaker ${env('BREAKER')}`, 'reset: calls pass again');
  await show(page, 'nonces');
  await capture(page, 'admin-nonce-accounts');
  await show(page, 'nonces', { chain: '31337', address: env('NONCE_ADDRESS') });
  await capture(page, 'admin-nonces');
  // a reset asks for confirmation first
  await page.getByRole('button', { name: 'Reset nonce…', exact: true }).click();
  await capture(page, 'admin-nonce-reset-confirmation');
  await act(page, 'Confirm: Reset nonce', 'lease(s) dropped');
  await show(page, 'audit', { prefix: 'fraud.' });
  await capture(page, 'admin-audit');
  await show(page, 'webhooks');
  await capture(page, 'admin-webhooks');
  await act(page, `Replay message ${env('DEAD_LETTER')}`, 'queued for one more attempt');
  await show(page, 'rewards');
  await capture(page, 'admin-redemptions');
  // The policy refuses inline script, and a violation is seen (so none went unseen above).
  const before = problems.length;
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.inlineRan = true';
    document.head.append(s);
  });
  await page.waitForTimeout(300);
  const ran = await page.evaluate(() => window.inlineRan === true);
  const seen = problems.splice(before).some((p) => p.includes('CSP violation'));
  cspSelfCheck = !ran && seen;
  if (!cspSelfCheck) problems.push(`the CSP self-check failed: inline script ran=${ran}, violation seen=${seen}`);
  await signOut(page);
  await context.close();

  step('admin on a phone-sized screen');
  const phone = await open(browser, PHONE);
  await signIn(phone.page, env('ADMIN_EMAIL'), 'status');
  await capture(phone.page, 'phone-status');
  await show(phone.page, 'alerts');
  await capture(phone.page, 'phone-alerts');
  await signOut(phone.page);
  await phone.context.close();
}

async function viewer(browser) {
  step('viewer: every page without action buttons; forged actions refused');
  const { context, page } = await open(browser, DESKTOP);
  await keyboardSignIn(page, env('VIEWER_EMAIL'), 'alerts');
  for (const [id, params] of [['status'], ['alerts'], ['transactions', { status: 'failed' }], ['rewards', { member: env('MEMBER_ID') }],
    ['breakers'], ['nonces'], ['audit'], ['webhooks'], ['sessions']]) {
    await show(page, id, params);
    const buttons = await page.locator('[data-action]').count();
    if (buttons) problems.push(`the viewer sees ${buttons} action button(s) on ${id}`);
    await capture(page, `viewer-${id}`);
  }
  const access = await page.evaluate(() => JSON.parse(sessionStorage.getItem('haven.console.tokens')).access);
  const forged = [
    ['POST', `/api/v1/admin/alerts/${env('ALERT_ID')}/transition`, { to: 'acknowledged', note: 'forged' }],
    ['POST', `/api/v1/admin/transactions/${encodeURIComponent(env('FAILED_TX'))}/retry`, {}],
    ['POST', `/api/v1/admin/health/circuit-breakers/${env('BREAKER')}/force-open`, {}],
  ];
  const refused = [];
  for (const [method, url, data] of forged) {
    const res = await page.request.fetch(`${BASE}${url}`, {
      method,
      data,
      headers: { authorization: `Bearer ${access}`, 'idempotency-key': `forged-${Date.now()}` },
    });
    refused.push([url, res.status()]);
    if (res.status() !== 403) problems.push(`a forged ${method} ${url} by the viewer answered ${res.status()}, not 403`);
  }
  await signOut(page);
  await context.close();
  return refused;
}

(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: env('CHROMIUM_BIN'),
    headless: true,
    // offline: no name resolves but 127.0.0.1, and no proxy
    args: ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', '--no-proxy-server', '--no-first-run'],
  });
  let refused = [];
  try {
    await operator(browser);
    await admin(browser);
    refused = await viewer(browser);
  } catch (e) {
    if (lastPage) {
      const text = await lastPage.locator('body').innerText().catch(() => '');
      step(`the page said:\n${text}`);
      await lastPage.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
    }
    throw e;
  } finally {
    await browser.close();
  }
  const offOrigin = requests.filter((u) => !u.startsWith(`${ORIGIN}/`) && !u.startsWith('data:'));
  const summary = { screenshots, scanned, requests: requests.length, offOrigin, refused, cspSelfCheck, refreshed, problems };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (problems.length) {
    step(`${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
})().catch((e) => {
  step(`failed: ${e.stack || e}`);
  if (problems.length) step(`problems so far:\n  ${problems.join('\n  ')}`);
  process.exit(2);
});
