// Staff sign-in as an owner uses it, keyboard only: password, two-factor
// enrolment with a TOTP code computed here (RFC 6238, the key read off the
// enrolment page), recovery codes, sign out, then sign in again with the
// next TOTP code; axe-core on every admin page seen.

import assert from 'node:assert/strict';
import { test, skipFileIf, axeCheck, activate, typeInto } from './lib.mjs';
import { EMAIL, PASSWORD, signInOwner } from './admin.mjs';

skipFileIf(async () => (EMAIL && PASSWORD ? null : 'serve --demo printed no demo owner'));

test('an owner enrols two-factor and signs in with a computed TOTP code', { timeout: 90_000 }, async ({ page }) => {
  // A wrong password is refused without saying which part was wrong.
  await page.goto('/admin/login');
  await typeInto(page, page.getByLabel('Email'), EMAIL);
  await typeInto(page, page.getByLabel('Password'), 'not-the-password');
  await activate(page, page.getByRole('button', { name: 'Sign in' }));
  await assert.doesNotReject(page.getByRole('alert').waitFor());
  await axeCheck(page);

  // First sign-in: an owner must enrol a second factor before anything else.
  const first = await signInOwner(page, { onPage: axeCheck });
  assert.ok(first.enrolled, 'the first sign-in enrols two-factor');
  assert.equal(first.recoveryCodes.length, 10, 'ten recovery codes are shown once');
  await assert.doesNotReject(page.getByText(`Signed in as ${EMAIL}`).waitFor());
  await axeCheck(page);
  await activate(page, page.getByRole('button', { name: 'Sign out', exact: true }));
  await page.waitForURL(/\/admin\/login$/);

  // Second sign-in: password, then the code of the next time step (the
  // enrolment used this one, and a step is accepted once).
  const second = await signInOwner(page, { onPage: axeCheck });
  assert.ok(!second.enrolled);
  await assert.doesNotReject(page.getByText(`Signed in as ${EMAIL}`).waitFor());
  await axeCheck(page);
});
