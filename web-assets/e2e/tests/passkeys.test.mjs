// Passkeys in a real browser: Chromium with a CDP virtual authenticator (a security key
// that needs a touch, simulated) registers a key from "Passkeys & trusted devices", signs
// out, and signs in with the password and the key — the 2FA modal starts the prompt by
// itself. The account is `dave` (display name "Dave"), used by no other test.

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

const USER = 'dave';
const NAME = 'Dave';

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

async function openModalClose(page) {
  await page.locator('.modal.show').last().locator('.btn-close').click();
  await page.waitForFunction(() => document.querySelectorAll('.modal').length === 0);
}

async function signInWithPassword(page) {
  await signInButton(page).click();
  const modal = await waitForModal(page, '#modal2fa-username');
  await modal.locator('#modal2fa-username').fill(USER);
  await modal.locator('#modal2fa-password').fill(PASSWORD);
  await modal.getByRole('button', { name: 'Sign in', exact: true }).click();
  return modal;
}

test(
  'a user adds a security key and signs in with the password and the key, the prompt starting by itself',
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
          transport: 'usb',
          hasResidentKey: false,
          hasUserVerification: false,
          automaticPresenceSimulation: true,
        },
      });

      // Without a factor the password is enough; the menu offers passkeys.
      await page.goto('/');
      await expectSignedOut(page);
      await signInWithPassword(page);
      await expectSignedIn(page, NAME);
      await chooseFromMenu(page, 'Passkeys & trusted devices');
      let modal = await waitForModal(page, '#modal2fa-passkey-name');
      assert.ok(await modal.getByText('No passkeys yet.', { exact: false }).isVisible());
      await checkAccessibility(page, 'passkeys and trusted devices', (m) => t.diagnostic(m));
      await modal.locator('#modal2fa-passkey-name').fill('E2E key');
      await modal.getByRole('button', { name: 'Add a passkey', exact: true }).click();
      // The key is registered and the page reloads.
      await page.waitForFunction(() => document.querySelectorAll('.modal').length === 0);
      await expectSignedIn(page, NAME);
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.equal(credentials.length, 1, 'the authenticator holds one credential');
      await chooseFromMenu(page, 'Passkeys & trusted devices');
      modal = await waitForModal(page, '#modal2fa-passkey-name');
      const rows = modal.locator('table').first().locator('tbody tr');
      await rows.first().waitFor({ state: 'visible' });
      assert.equal(await rows.first().locator('input[name="name"]').inputValue(), 'E2E key');
      await screenshot(page, 'passkeys');
      // A second key needs the second factor first: the password-only session steps up,
      // and the step-up asks for the key at once (it answers: the step-up is done).
      await modal.getByRole('button', { name: 'Add a passkey', exact: true }).click();
      await waitForModal(page, '[data-modal2fa-passkey="sign-in"]');
      await noModal(page);
      await expectSignedIn(page, NAME);
      // The same authenticator again: the browser is told its credential is registered
      // already (excludeCredentials) and makes none.
      await chooseFromMenu(page, 'Passkeys & trusted devices');
      modal = await waitForModal(page, '#modal2fa-passkey-name');
      await modal.getByRole('button', { name: 'Add a passkey', exact: true }).click();
      await modal.locator('.modal2fa-passkey-notice').waitFor({ state: 'visible' });
      const still = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.equal(still.credentials.length, 1, 'no second credential on the same key');
      await openModalClose(page);

      // Sign out and in: after the password the key is asked for at once.
      await chooseFromMenu(page, 'Sign out');
      await expectSignedOut(page);
      modal = await signInWithPassword(page);
      await waitForModal(page, '#modal2fa-device-name');
      assert.equal((await modal.locator('.modal-title').innerText()).trim(), 'Trust this device?');
      await screenshot(page, 'passkey-signed-in');
      await modal.getByRole('button', { name: 'Not now', exact: true }).click();
      await expectSignedIn(page, NAME);
      const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.ok(after.credentials[0].signCount >= 1, 'the key signed the sign-in');

      assert.deepEqual(problems, [], 'no script errors on the pages');
    } finally {
      await context.close();
    }
  },
);

test(
  'without JavaScript the 2FA page of a passkey user asks for a code and says why',
  { timeout: TEST_TIMEOUT },
  async () => {
    const { context, page } = await newPage(browser, { javaScriptEnabled: false });
    try {
      // dave has a passkey since the test above (tests in a file run in order).
      await page.goto('/auth/login/');
      const main = page.locator('main.modal2fa-page');
      await main.locator('#modal2fa-username').fill(USER);
      await main.locator('#modal2fa-password').fill(PASSWORD);
      await main.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.locator('#modal2fa-code').waitFor({ state: 'visible' });
      assert.ok(
        !(await page.getByRole('button', { name: 'Use your passkey' }).isVisible()),
        'no passkey button that cannot work',
      );
      assert.match(
        await page.locator('#modal2fa-passkey-needs-js').innerText(),
        /needs JavaScript, which is off: enter a code/,
      );
      await screenshot(page, 'nojs-passkey-2fa');
    } finally {
      await context.close();
    }
  },
);
