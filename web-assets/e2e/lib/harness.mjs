// Shared plumbing for the browser tests: the server's address, Chromium, screenshots,
// TOTP codes, axe-core and the modal helpers. Run the suite with `cargo xtask e2e`, which
// starts a server with the users alice, bob and carol and sets E2E_BASE_URL.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** The password `cargo xtask e2e` gives every test user. */
export const PASSWORD = 'correct horse battery';

/** The server under test, browsed as `localhost` (WebAuthn refuses 127.0.0.1). */
export const BASE_URL = (() => {
  const url = process.env.E2E_BASE_URL;
  if (!url) {
    throw new Error('E2E_BASE_URL is not set: run the browser tests with `cargo xtask e2e`');
  }
  return url.replace(/\/+$/, '');
})();

/** Where screenshots go: `target/e2e/screenshots` of the workspace unless E2E_SCREENSHOT_DIR says otherwise. */
export const SCREENSHOT_DIR =
  process.env.E2E_SCREENSHOT_DIR || path.resolve(here, '..', '..', '..', 'target', 'e2e', 'screenshots');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Per-test timeout: a test waits for up to three fresh TOTP steps. */
export const TEST_TIMEOUT = 240_000;

/** Headless Debian Chromium with the flags that worked on these machines (TEST-INFRA.md). */
export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', // the tests run as root in CI
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/**
 * A fresh context (its own cookies) with a fixed viewport and reduced motion, so that
 * Bootstrap's modal transitions finish at once and screenshots show settled modals.
 */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({
    baseURL: BASE_URL,
    viewport: { width: 1280, height: 800 },
    reducedMotion: 'reduce',
    locale: 'en-GB',
    ...options,
  });
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(30_000);
  // Report what a Content-Security-Policy violation was about (the console only says that one happened).
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const el = e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 120) : String(e.target);
      console.warn(`csp-violation: ${e.violatedDirective} sample=${JSON.stringify(e.sample)} at ${e.sourceFile}:${e.lineNumber}:${e.columnNumber} on ${el}`);
    });
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'warning' && m.text().startsWith('csp-violation: ')) {
      problems.push(m.text());
      return;
    }
    if (m.type() !== 'error') return;
    const where = m.location();
    // Chromium asks for /favicon.ico by itself; the demo has none, which is no page error.
    if (new URL(where.url || 'about:blank', BASE_URL).pathname === '/favicon.ico') return;
    problems.push(`console error at ${where.url}:${where.lineNumber}:${where.columnNumber}: ${m.text().slice(0, 160)}`);
  });
  page.on('response', (r) => {
    if (r.status() === 404) problems.push(`404 for ${r.request().method()} ${r.url()}`);
  });
  return { context, page, problems };
}

/** Saves a screenshot of the viewport as `<SCREENSHOT_DIR>/<name>.png`. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  // caret: 'initial' — hiding the caret leaves `style=""` on inputs, which htmx then copies
  // onto the swapped-in inputs: a style-src-attr CSP violation of the test's own making.
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), caret: 'initial' });
}

// ------------------------------------------------------------------ TOTP (RFC 6238)

const STEP_SECONDS = 30;

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.replace(/[\s=-]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${JSON.stringify(text)}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The 6-digit SHA-1 code of a base32 secret for a time step. */
export function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, '0');
}

/** The current time step. */
export function currentStep() {
  return Math.floor(Date.now() / 1000 / STEP_SECONDS);
}

/**
 * An authenticator app for one account: a code is accepted once per 30-second step, so
 * each code comes from a step later than the last one used (waiting for it when needed),
 * and never from the last three seconds of a step (it could expire on the way).
 */
export class Authenticator {
  constructor(secret) {
    this.secret = secret.replace(/\s+/g, '');
    this.lastStep = -1;
  }

  async code() {
    for (;;) {
      const now = Date.now() / 1000;
      const step = Math.floor(now / STEP_SECONDS);
      const left = (step + 1) * STEP_SECONDS - now;
      if (step > this.lastStep && left > 3) {
        this.lastStep = step;
        return totp(this.secret, step);
      }
      await sleep(Math.min(1000, left * 1000 + 50));
    }
  }
}

/** A 6-digit code that is wrong for every step a server might accept now (±2 steps). */
export function wrongCode(secret) {
  const clean = secret.replace(/\s+/g, '');
  const step = currentStep();
  const valid = new Set([-2, -1, 0, 1, 2].map((d) => totp(clean, step + d)));
  for (let n = 0; ; n++) {
    const code = String(n * 111_111 % 1_000_000).padStart(6, '0');
    if (!valid.has(code)) return code;
  }
}

// ------------------------------------------------------------------ axe-core

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core on `selector` (the open modal by default). Returns one line per serious or
 * critical violation (rule id, help, targets); lesser ones go to `note` (a test's
 * `t.diagnostic`). The page's CSP forbids inline scripts, so axe is evaluated over the
 * DevTools protocol, which the CSP does not govern.
 */
export async function checkAccessibility(page, label, note = console.log, selector = '.modal.show') {
  const loaded = await page.evaluate(() => typeof window.axe === 'object');
  if (!loaded) {
    await page.evaluate(AXE_SOURCE);
  }
  const result = await page.evaluate(async (sel) => {
    const root = document.querySelector(sel);
    if (!root) return null;
    const r = await window.axe.run(root, { resultTypes: ['violations'] });
    return {
      passes: r.passes.length,
      violations: r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        targets: v.nodes.map((n) => n.target.join(' ')),
      })),
    };
  }, selector);
  assert.ok(result, `${label}: nothing matches ${selector}`);
  assert.ok(result.passes > 10, `${label}: axe-core checked almost nothing (${result.passes} rules passed)`);
  const line = (v) => `${label}: ${v.impact} ${v.id} (${v.help}) at ${v.targets.join(', ')}`;
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of result.violations) {
    if (!serious.includes(v)) note(`axe, not failing: ${line(v)}`);
  }
  note(`axe ${label}: ${result.passes} rules passed, ${result.violations.length} violated`);
  return serious.map(line);
}

// ------------------------------------------------------------------ the demo page and its modals

/** The open (topmost) modal. */
export function openModal(page) {
  return page.locator('.modal.show').last();
}

/** Waits until the open modal shows `selector` (its content is loaded and settled). */
export async function waitForModal(page, selector) {
  const modal = openModal(page);
  await modal.locator(selector).waitFor({ state: 'visible' });
  return modal;
}

/** The user menu's dropdown button (signed in). */
export function menuButton(page) {
  return page.locator('.modal2fa-menu .dropdown-toggle');
}

/** The signed-out "Sign in" button of the user menu. */
export function signInButton(page) {
  return page.locator('.modal2fa-menu a[data-modal2fa-open="/auth/login/"]');
}

/** Waits until the page (after a reload or redirect) shows the menu of a signed-in `name`. */
export async function expectSignedIn(page, name) {
  await menuButton(page).waitFor({ state: 'visible' });
  assert.equal((await menuButton(page).innerText()).trim(), name);
  assert.equal(await page.locator('.modal.show').count(), 0, 'no modal is left open');
}

/** Waits until the page shows the signed-out menu. */
export async function expectSignedOut(page) {
  await signInButton(page).waitFor({ state: 'visible' });
  assert.equal(await menuButton(page).count(), 0);
}

/** Opens the user menu and clicks one of its entries (a link or the Sign out button). */
export async function chooseFromMenu(page, entry) {
  await menuButton(page).click();
  const menu = page.locator('.modal2fa-menu .dropdown-menu');
  await menu.waitFor({ state: 'visible' });
  await menu.getByText(entry, { exact: true }).click();
}

/** Closes the open modal with its close button and waits until it is gone. */
export async function closeModal(page) {
  const count = await page.locator('.modal').count();
  await openModal(page).locator('.btn-close').click();
  await page.waitForFunction((n) => document.querySelectorAll('.modal').length < n, count);
}

/** The text of the alerts in the open modal. */
export async function modalErrors(modal) {
  return (await modal.locator('.alert-danger').allInnerTexts()).map((t) => t.trim());
}

export { assert, sleep };
