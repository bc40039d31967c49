// Staff sign-in as an owner uses it, keyboard only: password, two-factor
// enrolment with a TOTP code computed here (RFC 6238, the key read off the
// enrolment page), recovery codes, sign out, then sign in again with the
// next TOTP code; axe-core on every admin page seen.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test, skipFileIf, axeCheck, activate, typeInto } from './lib.mjs';

const EMAIL = process.env.KEEL_ADMIN_EMAIL;
const PASSWORD = process.env.KEEL_ADMIN_PASSWORD;

skipFileIf(async () => (EMAIL && PASSWORD ? null : 'serve --demo printed no demo owner'));

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The 6-digit RFC 6238 code (SHA-1, 30 s) for time step `step`. */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

async function signIn(page) {
  await page.goto('/admin/login');
  await axeCheck(page);
  await typeInto(page, page.getByLabel('Email'), EMAIL);
  await typeInto(page, page.getByLabel('Password'), PASSWORD);
  await activate(page, page.getByRole('button', { name: 'Sign in' }));
}

test('an owner enrols two-factor and signs in with a computed TOTP code', { timeout: 90_000 }, async ({ page }) => {
  // A wrong password is refused without saying which part was wrong.
  await page.goto('/admin/login');
  await typeInto(page, page.getByLabel('Email'), EMAIL);
  await typeInto(page, page.getByLabel('Password'), 'not-the-password');
  await activate(page, page.getByRole('button', { name: 'Sign in' }));
  await assert.doesNotReject(page.getByRole('alert').waitFor());
  await axeCheck(page);

  // First sign-in: an owner must enrol a second factor before anything else.
  await signIn(page);
  await page.waitForURL(/\/admin\/2fa\/setup/);
  await axeCheck(page);
  const secret = (await page.locator('figcaption code').textContent()).trim();
  const step = Math.floor(Date.now() / 30_000);
  await typeInto(page, page.getByLabel(/6-digit code/i), totp(secret, step));
  await activate(page, page.getByRole('button', { name: /turn on two-factor/i }));
  await assert.doesNotReject(page.getByRole('heading', { name: /two-factor is on/i }).waitFor());
  const codes = await page.locator('ul.codes code').allTextContents();
  assert.equal(codes.length, 10, 'ten recovery codes are shown once');
  await axeCheck(page);
  await activate(page, page.getByRole('link', { name: /continue to the dashboard/i }));
  await assert.doesNotReject(page.getByText(`Signed in as ${EMAIL}`).waitFor());
  await axeCheck(page);
  await activate(page, page.getByRole('button', { name: 'Sign out', exact: true }));

  // Second sign-in: password, then the code of the next time step (the
  // enrolment used this one, and a step is accepted once).
  await signIn(page);
  await page.waitForURL(/\/admin\/login\/2fa/);
  await axeCheck(page);
  await typeInto(page, page.getByLabel(/code from your authenticator/i), totp(secret, step + 1));
  await activate(page, page.getByRole('button', { name: 'Continue' }));
  await assert.doesNotReject(page.getByRole('heading', { name: 'Dashboard' }).waitFor());
  await assert.doesNotReject(page.getByText(`Signed in as ${EMAIL}`).waitFor());
});
