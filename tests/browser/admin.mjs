// Helpers for the admin console's browser tests: RFC 6238 codes computed
// here, and the demo owner's sign-in. The first sign-in of a run enrols
// two-factor (the key is read off the enrolment page); later ones use the
// next unused time step. `asOwner` reuses the last signed-in session's
// cookie so a test does not spend a TOTP step (each is accepted once).

import { createHmac } from 'node:crypto';
import { activate, typeInto } from './lib.mjs';

export const EMAIL = process.env.KEEL_ADMIN_EMAIL;
export const PASSWORD = process.env.KEEL_ADMIN_PASSWORD;

const owner = { secret: null, lastStep: -1, cookies: null };

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
export function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

const currentStep = () => Math.floor(Date.now() / 30_000);

/** A time step not used yet that the server accepts now (it allows one
 * step either side), waiting for the clock when all are spent. */
async function freshStep() {
  let step = Math.max(currentStep(), owner.lastStep + 1);
  while (step > currentStep() + 1) await new Promise((r) => setTimeout(r, 500));
  owner.lastStep = step;
  return step;
}

/** Signs the demo owner in through the form: password, then enrolment
 * (first time) or a TOTP code. `onPage(page)` runs on each page on the way
 * (e.g. axeCheck). Returns { enrolled, recoveryCodes }. */
export async function signInOwner(page, { onPage = async () => {} } = {}) {
  await page.goto('/admin/login');
  await onPage(page);
  await typeInto(page, page.getByLabel('Email'), EMAIL);
  await typeInto(page, page.getByLabel('Password'), PASSWORD);
  await activate(page, page.getByRole('button', { name: 'Sign in' }));
  await page.waitForURL(/\/admin(\/login\/2fa|\/2fa\/setup)?$/);
  let result = { enrolled: false, recoveryCodes: [] };
  if (new URL(page.url()).pathname === '/admin/2fa/setup') {
    await onPage(page);
    const secret = (await page.locator('figcaption code').textContent()).trim();
    await typeInto(page, page.getByLabel(/6-digit code/i), totp(secret, await freshStep()));
    await activate(page, page.getByRole('button', { name: /turn on two-factor/i }));
    await page.getByRole('heading', { name: /two-factor is on/i }).waitFor();
    owner.secret = secret;
    result = { enrolled: true, recoveryCodes: await page.locator('ul.codes code').allTextContents() };
    await onPage(page);
    await activate(page, page.getByRole('link', { name: /continue to the dashboard/i }));
  } else if (new URL(page.url()).pathname === '/admin/login/2fa') {
    if (!owner.secret) throw new Error('the demo owner has two-factor on, but this run did not enrol it');
    await onPage(page);
    await typeInto(page, page.getByLabel(/code from your authenticator/i), totp(owner.secret, await freshStep()));
    await activate(page, page.getByRole('button', { name: 'Continue' }));
  }
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  owner.cookies = await page.context().cookies();
  return result;
}

/** This test's page as the signed-in owner: the last session's cookie if
 * there is one, else a fresh sign-in. Never sign out everywhere in a test
 * that uses this. */
export async function asOwner(page) {
  if (owner.cookies) await page.context().addCookies(owner.cookies);
  else await signInOwner(page);
}
