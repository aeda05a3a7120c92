// The whole 2FA life of one account, with JavaScript on, through the modals that the demo
// home page's user menu opens. The account is `alice` (display name "Alice"), used by no
// other test.

import { after, before, test } from 'node:test';

import {
  Authenticator,
  PASSWORD,
  TEST_TIMEOUT,
  assert,
  chooseFromMenu,
  closeModal,
  expectSignedIn,
  expectSignedOut,
  launch,
  modalErrors,
  newPage,
  openModal,
  screenshot,
  signInButton,
  waitForModal,
  wrongCode,
} from '../lib/harness.mjs';

const USER = 'alice';
const NAME = 'Alice';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** Opens the login modal from the menu and submits the username and password. */
async function submitPassword(page, password) {
  await signInButton(page).click();
  const modal = await waitForModal(page, '#modal2fa-username');
  await modal.locator('#modal2fa-username').fill(USER);
  await modal.locator('#modal2fa-password').fill(password);
  await modal.getByRole('button', { name: 'Sign in', exact: true }).click();
  return modal;
}

test(
  'a user signs in, enrols an authenticator app, signs out, signs in with a code, trusts the device and then signs in without a code',
  { timeout: TEST_TIMEOUT },
  async (t) => {
    const { context, page, problems } = await newPage(browser);
    try {
      // Signed out, the home page offers "Sign in" (a real link too).
      await page.goto('/');
      await expectSignedOut(page);
      assert.equal(await signInButton(page).getAttribute('href'), '/auth/login/');
      await screenshot(page, 'home-signed-out');

      // The login modal; a wrong password keeps it open with a message.
      await signInButton(page).click();
      let modal = await waitForModal(page, '#modal2fa-username');
      assert.equal((await modal.locator('.modal-title').innerText()).trim(), 'Sign in');
      await screenshot(page, 'login');
      await modal.locator('#modal2fa-username').fill(USER);
      await modal.locator('#modal2fa-password').fill('not the password');
      await modal.getByRole('button', { name: 'Sign in', exact: true }).click();
      await modal.locator('.alert-danger').waitFor({ state: 'visible' });
      assert.deepEqual(await modalErrors(modal), ['Please enter a correct username and password.']);
      assert.equal(await modal.locator('#modal2fa-username').count(), 1, 'the login form is shown again');
      await screenshot(page, 'login-error');
      await t.test('the login form keeps the username after a wrong password', async () => {
        assert.equal(await modal.locator('#modal2fa-username').inputValue(), USER);
      });

      // Without a second factor the password is enough: the page reloads signed in.
      await modal.locator('#modal2fa-username').fill(USER);
      await modal.locator('#modal2fa-password').fill(PASSWORD);
      await modal.getByRole('button', { name: 'Sign in', exact: true }).click();
      await expectSignedIn(page, NAME);
      await screenshot(page, 'home-signed-in');

      // Add 2FA: the TOTP modal shows a QR code and the secret; confirm with a code.
      await chooseFromMenu(page, 'Add 2FA');
      modal = await waitForModal(page, '#modal2fa-setup-passkey-name');
      await screenshot(page, 'set-up-choice');
      await modal.getByRole('link', { name: /Authenticator app/ }).click();
      modal = await waitForModal(page, '#modal2fa-secret');
      assert.equal(await modal.locator('.modal2fa-qr svg').count(), 1, 'an inline SVG QR code');
      assert.ok(await modal.locator('.modal2fa-qr svg').isVisible(), 'the QR code is visible');
      const secret = (await modal.locator('#modal2fa-secret').innerText()).replace(/\s+/g, '');
      assert.match(secret, /^[A-Z2-7]{16,}$/, 'a base32 secret');
      await screenshot(page, 'totp-setup');
      const app = new Authenticator(secret);
      await modal.locator('#modal2fa-code').fill(wrongCode(secret));
      await modal.getByRole('button', { name: 'Confirm', exact: true }).click();
      await modal.locator('.alert-danger').waitFor({ state: 'visible' });
      assert.equal((await modalErrors(modal)).length, 1, 'a wrong code is refused with one message');
      await screenshot(page, 'totp-setup-error');
      await modal.locator('#modal2fa-code').fill(await app.code());
      await modal.getByRole('button', { name: 'Confirm', exact: true }).click();
      // The page reloads; the menu now offers to change or remove 2FA.
      await page.locator('.modal2fa-menu .dropdown-menu').getByText('Change 2FA', { exact: true }).waitFor({ state: 'attached' });
      await expectSignedIn(page, NAME);
      const entries = (await page.locator('.modal2fa-menu .dropdown-menu .dropdown-item').allTextContents()).map((x) => x.trim());
      assert.deepEqual(entries, ['Change 2FA', 'Remove 2FA', 'Recovery codes', 'Passkeys & trusted devices', 'Change password', 'Sign out']);

      // Sign out from the menu.
      await chooseFromMenu(page, 'Sign out');
      await expectSignedOut(page);
      assert.equal(new URL(page.url()).pathname, '/');

      // Sign in again: after the password the same modal asks for a code.
      modal = await submitPassword(page, PASSWORD);
      await waitForModal(page, '#modal2fa-code');
      assert.equal((await modal.locator('.modal-title').innerText()).trim(), 'Two-factor authentication');
      await screenshot(page, '2fa');
      await modal.locator('#modal2fa-code').fill(wrongCode(secret));
      await modal.getByRole('button', { name: 'Verify', exact: true }).click();
      await modal.locator('.alert-danger').waitFor({ state: 'visible' });
      assert.deepEqual(await modalErrors(modal), ['The code is incorrect.']);
      await screenshot(page, '2fa-error');
      await modal.locator('#modal2fa-code').fill(await app.code());
      await modal.getByRole('button', { name: 'Verify', exact: true }).click();

      // Then it offers to trust this browser.
      await waitForModal(page, '#modal2fa-device-name');
      assert.equal((await modal.locator('.modal-title').innerText()).trim(), 'Trust this device?');
      assert.equal(await modal.locator('#modal2fa-device-name').inputValue(), 'Chrome on Linux');
      assert.ok(await modal.getByRole('button', { name: 'Not now', exact: true }).isVisible());
      await screenshot(page, 'trust-device');
      await modal.locator('#modal2fa-device-name').fill('E2E Chromium');
      await modal.getByRole('button', { name: 'Trust this device', exact: true }).click();
      await expectSignedIn(page, NAME);

      // A 2FA session sees the protected page.
      await page.goto('/protected');
      assert.equal(new URL(page.url()).pathname, '/protected');
      await page.getByText('Protected page').first().waitFor({ state: 'visible' });
      await screenshot(page, 'protected');
      await page.goto('/');
      await expectSignedIn(page, NAME);

      // Recovery codes: none yet; a new set is shown once, ten of them, with a download.
      await chooseFromMenu(page, 'Recovery codes');
      modal = await waitForModal(page, '#modal2fa-recovery-left');
      assert.equal((await modal.locator('#modal2fa-recovery-left').innerText()).trim(), 'You have no unused codes.');
      await modal.getByRole('button', { name: 'Generate new codes', exact: true }).click();
      await modal.locator('#modal2fa-recovery-codes li').first().waitFor({ state: 'visible' });
      assert.equal(await modal.locator('#modal2fa-recovery-codes li').count(), 10);
      assert.equal(await modal.getByRole('link', { name: 'Download as text', exact: true }).getAttribute('download'), 'recovery-codes.txt');
      // Copy puts the ten codes on the clipboard, one per line.
      await context.grantPermissions(['clipboard-read', 'clipboard-write']);
      await modal.getByRole('button', { name: 'Copy', exact: true }).click();
      await modal.getByRole('button', { name: 'Copied', exact: true }).waitFor({ state: 'visible' });
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      assert.deepEqual(
        copied.trim().split('\n'),
        await modal.locator('#modal2fa-recovery-codes li').allInnerTexts(),
      );
      await screenshot(page, 'recovery-codes');
      await modal.getByRole('button', { name: 'I have saved them', exact: true }).click();
      await page.waitForFunction(() => document.querySelectorAll('.modal').length === 0);
      await expectSignedIn(page, NAME);

      // The trusted device is listed.
      await chooseFromMenu(page, 'Passkeys & trusted devices');
      modal = await waitForModal(page, '#modal2fa-passkey-name');
      const rows = modal.locator('table tbody tr');
      await rows.first().waitFor({ state: 'visible' });
      assert.equal(await rows.count(), 1);
      assert.equal((await rows.first().locator('td').first().innerText()).trim(), 'E2E Chromium');
      assert.equal((await rows.first().locator('td').nth(1).innerText()).trim(), 'Chrome on Linux');
      await screenshot(page, 'devices');
      await closeModal(page);

      // The change-password modal opens (and is left without changing anything).
      await chooseFromMenu(page, 'Change password');
      modal = await waitForModal(page, '#modal2fa-old');
      assert.equal(await modal.locator('#modal2fa-new').count(), 1);
      assert.equal(await modal.locator('#modal2fa-new2').count(), 1);
      await screenshot(page, 'change-password');
      await closeModal(page);
      await expectSignedIn(page, NAME);

      // Sign out and in again: the trusted device replaces the code.
      await chooseFromMenu(page, 'Sign out');
      await expectSignedOut(page);
      const cookies = await context.cookies();
      assert.ok(
        cookies.some((c) => c.name === 'modal2fa_device' && c.httpOnly),
        `the trusted-device cookie survives signing out (cookies: ${cookies.map((c) => c.name).join(', ')})`,
      );
      await submitPassword(page, PASSWORD);
      await expectSignedIn(page, NAME);
      assert.equal(await page.locator('#modal2fa-code').count(), 0, 'no code was asked for');
      await screenshot(page, 'home-signed-in-trusted');

      assert.deepEqual(problems, [], 'no script errors on the pages');
    } finally {
      await context.close();
    }
  },
);
