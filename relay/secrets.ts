/**
 * Secrets the relay generates for itself on first start and keeps in its database (never in
 * the repository): the OPAQUE server setup (its long-term OPAQUE key pair and OPRF seed; losing
 * it invalidates every password), and the VAPID key pair (push/vapid.ts). Several processes starting at
 * once agree on one value: the first INSERT wins and everyone reads it back.
 */
import * as opaque from '@serenity-kit/opaque';
import { eq } from 'drizzle-orm';
import type { Db } from './db/client.ts';
import { relaySecrets } from './db/schema.ts';

export async function loadOrCreateSecret(db: Db, name: string, create: () => string, now = Date.now()): Promise<string> {
  await db.insert(relaySecrets).values({ name, value: create(), createdAt: now }).onConflictDoNothing();
  const [row] = await db.select({ value: relaySecrets.value }).from(relaySecrets).where(eq(relaySecrets.name, name));
  if (!row) throw new Error(`secret ${name} missing after insert`);
  return row.value;
}

export async function opaqueServerSetup(db: Db): Promise<string> {
  await opaque.ready;
  const existing = await db.select({ value: relaySecrets.value }).from(relaySecrets).where(eq(relaySecrets.name, 'opaque_server_setup'));
  if (existing[0]) return existing[0].value;
  return loadOrCreateSecret(db, 'opaque_server_setup', () => opaque.server.createSetup());
}
