/**
 * What every part of the engine shares: the store, the relay API, randomness and clock, the
 * event emitter, this device's identity, and in-memory caches of state that crypto/ needs
 * synchronously (prekey secrets, session records). Caches are updated only after the store
 * committed (compute, then commit), so a failed transaction never leaves them ahead of disk.
 */
import {
  type AccountKeyPair,
  accountKeyFromSecret,
  decodeDeviceKeyPair,
  decodeDeviceSessions,
  decodePrekeySecret,
  type DeviceKeyPair,
  type DeviceList,
  type DeviceSessions,
  EMPTY_DEVICE_SESSIONS,
  type PrekeySecret,
  type Rng,
  toHex,
} from '../../crypto/index.ts';
import { toB64 } from './b64.ts';
import type { RelayApi } from './net/api.ts';
import type { SentEntry } from './resend.ts';
import type { Store } from './store/schema.ts';
import type { EngineEvent } from './types.ts';

/** This device as stored in meta 'identity'. The account secret is null on a linked device until the approver sends it. */
export interface IdentityRecord {
  readonly username: string;
  readonly accountSecret: Uint8Array | null;
  readonly device: Uint8Array;
  readonly token: string;
  readonly deviceName: string;
}

export interface Me {
  readonly username: string;
  readonly account: AccountKeyPair | null;
  readonly device: DeviceKeyPair;
  readonly deviceB64: string;
}

/** Runs `fn` with exclusive use of this profile's session state (one engine at a time). */
export type Lock = <T>(fn: () => Promise<T>) => Promise<T>;

export function mutex(): Lock {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

export const address = (user: string, deviceId: Uint8Array) => `${user}/${toHex(deviceId)}`;

export class Ctx {
  me: Me | null = null;
  /** Sessions by address; loaded lazily from the store. */
  readonly sessions = new Map<string, DeviceSessions>();
  readonly prekeys = new Map<string, PrekeySecret>();
  /** What we sent on unconfirmed sessions, by address (resend.ts); loaded lazily from the store. */
  readonly sentLogs = new Map<string, readonly SentEntry[]>();
  /** Verified device lists by username, with when they were fetched. */
  readonly lists = new Map<string, { list: DeviceList; at: number }>();
  readonly #listeners = new Set<(e: EngineEvent) => void>();

  constructor(
    readonly store: Store,
    readonly api: RelayApi,
    readonly rng: Rng,
    readonly now: () => number,
    readonly lock: Lock,
  ) {}

  on(fn: (e: EngineEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  emit(e: EngineEvent): void {
    for (const fn of this.#listeners) {
      try {
        fn(e);
      } catch {
        // A listener's bug must not break message processing.
      }
    }
  }

  requireMe(): Me {
    if (!this.me) throw new Error('not_registered');
    return this.me;
  }

  setIdentity(id: IdentityRecord | null): void {
    if (!id) {
      this.me = null;
      this.api.token = null;
      return;
    }
    const device = decodeDeviceKeyPair(id.device);
    this.me = { username: id.username, account: id.accountSecret ? accountKeyFromSecret(id.accountSecret) : null, device, deviceB64: toB64(device.deviceId) };
    this.api.token = id.token;
  }

  async loadKeys(): Promise<void> {
    const rows = await this.store.read(['prekeys'], (tx) => tx.getAll('prekeys'));
    this.prekeys.clear();
    for (const r of rows) this.prekeys.set(r.id, decodePrekeySecret(r.secret));
  }

  async session(addr: string): Promise<DeviceSessions> {
    const cached = this.sessions.get(addr);
    if (cached) return cached;
    const row = await this.store.read(['sessions'], (tx) => tx.get('sessions', addr));
    const record = row ? decodeDeviceSessions(row.record) : EMPTY_DEVICE_SESSIONS;
    this.sessions.set(addr, record);
    return record;
  }

  /** For crypto/'s synchronous prekey lookup. */
  readonly lookupPrekey = (kind: number, id: number) => this.prekeys.get(`${kind}/${id}`);
}
