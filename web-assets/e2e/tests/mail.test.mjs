// Links by email, end to end: the server writes each message as an .eml file
// ($E2E_MAIL_DIR, `mail.transport = "file"`), which these tests read as a mailbox would.
// An invitation from the command line → its link → a first password → an authenticator
// app; "Forgot your password?" → its link → a new password → signing in with it. The
// accounts are `frank` (created by `cargo xtask e2e`) and `gina@example.test` (invited
// here); no other test uses them.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  Authenticator,
  BASE_URL,
  TEST_TIMEOUT,
  assert,
  checkAccessibility,
  chooseFromMenu,
  expectSignedIn,
  launch,
  newPage,
  screenshot,
  signInButton,
  sleep,
  waitForModal,
} from '../lib/harness.mjs';

const MAIL_DIR = process.env.E2E_MAIL_DIR;
const MODAL2FA = process.env.E2E_MODAL2FA;
const CONFIG = process.env.E2E_CONFIG;

let browser;
before(async () => {
  assert.ok(MAIL_DIR && MODAL2FA && CONFIG, 'run the browser tests with `cargo xtask e2e`');
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** Quoted-printable (RFC 2045) to text: soft line breaks joined, `=XX` decoded as UTF-8. */
function decodeQuotedPrintable(body) {
  const joined = body.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < joined.length; i++) {
    if (joined[i] === '=' && /^[0-9A-F]{2}$/i.test(joined.slice(i + 1, i + 3))) {
      bytes.push(parseInt(joined.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(joined[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The parts of a multipart message, by content type, decoded. */
function parts(raw) {
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(raw)?.[1];
  assert.ok(boundary, 'a multipart message');
  const out = {};
  for (const chunk of raw.split(`--${boundary}`)) {
    const split = chunk.search(/\r?\n\r?\n/);
    if (split < 0) continue;
    const head = chunk.slice(0, split);
    const body = chunk.slice(split).trim();
    const type = /content-type:\s*([^;\r\n]+)/i.exec(head)?.[1]?.toLowerCase();
    if (!type || type.startsWith('multipart/')) continue;
    const encoding = /content-transfer-encoding:\s*(\S+)/i.exec(head)?.[1]?.toLowerCase();
    out[type] =
      encoding === 'base64'
        ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
        : encoding === 'quoted-printable'
          ? decodeQuotedPrintable(body)
          : body;
  }
  return out;
}

/** Waits (up to 20 s) for a message to `address` and returns its decoded parts. */
async function mailTo(address) {
  for (let i = 0; i < 100; i++) {
    for (const name of readdirSync(MAIL_DIR).filter((n) => n.endsWith('.eml'))) {
      const raw = readFileSync(path.join(MAIL_DIR, name), 'utf8');
      if (new RegExp(`^To:.*${address.replace('.', '\\.')}`, 'mi').test(raw)) {
        return parts(raw);
      }
    }
    await sleep(200);
  }
  throw new Error(`no mail to ${address} in ${MAIL_DIR}`);
}

/** The link under the server's address in a message's text part. */
function linkIn(mail) {
  const link = mail['text/plain'].match(/https?:\/\/\S+/)?.[0];
  assert.ok(link?.startsWith(BASE_URL), `a link under ${BASE_URL}: ${link}`);
  return link;
}

/** Renders a message's HTML part in its own page and saves a screenshot of it. */
async function screenshotMail(mail, name) {
  const { context, page } = await newPage(browser);
  try {
    await page.setContent(mail['text/html']);
    await screenshot(page, name);
  } finally {
    await context.close();
  }
}

/** The modal of a page opened from a link (a whole page, not a pop-up), once it shows `selector`. */
async function linkPage(page, selector) {
  const main = page.locator('main.modal2fa-page');
  await main.locator(selector).waitFor({ state: 'visible' });
  return main;
}

/** Types a new password twice into the open link modal and submits it. */
async function choosePassword(modal, password) {
  await modal.locator('#modal2fa-new').fill(password);
  await modal.locator('#modal2fa-new2').fill(password);
  await modal.getByRole('button', { name: 'Set password', exact: true }).click();
}

test(
  'an invitation from the command line sets the first password from its link, and the new user adds an authenticator app',
  { timeout: TEST_TIMEOUT },
  async () => {
    const out = execFileSync(MODAL2FA, ['--config', CONFIG, 'user', 'invite', 'gina@example.test', '--first-name', 'Gina'], {
      encoding: 'utf8',
    });
    assert.match(out, /the invitation was sent/);
    const mail = await mailTo('gina@example.test');
    assert.match(mail['text/plain'], /gina@example\.test/);
    await screenshotMail(mail, 'email-invitation');
    const { context, page, problems } = await newPage(browser);
    try {
      await page.goto(linkIn(mail));
      let modal = await linkPage(page, '#modal2fa-new');
      assert.equal((await modal.locator('.modal-title').innerText()).trim(), 'Welcome');
      await screenshot(page, 'invitation');
      await checkAccessibility(page, 'invitation', console.log, 'main.modal2fa-page');
      await choosePassword(modal, 'gina chose this passphrase');
      await expectSignedIn(page, 'Gina');

      await chooseFromMenu(page, 'Add 2FA');
      modal = await waitForModal(page, '#modal2fa-setup-passkey-name');
      await modal.getByRole('link', { name: /Authenticator app/ }).click();
      modal = await waitForModal(page, '#modal2fa-secret');
      const app = new Authenticator((await modal.locator('#modal2fa-secret').innerText()).replace(/\s+/g, ''));
      await modal.locator('#modal2fa-code').fill(await app.code());
      await modal.getByRole('button', { name: 'Confirm', exact: true }).click();
      await page.locator('.modal2fa-menu .dropdown-menu').getByText('Change 2FA', { exact: true }).waitFor({ state: 'attached' });
      await expectSignedIn(page, 'Gina');

      // The link worked once.
      await page.goto(linkIn(mail));
      modal = await linkPage(page, '#modal2fa-new');
      await choosePassword(modal, 'a second passphrase here');
      await modal.locator('#modal2fa-link-problem').waitFor({ state: 'visible' });
      assert.deepEqual(problems, [], 'no console error, CSP violation or failed request');
    } finally {
      await context.close();
    }
  },
);

test(
  'a forgotten password is reset from the emailed link, and the new one signs in',
  { timeout: TEST_TIMEOUT },
  async () => {
    const { context, page, problems } = await newPage(browser);
    try {
      await page.goto('/');
      await signInButton(page).click();
      let modal = await waitForModal(page, '#modal2fa-forgot');
      await modal.locator('#modal2fa-forgot').click();
      modal = await waitForModal(page, '#modal2fa-reset-email');
      assert.equal((await modal.locator('.modal-title').innerText()).trim(), 'Forgot your password?');
      await screenshot(page, 'password-reset');
      await checkAccessibility(page, 'password reset request');
      await modal.locator('#modal2fa-reset-email').fill('frank@example.com');
      await modal.getByRole('button', { name: 'Send the link', exact: true }).click();
      await modal.locator('#modal2fa-reset-sent').waitFor({ state: 'visible' });
      await screenshot(page, 'password-reset-sent');

      const mail = await mailTo('frank@example.com');
      await screenshotMail(mail, 'email-password-reset');
      await page.goto(linkIn(mail));
      modal = await linkPage(page, '#modal2fa-new');
      assert.equal((await modal.locator('.modal-title').innerText()).trim(), 'Set a new password');
      await screenshot(page, 'password-reset-confirm');
      await checkAccessibility(page, 'set a new password', console.log, 'main.modal2fa-page');
      await choosePassword(modal, 'frank has a new passphrase');
      modal = await linkPage(page, '#modal2fa-notice');
      await screenshot(page, 'password-reset-done');

      await modal.locator('#modal2fa-username').fill('frank');
      await modal.locator('#modal2fa-password').fill('frank has a new passphrase');
      await modal.getByRole('button', { name: 'Sign in', exact: true }).click();
      await expectSignedIn(page, 'Frank');
      assert.deepEqual(problems, [], 'no console error, CSP violation or failed request');
    } finally {
      await context.close();
    }
  },
);
