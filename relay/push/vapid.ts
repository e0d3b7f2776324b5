/**
 * The relay's VAPID key pair (RFC 8292): generated on first start, kept in relay_secrets with
 * the OPAQUE setup (never in the repository), the same for every process on one database.
 * Browsers subscribe with its public key, and push services accept only pushes signed by it.
 */
import webpush from 'web-push';
import type { Db } from '../db/client.ts';
import { loadOrCreateSecret } from '../secrets.ts';

export interface VapidKeys {
  readonly publicKey: string;
  readonly privateKey: string;
}

export async function vapidKeys(db: Db): Promise<VapidKeys> {
  const value = await loadOrCreateSecret(db, 'vapid_keys', () => JSON.stringify(webpush.generateVAPIDKeys()));
  const keys = JSON.parse(value) as VapidKeys;
  if (typeof keys.publicKey !== 'string' || typeof keys.privateKey !== 'string') throw new Error('stored VAPID keys are malformed');
  return keys;
}
