// The demo as a newcomer walks it, in headless Chromium: sign in, the overview of the synced
// account, a change made in Keap (the sandbox) arriving, the printed psql step reaching Keap, and
// the waiting conflict resolved and pushed. Run by sidecar/cmd/keapsync (TestDemoWalkInBrowser)
// against a running `keapsync demo`, on a first run and on a rerun.
//
// env: BASE_URL (dashboard), SANDBOX_URL, CONTROL_URL, TENANT, CONTACTS and HOOKS (the counts
// the demo printed), ARTIFACTS (screenshot dir), SHOTS (all: a screenshot at each step; otherwise
// only on failure, see shots.mjs), CHROMIUM
import { chromium } from 'playwright-core';
import { shooter, failureShots } from './shots.mjs';

const BASE = process.env.BASE_URL;
const SANDBOX = process.env.SANDBOX_URL;
const CONTROL = process.env.CONTROL_URL;
const OUT = process.env.ARTIFACTS;
const problems = [];

function check(ok, what) {
  if (!ok) throw new Error('check failed: ' + what);
  console.log('ok   ' + what);
}

async function control(step) {
  const r = await fetch(CONTROL + '/' + step, { method: 'POST' });
  const body = await r.text();
  if (!r.ok) throw new Error(`control ${step}: ${r.status} ${body}`);
  return body.trim();
}

// until polls f (an async predicate) for up to 30 s: a bound on a hang, not a speed claim.
async function until(what, f) {
  for (const end = Date.now() + 30000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    if (await f()) return;
  }
  throw new Error('timed out waiting for ' + what);
}

async function keapContact(id) {
  const state = await (await fetch(SANDBOX + '/_sandbox/state')).json();
  return state.contacts.find((c) => c.id === id);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.setDefaultTimeout(15000);
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  const take = shooter(OUT);
  const shot = (name) => take(name, page);

  // Sign in: the first page is the account the demo connected, with the counts it printed.
  await page.goto(BASE + '/');
  await page.getByRole('button', { name: 'Sign in as the demo user' }).click();
  await page.waitForURL(BASE + '/');
  check((await page.textContent('h1')).includes(process.env.TENANT), 'the first page is the connected account ' + process.env.TENANT);
  const contacts = Number(process.env.CONTACTS).toLocaleString('en-US');
  check((await page.textContent('[data-kpi=contacts]')).trim() === contacts, `overview shows the ${contacts} contacts the demo printed`);
  const state = await page.getAttribute('[data-state]', 'data-state');
  check(state === 'in_sync' || state === 'catching_up', `the account is ${state}, not "connected" without a token`);
  await shot('01-overview');
  await page.getByRole('link', { name: 'Sync health' }).click();
  await page.waitForSelector('h1:has-text("Sync health")');
  check(!(await page.textContent('#health')).includes('Not started'), 'sync health shows the backfill that ran');
  const hooks = process.env.HOOKS;
  check((await page.textContent('#health')).includes(`${hooks} / ${hooks} verified`), `sync health shows the ${hooks} hooks the demo printed`);
  await shot('02-health');

  // The printed curl step: a change in Keap arrives in Postgres and the dashboard.
  const r = await fetch(SANDBOX + '/_sandbox/contacts/1', { method: 'PATCH', body: '{"given_name": "Changed in Keap"}' });
  check(r.ok, 'the printed curl PATCH of contact 1 is accepted');
  // Waiting asks the dashboard for the page's HTML (with the page's session), not the browser
  // to load and render it every 200 ms: a render per poll was a quarter of the walk's CPU. The
  // browser then loads the page once and counts its rows.
  const search = BASE + '/data/contacts?q=Changed+in+Keap';
  await until('the Keap edit in the dashboard', async () => (await (await page.request.get(search)).text()).includes('<td>Changed in Keap</td>'));
  await page.goto(search);
  check((await page.locator('table tbody tr').count()) === 1, 'the change made in Keap is found in the dashboard');
  await shot('03-keap-edit-arrived');

  // The printed psql step reaches Keap.
  await control('psql-step');
  await until('the psql edit in Keap', async () => (await keapContact(2))?.job_title === 'Edited in Postgres');
  check(true, 'the printed psql UPDATE reached Keap (the sandbox)');

  // The conflict the demo announced waits, and resolving it pushes the kept value to Keap.
  await page.goto(BASE + '/conflicts');
  check(await page.locator('#conflict-list tbody tr').count() === 1, 'one conflict waits under Conflicts, as printed');
  await shot('04-conflicts');
  await page.locator('#conflict-list tr', { hasText: 'Edited in Postgres' }).getByRole('link', { name: 'Review' }).click();
  await page.waitForSelector('.sides');
  check((await page.textContent('.sides')).includes('Edited in Keap'), 'the conflict shows Keap\'s side');
  await shot('05-conflict');
  await page.getByRole('button', { name: 'Keep local value' }).click();
  await page.waitForURL(/done=resolved/);
  await until('the kept value in Keap', async () => (await keapContact(3))?.given_name === 'Edited in Postgres');
  check(true, 'the kept value was pushed to Keap');
  await shot('06-resolved');
  check(problems.length === 0, 'no console errors: ' + problems.join('; '));
  if (process.env.SHOTS === 'all') console.log('screenshots: ' + OUT);
} catch (e) {
  await failureShots(browser, OUT);
  throw e;
} finally {
  await browser.close();
}
