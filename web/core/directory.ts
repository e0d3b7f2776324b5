/**
 * Device lists and contacts. Every list is verified with crypto/'s verifyDeviceList on every
 * fetch: signature, user, the account key pinned on first use, no rollback against the last
 * list we accepted. A list signed by a *different* account key is not silently trusted: it is
 * accepted only as a key change — the contact's verification (which was for the old key) is
 * cleared, and its conversations get a line saying so and a warning until the user acknowledges
 * it or verifies the new key.
 */
import { CryptoError, type DeviceList, equalBytes, isCryptoError, normaliseUsername, verifyDeviceList } from '../../crypto/index.ts';
import { toB64 } from './b64.ts';
import type { Ctx } from './context.ts';
import { newId } from './protocol/content.ts';
import type { ContactRow, ConversationRow, MessageRow, WriteTx } from './store/schema.ts';
import { EngineError } from './types.ts';
import { messageView, newMessageRow } from './views.ts';

/** How long a cached list is used for sending before it is fetched again (409s refresh sooner). */
const LIST_TTL_MS = 5 * 60_000;

/**
 * `refresh`: fetch it even if the cached one is recent. `fromRelay`: only a list the relay answers
 * now will do — offline, a failure rather than the cached one (for a conclusion the cached list
 * may get wrong, such as that there is no device to send to).
 */
export async function deviceList(ctx: Ctx, username: string, opts: { refresh?: boolean; fromRelay?: boolean } = {}): Promise<DeviceList> {
  const cached = ctx.lists.get(username);
  if (cached && !opts.refresh && !opts.fromRelay && ctx.now() - cached.at < LIST_TTL_MS) return cached.list;
  const { list: bytes } = await ctx.api.deviceList(username).catch((e) => {
    // Offline: a list we verified before is still the best we know.
    if (cached && e.transient && !opts.fromRelay) return { list: null as unknown as Uint8Array };
    throw e;
  });
  if (!bytes) return cached!.list;
  const list = ctx.me && username === ctx.me.username ? await acceptOwn(ctx, bytes) : await acceptContact(ctx, username, bytes);
  ctx.lists.set(username, { list, at: ctx.now() });
  return list;
}

async function acceptOwn(ctx: Ctx, bytes: Uint8Array): Promise<DeviceList> {
  const me = ctx.requireMe();
  const prev = (await ctx.store.read(['meta'], (tx) => tx.get('meta', 'ownList')))?.value as Uint8Array | undefined;
  const previous = prev ? { list: verifyDeviceList(prev, { userId: me.username }), bytes: prev } : undefined;
  const list = verifyDeviceList(bytes, {
    userId: me.username,
    ...(me.account ? { pinnedAccountKey: me.account.publicKey } : {}),
    ...(previous ? { previous } : {}),
  });
  if (!list.devices.some((d) => equalBytes(d.deviceId, me.device.deviceId))) {
    throw new CryptoError('identity_mismatch', 'our own device list does not contain this device');
  }
  if (!previous || previous.list.version < list.version) await ctx.store.write(['meta'], (tx) => tx.put('meta', { key: 'ownList', value: bytes }));
  return list;
}

async function acceptContact(ctx: Ctx, username: string, bytes: Uint8Array): Promise<DeviceList> {
  const contact = await ctx.store.read(['contacts'], (tx) => tx.get('contacts', username));
  const now = ctx.now();
  if (!contact) {
    const list = verifyDeviceList(bytes, { userId: username });
    const row: ContactRow = { username, accountKey: list.accountKey, list: bytes, listVersion: list.version, verified: false, keyChangedAt: null, firstSeen: now };
    await ctx.store.write(['contacts'], (tx) => tx.put('contacts', row));
    return list;
  }
  const previous = { list: verifyDeviceList(contact.list, { userId: username }), bytes: contact.list };
  try {
    const list = verifyDeviceList(bytes, { userId: username, pinnedAccountKey: contact.accountKey, previous });
    if (list.version > contact.listVersion) {
      await ctx.store.write(['contacts'], (tx) => tx.put('contacts', { ...contact, list: bytes, listVersion: list.version }));
    }
    return list;
  } catch (e) {
    if (!isCryptoError(e, 'identity_mismatch')) throw e;
  }
  // A new account key: the list must still be validly signed by it, for this user.
  const list = verifyDeviceList(bytes, { userId: username });
  // The banner (keyWarning) can be dismissed; the line in each conversation stays, as the record
  // of when the number changed — and of a verification that no longer holds.
  const text = `Your safety number with ${username} changed.` + (contact.verified ? ` ${username} is no longer marked as verified: that was for their previous key.` : '');
  const lines = await ctx.store.write(['contacts', 'conversations', 'messages'], async (tx) => {
    await tx.put('contacts', { ...contact, accountKey: list.accountKey, list: bytes, listVersion: list.version, verified: false, keyChangedAt: now });
    const added: MessageRow[] = [];
    for (const c of await tx.getAll('conversations')) {
      if (!c.members.includes(username)) continue;
      await tx.put('conversations', { ...c, keyWarning: true } satisfies ConversationRow);
      if (c.left) continue;
      const row = newMessageRow({ id: newId(ctx.rng), conversation: c.id, sender: username, senderDevice: '', sentAt: now, receivedAt: now, text, status: 'received', system: true });
      await tx.put('messages', row);
      added.push(row);
    }
    return added;
  });
  // Sessions with the old key's devices are worthless now.
  for (const k of [...ctx.sessions.keys()]) if (k.startsWith(`${username}/`)) ctx.sessions.delete(k);
  ctx.emit({ type: 'key-changed', user: username });
  for (const row of lines) ctx.emit({ type: 'messages', conversation: row.conversation, messages: [messageView(row)] });
  ctx.emit({ type: 'conversations' });
  return list;
}

/**
 * Marks a contact verified or not, for the account key stored with it. Verifying the key that
 * replaced an earlier one settles that change: its warning on the direct conversation goes.
 */
export async function putVerified(tx: WriteTx, contact: ContactRow, verified: boolean): Promise<void> {
  await tx.put('contacts', { ...contact, verified, ...(verified ? { keyChangedAt: null } : {}) });
  if (!verified) return;
  const dm = await tx.get('conversations', `dm:${contact.username}`);
  if (dm?.keyWarning) await tx.put('conversations', { ...dm, keyWarning: false });
}

/**
 * Another of our devices marked `user` verified (or not) for `accountKey` (base64url): the same
 * key here takes the mark too; a different key does not (the mark was for that key only). A
 * device that has not pinned their key yet (linked later, nothing exchanged with them since)
 * fetches it now, so the mark is not lost — and takes it only if the relay serves that key.
 */
export async function takeVerified(ctx: Ctx, user: string, accountKey: string, verified: boolean): Promise<void> {
  const known = await ctx.store.read(['contacts'], (tx) => tx.get('contacts', user));
  if (!known && verified && user !== ctx.requireMe().username) await deviceList(ctx, user);
  await ctx.store.write(['contacts', 'conversations'], async (tx) => {
    const c = await tx.get('contacts', user);
    if (!c || toB64(c.accountKey) !== accountKey) return;
    await putVerified(tx, c, verified);
  });
}

/** Looks a user up by name (for a new chat): their list verified and their key pinned. */
export async function lookUp(ctx: Ctx, typed: string): Promise<DeviceList> {
  // As the relay does: "Bob" is bob, and the list signed for bob must be checked against "bob".
  const username = normaliseUsername(typed.trim());
  if (!username) throw new EngineError('unknown_user', `“${typed}” is not a Petrel user name: 3 to 32 letters, digits, _ . or -.`);
  try {
    return await deviceList(ctx, username, { refresh: true });
  } catch (e: any) {
    if (e?.code === 'unknown_user' || e?.code === 'no_device_list') throw new EngineError('unknown_user', `There is no Petrel user called “${username}”.`);
    throw e;
  }
}
