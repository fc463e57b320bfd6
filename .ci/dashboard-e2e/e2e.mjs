// End-to-end test of the keapsync dashboard in headless Chromium. Run by dashboard/e2e_test.go,
// which starts the dashboard (local mode) over a seeded database and a control server that
// changes the database the way a person in the SQL editor would.
//
// env: BASE_URL, CONTROL_URL, ARTIFACTS (screenshot dir), SHOTS (all: a screenshot at each step;
// otherwise only on failure, see shots.mjs), CHROMIUM (executable path)
import { chromium } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { shooter, failureShots } from './shots.mjs';

const BASE = process.env.BASE_URL;
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

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await ctx.newPage();
  page.setDefaultTimeout(15000);
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push('console error: ' + m.text()); // CSP violations land here
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('dialog', (d) => d.accept());
  const take = shooter(OUT);
  const shot = (name, p = page) => take(name, p);

  if (process.env.MODE === 'realtime') {
    // Supabase mode: password sign-in through GoTrue, live updates over the Realtime websocket.
    await page.goto(BASE + '/');
    check(page.url().startsWith(BASE + '/signin'), 'signed-out visit lands on the sign-in page');
    await page.fill('#email', 'demo@keapsync.local');
    await page.fill('#password', 'right');
    await shot('rt-01-signin');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(BASE + '/');
    check(await page.getAttribute('body', 'data-live-mode') === 'realtime', 'page uses Realtime');
    await page.waitForSelector('body[data-live=on]').catch((e) => {
      throw new Error(e.message + '\nlive status: ' + problems.join('; '));
    });
    await page.evaluate(() => { window.__sameDocument = true; });
    await control('insert-contact');
    await page.waitForFunction(() => document.querySelector('[data-kpi=contacts]').textContent.trim() === '1,201');
    check(await page.evaluate(() => window.__sameDocument === true), 'broadcast over the Realtime channel updated the KPI, no reload');
    await shot('rt-02-overview-live');
    check(problems.length === 0, 'no console errors or CSP violations: ' + problems.join('; '));
    if (process.env.SHOTS === 'all') console.log('screenshots: ' + OUT);
    await browser.close();
    process.exit(0);
  }

  // Sign in (local mode).
  await page.goto(BASE + '/');
  check(page.url().startsWith(BASE + '/signin'), 'signed-out visit lands on the sign-in page');
  await shot('01-signin');
  await page.getByRole('button', { name: 'Sign in as the demo user' }).click();
  await page.waitForURL(BASE + '/');

  // KPIs, server-rendered.
  check((await page.textContent('[data-kpi=contacts]')).trim() === '1,200', 'overview shows 1,200 contacts');
  check(await page.locator('svg.bars rect.bar').count() > 5, 'overview has SVG bar charts');
  await page.waitForSelector('body[data-live=on]');
  await shot('02-overview');

  // A change in the database appears without a reload (SSE from LISTEN keapsync).
  await page.evaluate(() => { window.__sameDocument = true; });
  await control('insert-contact');
  await page.waitForFunction(() => document.querySelector('[data-kpi=contacts]').textContent.trim() === '1,201');
  check(await page.evaluate(() => window.__sameDocument === true), 'new contact counted live, no reload');
  await shot('03-overview-live');

  // Keyboard: the first Tab reaches the skip link.
  await page.keyboard.press('Tab');
  check((await page.evaluate(() => document.activeElement.textContent)).includes('Skip to content'), 'first Tab focuses the skip link');

  await page.getByRole('link', { name: 'Sync health' }).click();
  await page.waitForSelector('h1:has-text("Sync health")');
  await shot('04-health');

  // Conflicts: the list updates live, then resolve one.
  await page.getByRole('link', { name: 'Conflicts' }).first().click();
  await page.waitForSelector('body[data-live=on]');
  check(await page.locator('#conflict-list tbody tr').count() === 1, 'one seeded conflict listed');
  await page.evaluate(() => { window.__sameDocument = true; });
  await control('new-conflict');
  await page.waitForFunction(() => document.querySelectorAll('#conflict-list tbody tr').length === 2);
  check(await page.evaluate(() => window.__sameDocument === true), 'new conflict appears live');
  await shot('05-conflicts');
  await page.locator('#conflict-list tr', { hasText: 'Ada (local)' }).getByRole('link', { name: 'Review' }).click();
  await page.waitForSelector('.sides');
  await shot('06-conflict');
  await page.getByRole('button', { name: 'Keep local value' }).click();
  await page.waitForURL(/done=resolved/);
  check((await page.textContent('.flash')).includes('Conflict resolved'), 'resolve confirms');
  check(await page.locator('#conflict-list tbody tr').count() === 1, 'resolved conflict left the list');
  check((await control('conflict-status')) === 'resolved local Ada (local)', 'database has the conflict resolved as local');
  await shot('07-resolved');
  // The kept value travels to Keap: replication slot, push queue, worker, PATCH to the sandbox.
  let inKeap = '';
  for (const until = Date.now() + 30000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
    if ((inKeap = await control('keap-given-name')) === 'Ada (local)') break;
  }
  check(inKeap === 'Ada (local)', `Keap holds the resolved value (sandbox has "${inKeap}")`);

  // Dead letters: retry.
  await page.getByRole('link', { name: 'Dead letters' }).click();
  await shot('08-dead-letters');
  await page.getByRole('button', { name: 'Retry' }).first().click();
  await page.waitForURL(/done=retry/);
  check(await page.getByRole('button', { name: 'Retry queued' }).count() === 1, 'dead letter queued for retry');

  // Data: search, then export CSV.
  await page.getByRole('link', { name: 'Data' }).click();
  await page.fill('input[name=q]', 'Live');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/q=Live/);
  check(await page.locator('#table tbody tr').count() === 1, 'search finds the live contact');
  await shot('09-data-search');
  // Each object type has its tab.
  await page.getByRole('link', { name: 'Tasks' }).click();
  await page.waitForSelector('h1:has-text("Tasks")');
  check(await page.locator('.tabs a[aria-current=page]').innerText() === 'Tasks', 'the Tasks tab is current');
  await page.getByRole('link', { name: 'Products' }).click();
  await page.waitForSelector('h1:has-text("Products")');
  await page.goto(BASE + '/data/contacts');
  await shot('10-data');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
  const csv = await readFile(await download.path(), 'utf8');
  const lines = csv.trimEnd().split('\n');
  check(lines[0].startsWith('ID,Keap ID,Given name') && lines.length === 1202, `CSV export has header + 1201 rows (got ${lines.length})`);

  // History of a record.
  await page.locator('#table tbody tr').first().getByRole('link', { name: 'history' }).click();
  await page.waitForSelector('h1:has-text("History of")');
  await shot('11-history');

  await page.getByRole('link', { name: 'Settings' }).click();
  await page.waitForSelector('h1:has-text("Settings")');
  await shot('12-settings');

  // 375 px wide: nothing overflows the viewport. The same page, narrowed: a second context (a
  // new renderer, signed in through the first one's storage state) cost about 2 s of CPU for
  // the same pages at the same width; each page below is loaded anew at 375 px.
  await page.setViewportSize({ width: 375, height: 812 });
  const m = page;
  for (const [p, name] of [['/', '13-mobile-overview'], ['/conflicts', '14-mobile-conflicts'], ['/data/contacts', '15-mobile-data'], ['/data/tasks', '16-mobile-tasks']]) {
    await m.goto(BASE + p);
    await shot(name, m);
    const width = await m.evaluate(() => document.documentElement.scrollWidth);
    const wide = await m.evaluate(() => Array.from(document.querySelectorAll('main *'))
      .filter((el) => el.getBoundingClientRect().right > 376 && !el.closest('.scroll'))
      .slice(0, 3).map((el) => el.tagName + '.' + el.className).join(', '));
    check(width <= 375, `${p} fits 375 px (scrollWidth ${width}${wide ? '; too wide: ' + wide : ''})`);
  }

  check(problems.length === 0, 'no console errors or CSP violations: ' + problems.join('; '));
  if (process.env.SHOTS === 'all') console.log('screenshots: ' + OUT);
} catch (e) {
  await failureShots(browser, OUT);
  throw e;
} finally {
  await browser.close();
}
