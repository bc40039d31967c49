// The admin console in a real browser, keyboard only, as the demo owner
// (signed in with two-factor by admin.test.mjs, which runs first; a fresh
// sign-in otherwise): adjust stock and find the movement in the ledger.
// axe-core checks every page seen.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
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

test('an owner replays a failed webhook and it is delivered', { timeout: 90_000 }, async ({ page, api }) => {
  // A receiver on loopback that fails until told otherwise (the server runs
  // with KEEL_WEBHOOKS_ALLOW_PRIVATE=1, see ./run).
  let answer = 500;
  const received = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push({ id: req.headers['webhook-id'], status: answer });
      res.writeHead(answer).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${server.address().port}/hook`;
    const endpoint = await api.postOk('/webhook-endpoints', { url, event_types: ['location.*'] });
    await api.postOk('/locations', { name: `Webhook probe ${Date.now()}`, kind: 'warehouse', priority: 90, country: 'US' });
    // The first attempt fails at once, the retry 5 s later fails too; the
    // next automatic one is 5 minutes away, so only Replay can deliver it.
    const message = await waitFor(async () => {
      const m = (await api.getOk(`/webhook-endpoints/${endpoint.id}/messages`)).data[0];
      return m && m.attempts.length >= 2 ? m : null;
    }, 30_000, 'two failed attempts');
    assert.ok(received.length >= 2 && received.every((r) => r.status === 500));

    await asOwner(page);
    await page.goto('/admin');
    await activate(page, page.getByRole('link', { name: 'Integrations', exact: true }));
    await page.getByRole('heading', { name: 'Integrations', level: 1 }).waitFor();
    await axeCheck(page);
    await activate(page, page.getByRole('link', { name: url }));
    await page.getByRole('heading', { name: 'Webhook endpoint', level: 1 }).waitFor();
    await axeCheck(page);

    answer = 200;
    await activate(page, page.getByRole('button', { name: /^Replay location\.created message of/ }).first());
    await page.getByRole('status').getByText(/replayed/).waitFor();
    await axeCheck(page);

    // The message's own page: delivered, by the replay.
    await waitFor(async () => {
      const m = await api.getOk(`/webhook-messages/${message.id}`);
      return m.status === 'succeeded' ? m : null;
    }, 30_000, 'the replayed message to be delivered');
    await page.goto(`/admin/webhook-messages/${message.id}`);
    await page.getByRole('heading', { name: /^Webhook message location\.created/ }).waitFor();
    assert.match(await page.locator('main').innerText(), /Delivered/);
    await axeCheck(page);
    assert.equal(received.at(-1).status, 200);
    assert.equal(new Set(received.map((r) => r.id)).size, 1, 'every attempt carries the same webhook-id');
  } finally {
    server.close();
  }
});

/** Polls `check` every 250 ms until it returns something truthy. */
async function waitFor(check, timeoutMs, what) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
