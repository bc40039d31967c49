// The admin console in a real browser, keyboard only, as the demo owner
// (signed in with two-factor by admin.test.mjs, which runs first; a fresh
// sign-in otherwise): adjust stock and find the movement in the ledger.
// axe-core checks every page seen.

import assert from 'node:assert/strict';
import { test, skipFileIf, axeCheck, activate, typeInto, chooseOption } from './lib.mjs';
import { EMAIL, PASSWORD, asOwner } from './admin.mjs';

skipFileIf(async () => (EMAIL && PASSWORD ? null : 'serve --demo printed no demo owner'));

const SKU = 'EVE-TEE-M';

test('an owner adjusts stock and sees the ledger entry', { timeout: 90_000 }, async ({ page, api }) => {
  await asOwner(page);
  await page.goto('/admin');
  await axeCheck(page);

  // From the levels list, filtered by SKU, to the item's page.
  await activate(page, page.getByRole('link', { name: 'Inventory', exact: true }));
  await axeCheck(page);
  await typeInto(page, page.getByLabel('SKU or title'), SKU);
  await page.keyboard.press('Enter');
  await page.waitForURL(/[?&]q=EVE-TEE-M/);
  await activate(page, page.getByRole('link', { name: SKU }).first());
  await page.getByRole('heading', { name: `Stock of ${SKU}` }).waitFor();
  await axeCheck(page);

  const levels = (await api.getOk(`/inventory/levels?sku=${SKU}`)).data;
  const level = levels[0];
  const location = (await api.getOk(`/locations/${level.location_id}`)).name;
  const target = level.on_hand + 7;
  const note = `shelf count ${Date.now()}`;

  await chooseOption(page, page.getByLabel('Location'), location);
  await chooseOption(page, page.getByLabel('Reason'), /stock count/i);
  await typeInto(page, page.getByLabel('Quantity'), target);
  await typeInto(page, page.getByLabel(/^Note/), note);
  await activate(page, page.getByRole('button', { name: 'Adjust stock' }));

  await page.getByRole('status').getByText(`now has ${target} on hand`).waitFor();
  const entry = page.getByRole('row').filter({ hasText: note });
  await entry.waitFor();
  assert.match(await entry.innerText(), /\+7/, 'the ledger row shows the change');
  assert.match(await entry.innerText(), new RegExp(EMAIL.replace(/[.]/g, '\\.')), 'and who made it');
  await axeCheck(page);

  const after = (await api.getOk(`/inventory/levels?sku=${SKU}`)).data.find((l) => l.location_id === level.location_id);
  assert.equal(after.on_hand, target, 'the API reads the same level');
});
