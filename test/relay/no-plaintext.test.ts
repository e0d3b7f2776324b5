// After a scripted conversation, a scan of every row of every table finds none of the
// plaintexts or passwords used — neither as text, nor as hex (bytea) nor as base64.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rowsOf } from '../../relay/db/client.ts';
import { call, createUser, login, open, send, type WireEnvelope } from './client.ts';
import { backends, startTestRelay, type TestRelay, uniqueName } from './harness.ts';

const enc = (s: string) => new TextEncoder().encode(s);

/** Every form in which a secret string could sit in a row dumped as JSON text. */
function forms(secret: string): string[] {
  const b = Buffer.from(secret, 'utf8');
  return [secret, b.toString('hex'), b.toString('base64'), b.toString('base64url')];
}

describe.each(backends)('database scan on $name', (backend) => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startTestRelay(backend);
  });
  afterAll(async () => relay?.close());

  test('no plaintext or password is stored anywhere', async () => {
    const alice = await createUser(relay.fetch, uniqueName('alice'), 2);
    const bob = await createUser(relay.fetch, uniqueName('bob'), 1);
    expect((await login(relay.fetch, alice.name, alice.password)).status).toBe(200);
    const texts = ['meet me at the old lighthouse at nine', 'the vault code is 7-1-9-4', 'petrels nest in burrows'];
    for (const [i, text] of texts.entries()) {
      const r = await send(relay.fetch, i % 2 ? bob.devices[0]! : alice.devices[0]!, [i % 2 ? alice.name : bob.name], enc(text), `scan-${i}`);
      expect(r.status).toBe(200);
    }
    // Bob reads (and so his envelopes are genuine) but does not acknowledge: rows stay in the inbox.
    const r = await call(relay.fetch, 'GET', '/v1/inbox?after=0&limit=100', { token: bob.devices[0]!.token });
    const got = await Promise.all((r.body.envelopes as WireEnvelope[]).map((e) => open(relay.fetch, bob.devices[0]!, e)));
    expect(got).toEqual([texts[0], texts[2]]);

    const tables = rowsOf<{ table_name: string }>(
      await relay.services.db.execute(sql`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`),
    ).map((t) => t.table_name);
    expect(tables.length).toBeGreaterThan(3);
    let dump = '';
    for (const t of tables) {
      const rows = rowsOf<{ row: string }>(await relay.services.db.execute(sql.raw(`SELECT to_jsonb(t)::text AS row FROM "${t}" t`)));
      for (const row of rows) dump += `${row.row}\n`;
    }
    // The scan is not vacuous: what the relay does store in clear (user names) is found.
    expect(dump.includes(alice.name) && dump.includes(bob.name)).toBe(true);
    for (const secret of [...texts, alice.password, bob.password]) {
      for (const f of forms(secret)) expect(dump.includes(f), `found ${JSON.stringify(secret)} as ${f.slice(0, 16)}...`).toBe(false);
    }
  });
});
