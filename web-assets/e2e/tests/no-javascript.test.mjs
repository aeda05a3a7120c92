// The same 2FA life with JavaScript disabled: every modal URL is a full page
// (`main.modal2fa-page`) whose forms post normally and answer with 303 redirects. The
// account is `carol` (display name "Carol"), used by no other test.

import { after, before, test } from 'node:test';

import {
  Authenticator,
  PASSWORD,
  TEST_TIMEOUT,
  assert,
  launch,
  newPage,
  screenshot,
  wrongCode,
} from '../lib/harness.mjs';

const USER = 'carol';
const NAME = 'Carol';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** The inline modal of a no-JS page, after checking that the page is one. */
async function modalPage(page, title) {
  const main = page.locator('main.modal2fa-page');
  await main.waitFor({ state: 'visible' });
  assert.equal((await main.locator('.modal-title').innerText()).trim(), title, `the page at ${page.url()}`);
  return main;
}

function path(page) {
  const url = new URL(page.url());
  return url.pathname + url.search;
}

/** Records every navigation's status, so that the 303s are checked. */
function statuses(page) {
  const seen = [];
  page.on('response', (r) => {
    if (r.request().isNavigationRequest()) {
      seen.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
    }
  });
  return seen;
}

/** Submits a form of the page by clicking its button and waits for the page it leads to. */
async function submit(page, button) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), button.click()]);
}

/**
 * Signs out with the menu's "Sign out" form on the home page. Without JavaScript the
 * Bootstrap dropdown never opens, so the button cannot be clicked: the form (which works)
 * is submitted through the DOM instead. The subtest "the user menu can be opened with
 * JavaScript disabled" reports that problem.
 */
async function signOutFromHome(page) {
  await page.goto('/');
  const form = page.locator('.modal2fa-menu form[action="/auth/logout/"]');
  assert.equal(await form.count(), 1, 'the menu has a sign-out form');
  assert.equal(await form.getAttribute('method'), 'post');
  const button = form.getByRole('button', { name: 'Sign out', exact: true, includeHidden: true });
  if (await button.isVisible()) {
    await submit(page, button);
  } else {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), button.dispatchEvent('click')]);
  }
  assert.equal(path(page), '/');
  await page.locator('.modal2fa-menu a[href="/auth/login/"]').waitFor({ state: 'visible' });
}

async function fillLogin(page, main, password) {
  await main.locator('#modal2fa-username').fill(USER);
  await main.locator('#modal2fa-password').fill(password);
  await submit(page, main.getByRole('button', { name: 'Sign in', exact: true }));
}

test(
  'the same flow works with JavaScript disabled through the full pages',
  { timeout: TEST_TIMEOUT },
  async (t) => {
    const { context, page } = await newPage(browser, { javaScriptEnabled: false });
    const seen = statuses(page);
    try {
      // The login page, then a wrong password.
      await page.goto('/auth/login/?next=/protected');
      let main = await modalPage(page, 'Sign in');
      assert.equal(
        await main.locator('form[action$="/login/"] input[name="next"]').inputValue(),
        '/protected',
      );
      assert.ok(
        !(await main.getByRole('button', { name: 'Sign in with a passkey' }).isVisible()),
        'without JavaScript the passkey button is not offered',
      );
      assert.equal(await main.locator('a.btn-close').getAttribute('href'), '/protected');
      await screenshot(page, 'nojs-login');
      await fillLogin(page, main, 'not the password');
      main = await modalPage(page, 'Sign in');
      assert.deepEqual(
        (await main.locator('.alert-danger').allInnerTexts()).map((x) => x.trim()),
        ['Please enter a correct username and password.'],
      );
      await screenshot(page, 'nojs-login-error');

      // The password alone signs in (no second factor yet); /protected then asks for one.
      await fillLogin(page, main, PASSWORD);
      assert.ok(seen.includes('POST /auth/login/ 303'), `the login answered 303 (${seen.join('; ')})`);
      assert.notEqual(new URL(page.url()).pathname, '/protected', 'a password-only session is not let in');
      assert.match(new URL(page.url()).pathname, /^\/auth\//, `sent to a modal page, not ${page.url()}`);
      await screenshot(page, 'nojs-protected-without-2fa');
      await t.test('a user without a second factor is offered to set one up before the protected page', async () => {
        const here = page.locator('main.modal2fa-page');
        assert.equal(await here.locator('#modal2fa-code').count(), 0, 'no code is asked of a user who has no authenticator');
        assert.ok(await here.locator('a[href^="/auth/2fa/totp/"]').count(), 'a link to set up an authenticator app');
      });
      await page.goto('/');
      assert.equal((await page.locator('.modal2fa-menu .dropdown-toggle').innerText()).trim(), NAME);
      await screenshot(page, 'nojs-home-signed-in');
      await t.test('the user menu can be opened with JavaScript disabled', async () => {
        await page.locator('.modal2fa-menu .dropdown-toggle').click();
        await page
          .locator('.modal2fa-menu')
          .getByRole('button', { name: 'Sign out', exact: true })
          .waitFor({ state: 'visible', timeout: 3000 });
      });

      // Enrol an authenticator app on its own page.
      await page.goto('/auth/2fa/totp/?next=/');
      main = await modalPage(page, 'Set up an authenticator app');
      assert.equal(await main.locator('.modal2fa-qr svg').count(), 1, 'an inline SVG QR code');
      const secret = (await main.locator('#modal2fa-secret').innerText()).replace(/\s+/g, '');
      assert.match(secret, /^[A-Z2-7]{16,}$/);
      await screenshot(page, 'nojs-totp-setup');
      const app = new Authenticator(secret);
      await main.locator('#modal2fa-code').fill(wrongCode(secret));
      await submit(page, main.getByRole('button', { name: 'Confirm', exact: true }));
      main = await modalPage(page, 'Set up an authenticator app');
      assert.equal(await main.locator('.alert-danger').count(), 1, 'a wrong code is refused');
      await screenshot(page, 'nojs-totp-setup-error');
      await main.locator('#modal2fa-code').fill(await app.code());
      await submit(page, main.getByRole('button', { name: 'Confirm', exact: true }));
      assert.ok(seen.includes('POST /auth/2fa/totp/ 303'), `the enrolment answered 303 (${seen.join('; ')})`);
      assert.equal(path(page), '/');
      assert.ok(
        await page.locator('.modal2fa-menu a[href="/auth/2fa/totp/"]', { hasText: 'Change 2FA' }).count(),
        'the menu offers "Change 2FA"',
      );

      // Sign out with the menu's form.
      await signOutFromHome(page);

      // Sign in with a code: password, then the 2FA page, then the trust page.
      await page.goto('/auth/login/?next=/protected');
      await fillLogin(page, await modalPage(page, 'Sign in'), PASSWORD);
      main = await modalPage(page, 'Two-factor authentication');
      assert.equal(new URL(page.url()).pathname, '/auth/2fa/');
      await screenshot(page, 'nojs-2fa');
      await main.locator('#modal2fa-code').fill(wrongCode(secret));
      await submit(page, main.getByRole('button', { name: 'Verify', exact: true }));
      main = await modalPage(page, 'Two-factor authentication');
      assert.deepEqual((await main.locator('.alert-danger').allInnerTexts()).map((x) => x.trim()), ['The code is incorrect.']);
      await screenshot(page, 'nojs-2fa-error');
      await main.locator('#modal2fa-code').fill(await app.code());
      await submit(page, main.getByRole('button', { name: 'Verify', exact: true }));
      main = await modalPage(page, 'Trust this device?');
      assert.equal(new URL(page.url()).pathname, '/auth/trust-device/');
      assert.equal(await main.locator('#modal2fa-device-name').inputValue(), 'Chrome on Linux');
      await screenshot(page, 'nojs-trust-device');
      await main.locator('#modal2fa-device-name').fill('No-JS Chromium');
      await submit(page, main.getByRole('button', { name: 'Trust this device', exact: true }));
      assert.equal(path(page), '/protected');
      for (const post of ['POST /auth/logout/ 303', 'POST /auth/2fa/ 303', 'POST /auth/trust-device/ 303']) {
        assert.ok(seen.includes(post), `${post} expected (${seen.join('; ')})`);
      }
      await page.locator('main h1', { hasText: 'Protected page' }).waitFor({ state: 'visible' });
      await screenshot(page, 'nojs-protected');

      // The devices page lists the trusted browser; the change-password page renders.
      await page.goto('/auth/devices/');
      main = await modalPage(page, 'Passkeys & trusted devices');
      assert.equal((await main.locator('table tbody tr td').first().innerText()).trim(), 'No-JS Chromium');
      await screenshot(page, 'nojs-devices');
      await page.goto('/auth/change-password/');
      main = await modalPage(page, 'Change password');
      assert.equal(await main.locator('#modal2fa-old').count(), 1);
      await screenshot(page, 'nojs-change-password');

      // Sign out, then sign in without a code on this trusted browser.
      await signOutFromHome(page);
      await page.goto('/auth/login/?next=/');
      await fillLogin(page, await modalPage(page, 'Sign in'), PASSWORD);
      assert.equal(path(page), '/', 'straight back home, no 2FA page');
      assert.equal((await page.locator('.modal2fa-menu .dropdown-toggle').innerText()).trim(), NAME);
      await screenshot(page, 'nojs-home-signed-in-trusted');

      // A trusted-device session is asked for a code before the protected page.
      await page.goto('/protected');
      main = await modalPage(page, 'Two-factor authentication');
      assert.equal(new URL(page.url()).pathname, '/auth/2fa/');
    } finally {
      await context.close();
    }
  },
);
