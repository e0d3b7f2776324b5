/**
 * The relay's HTTP API (relay/README.md) as typed calls. Bytes travel as base64url; errors
 * come back as RelayError with the relay's stable code, or code 'network' when the relay
 * could not be reached (the caller retries those; it does not retry a 4xx).
 */
import { fromB64, toB64 } from '../b64.ts';

/** The subset of fetch the engine needs; browsers, workers and Node 20 all provide it. */
export type Fetch = (url: string, init?: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array; signal?: unknown }) => Promise<{
  status: number;
  ok: boolean;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}>;

export class RelayError extends Error {
  override readonly name = 'RelayError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: Record<string, unknown> = {},
  ) {
    super(message);
  }
  /** Worth retrying later: the relay was unreachable, overloaded or failing. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export interface WireEnvelope {
  readonly seq: number;
  readonly messageId: number;
  readonly sender: { readonly user: string; readonly device: string };
  readonly timestamp: number;
  readonly envelope: string;
  readonly payload: string;
}

export interface Mismatch {
  readonly missing: readonly { user: string; devices: string[] }[];
  readonly extra: readonly { user: string; devices: string[] }[];
}

/** Why the device token is dead, as the engine learnt from the account's device list (web/core/refusal.ts). */
export type RevokedCode = 'device_removed' | 'signed_out';

/** What a call made with a dead device token throws: nothing is sent any more (see RelayApi.revoked). */
export function revokedError(code: RevokedCode = 'device_removed'): RelayError {
  return new RelayError(
    401,
    code,
    code === 'signed_out' ? 'This device was signed out by the relay: sign in again with your password. Your messages are kept.' : 'This device was removed from the account: it can no longer use the relay.',
  );
}

export class RelayApi {
  token: string | null = null;
  /**
   * The relay refused our device token (401): the device was removed from the account, or its
   * token was replaced (signed out). That token never works again, so from then on calls with it
   * fail here without a request (it was polled every few seconds, forever); a new token (the
   * engine's signIn) clears this. Calls without a token (the public device list, login) still go out.
   */
  revoked = false;
  /** What those calls throw: set by the engine once the device list told removal from signing out. */
  revokedCode: RevokedCode = 'signed_out';
  /** Told once, at the first 401 to the device token. */
  onRevoked: (() => void) | null = null;

  constructor(
    private readonly base: string,
    private readonly fetch: Fetch,
  ) {}

  /** Whether a call with `token` uses our device token (and so is refused once it is revoked). */
  #usesDeviceToken(token: string | null): boolean {
    return token !== null && token === this.token;
  }

  /** A 401 to the device token: the device was removed or signed out (the engine asks the device list which). */
  #checkRevoked(status: number, token: string | null): void {
    if (status !== 401 || !this.#usesDeviceToken(token) || this.revoked) return;
    this.revoked = true;
    this.onRevoked?.();
  }

  async call<T = any>(method: string, path: string, body?: unknown, token: string | null = this.token): Promise<T> {
    if (this.revoked && this.#usesDeviceToken(token)) throw revokedError(this.revokedCode);
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.#reach(this.base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = {};
    }
    this.#checkRevoked(res.status, token);
    if (!res.ok) throw new RelayError(res.status, typeof parsed.error === 'string' ? parsed.error : 'http_' + res.status, parsed.message ?? `HTTP ${res.status}`, parsed);
    return parsed as T;
  }

  // accounts
  registerStart = (username: string, registrationRequest: string) =>
    this.call<{ registrationResponse: string }>('POST', '/v1/accounts/register/start', { username, registrationRequest }, null);
  registerFinish = (username: string, registrationRecord: string) =>
    this.call<{ username: string; sessionToken: string }>('POST', '/v1/accounts/register/finish', { username, registrationRecord }, null);
  loginStart = (username: string, startLoginRequest: string) =>
    this.call<{ loginId: string; loginResponse: string }>('POST', '/v1/accounts/login/start', { username, startLoginRequest }, null);
  loginFinish = (loginId: string, finishLoginRequest: string) =>
    this.call<{ username: string; sessionToken: string; backup: string | null }>('POST', '/v1/accounts/login/finish', { loginId, finishLoginRequest }, null);
  putBackup = (backup: Uint8Array, token: string) => this.call('PUT', '/v1/account/backup', { backup: toB64(backup) }, token);

  // devices
  putDeviceList = (list: Uint8Array, token = this.token) => this.call<{ version: number }>('PUT', '/v1/account/devices', { list: toB64(list) }, token);
  issueToken = (deviceId: Uint8Array, token: string) => this.call<{ token: string }>('POST', `/v1/account/devices/${toB64(deviceId)}/token`, undefined, token);
  /** The new device's first token, or null while no account lists the device yet (202 { status: 'pending' }). */
  async claim(claim: Uint8Array): Promise<{ username: string; token: string } | null> {
    const r = await this.call<{ username: string; token: string } | { status: 'pending' }>('POST', '/v1/devices/claim', { claim: toB64(claim) }, null);
    return 'token' in r ? r : null;
  }
  async deviceList(username: string): Promise<{ version: number; list: Uint8Array }> {
    const r = await this.call<{ version: number; list: string }>('GET', `/v1/users/${encodeURIComponent(username)}/devices`, undefined, null);
    return { version: r.version, list: fromB64(r.list) };
  }

  // keys
  putPrekeys = (prekeys: Uint8Array[]) => this.call<{ oneTime: number; pqOneTime: number }>('PUT', '/v1/keys', { prekeys: prekeys.map(toB64) });
  prekeyCount = () => this.call<{ signed: boolean; pqLastResort: boolean; oneTime: number; pqOneTime: number }>('GET', '/v1/keys/count');
  async bundles(username: string, deviceIds: Uint8Array[]): Promise<{ bundles: { deviceId: Uint8Array; bundle: Uint8Array }[]; unavailable: string[] }> {
    const q = deviceIds.length ? `?devices=${deviceIds.map(toB64).join(',')}` : '';
    const r = await this.call<{ bundles: { deviceId: string; bundle: string }[]; unavailable: string[] }>('GET', `/v1/users/${encodeURIComponent(username)}/bundles${q}`);
    return { bundles: r.bundles.map((b) => ({ deviceId: fromB64(b.deviceId), bundle: fromB64(b.bundle) })), unavailable: r.unavailable };
  }

  // messages
  submit = (body: { clientMessageId: string; to: readonly string[]; payload: Uint8Array; envelopes: readonly { user: string; device: Uint8Array; body: Uint8Array }[] }) =>
    this.call<{ messageId: number; timestamp: number }>('POST', '/v1/messages', {
      clientMessageId: body.clientMessageId,
      to: body.to,
      payload: toB64(body.payload),
      envelopes: body.envelopes.map((e) => ({ user: e.user, device: toB64(e.device), body: toB64(e.body) })),
    });
  inbox = (after: number, limit: number, at?: number) => this.call<{ envelopes: WireEnvelope[]; more: boolean }>('GET', `/v1/inbox?after=${after}&limit=${limit}${at ? `&at=${at}` : ''}`);
  ack = (seq: number) => this.call<{ acked: number }>('POST', '/v1/inbox/ack', { seq });

  // attachments (relay/routes/attachments.ts)
  createAttachment = (size: number) => this.call<{ id: string; chunkSize: number; expiresAt: number }>('POST', '/v1/attachments', { size });
  async putChunk(id: string, idx: number, bytes: Uint8Array): Promise<void> {
    if (this.revoked) throw revokedError(this.revokedCode);
    const res = await this.#reach(`${this.base}/v1/attachments/${id}/chunks/${idx}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    this.#checkRevoked(res.status, this.token);
    if (!res.ok) {
      const body = await res.text().then((t) => { try { return JSON.parse(t); } catch { return {}; } });
      throw new RelayError(res.status, body.error ?? 'http_' + res.status, body.message ?? `HTTP ${res.status}`, body);
    }
    await res.arrayBuffer();
  }
  /** fetch, a relay out of reach thrown as RelayError 'network'. */
  #reach(url: string, init: Parameters<Fetch>[1]) {
    return this.fetch(url, init).catch((e: unknown) => {
      throw new RelayError(0, 'network', `the relay is unreachable (${e instanceof Error ? e.message : String(e)})`);
    });
  }
  completeAttachment = (id: string) => this.call('POST', `/v1/attachments/${id}/complete`);
  async downloadAttachment(id: string): Promise<Uint8Array> {
    if (this.revoked) throw revokedError(this.revokedCode);
    const res = await this.#reach(`${this.base}/v1/attachments/${id}`, { method: 'GET', headers: { authorization: `Bearer ${this.token}` } });
    this.#checkRevoked(res.status, this.token);
    if (!res.ok) throw new RelayError(res.status, res.status === 404 ? 'not_found' : 'http_' + res.status, `attachment download failed (HTTP ${res.status})`);
    return new Uint8Array(await res.arrayBuffer());
  }

  // push
  vapidKey = () => this.call<{ publicKey: string }>('GET', '/v1/push/vapid', undefined, null);
  putPushSubscription = (sub: { endpoint: string; keys: { p256dh: string; auth: string } }) => this.call('PUT', '/v1/push/subscription', sub);
  deletePushSubscription = () => this.call('DELETE', '/v1/push/subscription');
}
