// axe-core on every modal, opened the way a user opens it. The account is `bob`
// (display name "Bob"), used by no other test.

import { after, before, test } from 'node:test';

import {
  Authenticator,
  PASSWORD,
  TEST_TIMEOUT,
  assert,
  checkAccessibility,
  chooseFromMenu,
  closeModal,
  expectSignedIn,
  expectSignedOut,
  launch,
  newPage,
  signInButton,
  waitForModal,
  wrongCode,
} from '../lib/harness.mjs';

const USER = 'bob';
const NAME = 'Bob';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test(
  'every modal passes an axe-core accessibility check with no serious or critical violations',
  { timeout: TEST_TIMEOUT },
  async (t) => {
    const { context, page } = await newPage(browser);
    const found = [];
    const check = async (label) => {
      found.push(...(await checkAccessibility(page, label, (m) => t.diagnostic(m))));
    };
    try {
      await page.goto('/');
      await expectSignedOut(page);

      // Login, then login with an error message.
      // A modal is named from the moment it enters the page, before its content arrives:
      // record each one's name as it is inserted.
      await page.evaluate(() => {
        window.modal2faNames = [];
        new MutationObserver((changes) => {
          for (const c of changes) {
            for (const n of c.addedNodes) {
              if (n.classList && n.classList.contains('modal')) {
                window.modal2faNames.push(n.getAttribute('aria-label') || n.getAttribute('aria-labelledby'));
              }
            }
          }
        }).observe(document.body, { childList: true });
      });
      await signInButton(page).click();
      await page.waitForFunction(() => window.modal2faNames.length > 0);
      const names = await page.evaluate(() => window.modal2faNames);
      assert.ok(names.every(Boolean), `a modal has an accessible name while it loads: ${JSON.stringify(names)}`);
      let modal = await waitForModal(page, '#modal2fa-username');
      await check('login');
      await modal.locator('#modal2fa-username').fill(USER);
      await modal.locator('#modal2fa-password').fill('not the password');
      await modal.getByRole('button', { name: 'Sign in', exact: true }).click();
      await modal.locator('.alert-danger').waitFor({ state: 'visible' });
      await check('login with an error');
      await modal.locator('#modal2fa-username').fill(USER);
      await modal.locator('#modal2fa-password').fill(PASSWORD);
      await modal.getByRole('button', { name: 'Sign in', exact: true }).click();
      await expectSignedIn(page, NAME);

      // Change password, before any second factor.
      await chooseFromMenu(page, 'Change password');
      await waitForModal(page, '#modal2fa-old');
      await check('change password');
      await closeModal(page);
      await chooseFromMenu(page, 'Add 2FA');

      // The choice of a first factor (a passkey first), then the authenticator app.
      modal = await waitForModal(page, '#modal2fa-setup-passkey-name');
      await check('set-up choice');
      await modal.getByRole('link', { name: /Authenticator app/ }).click();

      // TOTP setup, with and without an error.
      modal = await waitForModal(page, '#modal2fa-secret');
      await check('TOTP setup');
      const secret = (await modal.locator('#modal2fa-secret').innerText()).replace(/\s+/g, '');
      const app = new Authenticator(secret);
      await modal.locator('#modal2fa-code').fill(wrongCode(secret));
      await modal.getByRole('button', { name: 'Confirm', exact: true }).click();
      await modal.locator('.alert-danger').waitFor({ state: 'visible' });
      await check('TOTP setup with an error');
      await modal.locator('#modal2fa-code').fill(await app.code());
      await modal.getByRole('button', { name: 'Confirm', exact: true }).click();
      await page.locator('.modal2fa-menu .dropdown-menu').getByText('Change 2FA', { exact: true }).waitFor({ state: 'attached' });

      // Sign out, then the 2FA modal (with and without an error) and the trust modal.
      await chooseFromMenu(page, 'Sign out');
      await expectSignedOut(page);
      await signInButton(page).click();
      modal = await waitForModal(page, '#modal2fa-username');
      await modal.locator('#modal2fa-username').fill(USER);
      await modal.locator('#modal2fa-password').fill(PASSWORD);
      await modal.getByRole('button', { name: 'Sign in', exact: true }).click();
      await waitForModal(page, '#modal2fa-code');
      await check('2FA');
      await modal.locator('#modal2fa-code').fill(wrongCode(secret));
      await modal.getByRole('button', { name: 'Verify', exact: true }).click();
      await modal.locator('.alert-danger').waitFor({ state: 'visible' });
      await check('2FA with an error');
      await modal.locator('#modal2fa-code').fill(await app.code());
      await modal.getByRole('button', { name: 'Verify', exact: true }).click();
      await waitForModal(page, '#modal2fa-device-name');
      await check('trust device');
      await modal.getByRole('button', { name: 'Trust this device', exact: true }).click();
      await expectSignedIn(page, NAME);

      // Recovery codes: the count, then a new set.
      await chooseFromMenu(page, 'Recovery codes');
      modal = await waitForModal(page, '#modal2fa-recovery-left');
      await check('recovery codes');
      await modal.getByRole('button', { name: 'Generate new codes', exact: true }).click();
      await modal.locator('#modal2fa-recovery-codes li').first().waitFor({ state: 'visible' });
      await check('recovery codes, a new set');
      await modal.getByRole('button', { name: 'I have saved them', exact: true }).click();
      await page.waitForFunction(() => document.querySelectorAll('.modal').length === 0);
      await expectSignedIn(page, NAME);

      // The device list with a device in it, the remove-2FA modal.
      await chooseFromMenu(page, 'Passkeys & trusted devices');
      modal = await waitForModal(page, '#modal2fa-passkey-name');
      await modal.locator('table tbody tr').first().waitFor({ state: 'visible' });
      await check('devices');
      await closeModal(page);
      await chooseFromMenu(page, 'Remove 2FA');
      await waitForModal(page, '.modal-footer .btn-danger');
      await check('remove 2FA');
      await closeModal(page);

      assert.deepEqual(found, [], `axe-core found serious or critical violations:\n${found.join('\n')}`);
    } finally {
      await context.close();
    }
  },
);
