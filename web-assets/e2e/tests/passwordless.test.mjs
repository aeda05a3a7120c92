// Passwordless sign-in in a real browser: Chromium with a CDP virtual platform
// authenticator that keeps discoverable credentials and verifies its user registers a
// passkey (the server asks for user verification: `user_verification = "preferred"`),
// then signs in with it alone — through the login modal's "Sign in with a passkey"
// button, and through the browser's autofill on the username field — and renames and
// removes it from "Passkeys & trusted devices". The account is `erin`, used by no other
// test.

import { after, before, test } from 'node:test';

import {
  PASSWORD,
  TEST_TIMEOUT,
  assert,
  checkAccessibility,
  chooseFromMenu,
  expectSignedIn,
  expectSignedOut,
  launch,
  newPage,
  screenshot,
  signInButton,
  waitForModal,
} from '../lib/harness.mjs';

const USER = 'erin';
const NAME = 'Erin';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function noModal(page) {
  await page.waitForFunction(() => document.querySelectorAll('.modal').length === 0);
}

test(
  'a verified discoverable passkey signs in alone, from the button and from autofill',
  { timeout: TEST_TIMEOUT },
  async (t) => {
    const { context, page, problems } = await newPage(browser);
    try {
      const cdp = await context.newCDPSession(page);
      await cdp.send('WebAuthn.enable', { enableUI: false });
      const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: {
          protocol: 'ctap2',
          ctap2Version: 'ctap2_1',
          transport: 'internal',
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
          automaticPresenceSimulation: true,
        },
      });

      // Password first (no factor yet), then a passkey from the menu.
      await page.goto('/');
      await expectSignedOut(page);
      await signInButton(page).click();
      let modal = await waitForModal(page, '#modal2fa-username');
      assert.equal(
        await modal.locator('#modal2fa-username').getAttribute('autocomplete'),
        'username webauthn',
      );
      await checkAccessibility(page, 'login with passkey button', (m) => t.diagnostic(m));
      await modal.locator('#modal2fa-username').fill(USER);
      await modal.locator('#modal2fa-password').fill(PASSWORD);
      await modal.getByRole('button', { name: 'Sign in', exact: true }).click();
      await expectSignedIn(page, NAME);
      await chooseFromMenu(page, 'Passkeys & trusted devices');
      modal = await waitForModal(page, '#modal2fa-passkey-name');
      await modal.locator('#modal2fa-passkey-name').fill('Laptop');
      await modal.getByRole('button', { name: 'Add a passkey', exact: true }).click();
      await noModal(page);
      await expectSignedIn(page, NAME);
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.equal(credentials.length, 1);
      assert.ok(credentials[0].isResidentCredential, 'a discoverable credential');

      // Signed out, in a browser without autofill for passkeys, the button signs in with
      // the passkey alone.
      await chooseFromMenu(page, 'Sign out');
      await expectSignedOut(page);
      await page.evaluate(() => {
        window.PublicKeyCredential.isConditionalMediationAvailable = async () => false;
      });
      await signInButton(page).click();
      modal = await waitForModal(page, '#modal2fa-username');
      await screenshot(page, 'passwordless-login');
      await modal.getByRole('button', { name: 'Sign in with a passkey', exact: true }).click();
      await expectSignedIn(page, NAME);

      // A passwordless session manages its passkeys without a step-up: rename it.
      await chooseFromMenu(page, 'Passkeys & trusted devices');
      modal = await waitForModal(page, '#modal2fa-passkey-name');
      const row = modal.locator('table').first().locator('tbody tr').first();
      await row.locator('input[name="name"]').fill('Work laptop');
      await row.getByRole('button', { name: 'Rename', exact: true }).click();
      await page.waitForFunction(
        () => document.querySelector('.modal.show input[name="name"][value="Work laptop"]') !== null,
      );
      await checkAccessibility(page, 'passkeys list with actions', (m) => t.diagnostic(m));
      await screenshot(page, 'passkey-renamed');
      await page.locator('.modal.show .btn-close').last().click();
      await noModal(page);

      // Signed out again: the browser's autofill offers the passkey on the username field.
      await chooseFromMenu(page, 'Sign out');
      await expectSignedOut(page);
      const before = (await cdp.send('WebAuthn.getCredentials', { authenticatorId }))
        .credentials[0].signCount;
      await signInButton(page).click();
      modal = await waitForModal(page, '#modal2fa-username');
      // With the browser's UI off, the virtual authenticator answers the conditional
      // request with its credential by itself, as a user picking it from the list would:
      // often before the field can be focused, which then no longer matters.
      await modal.locator('#modal2fa-username').focus({ timeout: 2000 }).catch(() => {});
      await expectSignedIn(page, NAME);
      const afterAutofill = (await cdp.send('WebAuthn.getCredentials', { authenticatorId }))
        .credentials[0].signCount;
      assert.ok(afterAutofill > before, 'the passkey signed the autofill sign-in');

      // Removing it: the last factor asks first; this session was established with it
      // and ends.
      await chooseFromMenu(page, 'Passkeys & trusted devices');
      modal = await waitForModal(page, '#modal2fa-passkey-name');
      await modal.getByRole('button', { name: 'Remove Work laptop', exact: true }).click();
      await modal.locator('#modal2fa-confirm-last-factor').waitFor({ state: 'visible' });
      await checkAccessibility(page, 'confirm removing the last factor', (m) => t.diagnostic(m));
      await modal.getByRole('button', { name: 'Remove it and turn off 2FA', exact: true }).click();
      await expectSignedOut(page);

      assert.deepEqual(problems, [], 'no script errors on the pages');
    } finally {
      await context.close();
    }
  },
);
