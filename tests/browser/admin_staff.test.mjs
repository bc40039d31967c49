// Users and roles, API keys and the audit log as the demo owner uses them,
// keyboard only, axe-core on every page seen (refused forms included): add
// a user (the password shown once), change its role, disable it; the roles
// matrix; create a key, use it against the API, revoke it; filter the
// audit log.

import assert from 'node:assert/strict';
import { test, skipFileIf, axeCheck, activate, typeInto, chooseOption } from './lib.mjs';
import { EMAIL, PASSWORD, asOwner } from './admin.mjs';

skipFileIf(async () => (EMAIL && PASSWORD ? null : 'serve --demo printed no demo owner'));

async function apiStatus(page, secret) {
  const r = await fetch(new URL('/api/v1/products', page.url()), { headers: { authorization: `Bearer ${secret}` } });
  await r.arrayBuffer();
  return r.status;
}

test('an owner manages users, keys and reads the audit log by keyboard', { timeout: 120_000 }, async ({ page }) => {
  await asOwner(page);
  await page.goto('/admin/users');
  await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
  await axeCheck(page);

  // An empty form is refused with an error summary naming the fields.
  await activate(page, page.getByRole('button', { name: 'Add user' }));
  await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
  await axeCheck(page);

  const email = `clerk-${Date.now()}@example.com`;
  await typeInto(page, page.getByLabel('Email'), email);
  await chooseOption(page, page.getByLabel('Role'), 'Support agent');
  await activate(page, page.getByRole('button', { name: 'Add user' }));
  await page.getByRole('heading', { name: 'User added' }).waitFor();
  const password = (await page.locator('code.secret-value').textContent()).trim();
  assert.ok(password.length >= 16, 'a generated password is shown once');
  await axeCheck(page);

  await activate(page, page.getByRole('link', { name: 'View this user' }));
  await page.getByRole('heading', { name: email, level: 1 }).waitFor();
  await axeCheck(page);
  await chooseOption(page, page.getByLabel('New role'), 'Analyst');
  await activate(page, page.getByRole('button', { name: 'Change role' }));
  await page.getByText(`${email} is now Analyst.`).waitFor();
  await axeCheck(page);
  await activate(page, page.getByRole('button', { name: `Disable ${email}` }));
  await page.getByText(`${email} is disabled`).waitFor();
  await axeCheck(page);

  await page.goto('/admin/roles');
  await page.getByRole('heading', { name: 'Roles', level: 1 }).waitFor();
  await axeCheck(page);

  await page.goto('/admin/api-keys');
  await axeCheck(page);
  await typeInto(page, page.getByLabel('Name'), 'Browser test key');
  await chooseOption(page, page.getByLabel('Role'), 'Analyst');
  await typeInto(page, page.getByLabel(/Expires after/), '7');
  await activate(page, page.getByRole('button', { name: 'Create key' }));
  await page.getByRole('heading', { name: 'API key created' }).waitFor();
  const secret = (await page.locator('code.secret-value').textContent()).trim();
  assert.match(secret, /^keel_sk_[0-9a-f]{64}$/);
  await axeCheck(page);
  assert.equal(await apiStatus(page, secret), 200, 'the new key works');

  await page.goto('/admin/api-keys');
  await activate(page, page.getByRole('button', { name: /^Revoke Browser test key/ }));
  await page.getByText(/Browser test key.*is revoked/).waitFor();
  await axeCheck(page);
  assert.equal(await apiStatus(page, secret), 401, 'a revoked key stops at once');

  await page.goto('/admin/audit-log');
  await axeCheck(page);
  await typeInto(page, page.getByLabel('Action contains'), 'api-keys');
  await activate(page, page.getByRole('button', { name: 'Filter' }));
  await page.getByRole('cell', { name: 'POST /admin/api-keys/{key_id}/revoke' }).first().waitFor();
  assert.equal(await page.getByRole('cell', { name: 'POST /admin/users', exact: true }).count(), 0, 'the filter narrows');
  await axeCheck(page);
  await typeInto(page, page.getByLabel('From'), 'last week');
  await activate(page, page.getByRole('button', { name: 'Filter' }));
  await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
  await axeCheck(page);
});
